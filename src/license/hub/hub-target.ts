// The replacement container a restore goes to (Wibu 000 P002 §2.1 "the new (typically empty) hardware device"), as the
// customer's target info file names it (`vsc license target-info`): {"serial", "cardPublicKey": 64 hex,
// "firmUpdateCounters": {licensorKeyHex: n | null}}: the firm update counter of each licensor's firm item there (null:
// none yet), which each licensor's restore update must name. Checked strictly: LicenseError 'input'.
import { fromHex, utf8 } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_FIRM_ITEMS } from '../license-model.js';
import { MAX_LOCK_SERIAL_BYTES } from '../locking/index.js';

export const TARGET_FIELDS = ['serial', 'cardPublicKey', 'firmUpdateCounters'] as const;
export const MAX_FIRM_UPDATE_COUNTER = 2 ** 32;
const KEY_HEX = /^[0-9a-f]{64}$/;

export interface HubTarget {
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  /** Licensor key (lowercase hex) → the target's firm update counter of that licensor, null for no firm item. */
  readonly firmUpdateCounters: ReadonlyMap<string, number | null>;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'number' ? `the number ${value}` : `a ${typeof value}`;
}

function objectOf(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LicenseError('input', `${where}: expected an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function fields(value: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
  const record = objectOf(value, where);
  for (const key of Object.keys(record)) if (!allowed.includes(key)) throw new LicenseError('input', `${where}: unknown field ${JSON.stringify(key.slice(0, 40))}`);
  for (const key of allowed) if (!Object.hasOwn(record, key)) throw new LicenseError('input', `${where}: missing field ${key}`);
  return record;
}

/** A container serial: 1..128 UTF-8 bytes, no control characters (as lock sequences and backups take it). */
export function checkSerial(value: unknown, where: string): string {
  const size = typeof value === 'string' ? utf8(value).length : -1;
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || size < 1 || size > MAX_LOCK_SERIAL_BYTES || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new LicenseError('input', `${where}: expected a serial of 1..${MAX_LOCK_SERIAL_BYTES} UTF-8 bytes without control characters, got ${describe(value)}`);
  }
  return value;
}

export function checkKeyHex(value: unknown, where: string): string {
  if (typeof value !== 'string' || !KEY_HEX.test(value)) throw new LicenseError('input', `${where}: expected 64 lowercase hex digits, got ${describe(value)}`);
  return value;
}

/** Parses the target of a restore or transfer job (the target info file's JSON value). */
export function parseHubTarget(value: unknown, where = 'target'): HubTarget {
  const record = fields(value, where, TARGET_FIELDS);
  const entries = Object.entries(objectOf(record['firmUpdateCounters'], `${where}.firmUpdateCounters`));
  if (entries.length > MAX_FIRM_ITEMS) throw new LicenseError('input', `${where}.firmUpdateCounters: expected at most ${MAX_FIRM_ITEMS} licensors, got ${entries.length}`);
  const map = new Map<string, number | null>();
  for (const [key, counter] of entries) {
    checkKeyHex(key, `${where}.firmUpdateCounters key`);
    if (counter !== null && (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter < 0 || counter > MAX_FIRM_UPDATE_COUNTER)) {
      throw new LicenseError('input', `${where}.firmUpdateCounters.${key.slice(0, 8)}…: expected a whole number in 0..${MAX_FIRM_UPDATE_COUNTER} or null, got ${describe(counter)}`);
    }
    map.set(key, counter);
  }
  return { serial: checkSerial(record['serial'], `${where}.serial`), cardPublicKey: fromHex(checkKeyHex(record['cardPublicKey'], `${where}.cardPublicKey`)), firmUpdateCounters: map };
}
