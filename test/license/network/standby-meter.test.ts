// The standby meter (src/license/network/standby-meter.ts; Wibu 002 Table 1, hot and cold standby: "its use is logged
// and limited"): time counted ahead to each lease's end, given back on an early return, one record per started minute.
import { describe, expect, it } from 'vitest';
import { LicenseError, StandbyMeter } from '../../../src/license/index.js';

describe('standby meter', () => {
  it('counts the union of the leases\' times, a minute record for each started minute, and cuts at maxSeconds', () => {
    const meter = new StandbyMeter();
    // Each step: cover(from, until) -> the lease's end, the minutes to record, the seconds counted after it.
    const steps: Array<[number, number, number, number[], number]> = [
      [0, 60, 60, [1], 60],
      [20, 80, 80, [2], 80], // a heartbeat: only the 20 s beyond the last end count, and they start minute 2
      [30, 90, 90, [], 90], // a second seat overlapping: only its new 10 s
      [500, 560, 540, [3], 130], // a later lease, cut where the 130 s run out
    ];
    for (const [from, until, end, minutes, seconds] of steps) {
      expect(meter.cover('x', from, until, 130)).toEqual({ until: end, minutes });
      expect(meter.used('x').seconds).toBe(seconds);
    }
    expect(() => meter.cover('x', 600, 660, 130)).toThrow(LicenseError);
    expect(meter.used('y').seconds).toBe(0);
  });

  it('gives back what was counted beyond an early return, but never takes a minute record back', () => {
    const meter = new StandbyMeter();
    meter.cover('x', 0, 60, 1000);
    meter.refund('x', 10);
    expect(meter.used('x')).toEqual({ seconds: 10, coveredUntil: 10, minutes: 1 });
    // The next 50 s fall in the first minute, already recorded; the one after starts the second.
    expect(meter.cover('x', 100, 150, 1000).minutes).toEqual([]);
    expect(meter.cover('x', 150, 151, 1000).minutes).toEqual([2]);
    // A refund to a time already past changes nothing.
    meter.refund('x', 500);
    expect(meter.used('x').seconds).toBe(61);
  });
});
