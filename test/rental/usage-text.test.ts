// Usage record texts (patent 003 [0046]-[0047], [0049], [0056], Fig. 6): the patent's record strings parsed and
// formatted back, every event's round trip, local times, the texts of other programs passed over, a table of
// malformed texts of this program, the selection of a program's own records, and fast-check fuzz: parsing only ever
// returns a record, returns undefined or throws RentalError.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { thrown } from '../support/index.js';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors/index.js';
import { RentalError } from '../../src/rental/rental-error.js';
import {
  cardKeyDigest, formatLocalTime, formatUsageText, localTime, minuteOfDay, parseLocalTime, parseUsageText, selectOwnRecords, usageBinding,
  type LocalTime, type UsageBinding, type UsageEntry, type UsageSummary, type UsageText,
} from '../../src/rental/usage-text.js';

/** [0056]: "9828a8c12a5873654bac684517d3afe3 denotes the message digest of a real public key". */
const DIGEST = '9828a8c12a5873654bac684517d3afe3';
const WP: UsageBinding = { program: 'WP', keyDigest: DIGEST };
const SS: UsageBinding = { program: 'SS', keyDigest: DIGEST };
const NONCE = '00112233445566778899aabbccddeeff';

const at = (text: string): LocalTime => parseLocalTime(text) ?? expect.fail(`not a time: ${text}`);
const entries = (texts: readonly string[], first = 0n): UsageEntry[] => texts.map((text, i) => ({ text, counter: first + BigInt(i) }));


function expectRental(run: () => unknown, reason: 'malformed' | 'input'): RentalError {
  const error = thrown(run);
  expect(error).toBeInstanceOf(RentalError);
  const rental = error as RentalError;
  expect(rental.reason).toBe(reason);
  expect(rental.exitCode).toBe(reason === 'input' ? ExitCode.usage : ExitCode.refusedByState);
  expect(rental.message).not.toMatch(/[\n\r\u2028\u2029]/);
  return rental;
}

describe('the patent\'s record texts', () => {
  it('[0056]: "WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3" is one 15-minute interval of WP', () => {
    const text = 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3';
    const usage = parseUsageText(text, WP);
    expect(usage).toEqual({ program: 'WP', keyDigest: DIGEST, kind: 'interval' });
    expect(formatUsageText(usage!)).toBe(text);
  });

  it('Fig. 6: of the four records WP sees its three intervals (counters 0, 2, 3) and SS its execution (counter 1)', () => {
    // Fig. 6 prints "WP, 15 minutes public key 982..." with a comma and the digest cut; [0056] spells the text out.
    const trail = entries([
      `WP 15 minutes public key ${DIGEST}`, `SS execution public key ${DIGEST}`, `WP 15 minutes public key ${DIGEST}`, `WP 15 minutes public key ${DIGEST}`,
    ]);
    expect(selectOwnRecords(trail, WP).map((record) => [record.counter, record.usage.kind])).toEqual([[0n, 'interval'], [2n, 'interval'], [3n, 'interval']]);
    expect(selectOwnRecords(trail, SS).map((record) => [record.counter, record.usage.kind])).toEqual([[1n, 'execution']]);
  });

  it('[0047]: SS logs one execution per boot; the digest printed there has 30 hex digits (garbled), so naming SS with it is malformed', () => {
    expect(parseUsageText(`SS execution public key ${DIGEST}`, SS)).toEqual({ program: 'SS', keyDigest: DIGEST, kind: 'execution' });
    expectRental(() => parseUsageText('SS execution public key 768230aac8239d9df88cfe3c7b832a', SS), 'malformed');
  });

  it('[0046]: the digest is SHA-256 of the card public key cut to 16 bytes (the length of the patent\'s digest)', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const expected = createHash('sha256').update(key).digest('hex').slice(0, 32);
    expect(cardKeyDigest(key)).toBe(expected);
    expect(usageBinding('WP', key)).toEqual({ program: 'WP', keyDigest: expected });
    expectRental(() => usageBinding('Word Processor', key), 'input');
    expectRental(() => cardKeyDigest(new Uint8Array(0)), 'input');
  });
});

