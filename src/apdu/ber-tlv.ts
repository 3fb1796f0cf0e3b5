// BER-TLV data objects, ISO/IEC 7816-4 section 5.2 (tag and length rules of ISO/IEC 8825-1 8.1.2-8.1.3),
// the encoding SP 800-73-4 uses for its data objects and templates (Part 1 section 3, Part 2 section 3).
import { VscError } from '../errors/index.js';

/** Largest length the 83 xx xx xx form carries; 84 and longer forms are refused. */
export const MAX_TLV_LENGTH = 0xffffff;

/**
 * One decoded data object. `tag` is the integer of the tag bytes as written (0x53, 0x7F49, 0x5FC105),
 * the form SP 800-73-4 tables and PIV code use.
 */
export interface Tlv {
  readonly tag: number;
  /** Bit 6 (0x20) of the first tag byte. */
  readonly constructed: boolean;
  /** A view into the decoded buffer (subarray, not a copy): `.slice()` it to keep it past a wipe or reuse. */
  readonly value: Uint8Array;
  /** Tag bytes plus length bytes. */
  readonly headerLength: number;
  /** Offset just past the value in the decoded buffer: where the next sibling starts. */
  readonly end: number;
}

export interface DecodeTlvListOptions {
  /**
   * Skip 00 and FF bytes before, between and after the data objects, which ISO/IEC 7816-4 5.2.2.1
   * allows (erased objects). Off by default: PIV objects never carry padding, and accepting it
   * would let a stray byte pass silently.
   */
  allowPadding?: boolean;
}

/** Bytes that are not BER-TLV as this codec accepts it, or a tag/length the encoder cannot write. */
export class TlvFormatError extends VscError {
  override readonly name = 'TlvFormatError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('apdu.tlv', message, options);
  }
}

/** Upper-case hex in whole bytes: 0x53 → "53", 0x100 → "0100". */
function hex(value: number): string {
  const digits = value.toString(16).toUpperCase();
  return digits.length % 2 === 0 ? digits : `0${digits}`;
}

/** Tag integer in the spelling the specs use ("5FC105"). */
export function formatTag(tag: number): string {
  return Number.isInteger(tag) && tag >= 0 ? hex(tag) : String(tag);
}

/**
 * Why the bytes of a tag break ISO/IEC 7816-4 5.2.2.1, or undefined when they are valid.
 * First byte 00 or FF is padding, not a tag; a first byte with b5-b1 = 11111 needs subsequent
 * bytes, whose b8 says whether another follows; the first subsequent byte is neither 00-1E
 * (those numbers fit the one-byte form) nor 80 (a leading zero group).
 */
function tagBytesProblem(bytes: readonly number[]): string | undefined {
  const [first, second, third] = bytes;
  if (first === undefined) return 'no tag byte';
  if (first === 0x00 || first === 0xff) return `first tag byte ${hex(first)} is reserved for padding`;
  const multiByte = (first & 0x1f) === 0x1f;
  if (!multiByte) return bytes.length === 1 ? undefined : `first tag byte ${hex(first)} has no subsequent bytes`;
  if (second === undefined) return `first tag byte ${hex(first)} announces subsequent bytes, got none`;
  if (second < 0x1f || second === 0x80) return `expected a first subsequent tag byte 1F-7F or 81-FF, got ${hex(second)}`;
  if ((second & 0x80) === 0) return bytes.length === 2 ? undefined : `tag byte ${hex(second)} is the last one`;
  if (third === undefined) return `tag byte ${hex(second)} announces another byte, got none`;
  if ((third & 0x80) !== 0) return `expected a tag of at most 3 bytes, got a 4th after ${hex(third)}`;
  return bytes.length === 3 ? undefined : `tag byte ${hex(third)} is the last one`;
}

function tagToBytes(tag: number): number[] | string {
  if (!Number.isInteger(tag) || tag <= 0 || tag > 0xffffff) {
    return `expected a tag of 1 to 3 bytes (0x01..0xFFFFFF), got ${tag}`;
  }
  const bytes = tag > 0xffff ? [tag >> 16, (tag >> 8) & 0xff, tag & 0xff] : tag > 0xff ? [tag >> 8, tag & 0xff] : [tag];
  const problem = tagBytesProblem(bytes);
  return problem === undefined ? bytes : `invalid tag ${formatTag(tag)}: ${problem}`;
}

export function isValidTag(tag: number): boolean {
  return typeof tagToBytes(tag) !== 'string';
}

/** The tag bytes, e.g. for the 5C tag list of GET DATA (SP 800-73-4 Part 2 3.1.2). */
export function encodeTag(tag: number): Uint8Array {
  const bytes = tagToBytes(tag);
  if (typeof bytes === 'string') throw new TlvFormatError(bytes);
  return Uint8Array.from(bytes);
}

