// The overflow and standby texts a network license server's card signs (src/license/network/seat-record-text.ts; Wibu
// 002 Table 1, overflow: "the excess is logged"; hot and cold standby: "its use is logged and limited").
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSeatRecordText, LicenseError, parseSeatRecordText, type SeatRecordText } from '../../../src/license/index.js';

const LD = '12'.repeat(16);
const OVERFLOW: SeatRecordText = { kind: 'overflow', licensor: LD, firmCode: 7, productCode: 5, lease: 'ab'.repeat(12), at: 1_800_000_010 };
const STANDBY: SeatRecordText = { kind: 'standby', licensor: LD, firmCode: 7, productCode: 5, minute: 3, at: 1_800_000_130 };

describe('seat record texts', () => {
  it('formats and parses overflow and standby records', () => {
    const cases: Array<[SeatRecordText, string]> = [
      [OVERFLOW, `license overflow ${LD} 7 5 lease ${'ab'.repeat(12)} at 1800000010`],
      [STANDBY, `license standby ${LD} 7 5 minute 3 at 1800000130`],
    ];
    for (const [record, text] of cases) {
      expect(formatSeatRecordText(record)).toBe(text);
      expect(parseSeatRecordText(text)).toEqual(record);
    }
  });

  it('refuses every text it does not write', () => {
    const text = formatSeatRecordText(STANDBY);
    const cases: Array<[string, string]> = [
      ['another kind', text.replace('standby', 'borrow')],
      ['a standby with a lease', text.replace('minute 3', `lease ${'ab'.repeat(12)}`)],
      ['an overflow with a minute', formatSeatRecordText(OVERFLOW).replace(`lease ${'ab'.repeat(12)}`, 'minute 3')],
      ['a leading zero', text.replace('minute 3', 'minute 03')],
      ['a missing word', text.replace(' at 1800000130', '')],
      ['not a text', 42 as unknown as string],
    ];
    for (const [name, bad] of cases) expect(() => parseSeatRecordText(bad), name).toThrow(LicenseError);
  });

  it('round-trips and refuses garbage only with LicenseError', () => {
    fc.assert(fc.property(fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), fc.nat(2 ** 32), fc.nat(2 ** 40), (firmCode, productCode, minute, at) => {
      const record: SeatRecordText = { kind: 'standby', licensor: LD, firmCode, productCode, minute, at };
      expect(parseSeatRecordText(formatSeatRecordText(record))).toEqual(record);
    }));
    fc.assert(fc.property(fc.string(), (text) => {
      expect(() => parseSeatRecordText(`license overflow ${text}`)).toThrow(LicenseError);
    }));
  });
});
