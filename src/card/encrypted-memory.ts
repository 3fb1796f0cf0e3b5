// Secrets kept encrypted while a card is in use (patent [0027]-[0030], [0100]): sealed under a
// per-instance temporary key and opened only for the duration of one synchronous operation.
// Node cannot lock memory against swapping ([0030]); this narrows the window, it does not close it.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { wipe } from '../bytes/index.js';
import { VscError } from '../errors/index.js';

const ALGORITHM = 'chacha20-poly1305';
const KEY_LENGTH = 32;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;

function destroyedError(): VscError {
  return new VscError('memory.destroyed', 'the encrypted memory was destroyed');
}

export class EncryptedMemory {
  #key: Uint8Array | undefined;
  #counter = 0n;
  #nonce = new Uint8Array(NONCE_LENGTH);
  #ciphertext = new Uint8Array(0);
  #tag = new Uint8Array(TAG_LENGTH);

  private constructor() {
    this.#key = Uint8Array.from(randomBytes(KEY_LENGTH));
  }

  /** Seals a copy of `plaintext` under a fresh key and wipes `plaintext`. */
  static seal(plaintext: Uint8Array): EncryptedMemory {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError(`expected the plaintext as bytes, got ${typeof plaintext}`);
    const memory = new EncryptedMemory();
    try {
      memory.#store(plaintext);
    } finally {
      wipe(plaintext);
    }
    return memory;
  }

  get destroyed(): boolean {
    return this.#key === undefined;
  }

  /**
   * Decrypts into a fresh buffer, calls `fn` with it and zeroes it afterwards, also when `fn`
   * throws. `fn` must be synchronous: the buffer is wiped as soon as `fn` returns, so an async
   * function would see zeros after its first await (a returned promise is refused).
   */
  use<R>(fn: (plaintext: Uint8Array) => R): R {
    const plaintext = this.#open();
    try {
      const result = fn(plaintext);
      if (isPromiseLike(result)) {
        // Swallow the rejection of the refused promise so it does not surface as unhandled.
        Promise.resolve(result).catch(() => undefined);
        throw new TypeError('expected a synchronous function: the plaintext is wiped when it returns');
      }
      return result;
    } finally {
      wipe(plaintext);
    }
  }

  /**
   * Calls `fn` with the plaintext; if it returns bytes, they become the new content. Both the old
   * plaintext and the returned bytes are wiped. Synchronous only, as for use().
   */
  update(fn: (plaintext: Uint8Array) => Uint8Array | undefined): void {
    const plaintext = this.#open();
    let replacement: Uint8Array | undefined;
    try {
      replacement = fn(plaintext);
      if (isPromiseLike(replacement)) {
        Promise.resolve(replacement).catch(() => undefined);
        replacement = undefined;
        throw new TypeError('expected a synchronous function: the plaintext is wiped when it returns');
      }
      if (replacement !== undefined) {
        if (!(replacement instanceof Uint8Array)) {
          const got = typeof replacement;
          replacement = undefined;
          throw new TypeError(`expected update to return bytes or undefined, got ${got}`);
        }
        this.#store(replacement);
      }
    } finally {
      wipe(plaintext);
      if (replacement !== undefined && replacement !== plaintext) wipe(replacement);
    }
  }

  /** Zeroes the key and the ciphertext; every later call throws. Destroying twice is allowed. */
  destroy(): void {
    if (this.#key !== undefined) wipe(this.#key);
    wipe(this.#ciphertext, this.#tag, this.#nonce);
    this.#key = undefined;
    this.#ciphertext = new Uint8Array(0);
  }

  /** The stored ciphertext, for tests that check it does not contain the plaintext. */
  ciphertextForTesting(): Uint8Array {
    return Uint8Array.from(this.#ciphertext);
  }

  #liveKey(): Uint8Array {
    if (this.#key === undefined) throw destroyedError();
    return this.#key;
  }

  #store(plaintext: Uint8Array): void {
    const key = this.#liveKey();
    // A counter nonce per encryption: never reused under one key (2^64 seals would be needed).
    this.#counter += 1n;
    const nonce = new Uint8Array(NONCE_LENGTH);
    new DataView(nonce.buffer).setBigUint64(4, this.#counter);
    const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_LENGTH });
    const body = cipher.update(plaintext);
    const final = cipher.final();
    const ciphertext = new Uint8Array(body.length + final.length);
    ciphertext.set(body, 0);
    ciphertext.set(final, body.length);
    wipe(this.#ciphertext);
    this.#ciphertext = ciphertext;
    this.#nonce = nonce;
    this.#tag = Uint8Array.from(cipher.getAuthTag());
  }

  #open(): Uint8Array {
    const key = this.#liveKey();
    const decipher = createDecipheriv(ALGORITHM, key, this.#nonce, { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(this.#tag);
    const body = decipher.update(this.#ciphertext);
    let final: Buffer;
    try {
      final = decipher.final();
    } catch (cause) {
      wipe(body);
      throw new VscError('memory.corrupt', 'the encrypted memory failed its integrity check', { cause });
    }
    const plaintext = new Uint8Array(body.length + final.length);
    plaintext.set(body, 0);
    plaintext.set(final, body.length);
    wipe(body, final);
    return plaintext;
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
