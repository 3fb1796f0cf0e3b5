// End to end on SoftHSM2 tokens through the compiled CLI: the issuing authority's token attestation (patent 003
// [0096]: the vendor may validate the card's personaliser; DESIGN.md "Software rental", trust model) and the
// universal key on tokens ([0098]-[0102]; patent 004 claim 10, the dongle-backed card). A keys-on-token card is
// attested and the attestation verifies with the authority's key; it is refused for an emulated dongle, a card
// without keys on the token or without the authority, a key created extractable (made here through pkcs11js) and a
// revoked dongle. Two tokens holding the same imported universal key under different serials both sign SIGN AND
// INCREMENT P1 01 records, through pcscd, that verify with the one universal public key and their own serial; the
// imported key's value cannot be read back, and it is attested only at init.
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, uintToBytes } from '../../src/bytes/index.js';
import { AttestationError, checkAttestationFor, readCardAttestation, verifyCardAttestation } from '../../src/card-attestation/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import { cardKeyLabel, readAuthorityReference } from '../../src/dongle-backend/index.js';
import { recordHash, verifyRecord } from '../../src/rental/index.js';
import {
  REPO_ROOT, commandHex, createSoftHsmHome, emulatedDongleFixture, run, runVsc, sendApdus, spawnVsc, vpcdHostWithQuickack, waitForCard,
  type SoftHsmDongleToken, type SoftHsmHome, type VpcdHost,
} from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const SELECT_VSC = '00 A4 04 00 06 F0 56 53 43 00 01';
const GET_SERIAL = '80 20 00 00 00';
const GET_PUBLIC_KEY = '80 26 00 00 20';
const ED25519_SPKI_PREFIX = fromHex('302a300506032b6570032100');
const SLOW = 180_000;
const AUTHORITY_NAME = 'ACME token authority';

let dir: string;
let home: SoftHsmHome;
let vpcd: VpcdHost;
let authority: string;
let authorityKey: Uint8Array;
let passwordFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-dongle-attest-e2e-'));
  passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'dongle card password\n', { mode: 0o600 });
  home = await createSoftHsmHome();
  authority = join(dir, 'authority');
  const init = await runVsc(['dongle', 'authority', 'init', '--data', authority, '--name', AUTHORITY_NAME]);
  expect(init.code, init.stderr).toBe(0);
  authorityKey = readAuthorityReference(authority).signingKey;
  await waitForCard(READER, false, 5_000);
  vpcd = await vpcdHostWithQuickack();
}, SLOW);

afterAll(async () => {
  await vpcd?.release();
  await home?.close();
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ ...home.env, XDG_STATE_HOME: join(dir, 'data') });
const vsc = (args: readonly string[]) => runVsc(args, { env: env() });

async function initCard(token: SoftHsmDongleToken, serial: string, ...more: string[]): Promise<{ publicKey: Uint8Array }> {
  const init = await vsc(['dongle', 'init', '--dongle', token.uri, '--serial', serial, '--password-file', passwordFile, ...more, '--json']);
  expect(init.code, init.stderr).toBe(0);
  return { publicKey: fromHex((JSON.parse(init.stdout) as { publicKey: string }).publicKey) };
}

const attest = (uri: string, out: string) => vsc(['dongle', 'attest', '--dongle', uri, '--authority', authority, '--out', out, '--json']);

/**
 * Runs one operation with pkcs11js on `token` in a child process: the module reads SOFTHSM2_CONF in the process that
 * loads it, which a vitest worker's process.env never reaches. The PIN comes from the token's 0600 file.
 *   replace-extractable: destroys card `serial`'s key objects, generates an Ed25519 pair under the same label with
 *     CKA_EXTRACTABLE true and CKA_SENSITIVE false (with `flip`, then sets them to false and true);
 *   read-value: the private key's four flags, and what C_GetAttributeValue of CKA_VALUE answers.
 */
