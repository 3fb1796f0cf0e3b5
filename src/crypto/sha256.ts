// SHA-256 (FIPS 180-4) over one or more parts, on node:crypto; cross-checked against @noble/hashes.
import { createHash, hash } from 'node:crypto';

export const SHA256_LENGTH = 32;

/** SHA-256 of the concatenation of `parts`, without building the concatenation. */
export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  let digest: Buffer;
  if (parts.length === 1) {
    // One-shot hashing skips the Hash object: it is the hot path of SIGN AND INCREMENT.
    digest = hash('sha256', parts[0]!, 'buffer');
  } else {
    const state = createHash('sha256');
    for (const part of parts) state.update(part);
    digest = state.digest();
  }
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}
