// Durations on the command line: whole seconds, or a whole number with s, m, h, d or w ("1d", "36h", "90s").
import { UsageError } from '../../errors/index.js';
import { optionText, type OptionValues } from '../command.js';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 };
const MAX_SECONDS = 2 ** 40;

/** The duration in `--name` in seconds, or `fallback` when it was not given. */
export function durationOption(values: OptionValues, name: string, fallback?: number): number {
  const value = optionText(values, name);
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const match = /^(0|[1-9][0-9]{0,12})([smhdw]?)$/.exec(value);
  if (match === null) throw new UsageError(`--${name}: expected a duration such as 90s, 30m, 12h, 1d or 2w, got ${JSON.stringify(value.slice(0, 20))}`);
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] === '' ? 's' : match[2]!]!;
  if (seconds > MAX_SECONDS) throw new UsageError(`--${name}: expected at most ${MAX_SECONDS} seconds`);
  return seconds;
}
