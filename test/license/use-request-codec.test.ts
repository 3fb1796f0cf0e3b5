// The binary use request the license applet takes (src/license/use-request-codec.ts): round trips, the layout, the
// limits of use-request-json.ts, and fuzzing (random bytes give a request or LicenseError input).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex } from '../../src/bytes/index.js';
import { decodeUseRequest, encodeUseRequest, LicenseError, MAX_UNITS, type UseRequest } from '../../src/license/index.js';
import { LICENSOR, T0, thrown } from '../support/index.js';

const minimal: UseRequest = { licensorKey: LICENSOR.publicKey, productCode: 7, features: 3, units: 1, hostTime: T0 };
const full: UseRequest = {
  ...minimal, country: 'DE', timeZoneOffsetMinutes: -300, user: 'alice', computer: new Uint8Array(32).fill(4), version: 4, releaseTime: T0 - 10,
};

function refusal(run: () => unknown): void {
  const error = thrown(run);
  expect(error).toBeInstanceOf(LicenseError);
  expect((error as LicenseError).reason).toBe('input');
}

describe('use request codec', () => {
  it.each([['a minimal request', minimal], ['a request with every field', full]])('round trips %s', (_name, request) => {
    expect(decodeUseRequest(encodeUseRequest(request))).toEqual(request);
  });

  it('writes the time zone offset as a signed 16-bit number after the country', () => {
    const bytes = encodeUseRequest({ ...minimal, country: 'DE', timeZoneOffsetMinutes: -300 });
    expect(toHex(bytes.subarray(-14))).toBe('06' + '00000002' + '4445' + '07' + '00000002' + 'fed4');
  });

  it.each<[string, Partial<UseRequest>]>([
    ['a short licensor key', { licensorKey: new Uint8Array(31) }],
    ['units past 2^53', { units: MAX_UNITS + 1 }],
    ['a fractional host time', { hostTime: 1.5 }],
    ['a lower-case country', { country: 'de' }],
    ['an offset past +14:00', { timeZoneOffsetMinutes: 841 }],
    ['an empty user', { user: '' }],
    ['a short computer digest', { computer: new Uint8Array(31) }],
  ])('refuses to encode %s', (_name, change) => {
    refusal(() => encodeUseRequest({ ...minimal, ...change }));
  });

  it.each<[string, Uint8Array]>([
    ['no fields', new Uint8Array(0)],
    ['a missing host time', encodeUseRequest(minimal).subarray(0, 5 + 32 + 5 + 4 + 5 + 4 + 5 + 8)],
    ['a field twice', concatBytes(encodeUseRequest(minimal), encodeUseRequest(minimal).subarray(0, 37))],
    ['fields out of order', concatBytes(encodeUseRequest({ ...minimal, version: 1 }), Uint8Array.of(6, 0, 0, 0, 2, 0x44, 0x45))],
  ])('refuses to decode %s', (_name, bytes) => {
    refusal(() => decodeUseRequest(bytes));
  });

  it('random bytes decode or give LicenseError input (fuzz)', () => {
    const base = encodeUseRequest(full);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), (noise, at, value) => {
      for (const bytes of [noise, base.map((byte, i) => (i === at ? value : byte))]) {
        const error = thrown(() => decodeUseRequest(bytes));
        if (error !== undefined) expect((error as LicenseError).reason).toBe('input');
      }
    }), { numRuns: 500 });
  });
});
