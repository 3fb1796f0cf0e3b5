// Implementation authentication (patent [0042]-[0047], [0087], DESIGN "Keys and secrets"): proofs
// that the client is a genuine implementation, by an embedded master key or by a per-install keyfile.
import { createHmac, randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes, constantTimeEqual, fromUtf8, readUint16, uintToBytes, utf8, wipe } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519KeyFromSeed, ed25519Verify } from '../crypto/index.js';
import { ExitCode, VscError, assertBytes } from '../errors/index.js';

export const MASTER_KEY_LENGTH = 32;
export const KEYFILE_SECRET_LENGTH = 32;
export const AS1_LENGTH = 16;
/** Both challenge nonces have this fixed length, so ri1 ‖ ri2 ‖ serial parses one way only. */
export const CHALLENGE_NONCE_LENGTH = 32;
export const PROOF_LENGTH = 32;

const MASTER_DOMAIN = utf8('vsc-impl-master/1');
const KEYFILE_PROOF_DOMAIN = utf8('vsc-impl-keyfile/1');
const AS1_DOMAIN = utf8('vsc-as1/1');
const KEYFILE_SIGNATURE_DOMAIN = utf8('vsc-keyfile-body/1');
const KEYFILE_ENCRYPTION_INFO = utf8('vsc-keyfile-encryption/1');
// File header, also the AEAD's associated data: magic "VSKF" and format version 1.
const KEYFILE_HEADER = Uint8Array.of(0x56, 0x53, 0x4b, 0x46, 0x01);
const KEYFILE_NONCE_LENGTH = 24;
const KEYFILE_TAG_LENGTH = 16;
const MAX_INSTALL_ID_BYTES = 256;

function checkSerial(serial: string): void {
  if (typeof serial !== 'string' || serial === '') {
    throw new TypeError(`expected a non-empty serial number, got ${JSON.stringify(serial)}`);
  }
}

function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  const digest = mac.digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

function proof(domain: Uint8Array, key: Uint8Array, ri1: Uint8Array, ri2: Uint8Array, serial: string): Uint8Array {
  assertBytes('server nonce ri1', ri1, CHALLENGE_NONCE_LENGTH);
  assertBytes('client nonce ri2', ri2, CHALLENGE_NONCE_LENGTH);
  checkSerial(serial);
  return hmacSha256(key, domain, ri1, ri2, utf8(serial));
}

/** A fresh challenge nonce (ri1 on the server, ri2 on the client). */
export function newChallengeNonce(): Uint8Array {
  return Uint8Array.from(randomBytes(CHALLENGE_NONCE_LENGTH));
}

/** Proof (1): HMAC-SHA256(masterKey, 'vsc-impl-master/1' ‖ ri1 ‖ ri2 ‖ serial). */
export function masterProof(masterKey: Uint8Array, ri1: Uint8Array, ri2: Uint8Array, serial: string): Uint8Array {
  assertBytes('master key', masterKey, MASTER_KEY_LENGTH);
  return proof(MASTER_DOMAIN, masterKey, ri1, ri2, serial);
}

/** Proof (2): HMAC-SHA256(as1, 'vsc-impl-keyfile/1' ‖ ri1 ‖ ri2 ‖ serial). */
export function keyfileProof(as1: Uint8Array, ri1: Uint8Array, ri2: Uint8Array, serial: string): Uint8Array {
  assertBytes('keyfile secret as1', as1, AS1_LENGTH);
  return proof(KEYFILE_PROOF_DOMAIN, as1, ri1, ri2, serial);
}

/** Compares a received proof with the expected one in constant time; a wrong length is false. */
export function verifyProof(expected: Uint8Array, received: Uint8Array): boolean {
  if (!(expected instanceof Uint8Array) || !(received instanceof Uint8Array)) return false;
  return constantTimeEqual(expected, received);
}

