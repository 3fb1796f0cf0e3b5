// The digest that SIGN AND INCREMENT signs (rental patent 003, [0053] step [1], and the
// universal-key variant of [0098]): h' = SHA-256(h ‖ counter) or SHA-256(h ‖ serial ‖ counter).
import { concatBytes, utf8 } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';

export const COUNTER_LENGTH = 16;
/** 2^128 - 1: the counter's highest value, which is never signed ([0057]: it never rolls over). */
export const COUNTER_MAX = (1n << 128n) - 1n;
export const HASH_LENGTH = 32;

/** Individual key per card (P1 00) or one universal key shared by all cards (P1 01). */
export type VscKeyMode = 'individual' | 'universal';

const LOW_64 = (1n << 64n) - 1n;

/** The counter as 16 big-endian bytes (two 64-bit halves: this runs once per signature). */
export function encodeCounter(counter: bigint): Uint8Array {
  if (counter < 0n || counter > COUNTER_MAX) throw new RangeError(`expected a counter in 0..2^128-1, got ${counter}`);
  const out = new Uint8Array(COUNTER_LENGTH);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, counter >> 64n);
  view.setBigUint64(8, counter & LOW_64);
  return out;
}

/** h' for a card in the given key mode; the serial takes part only in universal mode. */
export function signedDigest(h: Uint8Array, counter: bigint, keyMode: VscKeyMode, serial: string): Uint8Array {
  if (h.length !== HASH_LENGTH) throw new TypeError(`expected a ${HASH_LENGTH}-byte hash, got ${h.length} bytes`);
  const input = keyMode === 'universal' ? concatBytes(h, utf8(serial), encodeCounter(counter)) : concatBytes(h, encodeCounter(counter));
  return sha256(input);
}
