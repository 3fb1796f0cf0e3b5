// The replacement container of a restore job (src/license/hub/hub-target.ts; Wibu 000 P002 §2.1 "the new (typically
// empty) hardware device"): the target info file's JSON, checked strictly — a table of valid and malformed targets, and
// a fuzz that never throws anything but LicenseError 'input'.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { LicenseError } from '../../../src/license/index.js';
import { checkSerial, parseHubTarget } from '../../../src/license/hub/index.js';
import { thrown } from '../../support/index.js';

const KEY = 'a1'.repeat(32);
const LICENSOR = 'b2'.repeat(32);
const valid = { serial: 'NEW-1', cardPublicKey: KEY, firmUpdateCounters: { [LICENSOR]: 4, ['c3'.repeat(32)]: null } };

function reason(run: () => unknown): string | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('target info', () => {
  it('parses serial, card key and the firm update counter of each licensor (null: no firm item yet)', () => {
    const target = parseHubTarget(valid);
    expect(target.serial).toBe('NEW-1');
    expect(toHex(target.cardPublicKey)).toBe(KEY);
    expect([...target.firmUpdateCounters]).toEqual([[LICENSOR, 4], ['c3'.repeat(32), null]]);
    expect(parseHubTarget({ ...valid, firmUpdateCounters: {} }).firmUpdateCounters.size).toBe(0);
  });

  const MALFORMED: Array<[string, unknown, string]> = [
    ['not an object', [], 'expected an object, got an array'],
    ['no serial', { cardPublicKey: KEY, firmUpdateCounters: {} }, 'missing field serial'],
    ['an unknown field', { ...valid, extra: 1 }, 'unknown field "extra"'],
    ['an empty serial', { ...valid, serial: '' }, 'expected a serial of 1..128 UTF-8 bytes'],
    ['a serial of 129 bytes', { ...valid, serial: 'é'.repeat(64) + 'x' }, 'expected a serial of 1..128 UTF-8 bytes'],
    ['a serial with a line break', { ...valid, serial: 'A\nB' }, 'without control characters'],
    ['a card key in capitals', { ...valid, cardPublicKey: KEY.toUpperCase() }, 'expected 64 lowercase hex digits'],
    ['counters as an array', { ...valid, firmUpdateCounters: [1] }, 'expected an object, got an array'],
    ['a counter keyed by a short key', { ...valid, firmUpdateCounters: { abcd: 1 } }, 'expected 64 lowercase hex digits'],
    ['a fractional counter', { ...valid, firmUpdateCounters: { [LICENSOR]: 1.5 } }, 'expected a whole number in 0..4294967296 or null'],
    ['a counter over 2^32', { ...valid, firmUpdateCounters: { [LICENSOR]: 2 ** 32 + 1 } }, 'expected a whole number in 0..4294967296 or null'],
    ['a counter as text', { ...valid, firmUpdateCounters: { [LICENSOR]: '4' } }, 'expected a whole number in 0..4294967296 or null'],
  ];
  it.each(MALFORMED)('refuses %s', (_what, value, message) => {
    expect(reason(() => parseHubTarget(value))).toBe('input');
    expect((thrown(() => parseHubTarget(value)) as Error).message).toContain(message);
  });

  it('refuses a target of more licensors than a container holds', () => {
    const many = Object.fromEntries(Array.from({ length: 501 }, (_, i) => [i.toString(16).padStart(64, '0'), 0]));
    expect(reason(() => parseHubTarget({ ...valid, firmUpdateCounters: many }))).toBe('input');
  });

  it('never throws anything but LicenseError input on any JSON value (fuzz)', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      const outcome = reason(() => parseHubTarget(value));
      expect(outcome === undefined || outcome === 'input').toBe(true);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.record({ serial: fc.string(), cardPublicKey: fc.stringMatching(/^[0-9a-f]{0,66}$/), firmUpdateCounters: fc.dictionary(fc.string(), fc.jsonValue()) }), (value) => {
      const outcome = reason(() => parseHubTarget(value));
      expect(outcome === undefined || outcome === 'input').toBe(true);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.anything(), (value) => {
      expect([undefined, 'input']).toContain(reason(() => checkSerial(value, 'serial')));
    }), { numRuns: 200 });
  });
});
