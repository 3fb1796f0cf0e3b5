// Rental thresholds (patent 003 [0002], [0049], [0094], [0103]-[0104]): the spec language (canonical forms,
// precedence, a table of bad specs, fast-check fuzz: parsing only returns or throws RentalError input, exit 2), and
// the patent's examples: 6 hours as 24 fifteen-minute intervals, a 5-hour rental with 3 hours used, 1000 units priced
// by night and day, boolean combinations, the vendor's periodic audit, skipped counter values charged worst-case, and
// evaluation continued from the summary a validator record carries.
import fc from 'fast-check';
import { thrown } from '../support/index.js';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors/index.js';
import { RentalError } from '../../src/rental/rental-error.js';
import {
  evaluateSummary, evaluateThreshold, formatThreshold, formatUnits, MAX_SPEC_LENGTH, parseThreshold, summariseUsage,
  type CountUsage, type Threshold, type UnitsUsage, type AuditUsage,
} from '../../src/rental/index.js';
import { formatUsageText, parseLocalTime, parseUsageText, type LocalTime, type UsageBinding, type UsageEntry } from '../../src/rental/usage-text.js';

const DIGEST = '9828a8c12a5873654bac684517d3afe3';
const WP: UsageBinding = { program: 'WP', keyDigest: DIGEST };
const SS: UsageBinding = { program: 'SS', keyDigest: DIGEST };
const NONCE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const WP_INTERVAL = `WP 15 minutes public key ${DIGEST}`;
const WP_EXECUTION = `WP execution public key ${DIGEST}`;
const SS_EXECUTION = `SS execution public key ${DIGEST}`;
const OTHER_INTERVAL = `Other 15 minutes public key ${DIGEST}`;

const at = (text: string): LocalTime => parseLocalTime(text) ?? expect.fail(`not a time: ${text}`);
const units = (minutes: number, time: string) => formatUsageText({ ...WP, kind: 'units', minutes, at: at(time) });
const repeat = (text: string, n: number): string[] => Array.from({ length: n }, () => text);
const trail = (texts: readonly string[], first = 0n): UsageEntry[] => texts.map((text, i) => ({ text, counter: first + BigInt(i) }));
const limit = <T>(evaluation: { usage: { limits: readonly unknown[] } }, index = 0) => evaluation.usage.limits[index] as T;


