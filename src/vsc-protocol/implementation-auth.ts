// Implementation authentication (patent [0042]-[0047], [0087], DESIGN "Keys and secrets"): proofs
// that the client is a genuine implementation, by an embedded master key or by a per-install keyfile
// (its file format is keyfile.ts).
import { createHmac, randomBytes } from 'node:crypto';
import { constantTimeEqual, utf8, wipe } from '../bytes/index.js';
import { assertBytes } from '../errors/index.js';

export const MASTER_KEY_LENGTH = 32;
export const KEYFILE_SECRET_LENGTH = 32;
export const AS1_LENGTH = 16;
/** Both challenge nonces have this fixed length, so ri1 ‖ ri2 ‖ serial parses one way only. */
export const CHALLENGE_NONCE_LENGTH = 32;
export const PROOF_LENGTH = 32;

const MASTER_DOMAIN = utf8('vsc-impl-master/1');
const KEYFILE_PROOF_DOMAIN = utf8('vsc-impl-keyfile/1');
const AS1_DOMAIN = utf8('vsc-as1/1');
export const MAX_INSTALL_ID_BYTES = 256;

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

/** The install id as UTF-8, checked: 1 to MAX_INSTALL_ID_BYTES bytes. */
export function checkInstallId(installId: string): Uint8Array {
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
