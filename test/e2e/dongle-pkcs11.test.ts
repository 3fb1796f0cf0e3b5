// End to end, the PKCS#11 dongle of patent 004 claim 10 ([0104]-[0110]; DESIGN.md "Dongle-backed card") on real
// tokens: SoftHSM2, and a TPM (swtpm) through tpm2-pkcs11. The dongles run in a child process that has the
// token's environment (test/support/dongle-driver.ts). Checked: the dongle key is made once and identifies the
// same after a reopen; its RSASSA-PKCS1-v1_5/SHA-256 signatures verify and repeat; slots round-trip 20 KB and a
// torn copy falls back to the other ([0108]); a wrong PIN is refused; a token taken away ([0107] remove: deleted,
// TPM stopped) fails the next signature at once, and a TPM that hangs fails it at the deadline; Ed25519 card
// keys are made on SoftHSM2 and refused, naming the mechanisms, on the TPM.
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual, utf8 } from '../../src/bytes/index.js';
import { verifyDongleSignature } from '../../src/dongle-backend/index.js';
import { SIGN_DEADLINE_MS } from '../../src/dongle-backend/index.js';
import { startDongleProcess, type DongleProcess, type RemoteDongle } from '../support/dongle-process.js';
import { pkcs11Tool, type Pkcs11Token } from '../support/pkcs11.js';
import { createSoftHsmHome, writePinFile, type SoftHsmDongleToken, type SoftHsmHome } from '../support/softhsm-token.js';
import { startSwtpmService, type SwtpmService } from '../support/swtpm-service.js';

/** [0107]: the card polls every second; a token taken away must fail the very next signature, well within it. */
const PROMPT_MS = 1000;
const PAYLOAD_BYTES = 20 * 1024;

let dir: string;
let wrongPinFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-dongle-pkcs11-'));
  wrongPinFile = await writePinFile(dir, 'wrong.pin', '999999');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Opens `uri` in `driver`, runs `body`, closes the dongle whatever happens. */
async function withDongle<T>(driver: DongleProcess, uri: string, body: (dongle: RemoteDongle) => Promise<T>): Promise<T> {
  const dongle = await driver.open(uri);
  try {
    return await body(dongle);
  } finally {
    await dongle.close().catch(() => undefined);
  }
}

/** Overwrites the data object `label` with garbage, behind the dongle's back (the dongle must be closed). */
async function overwriteDataObject(token: Pkcs11Token, pin: string, label: string): Promise<void> {
  const garbage = join(dir, 'garbage');
  await writeFile(garbage, randomBytes(300));
  await pkcs11Tool(token, ['--login', '--pin', pin, '--delete-object', '--type', 'data', '--label', label]);
  await pkcs11Tool(token, ['--login', '--pin', pin, '--write-object', garbage, '--type', 'data', '--label', label, '--application-label', 'vsc', '--private']);
}

