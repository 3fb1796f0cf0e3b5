// Trail records and card bindings inside the network license server's JSON answers (leases, borrow certificates): a
// record travels as its trail line's object ({"nonce","text","counter","signature"}, patent 003 [0056]), a binding as
// its file text (card-binding.ts). Reading checks the shape only; whose card signed it the caller checks.
import { encodeRecordLine, parseRecordLine, type AuditRecord } from '../../rental/index.js';
import { parseCardBinding, type CardBinding } from '../card-binding.js';
import { LicenseError } from '../license-error.js';

export type RecordWire = Readonly<Record<'nonce' | 'text' | 'counter' | 'signature', string>>;

export function recordToWire(record: AuditRecord): RecordWire {
  return JSON.parse(encodeRecordLine(record)) as RecordWire;
}

export function recordFromWire(value: unknown, what: string): AuditRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LicenseError('input', `${what}: expected a record object, got ${value === null ? 'null' : typeof value}`);
  try {
    return parseRecordLine(JSON.stringify(value));
  } catch (error) {
    throw new LicenseError('input', `${what}: ${(error as Error).message}`, { cause: error });
  }
}

export function bindingFromWire(value: unknown, what: string): CardBinding {
  if (typeof value !== 'string') throw new LicenseError('input', `${what}: expected a card binding text, got ${typeof value}`);
  return parseCardBinding(value);
}
