// End to end, patent 004 claim 10 through the real pcscd (DESIGN.md "Dongle-backed card"): `vsc dongle init`
// puts a card on a dongle, `vsc card insert --dongle URI --vpcd ...` shows it in the vpcd reader, OpenSC's
// opensc-tool drives the VSC applet and pkcs11-tool the PIV applet, a new PIV key and the counter survive
// remove and re-insert, and taking the dongle away ([0107] remove) empties the reader within 2 s.
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import {
  commandHex, createSoftHsmHome, emulatedDongleFixture, softHsmDongleFixture, startDongleProcess, swtpmDongleFixture, opensslCertificateFor, opensslCertificatePublicKey, opensslVerifyDigest, readObject, requireOpenscModule, run,
  runVsc, sendApdus, signDigest, spawnVsc, vpcdHostWithQuickack, waitForCard, type DongleFixture, type Pkcs11Token, type VpcdHost, type VscProcess,
} from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const PIN = '123456';
const ID_9A = '01';
const MANAGEMENT_KEY = '010203040506070801020304050607080102030405060708';
const GENERATE_9A_P256 = '00:47:00:9A:05:AC:03:80:01:11:00';
const SELECT_VSC = '00 A4 04 00 06 F0 56 53 43 00 01';
const GET_SERIAL = '80 20 00 00 00';
const GET_PUBLIC_KEY = '80 26 00 00 20';
const ED25519_SPKI_PREFIX = fromHex('302a300506032b6570032100');
const P256_SPKI_PREFIX = fromHex('3059301306072a8648ce3d020106082a8648ce3d030107034200');
const SLOW = 180_000;

let dir: string;
let vpcd: VpcdHost;
let piv: Pkcs11Token;
let passwordFile: string;
let managementKeyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-dongle-e2e-'));
  passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'dongle card password\n', { mode: 0o600 });
  managementKeyFile = join(dir, 'management-key.hex');
  await writeFile(managementKeyFile, `${MANAGEMENT_KEY}\n`, { mode: 0o600 });
  piv = { module: requireOpenscModule(), select: ['--slot-description', READER] };
  await waitForCard(READER, false, 5_000);
  vpcd = await vpcdHostWithQuickack();
});

afterAll(async () => {
  await vpcd?.release();
  await rm(dir, { recursive: true, force: true });
});

/** What every `vsc` process of one kind of dongle shares: the dongle's environment and one simulated machine. */
function machine(fixture: DongleFixture) {
  const state = join(dir, `${fixture.name}-state`);
  const env = { ...fixture.env, XDG_STATE_HOME: join(dir, `${fixture.name}-data`) };
  return {
    env,
    run: (args: readonly string[]) => runVsc(args, { env }),
    insert: async (): Promise<VscProcess> => {
      const card = spawnVsc(['card', 'insert', '--dongle', fixture.uri, '--password-file', passwordFile, '--vpcd', `${vpcd.host}:${PORT}`, '--state-dir', state, '--json'], { env });
      await card.waitFor(/"event":"inserted"/, 60_000);
      await waitForCard(READER, true);
      return card;
    },
    remove: async (card: VscProcess) => {
      const removed = await runVsc(['card', 'remove', '--state-dir', state], { env });
      expect(removed.code, removed.stderr).toBe(0);
      expect((await card.exited).code, card.output()).toBe(0);
      await waitForCard(READER, false);
    },
  };
}

const counterOf = (bytes: Uint8Array): bigint => BigInt(`0x${toHex(bytes) || '0'}`);