describe('local times', () => {
  it('carry the wall clock and its offset; minuteOfDay is local', () => {
    const time = at('2026-11-28T21:15+01:00');
    expect(time).toEqual({ epochMinutes: Date.UTC(2026, 10, 28, 20, 15) / 60_000, offsetMinutes: 60 });
    expect(minuteOfDay(time)).toBe(21 * 60 + 15);
    expect(at('2026-11-28T20:15Z').epochMinutes).toBe(time.epochMinutes);
    expect(minuteOfDay(at('2026-11-28T15:15-05:00'))).toBe(15 * 60 + 15);
    expect(formatLocalTime(at('2026-11-28T15:15-05:30'))).toBe('2026-11-28T15:15-05:30');
    expect(formatLocalTime(localTime(new Date(Date.UTC(2026, 0, 5, 20, 0, 59)), 60))).toBe('2026-01-05T21:00+01:00');
  });

  it.each([
    ['2026-11-28T21:15+00:00', 'offset zero is Z'], ['2026-02-29T00:00Z', 'not a leap year'], ['2026-11-28T24:00Z', 'hour 24'],
    ['2026-11-28T21:15:00Z', 'seconds'], ['2026-11-28T21:15+14:01', 'offset beyond 14:00'], ['1969-12-31T23:59Z', 'before 1970'],
    ['2026-11-28 21:15Z', 'space'], ['2026-11-28t21:15z', 'lowercase'], ['2026-11-28T21:15', 'no offset'], ['+2026-11-28T21:15Z', 'sign'],
  ])('refuses %s (%s)', (text) => {
    expect(parseLocalTime(text)).toBeUndefined();
  });

  it('localTime refuses a bad date or offset', () => {
    expectRental(() => localTime(new Date(Number.NaN)), 'input');
    expectRental(() => localTime(new Date(), 15 * 60), 'input');
    expectRental(() => localTime(new Date(), 0.5), 'input');
  });
});

const SUMMARY: UsageSummary = {
  next: 42n, intervals: 23n, executions: 3n, skipped: 5n,
  minutesByHour: Array.from({ length: 24 }, (_, h) => (h === 5 ? 30n : h === 21 ? 60n : 0n)),
  lastAudit: { nonce: NONCE, at: at('2026-11-01T09:00+01:00') },
};

describe('every event round trips', () => {
  const digest = `public key ${DIGEST}`;
  const cases: [string, UsageText][] = [
    [`WP execution ${digest}`, { ...WP, kind: 'execution' }],
    [`WP units 60 at 2026-01-05T21:00+01:00 ${digest}`, { ...WP, kind: 'units', minutes: 60, at: at('2026-01-05T21:00+01:00') }],
    [`WP units 1 at 2026-01-05T05:59Z ${digest}`, { ...WP, kind: 'units', minutes: 1, at: at('2026-01-05T05:59Z') }],
    [`WP audit ${NONCE} at 2026-11-28T12:00Z ${digest}`, { ...WP, kind: 'audit', nonce: NONCE, at: at('2026-11-28T12:00Z') }],
    [`WP validated 7 ${digest}`, { ...WP, kind: 'validated', counter: 7n, summary: undefined, attestation: undefined }],
    [
      `WP validated 42 usage intervals=23;executions=3;skipped=5;h05=30;h21=60;audit=${NONCE}@2026-11-01T09:00+01:00 ${digest}`,
      { ...WP, kind: 'validated', counter: 42n, summary: SUMMARY, attestation: undefined },
    ],
    [`WP validated 7 ${digest} attest ${'ab'.repeat(64)}`, { ...WP, kind: 'validated', counter: 7n, summary: undefined, attestation: 'ab'.repeat(64) }],
    ['skipped 20 24', { kind: 'skipped', from: 20n, to: 24n }],
    [`skipped 0 ${(1n << 128n) - 1n}`, { kind: 'skipped', from: 0n, to: (1n << 128n) - 1n }],
    // A program may be called "skipped": its texts have five or more tokens, a bridge exactly three.
    [`skipped execution ${digest}`, { program: 'skipped', keyDigest: DIGEST, kind: 'execution' }],
  ];

  it.each(cases)('%s', (text, usage) => {
    const binding = 'program' in usage ? { program: usage.program, keyDigest: usage.keyDigest } : WP;
    expect(parseUsageText(text, binding)).toEqual(usage);
    expect(formatUsageText(usage)).toBe(text);
  });

  it('a bridge record is read the same by every program', () => {
    expect(parseUsageText('skipped 20 24', SS)).toEqual({ kind: 'skipped', from: 20n, to: 24n });
  });

  it('format refuses what the grammar cannot carry', () => {
    expectRental(() => formatUsageText({ ...WP, kind: 'units', minutes: 61, at: at('2026-01-05T21:00Z') }), 'input');
    expectRental(() => formatUsageText({ ...WP, kind: 'units', minutes: 0, at: at('2026-01-05T21:00Z') }), 'input');
    expectRental(() => formatUsageText({ ...WP, kind: 'audit', nonce: 'abc', at: at('2026-01-05T21:00Z') }), 'input');
    expectRental(() => formatUsageText({ ...WP, kind: 'validated', counter: 41n, summary: SUMMARY, attestation: undefined }), 'input');
    expectRental(() => formatUsageText({ ...WP, kind: 'validated', counter: 1n << 128n, summary: undefined, attestation: undefined }), 'input');
    expectRental(() => formatUsageText({ kind: 'skipped', from: 5n, to: 4n }), 'input');
    expectRental(() => formatUsageText({ program: 'W P', keyDigest: DIGEST, kind: 'execution' }), 'input');
    expectRental(() => formatUsageText({ ...WP, kind: 'bogus' } as unknown as UsageText), 'input');
  });
});

