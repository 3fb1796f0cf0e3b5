// `vsc license restore-preview` (Wibu 000 "CM-Box Backup" §2.3; DESIGN.md "Restore degree"), run as a user runs it.
import { describe, expect, it } from 'vitest';
import { runVsc } from '../support/vsc-spawn.js';

const EXAMPLE = ['license', 'restore-preview', '--max-time', '1d', '--max-degree', '80', '--min-time', '9d', '--min-degree', '10', '--units', '1000'];

describe('vsc license restore-preview', () => {
  it('prints the §2.3 example by whole days (7 days → 275, not the document\'s 280)', async () => {
    const run = await runVsc(EXAMPLE);
    expect(run.code).toBe(0);
    const units = run.stdout.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/).map(Number));
    expect(units.map(([days, , left]) => [days, left])).toEqual([[0, 1000], [1, 800], [2, 713], [3, 625], [4, 538], [5, 450], [6, 363], [7, 275], [8, 188], [9, 100], [10, 0]]);
  });

  it('--json gives the rule and the rows', async () => {
    const run = await runVsc([...EXAMPLE, '--json']);
    const event = JSON.parse(run.stdout) as { rule: Record<string, number>; rows: { days: number; degreePercent: number; units: number }[] };
    expect(event.rule).toEqual({ maxTimeSeconds: 86_400, maxDegreePercent: 80, minTimeSeconds: 777_600, minDegreePercent: 10 });
    expect(event.rows[2]).toEqual({ days: 2, degreePercent: 71.25, units: 713 });
  });

  it.each([
    [['--max-time', '1x'], '--max-time: expected a duration'],
    [['--max-degree', '101'], '--max-degree: expected a whole number 0..100'],
    [['--min-time', '12h'], 'expected the min time'],
    [['--min-degree', '90'], 'expected the min degree'],
    [['--units', '-5'], '--units'],
  ])('refuses %j with exit 2 and one line naming it', async (change, named) => {
    const args = [...EXAMPLE];
    args[args.indexOf(change[0]!) + 1] = change[1]!;
    const run = await runVsc(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(named);
    expect(run.stdout).toBe('');
  });
});
