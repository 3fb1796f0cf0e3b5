// One-block ECB encryption for the PIV card management key (SP 800-78-4 table 6-2: 3-key
// Triple-DES and AES-128), on node:crypto. The challenge-response of SP 800-73-4 Part 2 3.2.4
// only ever enciphers a single block, so there is no mode and no padding to get wrong.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { assertBytes, BoundaryError } from '../errors/index.js';

export type BlockCipherAlgorithm = '3des' | 'aes128';

interface BlockCipherSpec {
  readonly openssl: string;
  readonly keyLength: number;
  readonly blockLength: number;
}

const SPECS: Readonly<Record<BlockCipherAlgorithm, BlockCipherSpec>> = Object.freeze({
  '3des': Object.freeze({ openssl: 'des-ede3-ecb', keyLength: 24, blockLength: 8 }),
  aes128: Object.freeze({ openssl: 'aes-128-ecb', keyLength: 16, blockLength: 16 }),
});

export function isBlockCipherAlgorithm(value: unknown): value is BlockCipherAlgorithm {
  return value === '3des' || value === 'aes128';
}

function spec(algorithm: BlockCipherAlgorithm): BlockCipherSpec {
  if (!isBlockCipherAlgorithm(algorithm)) throw new BoundaryError(`expected a block cipher '3des' or 'aes128', got ${String(algorithm)}`);
  return SPECS[algorithm];
}

/** Key length in bytes: 24 for 3DES (three independent keys), 16 for AES-128. */
export function blockCipherKeyLength(algorithm: BlockCipherAlgorithm): number {
  return spec(algorithm).keyLength;
}

/** Block length in bytes: 8 for 3DES, 16 for AES. */
export function blockCipherBlockLength(algorithm: BlockCipherAlgorithm): number {
  return spec(algorithm).blockLength;
}

function run(decrypt: boolean, algorithm: BlockCipherAlgorithm, key: Uint8Array, block: Uint8Array): Uint8Array {
  const s = spec(algorithm);
  // The messages give lengths only: the key is secret.
  assertBytes(`${algorithm} key`, key, s.keyLength);
  assertBytes(`${algorithm} block`, block, s.blockLength);
  const cipher = decrypt ? createDecipheriv(s.openssl, key, null) : createCipheriv(s.openssl, key, null);
  cipher.setAutoPadding(false);
  const head = cipher.update(block);
  const tail = cipher.final();
  const out = new Uint8Array(s.blockLength);
  out.set(head, 0);
  out.set(tail, head.length);
  head.fill(0);
  tail.fill(0);
  return out;
}

/** E(key, block) for exactly one block. */
export function encryptBlock(algorithm: BlockCipherAlgorithm, key: Uint8Array, block: Uint8Array): Uint8Array {
  return run(false, algorithm, key, block);
}

/** D(key, block) for exactly one block. */
export function decryptBlock(algorithm: BlockCipherAlgorithm, key: Uint8Array, block: Uint8Array): Uint8Array {
  return run(true, algorithm, key, block);
}
