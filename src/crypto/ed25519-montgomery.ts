// An Ed25519 key as the X25519 key of the same secret (RFC 7748 section 4.1's birational map, the conversion
// libsodium calls crypto_sign_ed25519_pk_to_curve25519): data sealed to a licensor's signing key (Wibu 000 §2.7).
import { ed25519 } from '@noble/curves/ed25519.js';
import { assertBytes } from '../errors/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH } from './ed25519.js';

/** The X25519 public key of an Ed25519 public key; throws on bytes that are no point of the curve. */
export function ed25519PublicKeyToX25519(publicKey: Uint8Array): Uint8Array {
  assertBytes('Ed25519 public key', publicKey, ED25519_PUBLIC_KEY_LENGTH);
  return ed25519.utils.toMontgomery(publicKey);
}

/** The X25519 private key (the clamped SHA-512 head of the seed) whose public key ed25519PublicKeyToX25519 gives. */
export function ed25519SeedToX25519(seed: Uint8Array): Uint8Array {
  assertBytes('Ed25519 seed', seed, ED25519_SEED_LENGTH);
  return ed25519.utils.toMontgomerySecret(seed);
}
