// Rental thresholds (patent 003 [0002], [0048]-[0049], [0103]-[0104]): a program's usage summed from its own records
// (from a validator record's summary on, [0094]), checked against a spec (threshold-spec.ts).
//
// Evaluation. A limit holds while what was used is below it ([0049]: "fewer than 24 ... continues executing.
// Otherwise ... does not permit itself"): check before the use the next record will describe begins. A units record
// of M minutes at local time T costs, for each minute, the rate of the local hour it falls in, per 60 minutes; its
// cost is kept exactly in unit-minutes (1/60 unit), so the last record may overshoot the limit by less than its own
// cost. `audit` always holds (the check is the vendor's, remote); it reports an audit record due once the newest
// one, or `auditSince` without one, is a period old. All leaves are evaluated, for the report.
//
// Skipped counter values (DESIGN.md "Counters that never roll back": charged as worst-case usage). A skipped value
// is a counter value that a `skipped FROM TO` bridge names, that lies at or after the summary's start, and that no
// entry carries (so a forged bridge over existing records charges nothing, and overlapping bridges charge once).
// Which record a skipped value was, and whose, is unknown, so each one is charged to every limit as one record of
// that limit's most expensive kind: +1 interval, +1 execution, +60 minutes at the units limit's highest rate. Under
// an odd number of `not`s a charge would favour the customer, so there it is 0. A spec in which every limit is
// monotone this way allows only what every possible use of the skipped values would allow (it may refuse more).
import {
  assertUsageSummary, formatLocalTime, INTERVAL_MINUTES, MAX_UNITS_MINUTES, minuteOfDay, selectOwnRecords,
  type AuditMark, type LocalTime, type UsageBinding, type UsageEntry, type UsageSummary,
} from './usage-text.js';
import { formatThreshold, inWindow, thresholdInputError, parseThreshold, type Threshold, type UnitRates } from './threshold-spec.js';
// ---- Usage ----

export interface SummaryOptions {
  /** A summary the entries continue ([0094]); they then start at `base.next`. */
  readonly base?: UsageSummary;
  /** Without a base: the first counter the entries cover (the keyfile's offset); by default the first entry's. */
  readonly from?: bigint;
}

/** Sorted, merged [from, to] ranges. */
function mergeRanges(ranges: [bigint, bigint][]): [bigint, bigint][] {
  const merged: [bigint, bigint][] = [];
  for (const [from, to] of ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const last = merged[merged.length - 1];
    if (last !== undefined && from <= last[1] + 1n) last[1] = to > last[1] ? to : last[1];
    else merged.push([from, to]);
  }
  return merged;
}

function covered(ranges: readonly [bigint, bigint][], counter: bigint): boolean {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [from, to] = ranges[middle]!;
    if (counter < from) high = middle - 1;
    else if (counter > to) low = middle + 1;
    else return true;
  }
  return false;
}

/**
 * The program's usage from its own records in `entries` (trail order, counters increasing, none below the start),
 * added to `base` ([0094]: a validator record's summary, so the older records need not be read again).
 */
export function summariseUsage(entries: readonly UsageEntry[], binding: UsageBinding, options: SummaryOptions = {}): UsageSummary {
  const { base } = options;
  if (base !== undefined) assertUsageSummary(base);
  if (options.from !== undefined && (typeof options.from !== 'bigint' || options.from < 0n)) throw thresholdInputError('expected `from` as a non-negative bigint counter');
  const own = selectOwnRecords(entries, binding);
  const start = base?.next ?? options.from ?? entries[0]?.counter ?? 0n;
  let previous = start - 1n;
  for (const { counter } of entries) {
    if (counter <= previous) throw thresholdInputError(`expected entries in trail order with increasing counters from ${start}, got counter ${counter} after ${previous}`);
    previous = counter;
  }
  let { intervals, executions } = base ?? { intervals: 0n, executions: 0n };
  let lastAudit: AuditMark | undefined = base?.lastAudit;
  const minutesByHour = base === undefined ? Array.from({ length: 24 }, () => 0n) : [...base.minutesByHour];
  const ranges: [bigint, bigint][] = [];
  for (const { usage } of own) {
    switch (usage.kind) {
      case 'interval': intervals += 1n; break;
      case 'execution': executions += 1n; break;
      case 'units': {
        // At most 60 minutes: the minutes of the starting hour, then the rest in the next.
        const minute = minuteOfDay(usage.at);
        const first = Math.min(usage.minutes, 60 - (minute % 60));
        minutesByHour[Math.floor(minute / 60)]! += BigInt(first);
        if (usage.minutes > first) minutesByHour[(Math.floor(minute / 60) + 1) % 24]! += BigInt(usage.minutes - first);
        break;
      }
      case 'audit': lastAudit = { nonce: usage.nonce, at: usage.at }; break;
      case 'skipped': if (usage.to >= start) ranges.push([usage.from > start ? usage.from : start, usage.to]); break;
      case 'validated': break;
    }
  }
  const merged = mergeRanges(ranges);
  let skipped = merged.reduce((sum, [from, to]) => sum + to - from + 1n, 0n);
  if (merged.length > 0) for (const { counter } of entries) if (covered(merged, counter)) skipped -= 1n;
  return { next: previous + 1n, intervals, executions, skipped: (base?.skipped ?? 0n) + skipped, minutesByHour, lastAudit };
}

