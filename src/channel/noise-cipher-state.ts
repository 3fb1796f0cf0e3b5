// Noise CipherState and SymmetricState (Noise specification rev. 34, sections 5.1 and 5.2) for
// ChaChaPoly and SHA256 (sections 12.3 and 12.5), with HKDF from section 4.3.
// The primitives come from the crypto facade (node:crypto): this is the server's per-session hot path.
import { wipe } from '../bytes/index.js';
import { chacha20Poly1305Decrypt, chacha20Poly1305Encrypt, hmacSha256, sha256 } from '../crypto/index.js';
import { ChannelError, type ChannelErrorCode } from './channel-error.js';

export const HASHLEN = 32;
export const KEYLEN = 32;
export const TAGLEN = 16;
/** Section 3: every Noise message, handshake or transport, is at most 65535 bytes. */
export const MAX_MESSAGE_LENGTH = 65535;
/** Section 5.1: the nonce 2^64-1 is reserved and never used. */
const MAX_NONCE = 2n ** 64n - 1n;

/** Section 12.3: 32 bits of zeros followed by the 64-bit little-endian counter. */
function chachaNonce(n: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, n, true);
  return nonce;
}

/** Section 4.3: HKDF(chaining_key, input_key_material, num_outputs) with HMAC-SHA256. */
export function hkdf(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hmacSha256(chainingKey, inputKeyMaterial);
  const out: Uint8Array[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= outputs; i++) {
    previous = hmacSha256(tempKey, previous, Uint8Array.of(i));
    out.push(previous);
  }
  wipe(tempKey);
  return out;
}

export class CipherState {
  #k: Uint8Array | undefined;
  #n = 0n;

  /** InitializeKey(key): takes ownership of `key` and wipes it when replaced or destroyed. */
  initializeKey(key: Uint8Array | undefined): void {
    if (this.#k !== undefined) wipe(this.#k);
    this.#k = key;
    this.#n = 0n;
  }

  hasKey(): boolean {
    return this.#k !== undefined;
  }

  /** The next nonce, exposed for tests of the counter limit. */
  get nonce(): bigint {
    return this.#n;
  }

  /** SetNonce(nonce), for tests that reach the reserved nonce without 2^64 messages. */
  setNonce(n: bigint): void {
    this.#n = n;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.#k === undefined) return plaintext.slice();
    if (this.#n >= MAX_NONCE) throw new ChannelError('channel.nonce', 'the Noise nonce is exhausted; start a new session');
    const out = chacha20Poly1305Encrypt(this.#k, chachaNonce(this.#n), ad, plaintext);
    this.#n++;
    return out;
  }

  /** Throws ChannelError `failureCode` on a bad tag; the nonce only advances on success. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array, failureCode: ChannelErrorCode): Uint8Array {
    if (this.#k === undefined) return ciphertext.slice();
    if (this.#n >= MAX_NONCE) throw new ChannelError('channel.nonce', 'the Noise nonce is exhausted; start a new session');
    if (ciphertext.length < TAGLEN) {
      throw new ChannelError(failureCode, `expected a ciphertext of at least ${TAGLEN} bytes, got ${ciphertext.length}`);
    }
    let out: Uint8Array;
    try {
      out = chacha20Poly1305Decrypt(this.#k, chachaNonce(this.#n), ad, ciphertext);
    } catch (cause) {
      throw new ChannelError(failureCode, 'message authentication failed', { cause });
    }
    this.#n++;
    return out;
  }

  destroy(): void {
    this.initializeKey(undefined);
  }
}

export class SymmetricState {
  readonly cipher = new CipherState();
  #ck: Uint8Array;
  #h: Uint8Array;

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: Uint8Array) {
    if (protocolName.length <= HASHLEN) {
      this.#h = new Uint8Array(HASHLEN);
      this.#h.set(protocolName);
    } else {
      this.#h = sha256(protocolName);
    }
    this.#ck = this.#h.slice();
  }

  get handshakeHash(): Uint8Array {
    return this.#h.slice();
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = hkdf(this.#ck, inputKeyMaterial, 2) as [Uint8Array, Uint8Array];
    wipe(this.#ck);
    this.#ck = ck;
    // HASHLEN equals KEYLEN for SHA256, so temp_k needs no truncation.
    this.cipher.initializeKey(tempK);
  }

  mixHash(data: Uint8Array): void {
    this.#h = sha256(this.#h, data);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipher.decryptWithAd(this.#h, ciphertext, 'channel.handshake');
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): two CipherStates, the first for initiator-to-responder traffic. Wipes ck. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.#ck, new Uint8Array(0), 2) as [Uint8Array, Uint8Array];
    const c1 = new CipherState();
    const c2 = new CipherState();
    c1.initializeKey(k1);
    c2.initializeKey(k2);
    this.destroy();
    return [c1, c2];
  }

  destroy(): void {
    wipe(this.#ck);
    this.cipher.destroy();
  }
}
