// Tests for the ISO/IEC 7816-4 status word table and builders (section 5.6, tables 5-6; 63Cx per SP 800-73-4 Part 2 3.2.1).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VscError } from '../../src/errors/index.js';
import {
  SW,
  SwError,
  describeStatusWord,
  formatStatusWord,
  isValidStatusWord,
  swBytesRemaining,
  swRetriesLeft,
  swWrongLe,
} from '../../src/apdu/status-words.js';

describe('swBytesRemaining (61xx)', () => {
  it.each([
    [1, 0x6101],
    [0x10, 0x6110],
    [255, 0x61ff],
    [256, 0x6100],
    [1000, 0x6100],
  ])('%i bytes → %s', (count, sw) => {
    expect(swBytesRemaining(count)).toBe(sw);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects the count %s', (count) => {
    expect(() => swBytesRemaining(count)).toThrow(RangeError);
  });
});

describe('swWrongLe (6Cxx)', () => {
  it.each([
    [1, 0x6c01],
    [0x20, 0x6c20],
    [255, 0x6cff],
    [256, 0x6c00],
  ])('%i bytes → %s', (count, sw) => {
    expect(swWrongLe(count)).toBe(sw);
  });

  it('never tells the host fewer bytes than are available: more than 256 becomes 00 (= 256)', () => {
    expect(swWrongLe(300)).toBe(0x6c00);
    expect(swWrongLe(0x1ff)).toBe(0x6c00);
  });

  it.each([0, -1, 2.5])('rejects the count %s', (count) => {
    expect(() => swWrongLe(count)).toThrow(RangeError);
  });
});

describe('swRetriesLeft (63Cx)', () => {
  it.each([
    [0, 0x63c0],
    [3, 0x63c3],
    [15, 0x63cf],
    [16, 0x63cf],
    [255, 0x63cf],
    [-1, 0x63c0],
  ])('%i retries → %s (clamped to 0..15)', (retries, sw) => {
    expect(swRetriesLeft(retries)).toBe(sw);
  });
});

describe('isValidStatusWord', () => {
  it.each([0x9000, 0x9fff, 0x6100, 0x61ff, 0x63c2, 0x6982, 0x6fff, 0x6a82])('accepts %s', (sw) => {
    expect(isValidStatusWord(sw)).toBe(true);
  });

  it.each([0x6000, 0x60ff, 0x0000, 0x1234, 0x5fff, 0x7000, 0x8fff, 0xa000, 0xffff, -1, 0x10000, 0x9000 + 0.5, Number.NaN])(
    'rejects %s',
    (sw) => {
      expect(isValidStatusWord(sw)).toBe(false);
    },
  );

  it('accepts exactly SW1 in 61..6F or 90..9F', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (sw) => {
        const sw1 = sw >> 8;
        expect(isValidStatusWord(sw)).toBe((sw1 >= 0x61 && sw1 <= 0x6f) || (sw1 >= 0x90 && sw1 <= 0x9f));
      }),
    );
  });
});

describe('describeStatusWord', () => {
  it.each([
    [SW.OK, '9000 normal processing'],
    [SW.SECURITY_STATUS_NOT_SATISFIED, '6982 security status not satisfied'],
    [SW.WARNING_NO_INFO, '6300 warning: non-volatile memory changed, no information given'],
    [0x6110, '6110 16 response bytes still available'],
    [0x6100, '6100 256 or more response bytes still available'],
    [0x6c20, '6C20 wrong Le, 32 bytes available'],
    [0x6c00, '6C00 wrong Le, 256 bytes available'],
    [0x63c3, '63C3 verification failed, 3 tries left'],
    [0x63c0, '63C0 verification failed, 0 tries left'],
    [0x6a83, '6A83 unknown status'],
  ])('%s → %j', (sw, text) => {
    expect(describeStatusWord(sw)).toBe(text);
  });

  it('formats with four upper-case digits', () => {
    expect(formatStatusWord(0x6a82)).toBe('6A82');
    expect(formatStatusWord(0x0001)).toBe('0001');
  });
});

describe('SwError', () => {
  it('carries the status word, a stable code and a readable message', () => {
    const error = new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
    expect(error).toBeInstanceOf(VscError);
    expect(error.sw).toBe(0x6982);
    expect(error.code).toBe('apdu.status');
    expect(error.name).toBe('SwError');
    expect(error.message).toBe('6982 security status not satisfied');
  });

  it('keeps a caller message', () => {
    expect(new SwError(swRetriesLeft(2), 'PIN verification failed').message).toBe('PIN verification failed');
  });

  it('refuses 9000, which is success and not an error', () => {
    expect(() => new SwError(SW.OK)).toThrow(RangeError);
    expect(() => new SwError(SW.OK)).toThrow('expected an error status word, got 9000');
  });

  it.each([0x6000, 0x1234, 0x10000])('refuses the invalid status word %s', (sw) => {
    expect(() => new SwError(sw)).toThrow(RangeError);
  });
});
