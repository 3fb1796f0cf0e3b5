// `vsc license restore-preview ...` and the customer's side of lost licenses (Wibu 000 "CM-Box Backup" §2.3; DESIGN.md
// "Restore degree"): what a licensor's unit-counter rule gives back by the backup's age, by whole days.
import { UsageError } from '../../errors/index.js';
import { JSON_OPTION, say, type Command } from '../command.js';
import { durationOption } from './duration-option.js';
import { wholeOption } from './license-customer.js';

const backup = () => import('../../license/index.js');

const restorePreviewCommand: Command = {
  kind: 'command',
  name: 'restore-preview',
  summary: 'print what a unit-counter restore rule gives back by the backup\'s age, one row per day',
  details: 'Wibu 000 §2.3: below --max-time a counter is restored whole; from --max-time (--max-degree %) to --min-time (--min-degree %) the degree falls linearly; older backups restore no units. Restored units are rounded up. Durations: 90s, 30m, 12h, 1d, 2w or seconds.',
  options: {
    'max-time': { type: 'string', value: 'DURATION', description: 'age up to which counters are restored whole (MaxUnitCounterRestoreTime)' },
    'max-degree': { type: 'string', value: 'PERCENT', description: 'degree at --max-time, whole percent' },
    'min-time': { type: 'string', value: 'DURATION', description: 'age after which no units are restored (MinUnitCounterRestoreTime)' },
    'min-degree': { type: 'string', value: 'PERCENT', description: 'degree at --min-time, whole percent' },
    units: { type: 'string', value: 'N', description: 'the counter in the backup', default: '1000' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { checkUnitRestoreRule, restorePreview } = await backup();
    const rule = {
      maxTimeSeconds: durationOption(values, 'max-time'), maxDegreePercent: wholeOption(values, 'max-degree', undefined, 100),
      minTimeSeconds: durationOption(values, 'min-time'), minDegreePercent: wholeOption(values, 'min-degree', undefined, 100),
    };
    try {
      checkUnitRestoreRule(rule);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const units = wholeOption(values, 'units', 1000, Number.MAX_SAFE_INTEGER);
    const rows = restorePreview(rule, units);
    const lines = ['age (days)  degree (%)  units', ...rows.map((row) => `${String(row.days).padStart(10)}  ${row.degreePercent.toFixed(2).padStart(10)}  ${row.units}`)];
    say(values)({ event: 'restore-preview', rule, units, rows }, lines.join('\n'));
    return 0;
  },
};

export const licenseRestoreCommands: Command[] = [restorePreviewCommand];
