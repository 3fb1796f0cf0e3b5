// Strict reading of the JSON files of src/license (lock sequences, backup files; STYLE.md "validate at every
// boundary"): a size-checked UTF-8 JSON text, then one object whose every field is named, typed and range-checked.
// Refusals are LicenseError 'input' saying "WHERE: expected X, got Y", never quoting a value that came in.
import { fromHex, utf8 } from '../bytes/index.js';
import { LicenseError } from './license-error.js';
import { textProblem } from './license-field-codec.js';

const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });
const LOWER_HEX = /^(?:[0-9a-f]{2})*$/;

/** What a value is, for a message: its type and size, never its content. */
export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number') return Number.isInteger(value) ? `the number ${value}` : 'a fractional number';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function jsonInput(where: string, message: string): LicenseError {
  return new LicenseError('input', `${where}: ${message}`);
}

/** Parses `text` (at most `maxBytes` UTF-8 bytes) as JSON. */
export function parseJsonText(text: string | Uint8Array, where: string, maxBytes: number): unknown {
  let value: string;
  if (typeof text === 'string') {
    // A JavaScript string needs at most 3 UTF-8 bytes per UTF-16 unit: only long ones need encoding to measure.
    const size = text.length * 3 <= maxBytes ? 0 : utf8(text).length;
    if (size > maxBytes) throw jsonInput(where, `expected at most ${maxBytes} bytes, got ${size}`);
    value = text;
  } else if (text instanceof Uint8Array) {
    if (text.length > maxBytes) throw jsonInput(where, `expected at most ${maxBytes} bytes, got ${text.length}`);
    try {
      value = FATAL_UTF8.decode(text);
    } catch {
      throw jsonInput(where, 'expected UTF-8 text');
    }
  } else {
    throw jsonInput(where, `expected a text or bytes, got ${describeJson(text)}`);
  }
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw jsonInput(where, 'expected JSON, got text that is not JSON');
  }
}

/** One JSON object read field by field: exactly the required fields, optional ones, nothing else. */
export class JsonFields {
  readonly #fields: Record<string, unknown>;

  constructor(value: unknown, readonly where: string, required: readonly string[], optional: readonly string[] = []) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw jsonInput(where, `expected a JSON object, got ${describeJson(value)}`);
    const fields = value as Record<string, unknown>;
    for (const key of required) if (!Object.hasOwn(fields, key)) throw jsonInput(where, `expected field ${key}, got none`);
    for (const key of Object.keys(fields)) {
      if (!required.includes(key) && !optional.includes(key)) throw jsonInput(where, `expected only the fields ${[...required, ...optional].join(', ')}, got ${JSON.stringify(key.slice(0, 40))}`);
    }
    this.#fields = fields;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.#fields, name);
  }

  raw(name: string): unknown {
    return this.#fields[name];
  }

  #fail(name: string, expected: string): never {
    throw jsonInput(this.where, `expected ${name} as ${expected}, got ${describeJson(this.#fields[name])}`);
  }

  constant<T extends string>(name: string, ...values: readonly T[]): T {
    const value = this.#fields[name];
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) this.#fail(name, values.map((entry) => JSON.stringify(entry)).join(' or '));
    return value as T;
  }

  /** A string of any content up to `maxBytes` UTF-8 bytes (signed texts, kept exactly). */
  string(name: string, maxBytes: number): string {
    const value = this.#fields[name];
    if (typeof value !== 'string') this.#fail(name, 'a string');
    const size = value.length * 3 <= maxBytes ? 0 : utf8(value).length;
    if (size > maxBytes) this.#fail(name, `a string of at most ${maxBytes} UTF-8 bytes`);
    return value;
  }

  /** A license text (license-field-codec.ts textProblem): no control characters, valid Unicode, `minBytes..maxBytes`. */
  text(name: string, maxBytes: number, minBytes = 0): string {
    const value = this.#fields[name];
    const problem = textProblem(value, maxBytes);
    if (problem !== undefined) this.#fail(name, problem.replace(/, got .*$/, ''));
    if (utf8(value as string).length < minBytes) this.#fail(name, `a text of at least ${minBytes} bytes`);
    return value as string;
  }

  integer(name: string, min: number, max: number): number {
    const value = this.#fields[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.#fail(name, `a whole number in ${min}..${max}`);
    return value;
  }

  /** Lowercase hex of exactly `length` bytes, or of `min..max` bytes. */
  hex(name: string, length: number | { readonly min?: number; readonly max: number }): Uint8Array {
    return hexValue(this.#fields[name], `${this.where}: ${name}`, length);
  }

  array(name: string, maxItems: number): readonly unknown[] {
    const value = this.#fields[name];
    if (!Array.isArray(value) || value.length > maxItems) this.#fail(name, `an array of at most ${maxItems} items`);
    return value;
  }
}

/** Lowercase hex of exactly `length` bytes, or of `min..max` bytes; `what` names it in the refusal. */
export function hexValue(value: unknown, what: string, length: number | { readonly min?: number; readonly max: number }): Uint8Array {
  const [min, max] = typeof length === 'number' ? [length, length] : [length.min ?? 0, length.max];
  const expected = min === max ? `${min * 2} lowercase hex digits` : `${min * 2}..${max * 2} lowercase hex digits`;
  if (typeof value !== 'string' || value.length < min * 2 || value.length > max * 2 || !LOWER_HEX.test(value)) {
    throw new LicenseError('input', `${what}: expected ${expected}, got ${describeJson(value)}`);
  }
  return fromHex(value);
}
