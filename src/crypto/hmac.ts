// HMAC-SHA256 (RFC 2104, FIPS 198-1) over one or more parts, on node:crypto; cross-checked against
// @noble/hashes. The Noise channel's HKDF runs on it.
import { createHmac } from 'node:crypto';
import { assertBytes } from '../errors/index.js';

/** HMAC-SHA256(key, parts[0] ‖ parts[1] ‖ ...), without building the concatenation. */
export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  assertBytes('HMAC key', key);
  const state = createHmac('sha256', key);
  for (const part of parts) state.update(part);
  const digest = state.digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}
