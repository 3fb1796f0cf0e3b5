// Byte helpers shared by every layer: hex, concatenation, comparison and big-endian integers.
// Bytes are Uint8Array throughout the project; Buffer appears only at I/O edges.
import { timingSafeEqual } from 'node:crypto';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Lower-case hex without separators. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Parses hex; spaces and colons between bytes are allowed ("80 22 00 00"). */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '');
  if (!HEX.test(clean)) {
    throw new TypeError(`expected an even number of hex digits, got "${hex.length > 40 ? hex.slice(0, 40) + '…' : hex}"`);
  }
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Equality for public data; use constantTimeEqual for secrets. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equality whose running time does not depend on where the inputs differ (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Overwrites a buffer that held secret material. */
export function wipe(...buffers: readonly Uint8Array[]): void {
  for (const buffer of buffers) buffer.fill(0);
}

/** Unsigned big-endian encoding of `value` in exactly `length` bytes. */
export function uintToBytes(value: bigint, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`expected a byte count, got ${length}`);
  if (value < 0n || value >= 1n << BigInt(8 * length)) {
    throw new RangeError(`expected an unsigned integer that fits ${length} bytes, got ${value}`);
  }
  const out = new Uint8Array(length);
  let rest = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** Unsigned big-endian decoding of any number of bytes. */
export function bytesToUint(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** Reads a 16-bit big-endian value; the caller has checked the bounds. */
export function readUint16(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] ?? 0) << 8) | (bytes[offset + 1] ?? 0);
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

// ignoreBOM keeps a leading U+FEFF: a codec must not drop bytes (utf8(fromUtf8(b)) equals b).
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8, throwing on malformed input rather than substituting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  return STRICT_UTF8.decode(bytes);
}
