// The options of the license models of Wibu 002 Table 1 (license-models.ts): the checks build() applies to them, and
// their parsing from the strings of the CLI's `--option key=value`, strict both ways (reason "input").
import { fromHex, utf8 } from '../bytes/index.js';
import { LicenseError } from './license-error.js';
import { MAX_TEXT_BYTES, type UnixSeconds } from './license-model.js';

/** Latest time a product item may carry (as parseProductSpec allows). */
export const MAX_MODEL_TIME = 2 ** 40;
export const DAY_SECONDS = 86_400;
export const HOUR_SECONDS = 3_600;

export function modelInput(message: string): LicenseError {
  return new LicenseError('input', `license model: ${message}`);
}

function shown(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'a list' : typeof value;
}

export function checkWhole(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw modelInput(`expected ${what} to be a whole number in ${min}..${max}, got ${shown(value)}`);
  return value;
}

export function checkTime(value: unknown, what: string): UnixSeconds {
  return checkWhole(value, what, 0, MAX_MODEL_TIME);
}

/** A text of a product item: at most MAX_TEXT_BYTES UTF-8 bytes, no control characters; `minBytes` 1 for names. */
export function checkText(value: unknown, what: string, minBytes = 0): string {
  if (typeof value !== 'string') throw modelInput(`expected ${what} to be a string, got ${shown(value)}`);
  const size = utf8(value).length;
  if (size < minBytes || size > MAX_TEXT_BYTES) throw modelInput(`expected ${what} to be ${minBytes}..${MAX_TEXT_BYTES} UTF-8 bytes, got ${size}`);
  if ([...value].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) throw modelInput(`expected ${what} without control characters`);
  return value;
}

/** A digest of a computer or virtual machine: 32 bytes, copied so the caller's buffer stays the caller's. */
export function checkDigest(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw modelInput(`expected ${what} to be 32 bytes, got ${shown(value)}`);
  return value.slice();
}

/** ISO 3166-1 alpha-2 codes, upper case, no repeats. */
export function checkCountries(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 250) throw modelInput(`expected ${what} to be a list of 1..250 country codes, got ${shown(value)}`);
  for (const item of value) if (typeof item !== 'string' || !/^[A-Z]{2}$/.test(item)) throw modelInput(`expected ${what} to hold ISO 3166-1 alpha-2 codes in upper case, got ${shown(item)}`);
  const codes = value as string[];
  if (new Set(codes).size !== codes.length) throw modelInput(`expected ${what} without repeated codes`);
  return [...codes];
}

export function checkChoice<T extends string>(value: unknown, what: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw modelInput(`expected ${what} to be one of ${choices.join(', ')}, got ${shown(value)}`);
  return value as T;
}

// ---- options as strings (the CLI) ------------------------------------------------------------------------------

/**
 * How one option is written on the command line: whole (decimal or 0x hex), offset (minutes, or ±HH:MM), time (Unix
 * seconds or ISO 8601: 2027-01-31 or 2027-01-31T12:00:00Z), digest (64 lowercase hex), text, countries (DE,AT), choice.
 */
export type ModelOptionKind = 'whole' | 'offset' | 'time' | 'digest' | 'text' | 'countries' | 'choice';

export interface ModelOptionSpec {
  readonly key: string;
  readonly kind: ModelOptionKind;
  readonly required: boolean;
  readonly choices?: readonly string[];
  readonly help: string;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2}))?$/;

function parseTimeText(raw: string): number | undefined {
  if (/^(?:0|[1-9]\d{0,12})$/.test(raw)) return Number(raw);
  const match = ISO_TIME.exec(raw);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? '0')) as [number, number, number, number, number, number];
  const millis = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(millis);
  // Date.UTC rolls 2027-02-30 over into March and maps years below 100 to 19xx: the round trip refuses both.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return undefined;
  const zone = match[7] ?? 'Z';
  const offsetMinutes = zone === 'Z' ? 0 : parseOffsetText(zone);
  if (offsetMinutes === undefined || Math.abs(offsetMinutes) > 14 * 60) return undefined;
  return millis / 1000 - offsetMinutes * 60;
}

function parseOffsetText(raw: string): number | undefined {
  if (/^[+-]?(?:0|[1-9]\d{0,3})$/.test(raw)) return Number(raw);
  const match = /^([+-])(\d{2}):(\d{2})$/.exec(raw);
  if (match === null) return undefined;
  const [, sign, hours, minutes] = match;
  if (Number(minutes) > 59) return undefined;
  return (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes));
}

/** One option's string as the value its model's build() checks (ranges are build()'s to check). */
export function parseOptionValue(spec: ModelOptionSpec, raw: string): unknown {
  const refuse = (expected: string): LicenseError => modelInput(`expected option ${spec.key} as ${expected}, got ${shown(raw)}`);
  switch (spec.kind) {
    case 'whole':
      if (/^(?:0|[1-9]\d{0,15})$/.test(raw)) return Number(raw);
      if (/^0x[0-9a-fA-F]{1,8}$/.test(raw)) return Number.parseInt(raw.slice(2), 16);
      throw refuse('a whole number (decimal, or 0x and hex digits)');
    case 'offset': {
      const minutes = parseOffsetText(raw);
      if (minutes === undefined) throw refuse('a UTC offset in minutes or as ±HH:MM');
      return minutes;
    }
    case 'time': {
      const seconds = parseTimeText(raw);
      if (seconds === undefined || !Number.isInteger(seconds)) throw refuse('Unix seconds or an ISO 8601 date (2027-01-31, 2027-01-31T12:00:00Z)');
      return seconds;
    }
    case 'digest':
      if (!/^[0-9a-f]{64}$/.test(raw)) throw refuse('64 lowercase hex digits');
      return fromHex(raw);
    case 'text':
      return raw;
    case 'countries':
      return raw.split(',').map((code) => code.trim());
    case 'choice':
      if (!(spec.choices ?? []).includes(raw)) throw refuse(`one of ${(spec.choices ?? []).join(', ')}`);
      return raw;
  }
}

/** Every option of `values` parsed by its spec; unknown keys and missing required ones refused. */
export function parseOptionRecord(specs: readonly ModelOptionSpec[], values: Readonly<Record<string, string>>, model: string): Record<string, unknown> {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) throw modelInput('expected the options as a record of strings');
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(values)) {
    const spec = specs.find((item) => item.key === key);
    if (spec === undefined) throw modelInput(`unknown option ${shown(key)} for model ${model}; expected one of ${specs.map((item) => item.key).join(', ')}`);
    if (typeof raw !== 'string') throw modelInput(`expected option ${key} as a string, got ${shown(raw)}`);
    out[key] = parseOptionValue(spec, raw);
  }
  for (const spec of specs) if (spec.required && !(spec.key in out)) throw modelInput(`model ${model} needs option ${spec.key} (${spec.help})`);
  return out;
}