describe('spec language', () => {
  it.each([
    ['intervals<=24', 'intervals<=24'],
    ['  intervals <= 24 ', 'intervals<=24'],
    ['executions<=100', 'executions<=100'],
    ['units<=1000 at 20:00-06:00 1/h else 2/h', 'units<=1000 at 20:00-06:00 1/h else 2/h'],
    ['units <= 1000 2/h', 'units<=1000 2/h'],
    ['units<=10 at 00:00-06:00 0/h at 18:00-22:00 3/h else 1/h', 'units<=10 at 00:00-06:00 0/h at 18:00-22:00 3/h else 1/h'],
    ['audit every 30d', 'audit every 30d'],
    ['audit every 48h', 'audit every 2d'],
    ['audit every 90m', 'audit every 90m'],
    ['intervals<=24 and executions<=100', 'intervals<=24 and executions<=100'],
    ['(intervals<=1 and executions<=2) and units<=3 1/h', 'intervals<=1 and executions<=2 and units<=3 1/h'],
    ['intervals<=1 or executions<=2 and not units<=3 1/h', 'intervals<=1 or executions<=2 and not units<=3 1/h'],
    ['(intervals<=1 or executions<=2) and audit every 1d', '(intervals<=1 or executions<=2) and audit every 1d'],
    ['not (intervals<=1 and executions<=2)', 'not (intervals<=1 and executions<=2)'],
    ['not not intervals<=1', 'not not intervals<=1'],
    [`intervals<=${(1n << 128n) - 1n}`, `intervals<=${(1n << 128n) - 1n}`],
  ])('%j reads as %j', (spec, canonical) => {
    const threshold = parseThreshold(spec);
    expect(formatThreshold(threshold)).toBe(canonical);
    expect(parseThreshold(canonical)).toEqual(threshold);
  });

  it('"not" binds tighter than "and", "and" tighter than "or"; and/or are flattened', () => {
    expect(parseThreshold('intervals<=1 or executions<=2 and not intervals<=3')).toEqual({
      kind: 'or', terms: [
        { kind: 'intervals', limit: 1n },
        { kind: 'and', terms: [{ kind: 'executions', limit: 2n }, { kind: 'not', term: { kind: 'intervals', limit: 3n } }] },
      ],
    });
    expect(parseThreshold('units<=1000 at 20:00-06:00 1/h else 2/h')).toEqual({
      kind: 'units', limit: 1000n, rates: { windows: [{ from: 20, to: 6, perHour: 1n }], otherwise: 2n },
    });
    expect(parseThreshold('audit every 30d')).toEqual({ kind: 'audit', everyMinutes: 30 * 1440 });
  });

  it.each([
    ['', 'column 1'], ['intervals', 'expected "<="'], ['intervals<24', 'column 10'], ['intervals<=024', 'without leading zeros'],
    ['intervals<=-1', 'column 12'], [`intervals<=${1n << 128n}`, 'a number up to'], ['intervals<=24h', 'a limit'], ['intervals<=1000at', 'separated by spaces'],
    ['units<=10', 'a rate'], ['units<=10 2', 'a rate'], ['units<=10 1000000001/h', 'a number up to'], ['units<=10 else 2/h', 'a rate'],
    ['units<=10 at 20:30-06:00 1/h else 2/h', 'whole local hours'], ['units<=10 at 24:00-06:00 1/h else 2/h', 'whole local hours'],
    ['units<=10 at 20:00-20:00 1/h else 2/h', 'end differs'], ['units<=10 at 20:00-06:00 1/h at 05:00-07:00 3/h else 2/h', 'does not overlap 20:00-06:00'],
    ['units<=10 at 20:00-06:00 1/h', '"at" or "else"'], ['audit', '"every"'], ['audit every 0d', '1m to 3660d'], ['audit every 3661d', '1m to 3660d'],
    ['audit every 30', 'a period'], ['(intervals<=1', '")"'], ['intervals<=1)', 'the end of the spec'], ['intervals<=1 and', 'got the end'],
    ['INTERVALS<=1', 'column 1'], ['intervals<=1 xor executions<=2', 'got "xor"'], ['intervals<=1 and or executions<=2', 'got "or"'],
    [`${'not '.repeat(33)}intervals<=1`, 'at most 32 levels'], [`${'('.repeat(33)}intervals<=1${')'.repeat(33)}`, 'at most 32 levels'],
    ['x'.repeat(MAX_SPEC_LENGTH + 1), 'at most 500 characters'], ['intervals<=1\nor executions<=2', '\\u000a'], ['intervals\u2028<=1', '\\u2028'],
  ])('%j is refused: %s', (spec, fragment) => {
    const error = thrown(() => parseThreshold(spec));
    expect(error).toBeInstanceOf(RentalError);
    expect((error as RentalError).reason).toBe('input');
    expect((error as RentalError).exitCode).toBe(ExitCode.usage);
    expect((error as RentalError).message).toContain(fragment);
    expect((error as RentalError).message).not.toMatch(/[\n\r\u2028\u2029]/);
  });

  it('refuses a spec that is not a string and a hand-built threshold the grammar cannot carry', () => {
    for (const value of [undefined, null, 7, {}]) expect((thrown(() => parseThreshold(value as unknown as string)) as RentalError).exitCode).toBe(ExitCode.usage);
    for (const threshold of [
      { kind: 'intervals', limit: -1n }, { kind: 'executions', limit: 1 }, { kind: 'and', terms: [{ kind: 'intervals', limit: 1n }] }, { kind: 'xor' },
      { kind: 'units', limit: 1n, rates: { windows: [{ from: 6, to: 6, perHour: 1n }], otherwise: 1n } }, { kind: 'audit', everyMinutes: 0 },
    ]) {
      expect((thrown(() => formatThreshold(threshold as Threshold)) as RentalError).reason).toBe('input');
    }
  });

  const refusesCleanly = (spec: string) => {
    try {
      const threshold = parseThreshold(spec);
      expect(parseThreshold(formatThreshold(threshold))).toEqual(threshold);
    } catch (error) {
      expect(error).toBeInstanceOf(RentalError);
      expect((error as RentalError).reason).toBe('input');
      expect((error as RentalError).exitCode).toBe(ExitCode.usage);
      expect((error as RentalError).message).not.toMatch(/[\n\r\u2028\u2029]/);
    }
  };

  it('fuzz: any string parses to a threshold whose canonical form reads back the same, or throws RentalError input', () => {
    const anyUnit = fc.nat(0xffff).map((code) => String.fromCharCode(code));
    fc.assert(fc.property(fc.string({ unit: anyUnit, maxLength: 120 }), refusesCleanly), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ maxLength: 600 }), refusesCleanly), { numRuns: 500 });
  });

  it('fuzz: token soup', () => {
    const token = fc.constantFrom(
      'intervals', 'executions', 'units', 'audit', 'every', 'at', 'else', 'and', 'or', 'not', '(', ')', '<=', '<', '=', '24', '0', '007', '-1',
      '20:00-06:00', '20:30-06:00', '06:00-20:00', '2/h', '1/h', '30d', '90m', '1000', 'x', '',
    );
    const separator = fc.constantFrom(' ', '', '  ');
    fc.assert(fc.property(fc.array(fc.tuple(token, separator), { maxLength: 14 }), (parts) => refusesCleanly(parts.map(([t, s]) => t + s).join(''))), { numRuns: 3000 });
  });

  it('fuzz: every threshold formats to a spec that parses back to it (and/or flattened)', () => {
    const hours = fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { maxLength: 6 }).map((list) => {
      const sorted = [...list].sort((a, b) => a - b);
      return Array.from({ length: Math.floor(sorted.length / 2) }, (_, i) => [sorted[2 * i]!, sorted[2 * i + 1]!] as const);
    });
    const rate = fc.bigInt(0n, 10n ** 9n);
    const leaf: fc.Arbitrary<Threshold> = fc.oneof(
      fc.record({ kind: fc.constantFrom('intervals' as const, 'executions' as const), limit: fc.bigInt(0n, (1n << 128n) - 1n) }),
      fc.record({
        limit: fc.bigInt(0n, 10n ** 6n),
        rates: fc.record({ windows: hours.chain((pairs) => fc.tuple(...pairs.map(([from, to]) => rate.map((perHour) => ({ from, to, perHour }))))), otherwise: rate }),
      }).map((u) => ({ kind: 'units' as const, ...u })),
      fc.integer({ min: 1, max: 3660 * 1440 }).map((everyMinutes) => ({ kind: 'audit' as const, everyMinutes })),
    );
    const { tree } = fc.letrec<{ tree: Threshold }>((tie) => ({
      tree: fc.oneof(
        { maxDepth: 4, depthIdentifier: 'threshold' },
        leaf,
        fc.record({ kind: fc.constantFrom('and' as const, 'or' as const), terms: fc.array(tie('tree'), { minLength: 2, maxLength: 3 }) }),
        tie('tree').map((term) => ({ kind: 'not' as const, term })),
      ),
    }));
    const flatten = (t: Threshold): Threshold => {
      if (t.kind === 'not') return { kind: 'not', term: flatten(t.term) };
      if (t.kind !== 'and' && t.kind !== 'or') return t;
      return { kind: t.kind, terms: t.terms.map(flatten).flatMap((term) => (term.kind === t.kind ? term.terms : [term])) };
    };
    fc.assert(fc.property(tree, (threshold) => {
      const spec = formatThreshold(threshold);
      fc.pre(spec.length <= MAX_SPEC_LENGTH);
      expect(parseThreshold(spec)).toEqual(flatten(threshold));
    }), { numRuns: 1000 });
  });
});