describe('the texts of other programs and kinds are passed over ([0049])', () => {
  it.each([
    `SS execution public key ${DIGEST}`, `WPX 15 minutes public key ${DIGEST}`, '42', '', ' WP 15 minutes', `wp 15 minutes public key ${DIGEST}`,
    `Word Process WP with public key ${DIGEST} executed for 15 minutes`, `WP\t15 minutes public key ${DIGEST}`, 'skipped 1', 'skipped 1 2 3',
  ])('%j', (text) => {
    expect(parseUsageText(text, WP)).toBeUndefined();
  });
});

describe('a malformed text of this program is refused (RentalError malformed, exit 3)', () => {
  const key = `public key ${DIGEST}`;
  it.each([
    [`WP 16 minutes ${key}`, 'unknown event'], [`WP 15 minutes`, 'no key'], [`WP 15 minutes public key`, 'no digest'],
    [`WP 15 minutes public key ${DIGEST.toUpperCase()}`, 'uppercase digest'], [`WP 15 minutes public key ${DIGEST}00`, 'long digest'],
    [`WP 15 minutes public key ${'0'.repeat(32)}`, 'another card\'s key'], [`WP  15 minutes ${key}`, 'two spaces'], [`WP 15 minutes ${key} `, 'trailing space'],
    [`WP execution now ${key}`, 'extra word'], [`WP units 0 at 2026-01-05T21:00Z ${key}`, 'zero minutes'], [`WP units 61 at 2026-01-05T21:00Z ${key}`, '61 minutes'],
    [`WP units 05 at 2026-01-05T21:00Z ${key}`, 'leading zero'], [`WP units 60 at 2026-02-30T21:00Z ${key}`, 'no such date'], [`WP units 60 2026-01-05T21:00Z ${key}`, 'no at'],
    [`WP audit ${NONCE.slice(2)} at 2026-01-05T21:00Z ${key}`, '15-byte nonce'], [`WP audit ${NONCE} at yesterday ${key}`, 'bad time'],
    [`WP validated 007 ${key}`, 'leading zeros'], [`WP validated ${1n << 128n} ${key}`, 'counter 2^128'], [`WP validated 7 usage ${key}`, 'usage without summary'],
    [`WP validated 7 usage intervals=1;executions=0 ${key}`, 'summary without skipped'], [`WP validated 7 usage intervals=1;executions=0;skipped=0;h24=5 ${key}`, 'hour 24'],
    [`WP validated 7 usage intervals=1;executions=0;skipped=0;h05=0 ${key}`, 'empty hour listed'], [`WP validated 7 usage intervals=1;executions=0;skipped=0;h21=1;h05=1 ${key}`, 'hours out of order'],
    [`WP validated 7 usage intervals=1;executions=0;skipped=0;audit=${NONCE}@2026-01-05T21:00Z;h05=1 ${key}`, 'audit not last'],
    [`WP execution ${key} attest ${'ab'.repeat(64)}`, 'attestation on a usage record'], [`WP validated 7 ${key} attest abcd`, 'short attestation'],
    ['skipped 9 5', 'bridge backwards'], ['skipped 01 5', 'bridge leading zero'], [`skipped 0 ${1n << 128n}`, 'bridge beyond 2^128'], ['skipped a b', 'bridge words'],
  ])('%j (%s)', (text) => {
    expectRental(() => parseUsageText(text, WP), 'malformed');
  });
});

