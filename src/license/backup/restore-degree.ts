// How much of a unit counter a restore gives back, by the backup's age (Wibu 000 "CM-Box Backup" §2.3; DESIGN.md
// "Restore degree"): the whole counter while the backup is younger than MaxTime; from MaxTime to MinTime the degree
// falls linearly from MaxDegree to MinDegree; nothing once the backup is older than MinTime. The restored count is
// rounded up ("as a user-friendly component"), in exact integer arithmetic: no floating point decides a unit.
//
// The document prints the formula as MinDegree + (MaxDegree − MinDegree) · (1 − (BackupTime − MinTime)/(MinTime −
// MaxTime)), which its own example contradicts (it gives more than MaxDegree). Its prose and six of its seven worked
// values follow  MinDegree + (MaxDegree − MinDegree) · (MinTime − age) / (MinTime − MaxTime); its 280 at 7 days does
// not (the model gives 275). test/license/backup/restore-degree.test.ts names both.
import { LicenseError } from '../license-error.js';
import { MAX_UNITS } from '../license-model.js';
import { DAY_SECONDS } from '../license-model-options.js';

/** The longest age a rule may name (as license-update.ts bounds times). */
export const MAX_RULE_SECONDS = 2 ** 40;

/** The four parameters of 000 §2.3 (MaxUnitCounterRestoreTime ... MinUnitCounterRestoreDegree), degrees in whole percent. */
export interface UnitRestoreRule {
  readonly maxTimeSeconds: number;
  readonly maxDegreePercent: number;
  readonly minTimeSeconds: number;
  readonly minDegreePercent: number;
}

/** Counters restored whole, at any age: the rule of a licensor who does not reduce them. */
export const FULL_UNIT_RESTORE: UnitRestoreRule = Object.freeze({
  maxTimeSeconds: MAX_RULE_SECONDS, maxDegreePercent: 100, minTimeSeconds: MAX_RULE_SECONDS, minDegreePercent: 100,
});

const input = (message: string): LicenseError => new LicenseError('input', `unit restore rule: ${message}`);

function whole(value: unknown, name: string, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw input(`expected ${name} as a whole number in 0..${max}, got ${String(value).slice(0, 30)}`);
}

/** Throws LicenseError 'input' unless 0 ≤ MaxTime ≤ MinTime and 0 ≤ MinDegree ≤ MaxDegree ≤ 100. */
export function checkUnitRestoreRule(rule: UnitRestoreRule): UnitRestoreRule {
  whole(rule.maxTimeSeconds, 'the max time', MAX_RULE_SECONDS);
  whole(rule.minTimeSeconds, 'the min time', MAX_RULE_SECONDS);
  whole(rule.maxDegreePercent, 'the max degree', 100);
  whole(rule.minDegreePercent, 'the min degree', 100);
  if (rule.minTimeSeconds < rule.maxTimeSeconds) throw input(`expected the min time (${rule.minTimeSeconds} s) at or after the max time (${rule.maxTimeSeconds} s): the degree falls from the max time to the min time`);
  if (rule.minDegreePercent > rule.maxDegreePercent) throw input(`expected the min degree (${rule.minDegreePercent} %) at most the max degree (${rule.maxDegreePercent} %)`);
  return rule;
}

/** The degree at `ageSeconds` as an exact fraction of one (numerator / denominator). */
export function restoreDegree(rule: UnitRestoreRule, ageSeconds: number): { readonly numerator: bigint; readonly denominator: bigint } {
  checkUnitRestoreRule(rule);
  if (!Number.isInteger(ageSeconds)) throw input(`expected the backup's age in whole seconds, got ${ageSeconds}`);
  const age = BigInt(Math.max(0, ageSeconds));
  const maxTime = BigInt(rule.maxTimeSeconds);
  const minTime = BigInt(rule.minTimeSeconds);
  if (age < maxTime) return { numerator: 1n, denominator: 1n };
  if (age > minTime) return { numerator: 0n, denominator: 1n };
  const span = minTime - maxTime;
  // span 0: MaxTime = MinTime = age, where the rule names MaxDegree.
  if (span === 0n) return { numerator: BigInt(rule.maxDegreePercent), denominator: 100n };
  const minDegree = BigInt(rule.minDegreePercent);
  const maxDegree = BigInt(rule.maxDegreePercent);
  return { numerator: minDegree * span + (maxDegree - minDegree) * (minTime - age), denominator: 100n * span };
}

/** The units a counter of `units` is restored to when its backup is `ageSeconds` old, rounded up. */
export function restoredUnits(units: number, rule: UnitRestoreRule, ageSeconds: number): number {
  if (!Number.isSafeInteger(units) || units < 0 || units > MAX_UNITS) throw input(`expected units as a whole number in 0..${MAX_UNITS}, got ${units}`);
  const { numerator, denominator } = restoreDegree(rule, ageSeconds);
  const product = BigInt(units) * numerator;
  return Number((product + denominator - 1n) / denominator);
}

/** The degree in percent for people, to two decimals (the exact value decides the units, never this one). */
export function restoreDegreePercent(rule: UnitRestoreRule, ageSeconds: number): number {
  const { numerator, denominator } = restoreDegree(rule, ageSeconds);
  return Number((numerator * 10_000n + denominator / 2n) / denominator) / 100;
}

export interface RestorePreviewRow {
  readonly days: number;
  readonly degreePercent: number;
  readonly units: number;
}

/** One row per whole day from 0 to one day past MinTime: what `vsc license restore-preview` prints. */
export function restorePreview(rule: UnitRestoreRule, units: number): RestorePreviewRow[] {
  checkUnitRestoreRule(rule);
  const lastDay = Math.min(Math.ceil(rule.minTimeSeconds / DAY_SECONDS) + 1, 3660);
  const rows: RestorePreviewRow[] = [];
  for (let days = 0; days <= lastDay; days += 1) {
    const age = days * DAY_SECONDS;
    rows.push({ days, degreePercent: restoreDegreePercent(rule, age), units: restoredUnits(units, rule, age) });
  }
  return rows;
}
