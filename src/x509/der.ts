// A small DER writer (ITU-T X.690 sections 8 and 10) for the types of an RFC 5280 certificate,
// on the project's BER-TLV encoder, whose minimal lengths are the DER ones (X.690 10.1).
import { VscError } from '../errors/index.js';
import { encodeConstructed, encodeTlv } from '../apdu/index.js';

/** A value the DER writer cannot encode: a malformed OID, a negative bit count, an out-of-range date. */
export class DerEncodingError extends VscError {
  override readonly name = 'DerEncodingError';
  constructor(message: string) {
    super('x509.der', message);
  }
}

/** Universal tags (X.680 section 8.4). */
const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function derBoolean(value: boolean): Uint8Array {
  return encodeTlv(Tag.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00)); // DER TRUE is FF (X.690 11.1)
}

/**
 * INTEGER (X.690 8.3): two's complement in the fewest bytes, so a positive value whose top bit is
 * set gains a leading 00 and no value starts with 00 followed by a byte below 80.
 * A Uint8Array is read as an unsigned big-endian magnitude (a serial number, an ECDSA scalar).
 */
export function derInteger(value: bigint | number | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0x00) start++;
    const magnitude = value.length === 0 ? Uint8Array.of(0) : value.subarray(start);
    if ((magnitude[0]! & 0x80) === 0) return encodeTlv(Tag.INTEGER, magnitude);
    const padded = new Uint8Array(magnitude.length + 1);
    padded.set(magnitude, 1);
    return encodeTlv(Tag.INTEGER, padded);
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new DerEncodingError(`expected a safe integer, got ${value}`);
  }
  let rest = BigInt(value);
  const bytes: number[] = [];
  // Emit low bytes until the remaining value is the sign extension of the last byte's top bit.
  for (;;) {
    const byte = Number(BigInt.asUintN(8, rest));
    bytes.unshift(byte);
    rest >>= 8n;
    if ((rest === 0n && (byte & 0x80) === 0) || (rest === -1n && (byte & 0x80) !== 0)) break;
  }
  return encodeTlv(Tag.INTEGER, Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER from dotted decimal (X.690 8.19): first two arcs joined, then base-128 arcs. */
export function derOid(dotted: string): Uint8Array {
  if (typeof dotted !== 'string' || !/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) {
    throw new DerEncodingError(`expected a dotted object identifier such as 1.2.840.10045.2.1, got ${String(dotted)}`);
  }
  const arcs = dotted.split('.').map(BigInt);
  const [first, second] = [arcs[0]!, arcs[1]!];
  if (first < 2n && second > 39n) throw new DerEncodingError(`expected a second arc below 40 under arc ${first}, got ${second}`);
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const group = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number(rest & 0x7fn) | 0x80);
    out.push(...group);
  }
  return encodeTlv(Tag.OID, Uint8Array.from(out));
}

export function derSequence(children: readonly Uint8Array[]): Uint8Array {
  return encodeConstructed(Tag.SEQUENCE, children);
}

/** SET OF with its elements sorted by their encodings, as DER requires (X.690 11.6). */
export function derSet(children: readonly Uint8Array[]): Uint8Array {
  const sorted = [...children].sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
  return encodeConstructed(Tag.SET, sorted);
}

/** BIT STRING (X.690 8.6): a leading count of unused bits in the last byte, which must be zero bits. */
export function derBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new DerEncodingError(`expected 0..7 unused bits (0 for an empty string), got ${unusedBits}`);
  }
  const last = bytes[bytes.length - 1] ?? 0;
  if ((last & ((1 << unusedBits) - 1)) !== 0) {
    throw new DerEncodingError(`expected the ${unusedBits} unused bits to be zero, got last byte ${last.toString(16)}`);
  }
  const value = new Uint8Array(bytes.length + 1);
  value[0] = unusedBits;
  value.set(bytes, 1);
  return encodeTlv(Tag.BIT_STRING, value);
}

export function derOctetString(bytes: Uint8Array): Uint8Array {
  return encodeTlv(Tag.OCTET_STRING, bytes);
}

export function derNull(): Uint8Array {
  return encodeTlv(Tag.NULL, new Uint8Array(0));
}

export function derUtf8String(text: string): Uint8Array {
  return encodeTlv(Tag.UTF8_STRING, new TextEncoder().encode(text));
}

/** PrintableString (X.680 41.4): letters, digits, space and ' ( ) + , - . / : = ? only. */
export function derPrintableString(text: string): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new DerEncodingError(`expected PrintableString characters, got "${text}"`);
  }
  return encodeTlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(text));
}

function checkDate(date: Date): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new DerEncodingError(`expected a valid Date, got ${String(date)}`);
  }
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Seconds precision; fractions are dropped, as RFC 5280 4.1.2.5 requires. */
function timeDigits(date: Date): string {
  return (
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z'
  );
}

/** UTCTime YYMMDDHHMMSSZ for 1950-2049 (RFC 5280 4.1.2.5.1). */
export function derUtcTime(date: Date): Uint8Array {
  checkDate(date);
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 2049) throw new DerEncodingError(`expected a UTCTime year in 1950..2049, got ${year}`);
  return encodeTlv(Tag.UTC_TIME, new TextEncoder().encode(pad(year % 100, 2) + timeDigits(date)));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 4.1.2.5.2). */
export function derGeneralizedTime(date: Date): Uint8Array {
  checkDate(date);
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new DerEncodingError(`expected a GeneralizedTime year in 0..9999, got ${year}`);
  return encodeTlv(Tag.GENERALIZED_TIME, new TextEncoder().encode(pad(year, 4) + timeDigits(date)));
}

/** The Time choice of RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function derTime(date: Date): Uint8Array {
  checkDate(date);
  const year = date.getUTCFullYear();
  return year >= 1950 && year <= 2049 ? derUtcTime(date) : derGeneralizedTime(date);
}

function contextTag(number: number, constructed: boolean): number {
  if (!Number.isInteger(number) || number < 0 || number > 30) {
    throw new DerEncodingError(`expected a context tag number in 0..30, got ${number}`);
  }
  return 0x80 | (constructed ? 0x20 : 0) | number;
}

/** [number] EXPLICIT: a constructed context tag around whole encodings, e.g. the version [0]. */
export function derExplicit(number: number, children: readonly Uint8Array[]): Uint8Array {
  return encodeConstructed(contextTag(number, true), children);
}

/** [number] IMPLICIT on a primitive type: the context tag replaces the universal one. */
export function derImplicit(number: number, value: Uint8Array): Uint8Array {
  return encodeTlv(contextTag(number, false), value);
}
