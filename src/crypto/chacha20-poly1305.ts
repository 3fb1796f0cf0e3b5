// ChaCha20-Poly1305 AEAD (RFC 8439 section 2.8) on node:crypto, about three times faster than pure JS;
// cross-checked against @noble/ciphers. The Noise channel's CipherState runs on it.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { assertBytes, VscError } from '../errors/index.js';

export const CHACHA20_POLY1305_KEY_LENGTH = 32;
export const CHACHA20_POLY1305_NONCE_LENGTH = 12;
export const CHACHA20_POLY1305_TAG_LENGTH = 16;

/** Thrown by chacha20Poly1305Decrypt when the tag does not verify; says nothing about the key. */
export class AeadAuthenticationError extends VscError {
  override readonly name = 'AeadAuthenticationError';
  constructor(message: string) {
    super('crypto.aead-authentication', message);
  }
}

function check(what: string, value: Uint8Array, length?: number): void {
  assertBytes(`ChaCha20-Poly1305 ${what}`, value, length);
}

function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** ciphertext ‖ 16-byte tag. */
export function chacha20Poly1305Encrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  check('key', key, CHACHA20_POLY1305_KEY_LENGTH);
  check('nonce', nonce, CHACHA20_POLY1305_NONCE_LENGTH);
  check('associated data', ad);
  check('plaintext', plaintext);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: CHACHA20_POLY1305_TAG_LENGTH });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(head.length + tail.length + tag.length);
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(tag, head.length + tail.length);
  return out;
}

/** The plaintext of ciphertext ‖ tag; throws AeadAuthenticationError when the tag does not verify. */
export function chacha20Poly1305Decrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
  check('key', key, CHACHA20_POLY1305_KEY_LENGTH);
  check('nonce', nonce, CHACHA20_POLY1305_NONCE_LENGTH);
  check('associated data', ad);
  check('ciphertext', sealed);
  if (sealed.length < CHACHA20_POLY1305_TAG_LENGTH) {
    throw new AeadAuthenticationError(`expected a ciphertext of at least ${CHACHA20_POLY1305_TAG_LENGTH} bytes, got ${sealed.length}`);
  }
  const split = sealed.length - CHACHA20_POLY1305_TAG_LENGTH;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: CHACHA20_POLY1305_TAG_LENGTH });
  decipher.setAAD(ad, { plaintextLength: split });
  decipher.setAuthTag(sealed.subarray(split));
  const head = decipher.update(sealed.subarray(0, split));
  let tail: Buffer;
  try {
    tail = decipher.final();
  } catch {
    head.fill(0);
    throw new AeadAuthenticationError('ChaCha20-Poly1305 tag did not verify');
  }
  if (tail.length === 0) return toBytes(head);
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}