describe('[0049]: six hours are 24 fifteen-minute intervals', () => {
  const SIX_HOURS = 'intervals<=24';
  const others = [SS_EXECUTION, OTHER_INTERVAL, '17', SS_EXECUTION];

  it('with 23 of its interval records among other programs\' records WP runs on; with 24 it refuses', () => {
    // "If application 104 locates fewer than 24 of its log records denoting 15 minute intervals, then application 104
    // continues executing. Otherwise, application 104 does not permit itself to be rented."
    const with23 = trail([...others, ...repeat(WP_INTERVAL, 23), ...others]);
    const run = evaluateThreshold(SIX_HOURS, with23, { binding: WP });
    expect(run.allowed).toBe(true);
    expect(limit<CountUsage>(run)).toMatchObject({ kind: 'intervals', recorded: 23n, charged: 0n, used: 23n, left: 1n, within: true });
    expect(run.reason).toBe('allowed by intervals<=24: intervals 23 of 24 used, 1 left (15 minutes)');

    const with24 = trail([...others, ...repeat(WP_INTERVAL, 24), ...others]);
    const stop = evaluateThreshold(SIX_HOURS, with24, { binding: WP });
    expect(stop.allowed).toBe(false);
    expect(limit<CountUsage>(stop)).toMatchObject({ used: 24n, left: 0n, within: false });
    expect(stop.reason).toBe('refused by intervals<=24: intervals 24 of 24 used, 0 left (0 minutes)');
  });

  it('other programs\' records do not count, and WP at its threshold does not affect SS', () => {
    const entries = trail([...repeat(OTHER_INTERVAL, 30), ...repeat(SS_EXECUTION, 30), ...repeat(WP_INTERVAL, 24)]);
    expect(evaluateThreshold(SIX_HOURS, entries, { binding: WP }).allowed).toBe(false);
    expect(evaluateThreshold(SIX_HOURS, entries, { binding: SS }).allowed).toBe(true);
    expect(evaluateThreshold('executions<=100', entries, { binding: SS }).reason).toBe('allowed by executions<=100: executions 30 of 100 used, 70 left');
    // A record of WP bound to another card's key is not WP's usage but a malformed record: refused, not ignored.
    const foreign = `WP 15 minutes public key ${'0'.repeat(32)}`;
    expect((thrown(() => evaluateThreshold(SIX_HOURS, trail([foreign]), { binding: WP })) as RentalError).reason).toBe('malformed');
  });
});