function checkInstallId(installId: string): Uint8Array {
  if (typeof installId !== 'string' || installId === '') {
    throw new TypeError(`expected a non-empty install id, got ${JSON.stringify(installId)}`);
  }
  const bytes = utf8(installId);
  if (bytes.length > MAX_INSTALL_ID_BYTES) {
    throw new TypeError(`expected an install id of at most ${MAX_INSTALL_ID_BYTES} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/**
 * The install's as1: first 16 bytes of HMAC-SHA256(keyfileSecret, 'vsc-as1/1' ‖ installId). The
 * server recomputes it from its one keyfile secret, so it never stores per-install secrets.
 */
export function keyfileSecretFor(keyfileSecret: Uint8Array, installId: string): Uint8Array {
  assertBytes('keyfile secret', keyfileSecret, KEYFILE_SECRET_LENGTH);
  const mac = hmacSha256(keyfileSecret, AS1_DOMAIN, checkInstallId(installId));
  try {
    return mac.slice(0, AS1_LENGTH);
  } finally {
    wipe(mac);
  }
}

function keyfileEncryptionKey(masterKey: Uint8Array): Uint8Array {
  assertBytes('master key', masterKey, MASTER_KEY_LENGTH);
  return hkdf(nobleSha256, masterKey, undefined, KEYFILE_ENCRYPTION_INFO, 32);
}

export interface KeyfileContents {
  installId: string;
  as1: Uint8Array;
  cardPublicKey?: Uint8Array;
}

export interface IssueKeyfileOptions {
  /** The server's Ed25519 seed; the caller keeps and wipes it. */
  signingSeed: Uint8Array;
  /** The server's 32-byte keyfile secret from which every install's as1 is derived. */
  keyfileSecret: Uint8Array;
  masterKey: Uint8Array;
  installId: string;
  cardPublicKey?: Uint8Array;
}

// Body layout (all lengths big-endian):
//   2  install id length n
//   n  install id, UTF-8
//   16 as1
//   1  0x00 = no card public key, 0x01 = 32-byte Ed25519 card public key follows
//   32 card public key (only when flagged)
function encodeBody(installId: Uint8Array, as1: Uint8Array, cardPublicKey: Uint8Array | undefined): Uint8Array {
  return concatBytes(
    uintToBytes(BigInt(installId.length), 2),
    installId,
    as1,
    cardPublicKey === undefined ? Uint8Array.of(0x00) : Uint8Array.of(0x01),
    cardPublicKey ?? new Uint8Array(0),
  );
}

/** Keyfile = header ‖ nonce(24) ‖ XChaCha20-Poly1305(HKDF(masterKey), body ‖ Ed25519 signature). */
export function issueKeyfile(options: IssueKeyfileOptions): Uint8Array {
  const { signingSeed, keyfileSecret, masterKey, installId, cardPublicKey } = options;
  if (cardPublicKey !== undefined) assertBytes('card public key', cardPublicKey, ED25519_PUBLIC_KEY_LENGTH);
  const installIdBytes = checkInstallId(installId);
  const signer = ed25519KeyFromSeed(signingSeed);
  const as1 = keyfileSecretFor(keyfileSecret, installId);
  const body = encodeBody(installIdBytes, as1, cardPublicKey);
  const signature = signer.sign(concatBytes(KEYFILE_SIGNATURE_DOMAIN, body));
  const plaintext = concatBytes(body, signature);
  const key = keyfileEncryptionKey(masterKey);
  const nonce = Uint8Array.from(randomBytes(KEYFILE_NONCE_LENGTH));
  try {
    return concatBytes(KEYFILE_HEADER, nonce, xchacha20poly1305(key, nonce, KEYFILE_HEADER).encrypt(plaintext));
  } finally {
    wipe(key, as1, body, plaintext);
  }
}

function invalidKeyfile(message: string, cause?: unknown): VscError {
  return new VscError('keyfile.invalid', message, { exitCode: ExitCode.authenticationFailed, cause });
}

function decodeBody(body: Uint8Array): KeyfileContents {
  if (body.length < 2) throw invalidKeyfile('the keyfile is truncated');
  const idLength = readUint16(body, 0);
  const expected = 2 + idLength + AS1_LENGTH + 1;
  if (idLength === 0 || body.length < expected) throw invalidKeyfile('the keyfile body has a bad install id length');
  const flag = body[expected - 1];
  const total = flag === 0x01 ? expected + ED25519_PUBLIC_KEY_LENGTH : expected;
  if ((flag !== 0x00 && flag !== 0x01) || body.length !== total) {
    throw invalidKeyfile('the keyfile body is malformed');
  }
  let installId: string;
  try {
    installId = fromUtf8(body.subarray(2, 2 + idLength));
  } catch (cause) {
    throw invalidKeyfile('the keyfile install id is not UTF-8', cause);
  }
  const contents: KeyfileContents = { installId, as1: body.slice(2 + idLength, 2 + idLength + AS1_LENGTH) };
  if (flag === 0x01) contents.cardPublicKey = body.slice(expected, total);
  return contents;
}

/** Decrypts a keyfile with the master key and checks the server's signature; refuses anything else. */
export function openKeyfile(
  bytes: Uint8Array,
  options: { masterKey: Uint8Array; serverSigningPublicKey: Uint8Array },
): KeyfileContents {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`expected the keyfile as bytes, got ${typeof bytes}`);
  assertBytes('server signing public key', options.serverSigningPublicKey, ED25519_PUBLIC_KEY_LENGTH);
  const minimum = KEYFILE_HEADER.length + KEYFILE_NONCE_LENGTH + KEYFILE_TAG_LENGTH + ED25519_SIGNATURE_LENGTH;
  if (bytes.length < minimum) throw invalidKeyfile(`expected a keyfile of at least ${minimum} bytes, got ${bytes.length}`);
  if (!bytesEqual(bytes.subarray(0, KEYFILE_HEADER.length), KEYFILE_HEADER)) {
    throw invalidKeyfile('not a keyfile of format version 1');
  }
  const nonce = bytes.subarray(KEYFILE_HEADER.length, KEYFILE_HEADER.length + KEYFILE_NONCE_LENGTH);
  const key = keyfileEncryptionKey(options.masterKey);
  let plaintext: Uint8Array;
  try {
    plaintext = xchacha20poly1305(key, nonce, KEYFILE_HEADER).decrypt(bytes.subarray(KEYFILE_HEADER.length + KEYFILE_NONCE_LENGTH));
  } catch {
    throw invalidKeyfile('the keyfile does not decrypt with this implementation\'s master key');
  } finally {
    wipe(key);
  }
  try {
    if (plaintext.length < ED25519_SIGNATURE_LENGTH) throw invalidKeyfile('the keyfile is truncated');
    const body = plaintext.subarray(0, plaintext.length - ED25519_SIGNATURE_LENGTH);
    const signature = plaintext.subarray(plaintext.length - ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(options.serverSigningPublicKey, concatBytes(KEYFILE_SIGNATURE_DOMAIN, body), signature)) {
      throw invalidKeyfile('the keyfile is not signed by this server');
    }
    return decodeBody(body);
  } finally {
    wipe(plaintext);
  }
}
