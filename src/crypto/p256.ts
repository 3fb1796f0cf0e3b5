// ECDSA and ECDH on NIST P-256 (FIPS 186-5, SP 800-56A Rev. 3 5.7.1.2) with @noble/curves, for the
// PIV applet's GENERAL AUTHENTICATE (SP 800-73-4 Part 2 3.2.4, algorithm 11).
import { p256 } from '@noble/curves/nist.js';
import { assertBytes, BoundaryError, describeValue } from '../errors/index.js';

export const P256_PRIVATE_KEY_LENGTH = 32;
/** Uncompressed SEC 1 point: 04 ‖ X ‖ Y. */
export const P256_PUBLIC_KEY_LENGTH = 65;
export const P256_FIELD_LENGTH = 32;

export interface P256KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

function checkPrivateKey(privateKey: Uint8Array): void {
  assertBytes('P-256 private key', privateKey, P256_PRIVATE_KEY_LENGTH);
  if (!p256.utils.isValidSecretKey(privateKey)) throw new BoundaryError('expected a P-256 private key in 1..n-1');
}

/** True when `privateKey` is 32 bytes holding a scalar in 1..n-1. */
export function isValidP256PrivateKey(privateKey: Uint8Array): boolean {
  return privateKey instanceof Uint8Array && privateKey.length === P256_PRIVATE_KEY_LENGTH && p256.utils.isValidSecretKey(privateKey);
}

/** True when `point` is an uncompressed point on the curve (not the point at infinity). */
export function isValidP256PublicKey(point: Uint8Array): boolean {
  if (!(point instanceof Uint8Array) || point.length !== P256_PUBLIC_KEY_LENGTH || point[0] !== 0x04) return false;
  try {
    p256.Point.fromBytes(point).assertValidity();
    return true;
  } catch {
    return false;
  }
}

/** The uncompressed public point of a private key. */
export function p256DerivePublicKey(privateKey: Uint8Array): Uint8Array {
  checkPrivateKey(privateKey);
  return p256.getPublicKey(privateKey, false);
}

export function p256GenerateKey(): P256KeyPair {
  const privateKey = p256.utils.randomSecretKey();
  return { privateKey, publicKey: p256.getPublicKey(privateKey, false) };
}

/**
 * FIPS 186-5 6.4.1 step 3: the leftmost 256 bits of a longer digest; a shorter one is the same
 * integer, so it is left-padded with zeros.
 */
function digestToField(digest: Uint8Array): Uint8Array {
  if (digest.length >= P256_FIELD_LENGTH) return digest.slice(0, P256_FIELD_LENGTH);
  const out = new Uint8Array(P256_FIELD_LENGTH);
  out.set(digest, P256_FIELD_LENGTH - digest.length);
  return out;
}

/**
 * DER-encoded ECDSA signature (SEQUENCE of r, s) of an already computed digest, as a PIV card
 * returns it. The nonce is deterministic (RFC 6979); s is not normalised, as on real cards.
 */
export function p256Sign(privateKey: Uint8Array, digest: Uint8Array): Uint8Array {
  checkPrivateKey(privateKey);
  if (!(digest instanceof Uint8Array) || digest.length === 0) throw new BoundaryError(`expected a non-empty digest, got ${describeValue(digest)}`);
  const field = digestToField(digest);
  try {
    return p256.sign(field, privateKey, { prehash: false, format: 'der', lowS: false });
  } finally {
    field.fill(0);
  }
}

/** ECDH: the X coordinate of privateKey·peer (SP 800-56A 5.7.1.2); refuses points off the curve. */
export function p256SharedSecret(privateKey: Uint8Array, peerPoint: Uint8Array): Uint8Array {
  checkPrivateKey(privateKey);
  if (!isValidP256PublicKey(peerPoint)) {
    throw new BoundaryError(`expected an uncompressed P-256 point on the curve (65 bytes, 04 ‖ X ‖ Y), got ${describeValue(peerPoint)} that is not`);
  }
  const shared = p256.getSharedSecret(privateKey, peerPoint, true); // 02/03 ‖ X
  const x = shared.slice(1);
  shared.fill(0);
  return x;
}