/** Minimal definite length: 0..7F, 81 xx, 82 xxxx, 83 xxxxxx. */
export function encodeLength(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_TLV_LENGTH) {
    throw new TlvFormatError(`expected a length in 0..${MAX_TLV_LENGTH}, got ${length}`);
  }
  if (length < 0x80) return Uint8Array.of(length);
  if (length <= 0xff) return Uint8Array.of(0x81, length);
  if (length <= 0xffff) return Uint8Array.of(0x82, length >> 8, length & 0xff);
  return Uint8Array.of(0x83, length >> 16, (length >> 8) & 0xff, length & 0xff);
}

export function encodeTlv(tag: number, value: Uint8Array): Uint8Array {
  const tagBytes = encodeTag(tag);
  const lengthBytes = encodeLength(value.length);
  const out = new Uint8Array(tagBytes.length + lengthBytes.length + value.length);
  out.set(tagBytes, 0);
  out.set(lengthBytes, tagBytes.length);
  out.set(value, tagBytes.length + lengthBytes.length);
  return out;
}

/**
 * A data object whose value is the concatenation of already encoded children, each checked to be
 * well-formed. The constructed bit of `tag` is not enforced: SP 800-73-4 wraps the objects of every
 * container in tag 53, which BER calls primitive.
 */
export function encodeConstructed(tag: number, children: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const child of children) length += child.length;
  const value = new Uint8Array(length);
  let offset = 0;
  for (const [index, child] of children.entries()) {
    try {
      decodeTlvList(child);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TlvFormatError(`child ${index} is not BER-TLV: ${reason}`, { cause: error });
    }
    value.set(child, offset);
    offset += child.length;
  }
  return encodeTlv(tag, value);
}

/**
 * Decodes the data object starting at `offset`. Non-minimal lengths (81 05) are accepted because
 * real cards send them; indefinite (80) and 84+ lengths, invalid tags and anything running past
 * the buffer are refused.
 */
export function decodeTlv(bytes: Uint8Array, offset = 0): Tlv {
  if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
    throw new TlvFormatError(`expected an offset in 0..${bytes.length}, got ${offset}`);
  }
  if (offset === bytes.length) throw new TlvFormatError(`expected a tag at offset ${offset}, got end of data`);

  const tagBytes = [bytes[offset]!];
  let p = offset + 1;
  if ((tagBytes[0]! & 0x1f) === 0x1f) {
    // Read subsequent bytes while b8 is set, up to one past the limit so the error names it.
    while (tagBytes.length < 4) {
      const byte = bytes[p];
      if (byte === undefined) break;
      tagBytes.push(byte);
      p++;
      if ((byte & 0x80) === 0) break;
    }
  }
  const problem = tagBytesProblem(tagBytes);
  if (problem !== undefined) throw new TlvFormatError(`invalid tag at offset ${offset}: ${problem}`);
  let tag = 0;
  for (const byte of tagBytes) tag = (tag << 8) | byte;

  const first = bytes[p];
  if (first === undefined) throw new TlvFormatError(`expected a length after tag ${formatTag(tag)}, got end of data`);
  p++;
  let length = first;
  if (first === 0x80) {
    throw new TlvFormatError(`expected a definite length after tag ${formatTag(tag)}, got the indefinite form 80`);
  }
  if (first > 0x80) {
    const count = first & 0x7f;
    if (count > 3) throw new TlvFormatError(`expected a length form 81, 82 or 83 after tag ${formatTag(tag)}, got ${hex(first)}`);
    if (p + count > bytes.length) {
      throw new TlvFormatError(`expected ${count} length bytes after tag ${formatTag(tag)}, got ${bytes.length - p}`);
    }
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[p + i]!;
    p += count;
  }
  if (length > bytes.length - p) {
    throw new TlvFormatError(`expected ${length} value bytes for tag ${formatTag(tag)}, got ${bytes.length - p}`);
  }
  return Object.freeze({
    tag,
    constructed: (tagBytes[0]! & 0x20) !== 0,
    value: bytes.subarray(p, p + length),
    headerLength: p - offset,
    end: p + length,
  });
}

function isPadding(byte: number | undefined): boolean {
  return byte === 0x00 || byte === 0xff;
}

/** Decodes sibling data objects that must fill `bytes` exactly. Nested values are decoded on demand. */
export function decodeTlvList(bytes: Uint8Array, options: DecodeTlvListOptions = {}): Tlv[] {
  const list: Tlv[] = [];
  let offset = 0;
  for (;;) {
    if (options.allowPadding === true) while (isPadding(bytes[offset])) offset++;
    if (offset === bytes.length) return list;
    const tlv = decodeTlv(bytes, offset);
    list.push(tlv);
    offset = tlv.end;
  }
}

/** The first data object with `tag`, or undefined. */
export function findTlv(list: readonly Tlv[], tag: number): Tlv | undefined {
  return list.find((tlv) => tlv.tag === tag);
}
