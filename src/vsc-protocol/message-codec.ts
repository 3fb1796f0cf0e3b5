// The binary frame of every operation message: one type byte, then the schema's fields in schema
// order, each as tag (1 byte), length (4 bytes, big-endian) and value. Binary, so that secrets in a
// proof (auth key, holder secret) never pass through a string; exact, so that a message means only
// what its schema says: unknown, repeated, misordered, missing or wrongly sized fields, trailing
// bytes and oversize messages are refused with a ProtocolError saying what was expected.
import { ProtocolError } from './protocol-error.js';

/** Values as the schema reads them: bytes, ASCII/UTF-8 text, 32-bit and 128-bit unsigned integers. */
export type FieldKind =
  | { readonly kind: 'bytes'; readonly min: number; readonly max: number }
  | { readonly kind: 'text'; readonly pattern: RegExp; readonly maxBytes: number }
  | { readonly kind: 'u32'; readonly min: number; readonly max: number }
  | { readonly kind: 'u128' }
  | { readonly kind: 'one-of'; readonly values: readonly string[] };

export interface FieldSpec {
  readonly tag: number;
  readonly name: string;
  readonly value: FieldKind;
  readonly optional?: boolean;
}

export interface MessageSchema {
  /** Names the message in errors: "insert proof". */
  readonly what: string;
  readonly type: number;
  readonly fields: readonly FieldSpec[];
}

export type FieldValue = Uint8Array | string | number | bigint;

/** No operation message comes near this: the largest is a remove proof with ≤ 48 KiB of sealed information. */
export const MAX_OPERATION_MESSAGE_BYTES = 60 * 1024;
const HEADER = 5; // tag (1) + length (4)
const U128_LIMIT = 1n << 128n;

export const bytesField = (min: number, max: number = min): FieldKind => ({ kind: 'bytes', min, max });
export const textField = (pattern: RegExp, maxBytes: number): FieldKind => ({ kind: 'text', pattern, maxBytes });
export const u32Field = (min: number, max: number): FieldKind => ({ kind: 'u32', min, max });
export const U128_FIELD: FieldKind = { kind: 'u128' };
export const oneOfField = (values: readonly string[]): FieldKind => ({ kind: 'one-of', values });

const sizeText = (min: number, max: number): string => (min === max ? `${min}` : `${min} to ${max}`);

/** Encodes a record; a value the schema would refuse is refused here too, so a peer never gets one. */
export function encodeFields(schema: MessageSchema, record: Readonly<Record<string, unknown>>): Uint8Array {
  const known = new Set(schema.fields.map((field) => field.name));
  for (const name of Object.keys(record)) {
    if (name !== 'type' && record[name] !== undefined && !known.has(name)) throw new ProtocolError(`${schema.what}: unexpected field "${name}"`);
  }
  const parts: Uint8Array[] = [];
  for (const field of schema.fields) {
    const value = record[field.name];
    if (value === undefined) {
      if (field.optional === true) continue;
      throw new ProtocolError(`${schema.what}: expected field "${field.name}", got none`);
    }
    const bytes = encodeValue(schema, field, value);
    const part = new Uint8Array(HEADER + bytes.length);
    part[0] = field.tag;
    new DataView(part.buffer).setUint32(1, bytes.length);
    part.set(bytes, HEADER);
    // Encoded value copies of secrets are wiped once copied into the frame.
    if (bytes !== value) bytes.fill(0);
    parts.push(part);
  }
  const total = 1 + parts.reduce((sum, part) => sum + part.length, 0);
  if (total > MAX_OPERATION_MESSAGE_BYTES) throw new ProtocolError(`${schema.what}: expected at most ${MAX_OPERATION_MESSAGE_BYTES} bytes, got ${total}`);
  const out = new Uint8Array(total);
  out[0] = schema.type;
  let offset = 1;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
    part.fill(0);
  }
  return out;
}

function encodeValue(schema: MessageSchema, field: FieldSpec, value: unknown): Uint8Array {
  const spec = field.value;
  const bad = (expected: string): ProtocolError => new ProtocolError(`${schema.what}: expected "${field.name}" as ${expected}, got ${describe(value)}`);
  switch (spec.kind) {
    case 'bytes':
      if (!(value instanceof Uint8Array) || value.length < spec.min || value.length > spec.max) throw bad(`${sizeText(spec.min, spec.max)} bytes`);
      return value.slice();
    case 'text': {
      if (typeof value !== 'string' || !spec.pattern.test(value)) throw bad(`text matching ${spec.pattern.source}`);
      const bytes = new TextEncoder().encode(value);
      if (bytes.length > spec.maxBytes) throw bad(`text of at most ${spec.maxBytes} bytes`);
      return bytes;
    }
    case 'one-of':
      if (typeof value !== 'string' || !spec.values.includes(value)) throw bad(`one of ${spec.values.join(', ')}`);
      return new TextEncoder().encode(value);
    case 'u32': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min || value > spec.max) throw bad(`an integer in ${spec.min}..${spec.max}`);
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, value);
      return bytes;
    }
    case 'u128': {
      if (typeof value !== 'bigint' || value < 0n || value >= U128_LIMIT) throw bad('an integer in 0..2^128-1');
      const bytes = new Uint8Array(16);
      let rest = value;
      for (let i = 15; i >= 0; i--) {
        bytes[i] = Number(rest & 0xffn);
        rest >>= 8n;
      }
      return bytes;
    }
  }
}