const PKCS11_SCRIPT = `
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
const { repo, module, label, pinFile, op, keyLabel, flip } = JSON.parse(process.argv[1]);
const pkcs11js = createRequire(repo + '/package.json')('pkcs11js');
const p = new pkcs11js.PKCS11();
p.load(module);
p.C_Initialize();
try {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === label);
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p.C_Login(session, pkcs11js.CKU_USER, readFileSync(pinFile, 'utf8').split('\\n')[0]);
  const find = (template) => { p.C_FindObjectsInit(session, template); const found = p.C_FindObjects(session, 10); p.C_FindObjectsFinal(session); return found; };
  const ed25519 = Buffer.from('06032b6570', 'hex');
  if (op === 'replace-extractable') {
    for (const handle of find([{ type: pkcs11js.CKA_LABEL, value: keyLabel }])) p.C_DestroyObject(session, handle);
    const common = [{ type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_LABEL, value: keyLabel }, { type: pkcs11js.CKA_ID, value: Buffer.from(keyLabel) }];
    const pair = p.C_GenerateKeyPair(session, { mechanism: 0x1055 /* CKM_EC_EDWARDS_KEY_PAIR_GEN, PKCS#11 v3.0: pkcs11js has no name for it */ },
      [...common, { type: pkcs11js.CKA_EC_PARAMS, value: ed25519 }, { type: pkcs11js.CKA_VERIFY, value: true }],
      [...common, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: false }, { type: pkcs11js.CKA_EXTRACTABLE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }]);
    if (flip) p.C_SetAttributeValue(session, pair.privateKey, [{ type: pkcs11js.CKA_EXTRACTABLE, value: false }, { type: pkcs11js.CKA_SENSITIVE, value: true }]);
    console.log(JSON.stringify({ ok: true }));
  } else if (op === 'read-value') {
    const [key] = find([{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: keyLabel }]);
    const names = ['CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_NEVER_EXTRACTABLE', 'CKA_LOCAL'];
    const flags = Object.fromEntries(p.C_GetAttributeValue(session, key, names.map((name) => ({ type: pkcs11js[name] }))).map((a, i) => [names[i], a.value[0] !== 0]));
    let value;
    try {
      value = 'read ' + p.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])[0].value.length + ' bytes';
    } catch (error) {
      value = /CKR_[A-Z_]+/.exec(error.message)?.[0] ?? error.message;
    }
    console.log(JSON.stringify({ flags, value }));
  }
  p.C_Logout(session);
  p.C_CloseSession(session);
} finally {
  p.C_Finalize();
}
`;

async function pkcs11(token: SoftHsmDongleToken, op: string, serial: string, flip = false): Promise<Record<string, unknown>> {
  const args = { repo: REPO_ROOT, module: home.module, label: token.label, pinFile: token.pinFile, op, keyLabel: cardKeyLabel(serial), flip };
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', PKCS11_SCRIPT, JSON.stringify(args)], { env: home.env });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The attestation in `path`: it must verify with the authority's key and be about `card`. */
async function checkedAttestation(path: string, card: { serial: string; publicKey: Uint8Array; keyMode: 'individual' | 'universal' }) {
  const attestation = readCardAttestation(await readFile(path));
  verifyCardAttestation(attestation, [authorityKey]);
  checkAttestationFor(attestation, card);
  expect(attestation).toMatchObject({ kind: 'token', attester: AUTHORITY_NAME, keyMode: card.keyMode });
  return attestation;
}

describe('[0096] vsc dongle attest: the issuing authority vouches for a keys-on-token card on SoftHSM2', () => {
  let token: SoftHsmDongleToken;
  let publicKey: Uint8Array;

  beforeAll(async () => {
    token = await home.addToken('attest-a');
    ({ publicKey } = await initCard(token, 'KOT-A', '--keys-on-token', '--authority', authority));
  }, SLOW);

  it('attests it: the attestation verifies with the authority\'s key, is about this card, and is public (0644)', { timeout: SLOW }, async () => {
    const out = join(dir, 'kot-a.attestation');
    const run = await attest(token.uri, out);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      event: 'attested', serial: 'KOT-A', publicKey: toHex(publicKey), keyMode: 'individual', kind: 'token', attester: AUTHORITY_NAME, attesterKey: toHex(authorityKey),
    });
    await checkedAttestation(out, { serial: 'KOT-A', publicKey, keyMode: 'individual' });
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const stranger = Uint8Array.from(generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(12));
    const bytes = await readFile(out);
    expect(() => verifyCardAttestation(readCardAttestation(bytes), [stranger]), 'a vendor trusting another key').toThrow(AttestationError);
  });

  it('refuses it once the dongle is on the authority\'s revocation list (exit 3), and writes nothing', { timeout: SLOW }, async () => {
    const revoked = await vsc(['dongle', 'authority', 'revoke', '--data', authority, '--serial', 'KOT-A', '--reason', 'lost']);
    expect(revoked.code, revoked.stderr).toBe(0);
    const out = join(dir, 'kot-a-revoked.attestation');
    const run = await attest(token.uri, out);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(/not attested: dongle [0-9a-f]{16} is on this authority's revocation list \(lost on /);
    expect(existsSync(out)).toBe(false);
  });
});

