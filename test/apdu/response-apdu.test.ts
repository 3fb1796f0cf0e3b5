// Tests for the response APDU codec: data field then SW1 SW2 (ISO/IEC 7816-4 section 5.1).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { ApduFormatError } from '../../src/apdu/command-apdu.js';
import { encodeResponseApdu, isSuccess, parseResponseApdu, responseApdu } from '../../src/apdu/response-apdu.js';

describe('response APDU', () => {
  // A YubiKey's answer to SELECT PIV: the application property template, then 9000 (opensc-tool trace).
  const selectAnswer = '61114f0600001000010079074f05a000000308' + '9000';

  it('parses data and status word', () => {
    const response = parseResponseApdu(fromHex(selectAnswer));
    expect(toHex(response.data)).toBe(selectAnswer.slice(0, -4));
    expect(response.sw).toBe(0x9000);
    expect(isSuccess(response)).toBe(true);
  });

  it('parses a bare status word', () => {
    const response = parseResponseApdu(fromHex('63c2'));
    expect(response.data.length).toBe(0);
    expect(response.sw).toBe(0x63c2);
    expect(isSuccess(response)).toBe(false);
  });

  it('encodes data then SW1 SW2', () => {
    expect(toHex(encodeResponseApdu(responseApdu(fromHex('0102'), 0x6a82)))).toBe('01026a82');
    expect(toHex(encodeResponseApdu(responseApdu(new Uint8Array(0), 0x9000)))).toBe('9000');
  });

  it('copies the data out of the parsed buffer', () => {
    const bytes = fromHex('aabb9000');
    const response = parseResponseApdu(bytes);
    bytes[0] = 0;
    expect(toHex(response.data)).toBe('aabb');
  });

  it('round-trips any data with any valid status word', () => {
    const sw = fc.oneof(fc.integer({ min: 0x6100, max: 0x6fff }), fc.integer({ min: 0x9000, max: 0x9fff }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), sw, (data, sw) => {
        const parsed = parseResponseApdu(encodeResponseApdu(responseApdu(data, sw)));
        expect(parsed.data).toEqual(data);
        expect(parsed.sw).toBe(sw);
      }),
    );
  });

  it.each([
    ['empty', ''],
    ['one byte', '90'],
  ])('rejects a response that is too short (%s)', (_name, hex) => {
    expect(() => parseResponseApdu(fromHex(hex))).toThrow(ApduFormatError);
    expect(() => parseResponseApdu(fromHex(hex))).toThrow(/expected at least the 2 status bytes/);
  });

  it.each([
    ['6000 (a T=0 procedure byte)', '6000'],
    ['1234', '1234'],
    ['0000', '0000'],
    ['FFFF', 'ffff'],
    ['data then 7000', '01027000'],
  ])('rejects the invalid status word %s', (_name, hex) => {
    expect(() => parseResponseApdu(fromHex(hex))).toThrow(ApduFormatError);
  });

  it.each([0x6000, 0x1234, -1, 0x10000])('responseApdu refuses the status word %s', (sw) => {
    expect(() => responseApdu(new Uint8Array(0), sw)).toThrow(ApduFormatError);
  });
});