/** Decodes exactly one message of `schema`; every byte array returned is a copy the caller owns. */
export function decodeFields(schema: MessageSchema, bytes: Uint8Array): Record<string, FieldValue> {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError(`${schema.what}: expected bytes, got ${describe(bytes)}`);
  if (bytes.length > MAX_OPERATION_MESSAGE_BYTES) throw new ProtocolError(`${schema.what}: expected at most ${MAX_OPERATION_MESSAGE_BYTES} bytes, got ${bytes.length}`);
  if (bytes.length < 1) throw new ProtocolError(`${schema.what}: expected a message type byte, got an empty message`);
  if (bytes[0] !== schema.type) throw new ProtocolError(`${schema.what}: expected message type ${schema.type}, got ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record: Record<string, FieldValue> = {};
  let offset = 1;
  let next = 0; // index in schema.fields of the next field that may come
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER) throw new ProtocolError(`${schema.what}: expected a ${HEADER}-byte field header at offset ${offset}, got ${bytes.length - offset} bytes`);
    const tag = bytes[offset]!;
    const length = view.getUint32(offset + 1);
    const index = schema.fields.findIndex((field) => field.tag === tag);
    if (index < 0) throw new ProtocolError(`${schema.what}: expected a known field tag, got unknown tag ${tag}`);
    const field = schema.fields[index]!;
    if (index < next) throw new ProtocolError(`${schema.what}: expected fields in schema order once each, got "${field.name}" again or out of order`);
    for (let skipped = next; skipped < index; skipped++) missing(schema, schema.fields[skipped]!);
    const start = offset + HEADER;
    if (length > bytes.length - start) throw new ProtocolError(`${schema.what}: expected ${length} bytes of "${field.name}", got ${bytes.length - start}`);
    record[field.name] = decodeValue(schema, field, bytes.subarray(start, start + length));
    offset = start + length;
    next = index + 1;
  }
  for (let rest = next; rest < schema.fields.length; rest++) missing(schema, schema.fields[rest]!);
  return record;
}

function missing(schema: MessageSchema, field: FieldSpec): void {
  if (field.optional !== true) throw new ProtocolError(`${schema.what}: expected field "${field.name}", got none`);
}

function decodeValue(schema: MessageSchema, field: FieldSpec, value: Uint8Array): FieldValue {
  const spec = field.value;
  const bad = (expected: string, got: string): ProtocolError => new ProtocolError(`${schema.what}: expected "${field.name}" as ${expected}, got ${got}`);
  switch (spec.kind) {
    case 'bytes':
      if (value.length < spec.min || value.length > spec.max) throw bad(`${sizeText(spec.min, spec.max)} bytes`, `${value.length}`);
      return value.slice();
    case 'text':
    case 'one-of': {
      const max = spec.kind === 'text' ? spec.maxBytes : 64;
      if (value.length > max) throw bad(`text of at most ${max} bytes`, `${value.length} bytes`);
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(value);
      } catch {
        throw bad('UTF-8 text', 'invalid UTF-8');
      }
      if (spec.kind === 'text' && !spec.pattern.test(text)) throw bad(`text matching ${spec.pattern.source}`, `${text.length} characters that do not`);
      if (spec.kind === 'one-of' && !spec.values.includes(text)) throw bad(`one of ${spec.values.join(', ')}`, JSON.stringify(text.slice(0, 64)));
      return text;
    }
    case 'u32': {
      if (value.length !== 4) throw bad('4 bytes', `${value.length}`);
      const number = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
      if (number < spec.min || number > spec.max) throw bad(`an integer in ${spec.min}..${spec.max}`, `${number}`);
      return number;
    }
    case 'u128': {
      if (value.length !== 16) throw bad('16 bytes', `${value.length}`);
      let number = 0n;
      for (const byte of value) number = (number << 8n) | BigInt(byte);
      return number;
    }
  }
}

/** What came instead, without echoing its content (it may be a secret). */
function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'string') return `text of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return value === null ? 'null' : typeof value;
}