describe('[0002]: a five-hour rental, one hour used on the first day and two on the second', () => {
  const FIVE_HOURS = 'intervals<=20';
  const day1 = repeat(WP_INTERVAL, 4);
  const day2 = repeat(WP_INTERVAL, 8);

  it('shows one hour after the first day, three after the second, and leaves two hours', () => {
    const first = evaluateThreshold(FIVE_HOURS, trail(day1), { binding: WP });
    expect(limit<CountUsage>(first).used * 15n).toBe(60n);
    const second = evaluateThreshold(FIVE_HOURS, trail([...day1, SS_EXECUTION, ...day2]), { binding: WP });
    expect(second.allowed).toBe(true);
    expect(limit<CountUsage>(second).used * 15n).toBe(180n);
    expect(limit<CountUsage>(second).left * 15n).toBe(120n);
  });

  it('[0094]: continued from the summary a validator record carries, without the first day\'s records', () => {
    const summary = summariseUsage(trail(day1), WP);
    expect(summary).toMatchObject({ next: 4n, intervals: 4n, executions: 0n, skipped: 0n });
    // The validator record at counter 4 carries the summary of counters 0..3.
    const validated = formatUsageText({ ...WP, kind: 'validated', counter: 4n, summary, attestation: undefined });
    expect(validated).toBe(`WP validated 4 usage intervals=4;executions=0;skipped=0 public key ${DIGEST}`);
    const carried = parseUsageText(validated, WP);
    if (carried?.kind !== 'validated' || carried.summary === undefined) return expect.fail('expected a validated record with a summary');
    const newer = trail([validated, ...day2], 4n);
    const resumed = evaluateThreshold(FIVE_HOURS, newer, { binding: WP, base: carried.summary });
    const whole = evaluateThreshold(FIVE_HOURS, trail([...day1, validated, ...day2]), { binding: WP });
    expect(resumed.usage.limits).toEqual(whole.usage.limits);
    expect(resumed.usage.summary).toEqual(whole.usage.summary);
    expect(limit<CountUsage>(resumed).left).toBe(8n);
  });

  it('"Another example threshold is the total amount of times that the software may execute"', () => {
    expect(evaluateThreshold('executions<=3', trail(repeat(WP_EXECUTION, 2)), { binding: WP }).allowed).toBe(true);
    expect(evaluateThreshold('executions<=3', trail(repeat(WP_EXECUTION, 3)), { binding: WP }).allowed).toBe(false);
  });
});

