// The PIV state: reference data rules (its legacy JSON form: test/card/legacy-piv-json.test.ts).
import { describe, expect, it } from 'vitest';
import { isValidPinReference, isValidPukReference, padReferenceData } from '../../../src/apdu/piv/piv-state.js';
import { fromHex } from '../../../src/bytes/index.js';

describe('reference data rules (SP 800-73-4 Part 2 3.2.1)', () => {
  it.each([
    ['123456', true],
    ['12345678', true],
    ['12345', false],
    ['12a456', false],
    ['', false],
  ])('PIN %j valid: %s', (pin, valid) => {
    expect(isValidPinReference(padReferenceData(pin))).toBe(valid);
  });

  it('PUKs are 6 to 8 bytes of any value', () => {
    expect(isValidPukReference(padReferenceData('abc def'))).toBe(true);
    expect(isValidPukReference(fromHex('0001020304ffffff'))).toBe(false);
    expect(isValidPukReference(fromHex('000102030405ffff'))).toBe(true);
    expect(isValidPukReference(fromHex('000102030405'))).toBe(false);
  });
});