/** Two SIGN AND INCREMENTs through opensc-tool, checked against the card's public key: their counter values. */
async function signTwice(publicKey: Uint8Array): Promise<bigint[]> {
  const hashes = [randomBytes(32), randomBytes(32)];
  const results = await sendApdus(READER, [SELECT_VSC, GET_PUBLIC_KEY, ...hashes.map((h) => commandHex(vscCommands.signAndIncrement(h)))]);
  for (const result of results) expect(result.sw.toString(16)).toBe('9000');
  expect(toHex(results[1]!.data)).toBe(toHex(publicKey));
  const key = createPublicKey({ key: Buffer.from(concatBytes(ED25519_SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' });
  return hashes.map((h, i) => {
    const data = results[2 + i]!.data;
    const counter = data.subarray(0, 16);
    const digest = createHash('sha256').update(h).update(counter).digest();
    expect(verify(null, digest, key, data.subarray(16)), `signature ${i}`).toBe(true);
    return counterOf(counter);
  });
}

function pivTool(args: readonly string[], okStatus?: (status: number) => boolean) {
  return run('piv-tool', ['-r', READER, ...args], { env: { PIV_EXT_AUTH_KEY: managementKeyFile }, ...(okStatus === undefined ? {} : { okStatus }) });
}

/** GENERATE ASYMMETRIC KEY PAIR in 9A under the management key, and a certificate for it so OpenSC shows it. */
async function newPivKey(): Promise<Uint8Array> {
  const { stdout } = await pivTool(['-A', 'M:9B:03', '-s', GENERATE_9A_P256]);
  const hex = stdout.split('\n').filter((line) => /^[0-9A-F]{2}( [0-9A-F]{2})*/.test(line)).map((line) => line.slice(0, 48).trim()).join(' ');
  const data = fromHex(hex.replace(/ /g, ''));
  expect(toHex(data.subarray(0, 5))).toBe('7f49438641');
  const spki = concatBytes(P256_SPKI_PREFIX, data.subarray(5, 70));
  const certificateFile = join(dir, 'generated-9a.pem');
  await writeFile(certificateFile, await opensslCertificateFor(spki, '/CN=vsc dongle e2e/'));
  await pivTool(['-A', 'M:9B:03', '-C', '9A', '-i', certificateFile], () => true);
  return spki;
}

async function expectPivSigns(spki: Uint8Array): Promise<void> {
  const digest = randomBytes(32);
  const signature = await signDigest(piv, { pin: PIN, id: ID_9A, digest });
  expect(await opensslVerifyDigest(spki, signature, digest)).toBe(true);
}

/** The emulated stick, a SoftHSM2 token (taken away: deleted) and the TPM through tpm2-pkcs11 on swtpm (taken away: stopped). */
const FIXTURES = [
  { kind: 'an emulated dongle', make: () => emulatedDongleFixture() },
  { kind: 'a SoftHSM2 token', make: () => softHsmDongleFixture() },
  { kind: 'the TPM (swtpm, tpm2-pkcs11)', make: () => swtpmDongleFixture() },
];

describe.each(FIXTURES)('a dongle-backed card on $kind through pcscd', ({ make }) => {
  let fixture: DongleFixture;
  let publicKey: Uint8Array;
  let pivKey: Uint8Array;
  const counters: bigint[] = [];

  beforeAll(async () => {
    fixture = await make();
  }, SLOW);

  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('vsc dongle init puts the card on the dongle', { timeout: SLOW }, async () => {
    const init = await machine(fixture).run(['dongle', 'init', '--dongle', fixture.uri, '--serial', `DG-${fixture.name}`, '--password-file', passwordFile, '--json']);
    expect(init.code, init.stderr).toBe(0);
    const event = JSON.parse(init.stdout) as { publicKey: string; dongle: string };
    publicKey = fromHex(event.publicKey);
    expect(event.dongle).toMatch(/^[0-9a-f]{64}$/);
    const again = await machine(fixture).run(['dongle', 'init', '--dongle', fixture.uri, '--serial', 'OTHER', '--password-file', passwordFile]);
    expect(again.code, 'a dongle holds one card').toBe(3);
  });

  it('is served through vpcd: opensc-tool signs with the VSC applet, pkcs11-tool with a new PIV key', { timeout: SLOW }, async () => {
    const host = machine(fixture);
    const card = await host.insert();
    const [serial] = (await sendApdus(READER, [SELECT_VSC, GET_SERIAL])).slice(1);
    expect(Buffer.from(serial!.data).toString()).toBe(`DG-${fixture.name}`);
    counters.push(...(await signTwice(publicKey)));
    expect(counters[1]).toBe(counters[0]! + 1n);
    await expectPivSigns(await opensslCertificatePublicKey(await readObject(piv, 'cert', ID_9A)));
    pivKey = await newPivKey();
    await expectPivSigns(pivKey);
    await host.remove(card);
  });

  it('keeps the new PIV key and the counter over remove and re-insert', { timeout: SLOW }, async () => {
    const host = machine(fixture);
    const card = await host.insert();
    expect(toHex(await opensslCertificatePublicKey(await readObject(piv, 'cert', ID_9A)))).toBe(toHex(pivKey));
    await expectPivSigns(pivKey);
    const more = await signTwice(publicKey);
    expect(more[0]!).toBeGreaterThan(counters.at(-1)!);
    counters.push(...more);
    await host.remove(card);
  });

  it('leaves the reader within 2 s when the dongle is taken away, and the card process ends', { timeout: SLOW }, async () => {
    const host = machine(fixture);
    const card = await host.insert();
    counters.push(...(await signTwice(publicKey)));
    const taken = Date.now();
    await fixture.detach();
    await waitForCard(READER, false, 2_000);
    const elapsed = Date.now() - taken;
    expect(elapsed).toBeLessThan(2_000);
    const end = await card.exited;
    expect(end.code, card.output()).toBe(0);
    expect(card.stdout()).toMatch(/"event":"removed".*dongle/);
    if (fixture.reattach !== undefined) {
      await fixture.reattach();
      const again = await host.insert();
      const after = await signTwice(publicKey);
      expect(after[0]!).toBeGreaterThan(counters.at(-1)!);
      counters.push(...after);
      await host.remove(again);
    }
    expect(new Set(counters.map(String)).size).toBe(counters.length);
  });
});

describe('a lost dongle through the CLI ([0107]): replaced in the next epoch, the old one refused', () => {
  let lost: DongleFixture;
  let replacement: DongleFixture;
  let authority: string;
  let publicKey: Uint8Array;
  const counters: bigint[] = [];

  beforeAll(async () => {
    lost = await emulatedDongleFixture('lost');
    replacement = await emulatedDongleFixture('replacement');
    authority = join(dir, 'authority');
    const init = await runVsc(['dongle', 'authority', 'init', '--data', authority]);
    expect(init.code, init.stderr).toBe(0);
  }, SLOW);

  afterAll(async () => {
    await lost?.cleanup();
    await replacement?.cleanup();
  });

  /** Every file under the fixture's dongle, hashed: what "changes nothing" compares. */
  async function dongleFiles(fixture: DongleFixture): Promise<string> {
    const path = /^emulated:([^?]+)/.exec(fixture.uri)![1]!;
    return (await run('sh', ['-c', `cd ${path} && sha256sum * | sort`])).stdout;
  }

  it('escrows at init, refuses a wrong password with exit 4 and changes nothing', { timeout: SLOW }, async () => {
    const host = machine(lost);
    const init = await host.run(['dongle', 'init', '--dongle', lost.uri, '--serial', 'DG-LOST', '--password-file', passwordFile, '--authority', authority, '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ escrowed: true });
    publicKey = fromHex((JSON.parse(init.stdout) as { publicKey: string }).publicKey);
    const card = await host.insert();
    counters.push(...(await signTwice(publicKey)));
    await host.remove(card);
    const before = await dongleFiles(lost);
    const wrong = join(dir, 'wrong-password');
    await writeFile(wrong, 'not the password\n', { mode: 0o600 });
    const refused = await host.run(['card', 'insert', '--dongle', lost.uri, '--password-file', wrong, '--state-dir', join(dir, 'lost-state')]);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toMatch(/wrong password for card DG-LOST/);
    expect(await dongleFiles(lost)).toBe(before);
  });

  it('issues the same card on a new dongle in epoch 1; the old dongle is refused with exit 3 and left as it was', { timeout: SLOW }, async () => {
    const replaced = await runVsc(['dongle', 'authority', 'replace', '--data', authority, '--serial', 'DG-LOST', '--dongle', replacement.uri, '--json'], { env: replacement.env });
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ epoch: 1 });
    const host = machine(replacement);
    const card = await host.insert();
    const after = await signTwice(publicKey);
    expect(after[0]!).toBeGreaterThanOrEqual(2n ** 96n);
    counters.push(...after);
    await host.remove(card);

    const before = await dongleFiles(lost);
    const old = await machine(lost).run(['card', 'insert', '--dongle', lost.uri, '--password-file', passwordFile, '--state-dir', join(dir, 'lost-state')]);
    expect(old.code, old.stderr).toBe(3);
    expect(old.stderr).toMatch(/was revoked \(replaced\)/);
    expect(await dongleFiles(lost)).toBe(before);
    const status = await machine(lost).run(['dongle', 'status', '--dongle', lost.uri, '--json']);
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({ card: { serial: 'DG-LOST', epoch: 0 }, revoked: expect.stringMatching(/replaced/) });
    expect(new Set(counters.map(String)).size).toBe(counters.length);
    for (let i = 1; i < counters.length; i++) expect(counters[i]!).toBeGreaterThan(counters[i - 1]!);
  });
});

describe('--keys-on-token: the card key generated on the token, never leaving it', () => {
  let token: DongleFixture;
  let tpm: DongleFixture;

  beforeAll(async () => {
    token = await softHsmDongleFixture('keys-on-token');
    tpm = await swtpmDongleFixture('tpm-keys');
  }, SLOW);

  afterAll(async () => {
    await token?.cleanup();
    await tpm?.cleanup();
  });

  it('on SoftHSM2 (CKM_EDDSA): says before creating it that it cannot be escrowed, then signs through pcscd with the token\'s key', { timeout: SLOW }, async () => {
    const host = machine(token);
    const init = await host.run(['dongle', 'init', '--dongle', token.uri, '--serial', 'DG-KOT', '--password-file', passwordFile, '--keys-on-token', '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toMatch(/note: card DG-KOT will keep its signing key on the token, where it never leaves: it cannot be escrowed/);
    const event = JSON.parse(init.stdout) as { publicKey: string; keysOnToken: boolean; escrowed: boolean };
    expect(event).toMatchObject({ keysOnToken: true, escrowed: false });
    const card = await host.insert();
    const counters = await signTwice(fromHex(event.publicKey));
    expect(counters[1]).toBe(counters[0]! + 1n);
    await host.remove(card);
  });

  it('on the TPM, which has no Ed25519, is refused with the mechanism named, and nothing is written', { timeout: SLOW }, async () => {
    const init = await machine(tpm).run(['dongle', 'init', '--dongle', tpm.uri, '--serial', 'DG-TPM-KOT', '--password-file', passwordFile, '--keys-on-token']);
    expect(init.code, init.stderr).toBe(3);
    expect(init.stderr).toMatch(/--keys-on-token: .*CKM_E/);
    const status = await machine(tpm).run(['dongle', 'status', '--dongle', tpm.uri, '--json']);
    expect(status.code, status.stderr).toBe(1);
    expect(status.stderr, 'no dongle key was made either').toMatch(/holds no dongle key .* run `vsc dongle init/);
  });
});

describe('a token with another key: the card\'s data objects copied onto a second SoftHSM2 token', () => {
  it('is refused with exit 4 naming both dongles, and neither token changes', { timeout: SLOW }, async () => {
    const home = await createSoftHsmHome();
    const driver = startDongleProcess(home.env);
    try {
      const original = await home.addToken('original');
      const copy = await home.addToken('copy');
      const env = { ...home.env, XDG_STATE_HOME: join(dir, 'copy-data') };
      const init = await runVsc(['dongle', 'init', '--dongle', original.uri, '--serial', 'DG-COPIED', '--password-file', passwordFile], { env });
      expect(init.code, init.stderr).toBe(0);
      const from = await driver.open(original.uri);
      const to = await driver.open(copy.uri);
      await to.ensureKey();
      for (const slot of ['card', 'counter'] as const) await to.write(slot, (await from.read(slot))!);
      const snapshot = async () => Promise.all([from, to].flatMap((dongle) => (['card', 'counter'] as const).map(async (slot) => toHex((await dongle.read(slot))!))));
      const before = await snapshot();
      const refused = await runVsc(['card', 'insert', '--dongle', copy.uri, '--password-file', passwordFile, '--state-dir', join(dir, 'copy-state')], { env });
      expect(refused.code, refused.stderr).toBe(4);
      expect(refused.stderr).toMatch(/card DG-COPIED was sealed to dongle [0-9a-f]{16}, not to this one \([0-9a-f]{16}\)/);
      expect(await snapshot()).toEqual(before);
    } finally {
      await driver.close();
      await home.close();
    }
  });
});