describe('selectOwnRecords', () => {
  it('keeps the program\'s records and the bridges, in trail order', () => {
    const trail: UsageEntry[] = [
      { text: `SS execution public key ${DIGEST}`, counter: 0n }, { text: `WP execution public key ${DIGEST}`, counter: 1n }, { text: '2', counter: 2n },
      { text: 'skipped 3 4', counter: 5n }, { text: `WP validated 6 public key ${DIGEST}`, counter: 6n },
    ];
    expect(selectOwnRecords(trail, WP).map((record) => [record.counter, record.usage.kind])).toEqual([[1n, 'execution'], [5n, 'skipped'], [6n, 'validated']]);
    expect(selectOwnRecords(trail, SS).map((record) => record.counter)).toEqual([0n, 5n]);
  });

  it('refuses a validated record naming another counter and a bridge naming counters not below its own', () => {
    expectRental(() => selectOwnRecords([{ text: `WP validated 6 public key ${DIGEST}`, counter: 7n }], WP), 'malformed');
    expectRental(() => selectOwnRecords([{ text: 'skipped 3 7', counter: 7n }], WP), 'malformed');
  });

  it.each([
    ['not an array', 'WP'], ['a text that is not a string', [{ text: 1, counter: 0n }]], ['a number counter', [{ text: '', counter: 0 }]],
    ['a negative counter', [{ text: '', counter: -1n }]], ['a counter of 2^128', [{ text: '', counter: 1n << 128n }]], ['null', [null]],
  ])('refuses %s (exit 2)', (_, value) => {
    expectRental(() => selectOwnRecords(value as unknown as UsageEntry[], WP), 'input');
  });

  it('refuses a bad binding (exit 2)', () => {
    expectRental(() => parseUsageText('', { program: '', keyDigest: DIGEST }), 'input');
    expectRental(() => parseUsageText('', { program: 'WP', keyDigest: 'xyz' }), 'input');
    expectRental(() => parseUsageText(7 as unknown as string, WP), 'input');
  });
});

describe('fuzz', () => {
  const readsOrRefuses = (text: string) => {
    try {
      const usage = parseUsageText(text, WP);
      if (usage !== undefined) expect(formatUsageText(usage)).toBe(text);
    } catch (error) {
      expect(error).toBeInstanceOf(RentalError);
      expect((error as RentalError).reason).toBe('malformed');
      expect((error as RentalError).message).not.toMatch(/[\n\r\u2028\u2029]/);
    }
  };

  it('any string: a record that formats back to the same text, undefined, or RentalError malformed', () => {
    const anyUnit = fc.nat(0xffff).map((code) => String.fromCharCode(code));
    fc.assert(fc.property(fc.string({ unit: anyUnit, maxLength: 200 }), (text) => readsOrRefuses(text)), { numRuns: 1000 });
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => readsOrRefuses(`WP ${text}`)), { numRuns: 1000 });
  });

  it('token soup after the program name', () => {
    const token = fc.constantFrom(
      '15', 'minutes', 'execution', 'units', 'audit', 'validated', 'usage', 'at', 'public', 'key', 'attest', DIGEST, NONCE, '60', '0', '7', '2026-01-05T21:00Z',
      'intervals=1;executions=0;skipped=0', 'h05=1', ';', '', 'skipped', 'ab'.repeat(64),
    );
    fc.assert(fc.property(fc.array(token, { maxLength: 9 }), (tokens) => readsOrRefuses(['WP', ...tokens].join(' '))), { numRuns: 2000 });
  });

  it('every record formats to a text that parses back to it', () => {
    const time = fc.record({ epochMinutes: fc.integer({ min: 1440, max: 4_000_000_000 }), offsetMinutes: fc.integer({ min: -840, max: 840 }) });
    const count = fc.bigInt(0n, 10n ** 20n);
    const summary = (next: bigint) => fc.record({
      next: fc.constant(next), intervals: count, executions: count, skipped: count, minutesByHour: fc.array(fc.bigInt(0n, 10n ** 6n), { minLength: 24, maxLength: 24 }),
      lastAudit: fc.option(fc.record({ nonce: fc.constant(NONCE), at: time }), { nil: undefined }),
    });
    const usage: fc.Arbitrary<UsageText> = fc.oneof(
      fc.constant({ ...WP, kind: 'interval' as const }),
      fc.constant({ ...WP, kind: 'execution' as const }),
      fc.record({ minutes: fc.integer({ min: 1, max: 60 }), at: time }).map((u) => ({ ...WP, kind: 'units' as const, ...u })),
      time.map((t) => ({ ...WP, kind: 'audit' as const, nonce: NONCE, at: t })),
      fc.bigInt(0n, (1n << 128n) - 1n).chain((counter) => fc.record({ summary: fc.option(summary(counter), { nil: undefined }), attestation: fc.option(fc.constant('cd'.repeat(64)), { nil: undefined }) })
        .map((u) => ({ ...WP, kind: 'validated' as const, counter, ...u }))),
      fc.tuple(fc.bigInt(0n, (1n << 128n) - 1n), fc.bigInt(0n, (1n << 128n) - 1n)).map(([a, b]) => ({ kind: 'skipped' as const, from: a < b ? a : b, to: a < b ? b : a })),
    );
    fc.assert(fc.property(usage, (value) => {
      const text = formatUsageText(value);
      expect(parseUsageText(text, WP)).toEqual(value);
    }), { numRuns: 1000 });
  });
});