/**
 * [0094]: the usage of two stretches of the trail one after the other: `earlier` (a validator record's attested
 * summary) and `later`, summarised from `earlier.next` on (SummaryOptions.from). Counts and minutes add up; the newest
 * audit mark wins; the result covers the counters below `later.next`.
 */
export function mergeUsageSummaries(earlier: UsageSummary, later: UsageSummary): UsageSummary {
  assertUsageSummary(earlier);
  assertUsageSummary(later);
  if (later.next < earlier.next) throw thresholdInputError(`expected the later summary to end at or after the earlier one's ${earlier.next}, got ${later.next}`);
  return {
    next: later.next,
    intervals: earlier.intervals + later.intervals,
    executions: earlier.executions + later.executions,
    skipped: earlier.skipped + later.skipped,
    minutesByHour: earlier.minutesByHour.map((minutes, hour) => minutes + later.minutesByHour[hour]!),
    lastAudit: later.lastAudit ?? earlier.lastAudit,
  };
}

// ---- Evaluation ----

interface LimitBase {
  /** The leaf's canonical spec. */
  readonly spec: string;
  /** Whether the leaf holds (for a leaf under `not`, before the negation). */
  readonly within: boolean;
}
export interface CountUsage extends LimitBase {
  readonly kind: 'intervals' | 'executions';
  readonly limit: bigint;
  /** From the program's records. */
  readonly recorded: bigint;
  /** For skipped counter values. */
  readonly charged: bigint;
  readonly used: bigint;
  readonly left: bigint;
}
export interface UnitsUsage extends LimitBase {
  readonly kind: 'units';
  readonly limit: bigint;
  /** Exact amounts in unit-minutes (1/60 unit). */
  readonly recordedUnitMinutes: bigint;
  readonly chargedUnitMinutes: bigint;
  readonly usedUnitMinutes: bigint;
  readonly leftUnitMinutes: bigint;
  /** The used and left units, exactly: "999", "12.5", "3 1/3". */
  readonly used: string;
  readonly left: string;
}
export interface AuditUsage extends LimitBase {
  readonly kind: 'audit';
  readonly everyMinutes: number;
  readonly last: AuditMark | undefined;
  /** When the next audit record is due; undefined when none was ever written and no `auditSince` was given. */
  readonly dueAt: LocalTime | undefined;
  readonly due: boolean;
}
export type LimitUsage = CountUsage | UnitsUsage | AuditUsage;

export interface ThresholdEvaluation {
  readonly allowed: boolean;
  /** One line naming the spec and every limit's use. */
  readonly reason: string;
  readonly usage: { readonly summary: UsageSummary; readonly limits: readonly LimitUsage[] };
}

export interface CheckOptions {
  /** Now, by the customer's clock (default: the current time). */
  readonly now?: Date;
  /** When audits start falling due if no audit record exists, such as the keyfile's issue time. */
  readonly auditSince?: Date;
}
export interface EvaluateOptions extends SummaryOptions, CheckOptions {
  readonly binding: UsageBinding;
}

/** Exact units from unit-minutes: "12", "12.5", "12.05", "12 1/3". */
export function formatUnits(unitMinutes: bigint): string {
  const whole = unitMinutes / 60n;
  const rest = unitMinutes % 60n;
  if (rest === 0n) return String(whole);
  if ((rest * 100n) % 60n === 0n) return `${whole}.${String((rest * 100n) / 60n).padStart(2, '0').replace(/0$/, '')}`;
  const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
  const divisor = gcd(rest, 60n);
  return `${whole === 0n ? '' : `${whole} `}${rest / divisor}/${60n / divisor}`;
}

function rateOf(rates: UnitRates, h: number): bigint {
  return rates.windows.find((window) => inWindow(h, window))?.perHour ?? rates.otherwise;
}

class Evaluation {
  readonly limits: LimitUsage[] = [];

  constructor(private readonly summary: UsageSummary, private readonly nowMinutes: number, private readonly since: number | undefined) {}

