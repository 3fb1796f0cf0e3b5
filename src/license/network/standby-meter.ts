// The time a standby license server served each item (Wibu 002 Table 1, hot and cold standby: "its use is logged and
// limited"): the union of the times any seat of the item was held on it, counted ahead to each lease's end and given
// back when the last seat returns early; one trail record per started minute, and no lease past the item's maxSeconds.
import { LicenseError } from '../license-error.js';
import type { UnixSeconds } from '../license-model.js';

export interface StandbyUse {
  /** Seconds of standby service counted so far. */
  readonly seconds: number;
  /** The end of the time already counted (a lease's end). */
  readonly coveredUntil: UnixSeconds;
  /** Minutes already recorded in the trail: the most ever started (a refund never takes a record back). */
  readonly minutes: number;
}

const NONE: StandbyUse = { seconds: 0, coveredUntil: 0, minutes: 0 };

export class StandbyMeter {
  readonly #items = new Map<string, StandbyUse>();

  constructor(items: Readonly<Record<string, StandbyUse>> = {}) {
    for (const [item, use] of Object.entries(items)) this.#items.set(item, use);
  }

  get items(): Readonly<Record<string, StandbyUse>> {
    return Object.fromEntries(this.#items);
  }

  used(item: string): StandbyUse {
    return this.#items.get(item) ?? NONE;
  }

  /**
   * Counts service of `item` from `from` to `until`, cut where maxSeconds runs out: returns the end the lease may have
   * and the minutes newly started (to record). Refuses 'expired' when nothing is left.
   */
  cover(item: string, from: UnixSeconds, until: UnixSeconds, maxSeconds: number): { until: UnixSeconds; minutes: number[] } {
    const use = this.used(item);
    const start = Math.max(from, use.coveredUntil);
    if (until <= start) return { until, minutes: [] };
    const left = maxSeconds - use.seconds;
    if (left <= 0) throw new LicenseError('expired', `the ${Math.floor(maxSeconds / 60)} min of standby service this item allows are used up`);
    const end = Math.min(until, start + left);
    const seconds = use.seconds + (end - start);
    const started = Math.ceil(seconds / 60);
    const minutes: number[] = [];
    for (let minute = use.minutes + 1; minute <= started; minute += 1) minutes.push(minute);
    this.#items.set(item, { seconds, coveredUntil: end, minutes: Math.max(use.minutes, started) });
    return { until: end, minutes };
  }

  /** The item's seats now end at `heldUntil` (the latest of those left, or now): time counted beyond it is given back. */
  refund(item: string, heldUntil: UnixSeconds): void {
    const use = this.used(item);
    if (use.coveredUntil <= heldUntil) return;
    this.#items.set(item, { ...use, seconds: Math.max(0, use.seconds - (use.coveredUntil - heldUntil)), coveredUntil: heldUntil });
  }
}

/** The meter's part of the state file, checked. */
export function standbyFromJson(value: unknown, where: string): Record<string, StandbyUse> {
  const bad = (why: string) => new LicenseError('input', `${where}: expected ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('an object of items');
  const items: Record<string, StandbyUse> = {};
  for (const [item, use] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[0-9a-f]{32}\/(?:0|[1-9][0-9]{0,9})$/.test(item)) throw bad('items named LD/PRODUCT');
    if (typeof use !== 'object' || use === null) throw bad(`an object for ${item}`);
    const fields = use as Record<string, unknown>;
    const whole = (key: string): number => {
      const field = fields[key];
      if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 0) throw bad(`${item}.${key} as a whole number`);
      return field;
    };
    if (Object.keys(fields).length !== 3) throw bad(`exactly seconds, coveredUntil and minutes for ${item}`);
    items[item] = { seconds: whole('seconds'), coveredUntil: whole('coveredUntil'), minutes: whole('minutes') };
  }
  return items;
}
