// End to end: the PIV applet of `vsc card emulate` (DESIGN.md "The PIV applet", NIST SP 800-73-4) behind
// the real pcscd, driven by stock OpenSC (opensc-tool, pkcs11-tool over opensc-pkcs11.so, piv-tool), openssl checking
// the signatures. Uses the quickack loopback route when it can (root + iproute2), else 127.0.0.1 (slower, same result).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import {
  runTool,
  waitForCard,
  createSoftHsmToken,
  E2eToolError,
  listObjects,
  login,
  openscUnblockEnv,
  opensslCertificateFor,
  opensslCertificatePublicKey,
  opensslVerifyDigest,
  parseCkr,
  parseObjectList,
  pkcs11Tool,
  readObject,
  requireOpenscModule,
  run,
  signDigest,
  tokenInfo,
  unlockPin,
  vpcdHostWithQuickack,
  type Pkcs11Token,
  type VpcdHost,
  startEmulator,
  type EmulatorProcess,
} from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const PIN = '123456';
const PUK = '12345678';
/** The default PIV card management key (3DES), as a new emulated card is personalised. */
const MANAGEMENT_KEY = '010203040506070801020304050607080102030405060708';
/** CKA_ID that OpenSC's PIV emulation gives the 9A (PIV Authentication) and 9C (Digital Signature) objects. */
const ID_9A = '01';
const ID_9C = '02';
const ID_9D = '03';
/**
 * GENERATE ASYMMETRIC KEY PAIR, SP 800-73-4 Part 2 §3.3.2: CLA 00, INS 47, P1 00, P2 9A (key reference),
 * Lc 05, control reference template AC 03 { 80 01 11 = cryptographic mechanism ECC P-256 }, Le 00.
 */
const GENERATE_9A_P256 = '00:47:00:9A:05:AC:03:80:01:11:00';
/**
 * DER SubjectPublicKeyInfo header for a P-256 uncompressed point (RFC 5480 §2): SEQUENCE (59), SEQUENCE (13)
 * { OID 1.2.840.10045.2.1 id-ecPublicKey, OID 1.2.840.10045.3.1.7 prime256v1 }, BIT STRING (42) with 0 unused bits.
 */
const P256_SPKI_PREFIX = fromHex('3059 3013 0607 2a8648ce3d0201 0608 2a8648ce3d030107 034200'.replace(/ /g, ''));
const SLOW = 120_000;

let dir: string;
let vpcd: VpcdHost;
let card: Pkcs11Token;
let emulator: EmulatorProcess | undefined;
let stateFile: string;
let managementKeyFile: string;
let generatedKey: Uint8Array | undefined;

const sha256 = (text: string): Uint8Array => new Uint8Array(createHash('sha256').update(text).digest());