  /** `positive` is false under an odd number of `not`s, where skipped values are not charged. */
  holds(threshold: Threshold, positive: boolean): boolean {
    switch (threshold.kind) {
      case 'and': return threshold.terms.map((term) => this.holds(term, positive)).every(Boolean);
      case 'or': return threshold.terms.map((term) => this.holds(term, positive)).some(Boolean);
      case 'not': return !this.holds(threshold.term, !positive);
      case 'audit': return this.audit(threshold.everyMinutes, formatThreshold(threshold));
      case 'units': return this.units(threshold.limit, threshold.rates, formatThreshold(threshold), positive);
      default: {
        const recorded = this.summary[threshold.kind];
        const charged = positive ? this.summary.skipped : 0n;
        const used = recorded + charged;
        const within = used < threshold.limit;
        this.limits.push({ kind: threshold.kind, spec: formatThreshold(threshold), limit: threshold.limit, recorded, charged, used, left: within ? threshold.limit - used : 0n, within });
        return within;
      }
    }
  }

  private units(limit: bigint, rates: UnitRates, spec: string, positive: boolean): boolean {
    const perHour = Array.from({ length: 24 }, (_, h) => rateOf(rates, h));
    const recorded = this.summary.minutesByHour.reduce((sum, minutes, h) => sum + minutes * perHour[h]!, 0n);
    const highest = perHour.reduce((max, rate) => (rate > max ? rate : max), 0n);
    const charged = positive ? this.summary.skipped * BigInt(MAX_UNITS_MINUTES) * highest : 0n;
    const used = recorded + charged;
    const left = limit * 60n > used ? limit * 60n - used : 0n;
    const within = used < limit * 60n;
    this.limits.push({
      kind: 'units', spec, limit, recordedUnitMinutes: recorded, chargedUnitMinutes: charged, usedUnitMinutes: used, leftUnitMinutes: left,
      used: formatUnits(used), left: formatUnits(left), within,
    });
    return within;
  }

  private audit(everyMinutes: number, spec: string): boolean {
    const last = this.summary.lastAudit;
    const from = last?.at ?? (this.since === undefined ? undefined : { epochMinutes: this.since, offsetMinutes: 0 });
    const dueAt = from === undefined ? undefined : { epochMinutes: from.epochMinutes + everyMinutes, offsetMinutes: from.offsetMinutes };
    this.limits.push({ kind: 'audit', spec, everyMinutes, last, dueAt, due: dueAt === undefined || this.nowMinutes >= dueAt.epochMinutes, within: true });
    return true;
  }
}

function describeLimit(limit: LimitUsage): string {
  switch (limit.kind) {
    case 'audit':
      if (!limit.due) return `audit next due ${formatLocalTime(limit.dueAt!)}`;
      return limit.dueAt === undefined ? 'audit due (no audit record yet)' : `audit due since ${formatLocalTime(limit.dueAt)}`;
    case 'units': {
      const charged = limit.chargedUnitMinutes === 0n ? '' : ` (${formatUnits(limit.chargedUnitMinutes)} charged for skipped counter values)`;
      return `units ${limit.used} of ${limit.limit} used, ${limit.left} left${charged}`;
    }
    default: {
      const charged = limit.charged === 0n ? '' : ` (${limit.charged} charged for skipped counter values)`;
      const time = limit.kind === 'intervals' ? ` (${limit.left * BigInt(INTERVAL_MINUTES)} minutes)` : '';
      return `${limit.kind} ${limit.used} of ${limit.limit} used, ${limit.left} left${time}${charged}`;
    }
  }
}

const epochMinutesOf = (date: Date, what: string): number => {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw thresholdInputError(`expected ${what} as a valid Date`);
  return Math.floor(date.getTime() / 60_000);
};

/** Checks `threshold` against a program's usage summary. */
export function evaluateSummary(threshold: Threshold | string, summary: UsageSummary, options: CheckOptions = {}): ThresholdEvaluation {
  const parsed = typeof threshold === 'string' ? parseThreshold(threshold) : threshold;
  const spec = formatThreshold(parsed);
  assertUsageSummary(summary);
  const since = options.auditSince === undefined ? undefined : epochMinutesOf(options.auditSince, 'auditSince');
  const evaluation = new Evaluation(summary, epochMinutesOf(options.now ?? new Date(), 'now'), since);
  const allowed = evaluation.holds(parsed, true);
  const reason = `${allowed ? 'allowed' : 'refused'} by ${spec}: ${evaluation.limits.map(describeLimit).join('; ')}`;
  return { allowed, reason, usage: { summary, limits: evaluation.limits } };
}

/**
 * [0049]: the program's own records in `entries` (from `base` or `from` on, in trail order) against `threshold`:
 * allowed while every limit the spec needs is below its use; records of other programs do not count.
 */
export function evaluateThreshold(threshold: Threshold | string, entries: readonly UsageEntry[], options: EvaluateOptions): ThresholdEvaluation {
  if (typeof options !== 'object' || options === null) throw thresholdInputError('expected options { binding, base?, from?, now?, auditSince? }');
  const parsed = typeof threshold === 'string' ? parseThreshold(threshold) : threshold;
  formatThreshold(parsed); // a hand-built threshold is checked before the trail is read
  return evaluateSummary(parsed, summariseUsage(entries, options.binding, options), options);
}
