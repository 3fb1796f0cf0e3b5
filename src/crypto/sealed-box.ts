// A message sealed to an X25519 public key (ECIES): an ephemeral key pair, HKDF-SHA256 of the shared secret bound
// to both public keys and a purpose, and XChaCha20-Poly1305 with the caller's associated data. Only the holder of
// the recipient's private key opens it; the sender keeps nothing that could.
// Layout: ephemeral public key (32) ‖ nonce (24) ‖ ciphertext ‖ tag (16).
import { hkdfSync, randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { assertBytes } from '../errors/index.js';
import { generateX25519PrivateKey, x25519PrivateKey, X25519_KEY_LENGTH } from './x25519.js';

const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;

function boxKey(shared: Uint8Array, purpose: string, ephemeral: Uint8Array, recipient: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', shared, new Uint8Array(0), concatBytes(utf8(`vsc-sealed-box/1 ${purpose}`), ephemeral, recipient), 32));
}

/** Seals `plaintext` to `recipient` (X25519 public key) for `purpose`, binding `associatedData`. */
export function sealToPublicKey(recipient: Uint8Array, purpose: string, associatedData: Uint8Array, plaintext: Uint8Array): Uint8Array {
  assertBytes('recipient X25519 key', recipient, X25519_KEY_LENGTH);
  const ephemeral = generateX25519PrivateKey();
  const shared = ephemeral.sharedSecret(recipient);
  const key = boxKey(shared, purpose, ephemeral.publicKey, recipient);
  try {
    const nonce = Uint8Array.from(randomBytes(NONCE_LENGTH));
    return concatBytes(ephemeral.publicKey, nonce, xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext));
  } finally {
    wipe(shared, key);
  }
}

/** Opens what sealToPublicKey made, or undefined when it does not open (another key, purpose, data, tampering). */
export function openSealedBox(privateKey: Uint8Array, purpose: string, associatedData: Uint8Array, box: Uint8Array): Uint8Array | undefined {
  if (box.length < X25519_KEY_LENGTH + NONCE_LENGTH + TAG_LENGTH) return undefined;
  const recipient = x25519PrivateKey(privateKey);
  const ephemeral = box.subarray(0, X25519_KEY_LENGTH);
  let shared: Uint8Array;
  try {
    shared = recipient.sharedSecret(ephemeral);
  } catch {
    return undefined;
  }
  const key = boxKey(shared, purpose, ephemeral, recipient.publicKey);
  try {
    return xchacha20poly1305(key, box.subarray(X25519_KEY_LENGTH, X25519_KEY_LENGTH + NONCE_LENGTH), associatedData).decrypt(box.subarray(X25519_KEY_LENGTH + NONCE_LENGTH));
  } catch {
    return undefined;
  } finally {
    wipe(shared, key);
  }
}
