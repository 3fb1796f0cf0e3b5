// The field layer shared by the binary codecs of src/license (the container on the card, a use request sent to it):
// tag (1) ‖ length (4, big-endian) ‖ value, as the card's protected information (src/card/protected-information-codec.ts).
// Every length is checked against what is there; fields are read in one fixed tag order, so an unknown, repeated or
// misplaced field is left over and refused. Refusals are LicenseError 'input' naming the field, never its value.
import { concatBytes, utf8 } from '../bytes/index.js';
import { LicenseError } from './license-error.js';

export const FIELD_HEADER_LENGTH = 5;

export function fieldError(where: string, message: string): LicenseError {
  return new LicenseError('input', `${where}: ${message}`);
}

/** One encoded field. */
export function field(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(FIELD_HEADER_LENGTH + value.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, value.length);
  out.set(value, FIELD_HEADER_LENGTH);
  return out;
}

export const joinFields = (parts: readonly Uint8Array[]): Uint8Array => concatBytes(...parts);

interface RawField {
  readonly tag: number;
  readonly value: Uint8Array;
}

/** Reads the fields of `bytes` in the order the caller asks for them (ascending tags), then `end()` refuses any left. */
export class FieldReader {
  readonly #fields: RawField[] = [];
  #next = 0;

  constructor(bytes: Uint8Array, readonly where: string) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    while (offset < bytes.length) {
      const left = bytes.length - offset;
      if (left < FIELD_HEADER_LENGTH) throw fieldError(where, `expected a ${FIELD_HEADER_LENGTH}-byte field header, got ${left} bytes`);
      const length = view.getUint32(offset + 1);
      if (length > left - FIELD_HEADER_LENGTH) throw fieldError(where, `expected field ${hexTag(bytes[offset]!)} to hold at most the ${left - FIELD_HEADER_LENGTH} bytes that remain, got a length of ${length}`);
      this.#fields.push({ tag: bytes[offset]!, value: bytes.subarray(offset + FIELD_HEADER_LENGTH, offset + FIELD_HEADER_LENGTH + length) });
      offset += FIELD_HEADER_LENGTH + length;
    }
  }

  /** The next field's value if it has `tag` (a view into the input: copy what is kept). */
  optional(tag: number): Uint8Array | undefined {
    const entry = this.#fields[this.#next];
    if (entry === undefined || entry.tag !== tag) return undefined;
    this.#next += 1;
    return entry.value;
  }

  required(tag: number, name: string): Uint8Array {
    const value = this.optional(tag);
    if (value === undefined) throw fieldError(this.where, `expected ${name} (field ${hexTag(tag)}) next`);
    return value;
  }

  /** Every consecutive field with `tag`. */
  many(tag: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let value = this.optional(tag); value !== undefined; value = this.optional(tag)) out.push(value);
    return out;
  }

  end(): void {
    const entry = this.#fields[this.#next];
    if (entry !== undefined) throw fieldError(this.where, `unexpected field ${hexTag(entry.tag)} (unknown, repeated or out of order)`);
  }
}

function hexTag(tag: number): string {
  return tag.toString(16).padStart(2, '0');
}

// ---- values ------------------------------------------------------------------------------------------------------

function exactLength(value: Uint8Array, length: number, where: string, name: string): void {
  if (value.length !== length) throw fieldError(where, `expected ${name} to be ${length} bytes, got ${value.length}`);
}

export function encodeUint(value: number, length: 1 | 4 | 8): Uint8Array {
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  if (length === 1) view.setUint8(0, value);
  else if (length === 4) view.setUint32(0, value);
  else view.setBigUint64(0, BigInt(value));
  return out;
}

/** An unsigned big-endian number of exactly `length` bytes, below 2^53 (range checks are the caller's). */
export function decodeUint(value: Uint8Array, length: 1 | 4 | 8, where: string, name: string): number {
  exactLength(value, length, where, name);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (length === 1) return view.getUint8(0);
  if (length === 4) return view.getUint32(0);
  const big = view.getBigUint64(0);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw fieldError(where, `expected ${name} below 2^53`);
  return Number(big);
}

export function encodeInt16Pair(first: number, second: number): Uint8Array {
  const out = new Uint8Array(4);
  const view = new DataView(out.buffer);
  view.setInt16(0, first);
  view.setInt16(2, second);
  return out;
}

export function decodeInt16Pair(value: Uint8Array, where: string, name: string): [number, number] {
  exactLength(value, 4, where, name);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return [view.getInt16(0), view.getInt16(2)];
}

export function decodeBytes(value: Uint8Array, where: string, name: string, length: number | { readonly max: number }): Uint8Array {
  if (typeof length === 'number') exactLength(value, length, where, name);
  else if (value.length > length.max) throw fieldError(where, `expected ${name} of at most ${length.max} bytes, got ${value.length}`);
  return value.slice();
}

const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });

export function decodeText(value: Uint8Array, where: string, name: string): string {
  try {
    return FATAL_UTF8.decode(value);
  } catch {
    throw fieldError(where, `expected ${name} as UTF-8`);
  }
}

/** Why `text` cannot be a license text of at most `maxBytes` UTF-8 bytes (the rule of license-update.ts), or undefined. */
export function textProblem(text: unknown, maxBytes: number): string | undefined {
  if (typeof text !== 'string') return `a string, got ${typeof text}`;
  const bytes = utf8(text);
  if (bytes.length > maxBytes) return `at most ${maxBytes} UTF-8 bytes, got ${bytes.length}`;
  if ([...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) return 'text without control characters';
  // A lone surrogate would be written as U+FFFD and read back as another text.
  if (FATAL_UTF8.decode(bytes) !== text) return 'valid Unicode, got a lone surrogate';
  return undefined;
}
