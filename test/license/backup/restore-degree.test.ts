// Wibu 000 "CM-Box Backup" §2.3: the unit-counter restore degree by the backup's age, with the document's example as vectors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FULL_UNIT_RESTORE, restoreDegreePercent, restoredUnits, restorePreview, type UnitRestoreRule } from '../../../src/license/backup/index.js';
import { LicenseError } from '../../../src/license/license-error.js';

/** The example's licensor: 80 % at 1 day, 10 % at 9 days. */
const DAY_SECONDS = 86_400;
const EXAMPLE: UnitRestoreRule = { maxTimeSeconds: DAY_SECONDS, maxDegreePercent: 80, minTimeSeconds: 9 * DAY_SECONDS, minDegreePercent: 10 };

describe('unit counter restore degree (000 §2.3)', () => {
  it.each([
    [0, 1000, 'done today, close to the current time'],
    [1, 800, 'yesterday'],
    [2, 713, '2 days ago (712.5 rounded up)'],
    [5, 450, '5 days ago'],
    [8, 188, '8 days ago (187.5 rounded up)'],
    [9, 100, '9 days ago'],
    [10, 0, '10 days ago: older than MinUnitCounterRestoreTime'],
  ])('the example restores 1000 units to the printed value at %i days: %i (%s)', (days, units) => {
    expect(restoredUnits(1000, EXAMPLE, days * DAY_SECONDS)).toBe(units);
  });

  it('at 7 days the document prints 280, which its own model contradicts: 10 + 70 · 2/8 = 27.5 % gives 275', () => {
    expect(restoredUnits(1000, EXAMPLE, 7 * DAY_SECONDS)).toBe(275);
    expect(restoredUnits(1000, EXAMPLE, 7 * DAY_SECONDS)).not.toBe(280);
    expect(restoreDegreePercent(EXAMPLE, 7 * DAY_SECONDS)).toBe(27.5);
  });

  it('is whole just below MaxTime, MaxDegree at MaxTime, MinDegree at MinTime, and nothing one second later', () => {
    expect(restoredUnits(1000, EXAMPLE, DAY_SECONDS - 1)).toBe(1000);
    expect(restoredUnits(1000, EXAMPLE, DAY_SECONDS)).toBe(800);
    expect(restoredUnits(1000, EXAMPLE, 9 * DAY_SECONDS)).toBe(100);
    expect(restoredUnits(1000, EXAMPLE, 9 * DAY_SECONDS + 1)).toBe(0);
  });

  it('a backup time a little in the future counts as age 0 (whole)', () => {
    expect(restoredUnits(1000, EXAMPLE, -120)).toBe(1000);
  });

  it('is exact for counters no floating point holds (2^53 − 1 units at 2 days)', () => {
    const units = Number.MAX_SAFE_INTEGER;
    const expected = (BigInt(units) * 5700n + 7999n) / 8000n; // 71.25 % = 57/80, rounded up
    expect(BigInt(restoredUnits(units, EXAMPLE, 2 * DAY_SECONDS))).toBe(expected);
  });

  it('never restores more than the counter held and never less with a younger backup (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 1_000_000_000 }),
      fc.integer({ min: 0, max: 100 * DAY_SECONDS }), fc.integer({ min: 0, max: 100 * DAY_SECONDS }),
      fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 200 * DAY_SECONDS }), fc.integer({ min: 0, max: 200 * DAY_SECONDS }),
      (units, t1, t2, d1, d2, a1, a2) => {
        const rule = { maxTimeSeconds: Math.min(t1, t2), minTimeSeconds: Math.max(t1, t2), maxDegreePercent: Math.max(d1, d2), minDegreePercent: Math.min(d1, d2) };
        const [young, old] = [Math.min(a1, a2), Math.max(a1, a2)];
        const restoredYoung = restoredUnits(units, rule, young);
        expect(restoredYoung).toBeLessThanOrEqual(units);
        expect(restoredUnits(units, rule, old)).toBeLessThanOrEqual(restoredYoung);
      },
    ));
  });

  it('the full rule restores every unit at any age', () => {
    expect(restoredUnits(123_456, FULL_UNIT_RESTORE, 3650 * DAY_SECONDS)).toBe(123_456);
  });

  it.each([
    [{ ...EXAMPLE, minTimeSeconds: 0 }, 'min time'],
    [{ ...EXAMPLE, minDegreePercent: 90 }, 'min degree'],
    [{ ...EXAMPLE, maxDegreePercent: 101 }, 'max degree'],
    [{ ...EXAMPLE, maxTimeSeconds: 1.5 }, 'max time'],
  ])('refuses a rule that makes no sense (%o)', (rule, named) => {
    expect(() => restoredUnits(1000, rule, 0)).toThrow(LicenseError);
    expect(() => restoredUnits(1000, rule, 0)).toThrow(named);
  });

  it('previews the example by whole days from 0 to one day past MinTime', () => {
    const rows = restorePreview(EXAMPLE, 1000);
    expect(rows.map((row) => row.units)).toEqual([1000, 800, 713, 625, 538, 450, 363, 275, 188, 100, 0]);
    expect(rows.map((row) => row.days)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rows[2]!.degreePercent).toBe(71.25);
  });
});
