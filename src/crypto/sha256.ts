// SHA-256 (FIPS 180-4) over one or more parts, on node:crypto; cross-checked against @noble/hashes.
import { createHash } from 'node:crypto';

export const SHA256_LENGTH = 32;

/** SHA-256 of the concatenation of `parts`, without building the concatenation. */
export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  const digest = hash.digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}