async function insert(): Promise<void> {
  emulator = await startEmulator({ port: PORT, host: vpcd.host, stateFile });
  await waitForCard(READER, true).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nemulator stderr:\n${emulator?.stderr() ?? ''}`);
  });
}

async function remove(): Promise<void> {
  const running = emulator;
  emulator = undefined;
  if (running === undefined) return;
  const code = await running.stop();
  expect(code, `emulator stderr:\n${running.stderr()}`).toBe(0);
  await waitForCard(READER, false);
}

/** piv-tool on our reader; -A M:9B:03 reads the management key from the file PIV_EXT_AUTH_KEY names. */
function pivTool(args: readonly string[], keyFile = managementKeyFile, okStatus?: (status: number) => boolean) {
  return run('piv-tool', ['-r', READER, ...args], { env: { PIV_EXT_AUTH_KEY: keyFile }, ...(okStatus === undefined ? {} : { okStatus }) });
}

/**
 * Parses piv-tool's "-s" output: "Received (SW1=0x90, SW2=0x00):" then hex-dump lines of up to 16 bytes,
 * the hex column padded to 48 characters before the ASCII column.
 */
function parseSentApdu(stdout: string): { sw: string; data: Uint8Array } {
  const lines = stdout.split('\n');
  const at = lines.findIndex((line) => line.startsWith('Received (SW1='));
  const status = /^Received \(SW1=0x([0-9A-F]{2}), SW2=0x([0-9A-F]{2})\)/.exec(lines[at] ?? '');
  if (status === null) throw new Error(`expected a "Received (SW1=..)" line from piv-tool, got:\n${stdout}`);
  const parts: Uint8Array[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.length === 0) break;
    const hex = line.slice(0, 48).trimEnd();
    if (!/^[0-9A-F]{2}(?: [0-9A-F]{2}){0,15}$/.test(hex)) throw new Error(`expected a piv-tool hex dump line, got ${JSON.stringify(line)}`);
    parts.push(fromHex(hex));
  }
  return { sw: `${status[1]}${status[2]}`.toLowerCase(), data: concatBytes(...parts) };
}

/** The P-256 point in a GENERATE response: 7F49 43 { 86 41 04 || X || Y } (SP 800-73-4 Part 2 Table 7). */
function spkiFromGenerateResponse(data: Uint8Array): Uint8Array {
  expect(toHex(data.subarray(0, 5))).toBe('7f49438641');
  expect(data.length).toBe(5 + 65);
  expect(data[5]).toBe(0x04);
  return concatBytes(P256_SPKI_PREFIX, data.subarray(5));
}

async function certificateKey(id: string): Promise<Uint8Array> {
  return opensslCertificatePublicKey(await readObject(card, 'cert', id));
}

async function expectSignatureVerifies(id: string, publicKey: Uint8Array): Promise<void> {
  const digest = sha256(`vsc piv e2e ${toHex(randomBytes(8))}`);
  const signature = await signDigest(card, { pin: PIN, id, digest });
  expect(await opensslVerifyDigest(publicKey, signature, digest)).toBe(true);
  // The same signature must not verify for another digest.
  expect(await opensslVerifyDigest(publicKey, signature, sha256('another message'))).toBe(false);
}

async function expectLoginRefused(pin: string, ckr: string | RegExp, token: Pkcs11Token = card): Promise<void> {
  const error = await login(token, pin).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error, `expected pkcs11-tool --login to be refused with ${String(ckr)}`).toBeInstanceOf(E2eToolError);
  expect((error as E2eToolError).ckr).toMatch(ckr);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-e2e-piv-'));
  stateFile = join(dir, 'card.json');
  managementKeyFile = join(dir, 'management-key.hex');
  await writeFile(managementKeyFile, `${MANAGEMENT_KEY}\n`, { mode: 0o600 });
  card = { module: requireOpenscModule(), select: ['--slot-description', READER] };
  // A card left in the reader (an emulator from an earlier run) would answer in place of ours.
  await waitForCard(READER, false, 5_000);
  vpcd = await vpcdHostWithQuickack();
  if (vpcd.note !== undefined) console.log(`e2e piv: card on ${vpcd.host} (${vpcd.note}); every APDU waits ~40 ms for vpcd's delayed ACK`);
});

afterAll(async () => {
  const running = emulator;
  emulator = undefined;
  await running?.stop().catch(() => null);
  await vpcd?.release();
  await rm(dir, { recursive: true, force: true });
});

// The reference: the same helpers against a software token, so that a failure below is the card's, not theirs.
describe('the PKCS#11 helpers against SoftHSM2', () => {
  it('parse pkcs11-tool output as OpenSC 0.23 prints it', () => {
    const listing = [
      'Private Key Object; EC',
      '  label:      SIGN key',
      '  ID:         02',
      '  Usage:      sign, derive',
      '  Access:     always authenticate, sensitive, always sensitive, never extractable, local',
      'Certificate Object; type = X.509 cert',
      '  label:      Certificate for Digital Signature',
      '  subject:    DN: CN=Digital Signature',
      '  ID:         02',
      'Data object 944383312',
      "  label:          'Card Capability Container'",
      '  flags:          <empty>',
    ].join('\n');
    expect(parseObjectList(listing)).toEqual([
      { kind: 'private-key', type: 'EC', label: 'SIGN key', id: '02', usage: ['sign', 'derive'], access: ['always authenticate', 'sensitive', 'always sensitive', 'never extractable', 'local'], subject: undefined },
      { kind: 'certificate', type: 'X.509 cert', label: 'Certificate for Digital Signature', id: '02', usage: [], access: [], subject: 'CN=Digital Signature' },
      { kind: 'data', type: undefined, label: 'Card Capability Container', id: undefined, usage: [], access: [], subject: undefined },
    ]);
    expect(parseObjectList('')).toEqual([]);
    expect(parseCkr('error: PKCS11 function C_Login failed: rv = CKR_PIN_LOCKED (0xa4)\nAborting.')).toBe('CKR_PIN_LOCKED');
    expect(parseCkr('Aborting.')).toBeUndefined();
  });

  it('list, sign, read the public key and verify with openssl; a wrong PIN is CKR_PIN_INCORRECT', { timeout: SLOW }, async () => {
    const token = await createSoftHsmToken();
    try {
      const objects = await listObjects(token, { pin: token.pin });
      expect(objects.map((object) => [object.kind, object.type, object.id]).sort()).toEqual([
        ['private-key', 'EC', '01'],
        ['public-key', 'EC', '01'],
      ]);
      const publicKey = await readObject(token, 'pubkey', token.keyId);
      const digest = sha256('softhsm reference');
      const signature = await signDigest(token, { pin: token.pin, id: token.keyId, digest });
      expect(signature[0], 'DER SEQUENCE').toBe(0x30);
      expect(await opensslVerifyDigest(publicKey, signature, digest)).toBe(true);
      expect(await opensslVerifyDigest(publicKey, signature, sha256('another message'))).toBe(false);
      await expectLoginRefused('000000', 'CKR_PIN_INCORRECT', token);
    } finally {
      await token.close();
    }
  });
});