describe('[0103]: blocks of 1000 units, one per night hour (20:00 to 06:00), two per other hour', () => {
  // The paragraph's arithmetic holds: 1000 units buy 1000 night hours at 1 unit or 500 day hours at 2 units.
  const RENTAL = 'units<=1000 at 20:00-06:00 1/h else 2/h';
  const NIGHT = units(60, '2026-01-05T21:00+01:00');
  const DAY = units(60, '2026-01-05T10:00+01:00');
  const used = (texts: string[]) => {
    const result = evaluateThreshold(RENTAL, trail(texts), { binding: WP });
    return { allowed: result.allowed, used: limit<UnitsUsage>(result).used, left: limit<UnitsUsage>(result).left };
  };

  it('1000 nighttime hours', () => {
    expect(used(repeat(NIGHT, 999))).toEqual({ allowed: true, used: '999', left: '1' });
    expect(used(repeat(NIGHT, 1000))).toEqual({ allowed: false, used: '1000', left: '0' });
  });

  it('500 daytime hours', () => {
    expect(used(repeat(DAY, 499))).toEqual({ allowed: true, used: '998', left: '2' });
    expect(used(repeat(DAY, 500))).toEqual({ allowed: false, used: '1000', left: '0' });
  });

  it('a calculated combination: 600 night hours and 200 day hours use the 1000 units', () => {
    expect(used([...repeat(NIGHT, 600), ...repeat(DAY, 199)])).toEqual({ allowed: true, used: '998', left: '2' });
    expect(used([...repeat(NIGHT, 600), ...repeat(DAY, 200)])).toEqual({ allowed: false, used: '1000', left: '0' });
  });

  it('prices each minute by its local hour: an hour from 05:30 costs 0.5 + 1 units; the boundaries are 06:00 and 20:00', () => {
    expect(used([units(60, '2026-01-05T05:30+01:00')]).used).toBe('1.5');
    expect(used([units(1, '2026-01-05T05:59+01:00'), units(1, '2026-01-05T06:00+01:00')]).used).toBe('0.05');
    expect(used([units(15, '2026-01-05T19:50+01:00')]).used).toBe('5/12');
    expect(used([units(60, '2026-01-05T23:30+01:00')]).used).toBe('1');
    // One instant, two wall clocks: 21:30 in Berlin is night, 15:30 in New York is day.
    expect(used([units(60, '2026-01-05T21:30+01:00')]).used).toBe('1');
    expect(used([units(60, '2026-01-05T15:30-05:00')]).used).toBe('2');
  });

  it('formatUnits is exact', () => {
    expect([0n, 60n, 90n, 63n, 20n, 80n, 7n, 60_000n].map(formatUnits)).toEqual(['0', '1', '1.5', '1.05', '1/3', '1 1/3', '7/60', '1000']);
  });
});

describe('[0104]: boolean combinations of several parameters', () => {
  const entries = trail([...repeat(WP_INTERVAL, 24), ...repeat(WP_EXECUTION, 5)]);
  it.each([
    ['intervals<=24 and executions<=100', false], ['intervals<=24 or executions<=100', true], ['intervals<=25 and executions<=6', true],
    ['not intervals<=24', true], ['not executions<=100', false], ['(intervals<=24 or executions<=5) and executions<=100', false],
    ['intervals<=24 or executions<=5 or units<=1 1/h', true],
  ])('%s → %s', (spec, allowed) => {
    const result = evaluateThreshold(spec, entries, { binding: WP });
    expect(result.allowed).toBe(allowed);
    expect(result.reason.startsWith(`${allowed ? 'allowed' : 'refused'} by ${formatThreshold(parseThreshold(spec))}: `)).toBe(true);
  });

  it('reports every limit, in spec order', () => {
    const result = evaluateThreshold('intervals<=24 or executions<=100', entries, { binding: WP });
    expect(result.usage.limits.map((l) => [l.spec, l.within])).toEqual([['intervals<=24', false], ['executions<=100', true]]);
    expect(result.reason).toBe('allowed by intervals<=24 or executions<=100: intervals 24 of 24 used, 0 left (0 minutes); executions 5 of 100 used, 95 left');
  });
});