describe('vsc dongle attest refuses (exit 3) what it cannot vouch for, and writes nothing', () => {
  it('an emulated dongle: not duplication-protected', { timeout: SLOW }, async () => {
    const fixture = await emulatedDongleFixture('attest-emulated');
    try {
      const init = await vsc(['dongle', 'init', '--dongle', fixture.uri, '--serial', 'EMU-A', '--password-file', passwordFile, '--authority', authority]);
      expect(init.code, init.stderr).toBe(0);
      const out = join(dir, 'emu.attestation');
      const run = await attest(fixture.uri, out);
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/not attested: emulated dongle .* is not duplication-protected/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await fixture.cleanup();
    }
  });

  it('a card without keys on the token, and one issued under no authority', { timeout: SLOW }, async () => {
    const plain = await home.addToken('attest-plain');
    await initCard(plain, 'PLAIN-A', '--authority', authority);
    const out = join(dir, 'refused.attestation');
    const withoutKeys = await attest(plain.uri, out);
    expect(withoutKeys.code).toBe(3);
    expect(withoutKeys.stderr).toMatch(/not attested: card PLAIN-A does not keep its key on the token: its key is opened on the owner's machine/);
    const free = await home.addToken('attest-free');
    await initCard(free, 'FREE-A', '--keys-on-token');
    const unissued = await attest(free.uri, out);
    expect(unissued.code).toBe(3);
    expect(unissued.stderr).toMatch(/not attested: card FREE-A names no issuing authority; only the authority a card was issued under attests it/);
    expect(existsSync(out)).toBe(false);
  });

  it('a key created extractable through pkcs11js, naming CKA_EXTRACTABLE and CKA_NEVER_EXTRACTABLE; made unextractable later, CKA_NEVER_EXTRACTABLE', { timeout: SLOW }, async () => {
    const token = await home.addToken('attest-ext');
    await initCard(token, 'EXT-A', '--keys-on-token', '--authority', authority);
    await pkcs11(token, 'replace-extractable', 'EXT-A');
    const out = join(dir, 'ext.attestation');
    const created = await attest(token.uri, out);
    expect(created.code, created.stderr).toBe(3);
    expect(created.stderr).toMatch(/not attested: the key of card EXT-A on PKCS#11 token attest-ext .* fails: /);
    expect(created.stderr).toMatch(/CKA_SENSITIVE is false \(must be true/);
    expect(created.stderr).toMatch(/CKA_EXTRACTABLE is true \(must be false/);
    expect(created.stderr).toMatch(/CKA_NEVER_EXTRACTABLE is false \(must be true: otherwise the key was extractable once/);
    expect(created.stderr).not.toMatch(/CKA_LOCAL/);
    await pkcs11(token, 'replace-extractable', 'EXT-A', true);
    const flipped = await attest(token.uri, out);
    expect(flipped.code, flipped.stderr).toBe(3);
    expect(flipped.stderr).toMatch(/CKA_NEVER_EXTRACTABLE is false/);
    expect(flipped.stderr).not.toMatch(/CKA_EXTRACTABLE is|CKA_SENSITIVE is/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('[0098]-[0102] the universal key, imported into tokens', () => {
  const nonce = uintToBytes(96n, 16); // [0056] Fig. 6's first record: nonce 96 ...
  const text = 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3'; // ... and its string
  let keyFile: string;
  let universal: Uint8Array;
  const tokens: SoftHsmDongleToken[] = [];

  beforeAll(async () => {
    const pair = generateKeyPairSync('ed25519');
    keyFile = join(dir, 'universal.pem');
    await writeFile(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    universal = Uint8Array.from(pair.publicKey.export({ type: 'spki', format: 'der' }).subarray(12));
  });

  it('is refused without --keys-on-token (exit 2), saying why, and the token is left as it was', { timeout: SLOW }, async () => {
    const token = await home.addToken('universal-soft');
    const run = await vsc(['dongle', 'init', '--dongle', token.uri, '--serial', 'U-SOFT', '--password-file', passwordFile, '--key-mode', 'universal', '--universal-key', keyFile]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--key-mode universal needs --keys-on-token: a universal key .* is shared by every customer's card/);
    const status = await vsc(['dongle', 'status', '--dongle', token.uri]);
    expect(status.code, 'not even the dongle key was made').toBe(1);
    expect(status.stderr).toMatch(/holds no dongle key/);
  });

  it('two tokens take the same key under serials U-1 and U-2, each attested at init by the authority that imported it', { timeout: SLOW }, async () => {
    for (const serial of ['U-1', 'U-2']) {
      const token = await home.addToken(`universal-${serial}`);
      tokens.push(token);
      const out = join(dir, `${serial}.attestation`);
      const { publicKey } = await initCard(token, serial, '--keys-on-token', '--key-mode', 'universal', '--universal-key', keyFile, '--authority', authority, '--attestation-out', out);
      expect(toHex(publicKey)).toBe(toHex(universal));
      await checkedAttestation(out, { serial, publicKey: universal, keyMode: 'universal' });
    }
  });

  it('the key object is sensitive, not extractable, imported (CKA_LOCAL false); C_GetAttributeValue of CKA_VALUE fails', { timeout: SLOW }, async () => {
    for (const [i, token] of tokens.entries()) {
      const read = await pkcs11(token, 'read-value', `U-${i + 1}`);
      expect(read).toEqual({ flags: { CKA_SENSITIVE: true, CKA_EXTRACTABLE: false, CKA_NEVER_EXTRACTABLE: false, CKA_LOCAL: false }, value: 'CKR_ATTRIBUTE_SENSITIVE' });
    }
  });

  it('each card signs SIGN AND INCREMENT P1 01 through pcscd: hash(hash(96,WP...),serial_number,0) verifies with the one universal key and its own serial only', { timeout: SLOW }, async () => {
    const h1 = recordHash(nonce, text);
    const key = createPublicKey({ key: Buffer.from(concatBytes(ED25519_SPKI_PREFIX, universal)), format: 'der', type: 'spki' });
    const signatures: { serial: string; counter: bigint; signature: Uint8Array }[] = [];
    for (const [i, token] of tokens.entries()) {
      const serial = `U-${i + 1}`;
      const state = join(dir, `${serial}-state`);
      const card = spawnVsc(['card', 'insert', '--dongle', token.uri, '--password-file', passwordFile, '--vpcd', `${vpcd.host}:${PORT}`, '--state-dir', state, '--json'], { env: env() });
      await card.waitFor(/"event":"inserted"/, 60_000);
      await waitForCard(READER, true);
      const results = await sendApdus(READER, [
        SELECT_VSC, GET_SERIAL, GET_PUBLIC_KEY, commandHex(vscCommands.signAndIncrement(h1)), commandHex(vscCommands.signAndIncrement(h1, 'universal')),
      ]);
      expect(Buffer.from(results[1]!.data).toString()).toBe(serial);
      expect(toHex(results[2]!.data)).toBe(toHex(universal));
      expect(results[3]!.sw.toString(16), 'P1 00 on a universal-key card').toBe('6a86');
      expect(results[4]!.sw.toString(16)).toBe('9000');
      const counter = BigInt(`0x${toHex(results[4]!.data.subarray(0, 16))}`);
      const signature = results[4]!.data.subarray(16);
      expect(counter, '[0100]: the first record signs counter 0').toBe(0n);
      const digest = createHash('sha256').update(h1).update(serial).update(uintToBytes(counter, 16)).digest(); // h' = SHA-256(h ‖ serial ‖ counter)
      expect(verify(null, digest, key, signature)).toBe(true);
      signatures.push({ serial, counter, signature });
      const removed = await vsc(['card', 'remove', '--state-dir', state]);
      expect(removed.code, removed.stderr).toBe(0);
      expect((await card.exited).code, card.output()).toBe(0);
      await waitForCard(READER, false);
    }
    for (const { serial, counter, signature } of signatures) {
      const record = { nonce, text, counter, signature };
      expect(verifyRecord(record, { publicKey: universal, serial, keyMode: 'universal' })).toBe(true);
      const other = serial === 'U-1' ? 'U-2' : 'U-1';
      expect(verifyRecord(record, { publicKey: universal, serial: other, keyMode: 'universal' }), 'the serial binds the record to its card').toBe(false);
    }
    expect(toHex(signatures[0]!.signature)).not.toBe(toHex(signatures[1]!.signature));
  });

  it('is never attested later: vsc dongle attest names CKA_LOCAL (imported)', { timeout: SLOW }, async () => {
    const out = join(dir, 'U-1-later.attestation');
    const run = await attest(tokens[0]!.uri, out);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/CKA_LOCAL is false \(must be true: otherwise the key was imported, not generated on the token, .* an imported \(universal\) key is attested only at init/);
    expect(existsSync(out)).toBe(false);
  });
});