/** The checks every token kind passes; `timings` collects what each took. */
function commonChecks(kind: string, get: () => { driver: DongleProcess; uri: string; token: Pkcs11Token; pin: string }, timings: Record<string, number>): void {
  it(`${kind}: ensureKey makes the dongle key once; identify and a reopen give the same identity`, async () => {
    const { driver, uri } = get();
    const first = await withDongle(driver, uri, async (dongle) => {
      const made = await dongle.ensureKey();
      timings['ensureKey (first: generates)'] = driver.lastMs;
      const again = await dongle.ensureKey();
      timings['ensureKey (key there)'] = driver.lastMs;
      const identified = await dongle.identify();
      timings['identify'] = driver.lastMs;
      expect(again.fingerprint).toEqual(made.fingerprint);
      expect(identified.fingerprint).toEqual(made.fingerprint);
      return made;
    });
    expect(first.kind).toBe('pkcs11');
    expect(first.description).toMatch(/^PKCS#11 token /);
    const key = createPublicKey({ key: Buffer.from(first.publicKey), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const reopened = await withDongle(driver, uri, (dongle) => dongle.identify());
    expect(reopened.fingerprint).toEqual(first.fingerprint);
  });

  it(`${kind}: signs with RSASSA-PKCS1-v1_5/SHA-256, verifiably and deterministically`, async () => {
    const { driver, uri } = get();
    await withDongle(driver, uri, async (dongle) => {
      const { publicKey } = await dongle.identify();
      const message = utf8('vsc-dongle-challenge/1 nonce');
      const signature = await dongle.sign(message);
      timings['sign'] = driver.lastMs;
      expect(signature).toHaveLength(256);
      expect(verifyDongleSignature(publicKey, message, signature)).toBe(true);
      expect(verify('sha256', message, createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' }), signature)).toBe(true);
      expect(await dongle.sign(message)).toEqual(signature);
      expect(verifyDongleSignature(publicKey, utf8('another message'), signature)).toBe(false);
    });
  });

  it(`${kind}: slots hold ${PAYLOAD_BYTES} bytes, keep the newest write and survive a reopen`, async () => {
    const { driver, uri } = get();
    const first = new Uint8Array(randomBytes(PAYLOAD_BYTES));
    const second = new Uint8Array(randomBytes(PAYLOAD_BYTES - 7));
    await withDongle(driver, uri, async (dongle) => {
      expect(await dongle.read('revocations')).toBeUndefined();
      await dongle.write('card', first);
      timings[`write ${PAYLOAD_BYTES} B`] = driver.lastMs;
      expect(await dongle.read('card')).toEqual(first);
      timings[`read ${PAYLOAD_BYTES} B`] = driver.lastMs;
      await dongle.write('card', second);
      await dongle.write('counter', utf8('counter 1'));
      expect(await dongle.read('card')).toEqual(second);
    });
    await withDongle(driver, uri, async (dongle) => {
      expect(await dongle.read('card')).toEqual(second);
      expect(await dongle.read('counter')).toEqual(utf8('counter 1'));
    });
  });

  it(`${kind}: a torn copy of a slot falls back to the other copy`, async () => {
    const { driver, uri, token, pin } = get();
    const older = utf8(`older ${kind}`);
    const newer = utf8(`newer ${kind}`);
    // Fresh slot "revocations": generation 1 goes to copy a, generation 2 to copy b.
    await withDongle(driver, uri, async (dongle) => {
      await dongle.write('revocations', older);
      await dongle.write('revocations', newer);
    });
    await overwriteDataObject(token, pin, 'vsc:revocations.b');
    await withDongle(driver, uri, async (dongle) => {
      expect(await dongle.read('revocations')).toEqual(older);
      const next = utf8(`after the tear ${kind}`);
      await dongle.write('revocations', next);
      expect(await dongle.read('revocations')).toEqual(next);
    });
  });

  it(`${kind}: a wrong PIN is refused with DongleAuthenticationError, naming no PIN`, async () => {
    const { driver, uri, pin } = get();
    const wrong = uri.replace(/pin-source=file:[^&]*/, `pin-source=file:${wrongPinFile}`);
    const error = await driver.open(wrong).then(() => undefined, (failure: unknown) => failure as Error & { exitCode?: number });
    expect(error).toMatchObject({ name: 'DongleAuthenticationError', exitCode: 4 });
    expect(error!.message).not.toContain('999999');
    expect(error!.message).not.toContain(pin);
    await withDongle(driver, uri, (dongle) => dongle.identify()); // the right PIN still works
  });
}

describe('PKCS#11 dongle on SoftHSM2', () => {
  let home: SoftHsmHome;
  let tokenA: SoftHsmDongleToken;
  let tokenB: SoftHsmDongleToken;
  let tokenGone: SoftHsmDongleToken;
  let driver: DongleProcess;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    home = await createSoftHsmHome();
    // All tokens first: a SoftHSM2 driver sees only the tokens that existed when it initialised the module.
    tokenA = await home.addToken('vsc dongle a');
    tokenB = await home.addToken('vsc dongle (b)');
    tokenGone = await home.addToken('vsc dongle gone');
    driver = startDongleProcess(home.env);
  });

  afterAll(async () => {
    await driver?.close();
    await home?.close();
    console.info(`SoftHSM2 dongle timings (ms, in the child): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([what, ms]) => [what, Math.round(ms * 10) / 10])))}`);
  });

  commonChecks('SoftHSM2', () => ({ driver, uri: tokenA.uri, token: { module: home.module, select: ['--token-label', tokenA.label], env: home.env }, pin: tokenA.pin }), timings);

  it('another token is another dongle: a different fingerprint', async () => {
    const a = await withDongle(driver, tokenA.uri, (dongle) => dongle.ensureKey());
    const b = await withDongle(driver, tokenB.uri, (dongle) => dongle.ensureKey());
    expect(bytesEqual(a.fingerprint, b.fingerprint)).toBe(false);
    expect(b.description).toContain('vsc dongle (b)');
  });

  it('a token no one attached is DongleAbsentError, naming the URI', async () => {
    const uri = tokenA.uri.replace('token=vsc%20dongle%20a', 'token=not%20here');
    await expect(driver.open(uri)).rejects.toMatchObject({ name: 'DongleAbsentError', exitCode: 3, message: expect.stringContaining('token=not%20here') });
  });

  it('a dongle without its key says so and names vsc dongle init', async () => {
    const home2 = await createSoftHsmHome();
    const other = startDongleProcess(home2.env);
    try {
      const bare = await home2.addToken('bare');
      await expect(withDongle(other, bare.uri, (dongle) => dongle.sign(utf8('x')))).rejects.toMatchObject({ name: 'DongleError', code: 'dongle.no-key', message: expect.stringContaining('vsc dongle init') });
    } finally {
      await other.close();
      await home2.close();
    }
  });

  it('card keys: Ed25519 generated on the token signs verifiably; a second one for the same card is refused', async () => {
    await withDongle(driver, tokenA.uri, async (dongle) => {
      expect(await dongle.cardKeys.unsupported()).toBeUndefined();
      const serial = `card-${Date.now()}`;
      const publicKey = await dongle.cardKeys.generate(serial);
      timings['card key generate'] = driver.lastMs;
      expect(publicKey).toHaveLength(32);
      expect(await dongle.cardKeys.publicKey(serial)).toEqual(publicKey);
      const message = utf8('SIGN AND INCREMENT');
      const signature = await dongle.cardKeys.sign(serial, message);
      timings['card key sign'] = driver.lastMs;
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
      expect(verify(null, message, key, signature)).toBe(true);
      await expect(dongle.cardKeys.generate(serial)).rejects.toMatchObject({ code: 'dongle.card-key-exists' });
      await expect(dongle.cardKeys.publicKey('never-made')).rejects.toMatchObject({ code: 'dongle.no-card-key' });
    });
  });

  it('deleting the token: the next signature throws DongleAbsentError at once', async () => {
    const dongle = await driver.open(tokenGone.uri);
    const { publicKey } = await dongle.ensureKey();
    const message = utf8('present?');
    expect(verifyDongleSignature(publicKey, message, await dongle.sign(message))).toBe(true);
    await tokenGone.delete();
    const started = performance.now();
    await expect(dongle.sign(message)).rejects.toMatchObject({ name: 'DongleAbsentError', exitCode: 3 });
    expect(performance.now() - started).toBeLessThan(PROMPT_MS);
    await expect(dongle.identify()).rejects.toMatchObject({ name: 'DongleAbsentError' });
    await expect(dongle.read('card')).rejects.toMatchObject({ name: 'DongleAbsentError' });
    await dongle.close();
    await expect(driver.open(tokenGone.uri)).rejects.toMatchObject({ name: 'DongleAbsentError' });
  });
});

describe('PKCS#11 dongle on a TPM (swtpm, tpm2-pkcs11)', () => {
  let tpm: SwtpmService;
  let driver: DongleProcess;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const started = performance.now();
    tpm = await startSwtpmService({ label: 'vsc-tpm' });
    timings['start swtpm and make the token'] = performance.now() - started;
    driver = startDongleProcess(tpm.env);
  });

  afterAll(async () => {
    await driver?.close();
    await tpm?.close();
    console.info(`TPM dongle timings (ms, in the child): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([what, ms]) => [what, Math.round(ms * 10) / 10])))}`);
  });

  commonChecks('TPM', () => ({ driver, uri: tpm.uri, token: { module: tpm.modulePath, select: ['--token-label', tpm.label], env: tpm.env }, pin: tpm.pin }), timings);

  it('card keys: unsupported() names the mechanisms a TPM lacks, and generate refuses', async () => {
    await withDongle(driver, tpm.uri, async (dongle) => {
      const reason = await dongle.cardKeys.unsupported();
      expect(reason).toContain('CKM_EC_EDWARDS_KEY_PAIR_GEN (0x1055)');
      expect(reason).toContain('CKM_EDDSA (0x1057)');
      await expect(dongle.cardKeys.generate('card-1')).rejects.toMatchObject({ code: 'dongle.mechanism' });
    });
  });

  it('stopping swtpm: the next signature throws DongleAbsentError at once; after a restart the dongle is back', async () => {
    const dongle = await driver.open(tpm.uri);
    const { fingerprint } = await dongle.identify();
    await dongle.sign(utf8('present?'));
    await tpm.stop();
    const started = performance.now();
    await expect(dongle.sign(utf8('present?'))).rejects.toMatchObject({ name: 'DongleAbsentError', exitCode: 3 });
    timings['sign after swtpm stopped (fails)'] = performance.now() - started;
    expect(performance.now() - started).toBeLessThan(PROMPT_MS);
    await expect(dongle.identify()).rejects.toMatchObject({ name: 'DongleAbsentError' });
    await dongle.close();
    await expect(driver.open(tpm.uri)).rejects.toMatchObject({ name: 'DongleAbsentError' });
    await tpm.restart();
    const back = await withDongle(driver, tpm.uri, (reopened) => reopened.identify());
    expect(back.fingerprint).toEqual(fingerprint);
  });

  it('a TPM that hangs (swtpm stopped with SIGSTOP): the signature gives up at the deadline with DongleAbsentError', async () => {
    const hung = startDongleProcess(tpm.env);
    try {
      const dongle = await hung.open(tpm.uri);
      await dongle.sign(utf8('present?'));
      tpm.pause();
      const started = performance.now();
      await expect(dongle.sign(utf8('present?'))).rejects.toMatchObject({ name: 'DongleAbsentError', message: expect.stringContaining('did not return') });
      const took = performance.now() - started;
      timings['sign to a hung TPM (gives up)'] = took;
      expect(took).toBeGreaterThanOrEqual(SIGN_DEADLINE_MS - 100);
      expect(took).toBeLessThan(SIGN_DEADLINE_MS + 1500);
      // Nothing else may call into the module while the signature is still inside it.
      await expect(dongle.identify()).rejects.toMatchObject({ name: 'DongleAbsentError' });
    } finally {
      tpm.resume();
      await hung.close();
    }
  });
});
