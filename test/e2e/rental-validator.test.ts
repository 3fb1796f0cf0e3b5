// `vsc keyfile create` with card attestations (patent 003 [0096]: the vendor "may wish to validate the smart card
// manufacturer and/or personalizer"; DESIGN.md "Software rental", trust model) and validation services ([0094]), as
// a vendor runs it: the card read through the real pcscd; an emulated card with no attestation refused by a keyfile
// accepting only attested kinds; a forged, untrusted or another card's attestation refused naming why; a trusted
// attestation of this card makes it server-held, and the keyfile names the attester and the validation service.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromUtf8, toHex, utf8 } from '../../src/bytes/index.js';
import { issueCardAttestation, type CardAttestationClaims } from '../../src/card-attestation/index.js';
import { VscAppletClient } from '../../src/card-client/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { connectPcscd } from '../../src/reader-driver/index.js';
import { runVsc, startEmulator, waitForCard, type EmulatorProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const attester = ed25519KeyFromSeed(generateEd25519Seed());
const validatorKey = toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey);

let dir: string;
let emulator: EmulatorProcess;
let passwordFile: string;
let claims: CardAttestationClaims;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-rental-validator-e2e-'));
  passwordFile = join(dir, 'vendor-password');
  await writeFile(passwordFile, 'vendor password\n', { mode: 0o600 });
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
  const connection = await connectPcscd(READER);
  try {
    const card = new VscAppletClient(connection);
    await card.select();
    claims = { serial: await card.serialNumber(), publicKey: await card.publicKey(), keyMode: 'individual', kind: 'server-held', attester: 'VSC server test', issuedAt: '2026-11-28T12:00:00.000Z' };
  } finally {
    connection.disconnect();
  }
  const init = await runVsc(['vendor', 'init', '--data', join(dir, 'vendor'), '--password-file', passwordFile]);
  expect(init.code, init.stderr).toBe(0);
});

afterAll(async () => {
  await emulator?.stop().catch(() => null);
  await rm(dir, { recursive: true, force: true });
});

const create = (out: string, ...more: string[]) => runVsc([
  'keyfile', 'create', '--vendor', join(dir, 'vendor'), '--reader', READER, '--program', 'WP', '--out', join(dir, out), '--password-file', passwordFile, ...more,
]);

async function attestationFile(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('vsc keyfile create with attestations ([0096]) and validation services ([0094])', () => {
  it('an emulated card without an attestation is refused by a keyfile accepting only attested kinds (exit 3)', async () => {
    const refused = await create('plain.keyfile', '--accept', 'token,server-held', '--json');
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/shows no attestation that its signing key is out of its owner's reach/);
    const software = await create('software.keyfile', '--accept', 'software');
    expect([software.code, software.stderr]).toEqual([2, expect.stringMatching(/--accept software needs --accept-software-keys/)]);
  });

  it('refuses a forged attestation, an untrusted one and one of another card, naming why (exit 3)', async () => {
    const trusted = ['--trust-attester', toHex(attester.publicKey)];
    const genuine = JSON.parse(fromUtf8(await issueCardAttestation(attester, claims))) as Record<string, unknown>;
    const upgraded = await attestationFile('upgraded.json', utf8(JSON.stringify({ ...genuine, kind: 'token' })));
    const forged = await create('forged.keyfile', '--attestation', upgraded, ...trusted);
    expect([forged.code, forged.stderr]).toEqual([3, expect.stringMatching(/does not verify against VSC server test's key .*: it was forged or modified/)]);
    const stranger = ed25519KeyFromSeed(generateEd25519Seed());
    const selfSigned = await attestationFile('self-signed.json', await issueCardAttestation(stranger, claims));
    const untrusted = await create('untrusted.keyfile', '--attestation', selfSigned, ...trusted);
    expect([untrusted.code, untrusted.stderr]).toEqual([3, expect.stringMatching(/not among the trusted attester keys/)]);
    const otherCard = await attestationFile('other-card.json', await issueCardAttestation(attester, { ...claims, serial: 'SOMEONE-ELSE' }));
    const mismatch = await create('other.keyfile', '--attestation', otherCard, ...trusted);
    expect([mismatch.code, mismatch.stderr]).toEqual([3, expect.stringMatching(/the attestation is about card SOMEONE-ELSE, not card /)]);
    const noTrust = await create('no-trust.keyfile', '--attestation', otherCard);
    expect([noTrust.code, noTrust.stderr]).toEqual([2, expect.stringMatching(/--attestation needs --trust-attester/)]);
  });

  it('a trusted attestation of this card makes it server-held; the keyfile names the attester and the validation service', async () => {
    const file = await attestationFile('attestation.json', await issueCardAttestation(attester, claims));
    const issued = await create('wp.keyfile', '--attestation', file, '--trust-attester', toHex(attester.publicKey), '--validator-key', validatorKey, '--json');
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stderr).not.toMatch(/warning/);
    expect(JSON.parse(issued.stdout)).toMatchObject({ kind: 'server-held', keyMode: 'individual', acceptedKinds: ['token', 'server-held'], attester: toHex(attester.publicKey), validators: [validatorKey] });
    const inspected = await runVsc(['keyfile', 'inspect', '--keyfile', join(dir, 'wp.keyfile'), '--vendor', join(dir, 'vendor'), '--json']);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ signature: 'valid', card: { kind: 'server-held' }, attester: toHex(attester.publicKey), validators: [validatorKey] });
    expect((await readFile(join(dir, 'wp.keyfile'))).length).toBeGreaterThan(60_000);
    const badKey = await create('bad.keyfile', '--attestation', file, '--trust-attester', toHex(attester.publicKey), '--validator-key', 'nothex');
    expect([badKey.code, badKey.stderr]).toEqual([2, expect.stringMatching(/--validator-key: expected 64 lowercase hex digits/)]);
  });
});