describe('[0041], [0104]: no threshold, a periodic audit by the vendor', () => {
  const AUDIT = 'audit every 30d';
  const audit = formatUsageText({ ...WP, kind: 'audit', nonce: NONCE, at: at('2026-01-01T09:00+01:00') });

  it('is always allowed, and says when the vendor\'s nonce is due again', () => {
    const entries = trail([...repeat(WP_INTERVAL, 5000), audit]);
    const soon = evaluateThreshold(AUDIT, entries, { binding: WP, now: new Date('2026-01-20T00:00Z') });
    expect(soon.allowed).toBe(true);
    expect(limit<AuditUsage>(soon)).toMatchObject({ due: false, last: { nonce: NONCE }, dueAt: at('2026-01-31T09:00+01:00') });
    expect(soon.reason).toBe('allowed by audit every 30d: audit next due 2026-01-31T09:00+01:00');
    const late = evaluateThreshold(AUDIT, entries, { binding: WP, now: new Date('2026-01-31T08:00Z') });
    expect(late.allowed).toBe(true);
    expect(late.reason).toBe('allowed by audit every 30d: audit due since 2026-01-31T09:00+01:00');
  });

  it('without an audit record it is due at once, or a period after auditSince (the keyfile\'s issue time)', () => {
    expect(evaluateThreshold(AUDIT, [], { binding: WP }).reason).toBe('allowed by audit every 30d: audit due (no audit record yet)');
    const since = evaluateThreshold(AUDIT, [], { binding: WP, auditSince: new Date('2026-01-01T00:00Z'), now: new Date('2026-01-02T00:00Z') });
    expect(limit<AuditUsage>(since)).toMatchObject({ due: false, last: undefined, dueAt: at('2026-01-31T00:00Z') });
  });

  it('the newest audit record counts; combined with a limit, only the limit can refuse', () => {
    const newer = formatUsageText({ ...WP, kind: 'audit', nonce: 'ff'.repeat(16), at: at('2026-02-01T00:00Z') });
    const entries = trail([audit, WP_EXECUTION, newer, WP_EXECUTION]);
    const result = evaluateThreshold('executions<=2 and audit every 30d', entries, { binding: WP, now: new Date('2026-02-02T00:00Z') });
    expect(result.allowed).toBe(false);
    expect(limit<AuditUsage>(result, 1)).toMatchObject({ due: false, last: { nonce: 'ff'.repeat(16) } });
    expect(evaluateThreshold('not audit every 1d', entries, { binding: WP }).allowed).toBe(false);
  });
});

