// Ed25519 signing keys (RFC 8032) on node:crypto, which signs several times faster than pure JS.
// Tests cross-check every operation here against @noble/curves.
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { concatBytes, fromHex } from '../bytes/index.js';
import { assertBytes } from '../errors/index.js';

// DER prefixes that wrap a raw 32-byte seed (PKCS#8) or public key (SPKI) for OID 1.3.101.112.
const PKCS8_PREFIX = fromHex('302e020100300506032b657004220420');
const SPKI_PREFIX = fromHex('302a300506032b6570032100');

export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

/** A private signing key held as an opaque KeyObject; the seed it came from is not kept. */
export interface Ed25519SigningKey {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export function generateEd25519Seed(): Uint8Array {
  return Uint8Array.from(randomBytes(ED25519_SEED_LENGTH));
}

/** Imports a 32-byte seed. The caller still owns (and should wipe) its copy of the seed. */
export function ed25519KeyFromSeed(seed: Uint8Array): Ed25519SigningKey {
  assertBytes('Ed25519 seed', seed, ED25519_SEED_LENGTH);
  // The DER holds the seed: built in a buffer of its own (never Node's shared pool) and zeroed once imported.
  const der = Buffer.alloc(PKCS8_PREFIX.length + seed.length);
  der.set(PKCS8_PREFIX, 0);
  der.set(seed, PKCS8_PREFIX.length);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = Uint8Array.from(spki.subarray(SPKI_PREFIX.length));
  return Object.freeze({
    publicKey,
    sign: (message: Uint8Array): Uint8Array => {
      const signature = sign(null, message, privateKey);
      return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength);
    },
  });
}

export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  assertBytes('Ed25519 public key', publicKey, ED25519_PUBLIC_KEY_LENGTH);
  return createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' });
}

/** Verifies a signature; malformed keys or signatures give false, never an exception. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return ed25519Verifier(publicKey)(message, signature);
}

/**
 * A verifier for one public key, imported once: checking a trail verifies thousands of signatures by one key, and
 * the import costs as much as the verification. Malformed keys or signatures give false, never an exception.
 */
export function ed25519Verifier(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean {
  let key: KeyObject | undefined;
  try {
    key = ed25519PublicKeyObject(publicKey);
  } catch {
    key = undefined;
  }
  return (message, signature) => {
    if (key === undefined || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  };
}
