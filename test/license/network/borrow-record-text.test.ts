// The borrow text a network license server's card signs (src/license/network/borrow-record-text.ts; Wibu 002 Table 1,
// borrowable license): format, parse, round trip, a table of malformed texts, fuzzing, and the borrowing card's digest.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { borrowCardDigest, formatBorrowRecordText, LicenseError, parseBorrowRecordText, parseLicenseRecordText, type BorrowRecordText } from '../../../src/license/index.js';

const LD = 'ab'.repeat(16);
const CD = 'cd'.repeat(16);
const ID = '0f'.repeat(12);
const BORROW: BorrowRecordText = { licensor: LD, firmCode: 10101, productCode: 5, features: 3, card: CD, until: 1_800_259_200, id: ID };
const TEXT = `license borrow ${LD} 10101 5 features 3 to ${CD} until 1800259200 id ${ID}`;

describe('borrow record text', () => {
  it('formats and parses the text of the brief\'s form', () => {
    expect(formatBorrowRecordText(BORROW)).toBe(TEXT);
    expect(parseBorrowRecordText(TEXT)).toEqual(BORROW);
  });

  it('is a "license " text the usage report passes over', () => {
    expect(() => parseLicenseRecordText(TEXT)).toThrow(LicenseError);
  });

  it('refuses every text formatBorrowRecordText does not write', () => {
    const cases: Array<[string, string]> = [
      ['empty', ''],
      ['another record', `license use ${LD} 10101 5 features 3 units 0 left unlimited at 1`],
      ['a leading zero', TEXT.replace(' 5 features', ' 05 features')],
      ['upper-case hex', TEXT.replace(LD, LD.toUpperCase())],
      ['a short card digest', TEXT.replace(CD, CD.slice(2))],
      ['a short id', TEXT.replace(ID, ID.slice(2))],
      ['a product code beyond 32 bits', TEXT.replace(' 5 features', ' 4294967296 features')],
      ['a time beyond 2^40', TEXT.replace('1800259200', String(2 ** 40 + 1))],
      ['two spaces', TEXT.replace(' to ', '  to ')],
      ['a trailing word', `${TEXT} more`],
      ['a missing keyword', TEXT.replace(' until ', ' till ')],
      ['a negative number', TEXT.replace('features 3', 'features -3')],
    ];
    for (const [name, text] of cases) expect(() => parseBorrowRecordText(text), name).toThrow(LicenseError);
    expect(() => formatBorrowRecordText({ ...BORROW, until: -1 })).toThrow(/expected the end/);
    expect(() => formatBorrowRecordText({ ...BORROW, id: 'x' })).toThrow(/borrow id/);
  });

  it('round-trips every borrow and never throws anything but LicenseError on any text', () => {
    const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((value) => Buffer.from(value).toString('hex'));
    fc.assert(fc.property(hex(16), fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), hex(16), fc.nat(2 ** 40), hex(12), (licensor, firmCode, productCode, features, card, until, id) => {
      const borrow = { licensor, firmCode, productCode, features, card, until, id };
      expect(parseBorrowRecordText(formatBorrowRecordText(borrow))).toEqual(borrow);
    }));
    fc.assert(fc.property(fc.oneof(fc.string(), fc.constant(TEXT).chain((text) => fc.nat(text.length - 1).map((cut) => text.slice(0, cut)))), (text) => {
      try {
        parseBorrowRecordText(text);
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
      }
    }));
  });

  it('names a card by serial, key and key mode, so cards sharing a universal key are told apart', () => {
    const key = new Uint8Array(32).fill(7);
    const digest = borrowCardDigest({ serial: 'A', publicKey: key, keyMode: 'universal' });
    expect(digest).toMatch(/^[0-9a-f]{32}$/);
    expect(borrowCardDigest({ serial: 'B', publicKey: key, keyMode: 'universal' })).not.toBe(digest);
    expect(borrowCardDigest({ serial: 'A', publicKey: key, keyMode: 'individual' })).not.toBe(digest);
    expect(borrowCardDigest({ serial: 'A', publicKey: new Uint8Array(32).fill(8), keyMode: 'universal' })).not.toBe(digest);
  });
});