// The steps share one card and its state file, in order: each builds on the state the one before left.
describe('the PIV applet through pcscd and OpenSC', () => {
  it('is named a PIV card by opensc-tool -n', { timeout: SLOW }, async () => {
    await insert();
    const { stdout } = await runTool('opensc-tool', ['-r', READER, '-n'], 30_000);
    expect(stdout).toMatch(/PIV|Personal Identity Verification/);
  });

  it('lists EC keys and certificates for 9A and 9C with pkcs11-tool', { timeout: SLOW }, async () => {
    const open = await listObjects(card);
    expect(open.filter((object) => object.kind === 'private-key')).toEqual([]); // private keys need the PIN
    const objects = await listObjects(card, { pin: PIN });
    for (const [id, keyLabel, certLabel] of [
      [ID_9A, 'PIV AUTH key', 'Certificate for PIV Authentication'],
      [ID_9C, 'SIGN key', 'Certificate for Digital Signature'],
    ] as const) {
      const key = objects.find((object) => object.kind === 'private-key' && object.id === id);
      expect(key, `private key ${id} in:\n${JSON.stringify(objects, null, 1)}`).toMatchObject({ type: 'EC', label: keyLabel });
      expect(key?.usage).toContain('sign');
      expect(objects.find((object) => object.kind === 'certificate' && object.id === id)).toMatchObject({ type: 'X.509 cert', label: certLabel });
      expect(objects.find((object) => object.kind === 'public-key' && object.id === id)?.type).toBe('EC');
    }
  });

  it('signs a SHA-256 digest with 9A and 9C; openssl verifies against the certificates', { timeout: SLOW }, async () => {
    const key9a = await certificateKey(ID_9A);
    expect(toHex(await readObject(card, 'pubkey', ID_9A))).toBe(toHex(key9a));
    await expectSignatureVerifies(ID_9A, key9a);
    // 9C is always-authenticate: pkcs11-tool logs in again (context-specific) with the same PIN.
    await expectSignatureVerifies(ID_9C, await certificateKey(ID_9C));
  });

  it('generates a new P-256 key in 9A only after management-key authentication; it signs', { timeout: SLOW }, async () => {
    const before = await certificateKey(ID_9A);
    const refused = parseSentApdu((await pivTool(['-s', GENERATE_9A_P256])).stdout);
    expect(refused.sw, 'GENERATE without the management key').toBe('6982');
    const wrongKey = join(dir, 'wrong-key.hex');
    await writeFile(wrongKey, `${MANAGEMENT_KEY.slice(0, -2)}ff\n`);
    await expect(pivTool(['-A', 'M:9B:03', '-s', GENERATE_9A_P256], wrongKey)).rejects.toThrow(/admin_mode failed/);

    // OpenSC 0.23's piv-tool cannot do this itself: -A A:9B:03 (external authenticate) fails its own length
    // check, and -G 9A:11 generates but cannot write an EC key out. So: mutual authentication, then the raw APDU.
    const generated = parseSentApdu((await pivTool(['-A', 'M:9B:03', '-s', GENERATE_9A_P256])).stdout);
    expect(generated.sw).toBe('9000');
    generatedKey = spkiFromGenerateResponse(generated.data);
    expect(toHex(generatedKey)).not.toBe(toHex(before));

    // OpenSC shows a PIV key through the certificate that carries its public key: put one in 9A.
    const certificate = await opensslCertificateFor(generatedKey, '/CN=vsc e2e generated 9A/');
    const certificateFile = join(dir, 'generated-9a.pem');
    await writeFile(certificateFile, certificate);
    // piv-tool -C exits with the certificate's DER length (mod 256) on success; the read-back below checks it.
    await pivTool(['-A', 'M:9B:03', '-C', '9A', '-i', certificateFile], managementKeyFile, () => true);

    expect(toHex(await certificateKey(ID_9A))).toBe(toHex(generatedKey));
    const certs = await listObjects(card, { type: 'cert' });
    expect(certs.find((object) => object.id === ID_9A)?.subject).toBe('CN=vsc e2e generated 9A');
    await expectSignatureVerifies(ID_9A, generatedKey);
    const signature = await signDigest(card, { pin: PIN, id: ID_9A, digest: sha256('old key') });
    expect(await opensslVerifyDigest(before, signature, sha256('old key'))).toBe(false);
  });

  it('works with yubico-piv-tool: status, a new 9D key under the management key, ECDH through pkcs11-tool', { timeout: SLOW }, async () => {
    const yubico = (args: readonly string[]) => run('yubico-piv-tool', ['-r', READER, ...args]);
    const status = (await yubico(['-a', 'status'])).stdout;
    expect(status).toMatch(/Slot 9a:\s+Algorithm:\s+ECCP256/);
    expect(status).toMatch(/Slot 9c:\s+Algorithm:\s+ECCP256/);
    expect(status).toMatch(/PIN tries left:\s+3/);

    const publicPem = join(dir, 'km-9d.pem');
    await expect(yubico([`--key=${MANAGEMENT_KEY.slice(0, -2)}ff`, '-a', 'generate', '-s', '9d', '-A', 'ECCP256', '-o', publicPem])).rejects.toThrow(/Failed authentication with the application/);
    // The default management key is yubico-piv-tool's default too.
    await yubico(['-a', 'generate', '-s', '9d', '-A', 'ECCP256', '-o', publicPem]);
    const publicDer = join(dir, 'km-9d.der');
    await run('openssl', ['pkey', '-pubin', '-in', publicPem, '-outform', 'DER', '-out', publicDer]);
    const km = new Uint8Array(await readFile(publicDer));
    const certificateFile = join(dir, 'km-9d-cert.pem');
    await writeFile(certificateFile, await opensslCertificateFor(km, '/CN=vsc e2e key management/'));
    await yubico(['-a', 'import-certificate', '-s', '9d', '-i', certificateFile]);
    expect(toHex(await certificateKey(ID_9D))).toBe(toHex(km));

    // ECDH (SP 800-73-4 GENERAL AUTHENTICATE with 85): the card and openssl agree on the shared secret.
    const peerKey = join(dir, 'peer.key');
    const peerPublic = join(dir, 'peer.der');
    const shared = join(dir, 'shared.bin');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', peerKey]);
    await run('openssl', ['pkey', '-in', peerKey, '-pubout', '-outform', 'DER', '-out', peerPublic]);
    await pkcs11Tool(card, ['--login', '--pin', PIN, '--derive', '-m', 'ECDH1-DERIVE', '--id', ID_9D, '--input-file', peerPublic, '--output-file', shared]);
    const expected = join(dir, 'expected.bin');
    await run('openssl', ['pkeyutl', '-derive', '-inkey', peerKey, '-peerkey', publicPem, '-out', expected]);
    const derived = new Uint8Array(await readFile(shared));
    expect(derived).toHaveLength(32);
    expect(toHex(derived)).toBe(toHex(new Uint8Array(await readFile(expected))));
  });

  it('blocks the PIN after three wrong PINs, and stays blocked across an emulator restart', { timeout: SLOW }, async () => {
    await expectLoginRefused('000000', 'CKR_PIN_INCORRECT');
    await expectLoginRefused('111111', 'CKR_PIN_INCORRECT');
    // The third wrong PIN uses the last try (63C0); OpenSC reports it as incorrect or already as locked.
    await expectLoginRefused('222222', /^CKR_PIN_(INCORRECT|LOCKED)$/);
    await expectLoginRefused(PIN, 'CKR_PIN_LOCKED');
    expect((await tokenInfo(card)).flags).toContain('user PIN locked');

    await remove();
    await insert();
    expect((await tokenInfo(card)).flags).toContain('user PIN locked');
    await expectLoginRefused(PIN, 'CKR_PIN_LOCKED');
    expect(toHex(await certificateKey(ID_9A)), 'the generated key\'s certificate after the restart').toBe(toHex(generatedKey!));
  });

  it('unblocks the PIN with the PUK through PKCS#11 (C_SetPIN, not logged in); signing works again', { timeout: SLOW }, async () => {
    const unblocking = { ...card, env: await openscUnblockEnv(dir) };
    await expect(unlockPin(unblocking, '87654321', PIN)).rejects.toThrow(/CKR_PIN_INCORRECT/);
    await unlockPin(unblocking, PUK, PIN);
    expect((await tokenInfo(card)).flags).not.toContain('user PIN locked');
    await expectSignatureVerifies(ID_9A, generatedKey!);
  });

  it('keeps the unblocked PIN, its fresh retry counter and the generated key across another restart', { timeout: SLOW }, async () => {
    await remove();
    await insert();
    expect((await tokenInfo(card)).flags).not.toContain('user PIN locked');
    // Three tries after the restart: two wrong PINs are refused as incorrect, not locked, and the right one still works.
    await expectLoginRefused('000000', 'CKR_PIN_INCORRECT');
    await expectLoginRefused('111111', 'CKR_PIN_INCORRECT');
    await expectSignatureVerifies(ID_9A, generatedKey!);
    await expectSignatureVerifies(ID_9C, await certificateKey(ID_9C));
    await remove();
  });
});