describe('skipped counter values are charged worst-case (DESIGN.md "Counters that never roll back")', () => {
  // WP's intervals at counters 0..19; the client crashed after signing 20..24 and the bridge at the floor, 25, names them.
  const base = repeat(WP_INTERVAL, 20);
  const bridged = (to: bigint): UsageEntry[] => [...trail(base), { text: `skipped 20 ${to}`, counter: to + 1n }];

  it('each skipped value is one more record of each limit: 20 intervals and 5 skipped values exceed 24', () => {
    const result = evaluateThreshold('intervals<=24', bridged(24n), { binding: WP });
    expect(result.allowed).toBe(false);
    expect(limit<CountUsage>(result)).toMatchObject({ recorded: 20n, charged: 5n, used: 25n });
    expect(result.reason).toBe('refused by intervals<=24: intervals 25 of 24 used, 0 left (0 minutes) (5 charged for skipped counter values)');
    expect(evaluateThreshold('intervals<=24', bridged(22n), { binding: WP }).allowed).toBe(true);
    // Every program of the trail is charged: the skipped values may have been anyone's.
    expect(limit<CountUsage>(evaluateThreshold('executions<=100', bridged(24n), { binding: SS }))).toMatchObject({ recorded: 0n, charged: 5n });
  });

  it('a units limit is charged 60 minutes at its highest rate per skipped value', () => {
    const result = evaluateThreshold('units<=1000 at 20:00-06:00 1/h else 2/h', bridged(24n), { binding: WP });
    expect(limit<UnitsUsage>(result)).toMatchObject({ recordedUnitMinutes: 0n, chargedUnitMinutes: 5n * 60n * 2n, used: '10', left: '990' });
  });

  it('a bridge over counters the trail holds charges nothing; overlapping bridges charge each value once', () => {
    const forged = [...trail(base), { text: 'skipped 0 19', counter: 20n }];
    expect(limit<CountUsage>(evaluateThreshold('intervals<=24', forged, { binding: WP })).charged).toBe(0n);
    // Holes 20..24 and 26..29, bridged at 25 and (again from 22) at 30: 9 values.
    const overlapping = [...trail(base), { text: 'skipped 20 24', counter: 25n }, { text: 'skipped 22 29', counter: 30n }];
    expect(summariseUsage(overlapping, WP).skipped).toBe(9n);
  });

  it('values before the start (the keyfile offset, or a summary\'s end) are not charged', () => {
    const late = [{ text: WP_INTERVAL, counter: 50n }, { text: 'skipped 40 54', counter: 55n }];
    expect(summariseUsage(late, WP, { from: 50n }).skipped).toBe(4n);
    expect(summariseUsage(late, WP).skipped).toBe(4n);
  });

  it('under "not" a charge would favour the customer, so there it is 0', () => {
    const entries = [...trail(repeat(WP_EXECUTION, 2)), { text: 'skipped 2 6', counter: 7n }];
    const result = evaluateThreshold('not executions<=3', entries, { binding: WP });
    expect(limit<CountUsage>(result)).toMatchObject({ recorded: 2n, charged: 0n, within: true });
    expect(result.allowed).toBe(false);
  });
});

describe('summaries and boundaries', () => {
  it('a summary keeps units use by local hour, so any rate table prices it', () => {
    const summary = summariseUsage(trail([units(60, '2026-01-05T05:30+01:00'), units(45, '2026-01-05T21:00Z')]), WP);
    expect(summary.minutesByHour.flatMap((m, h) => (m === 0n ? [] : [[h, m]]))).toEqual([[5, 30n], [6, 30n], [21, 45n]]);
    expect(limit<UnitsUsage>(evaluateSummary('units<=10 3/h', summary)).used).toBe('5.25');
    expect(limit<UnitsUsage>(evaluateSummary('units<=10 at 06:00-07:00 0/h else 1/h', summary)).used).toBe('1.25');
  });

  it('refuses entries out of order, below the start, and a bad base or binding (exit 2)', () => {
    const input = (run: () => unknown) => expect((thrown(run) as RentalError).reason).toBe('input');
    input(() => summariseUsage([{ text: '', counter: 2n }, { text: '', counter: 1n }], WP));
    input(() => summariseUsage([{ text: '', counter: 2n }, { text: '', counter: 2n }], WP));
    input(() => summariseUsage([{ text: '', counter: 2n }], WP, { from: 3n }));
    input(() => summariseUsage([], WP, { base: { next: 0n } as never }));
    input(() => evaluateThreshold('intervals<=1', [], { binding: { program: 'W P', keyDigest: DIGEST } }));
    input(() => evaluateThreshold('intervals<=1', [], null as never));
    input(() => evaluateSummary('intervals<=1', summariseUsage([], WP), { now: new Date(Number.NaN) }));
    expect(summariseUsage([], WP)).toEqual({ next: 0n, intervals: 0n, executions: 0n, skipped: 0n, minutesByHour: Array.from({ length: 24 }, () => 0n), lastAudit: undefined });
  });
});
