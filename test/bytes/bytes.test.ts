// Tests for the byte helpers: hex, concatenation, comparison, big-endian integers and strict UTF-8 (RFC 3629).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bytesEqual,
  bytesToUint,
  concatBytes,
  constantTimeEqual,
  fromHex,
  fromUtf8,
  readUint16,
  toHex,
  uintToBytes,
  utf8,
  wipe,
} from '../../src/bytes/bytes.js';

describe('hex', () => {
  it('encodes lower-case without separators', () => {
    expect(toHex(Uint8Array.of(0x00, 0x0f, 0xa0, 0xff))).toBe('000fa0ff');
    expect(toHex(new Uint8Array(0))).toBe('');
  });

  it('encodes only the bytes of a subarray view, not its whole buffer', () => {
    const whole = Uint8Array.of(1, 2, 3, 4, 5);
    expect(toHex(whole.subarray(1, 3))).toBe('0203');
  });

  it.each([
    ['80220000', [0x80, 0x22, 0x00, 0x00]],
    ['80 22 00 00', [0x80, 0x22, 0x00, 0x00]],
    ['80:22:00:00', [0x80, 0x22, 0x00, 0x00]],
    ['  aB\ncD\t', [0xab, 0xcd]],
    ['', []],
  ])('decodes %j', (text, expected) => {
    expect(Array.from(fromHex(text))).toEqual(expected);
  });

  it('returns a plain Uint8Array, not a Buffer', () => {
    const bytes = fromHex('0102');
    expect(Buffer.isBuffer(bytes)).toBe(false);
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
  });

  it.each(['abc', '0', '0g', 'zz', '0x12', '12-34', '1 2 3'])('rejects %j', (text) => {
    expect(() => fromHex(text)).toThrow(/expected an even number of hex digits/);
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(fromHex(toHex(bytes))).toEqual(bytes);
        expect(fromHex(toHex(bytes).toUpperCase())).toEqual(bytes);
      }),
    );
  });
});

describe('concatBytes', () => {
  it('joins parts in order, subarrays included', () => {
    const source = Uint8Array.of(9, 8, 7, 6);
    expect(Array.from(concatBytes(Uint8Array.of(1), new Uint8Array(0), source.subarray(2), Uint8Array.of(2, 3)))).toEqual([
      1, 7, 6, 2, 3,
    ]);
  });

  it('returns an empty array for no parts', () => {
    expect(concatBytes()).toEqual(new Uint8Array(0));
  });

  it('copies: changing a part later does not change the result', () => {
    const part = Uint8Array.of(1, 2);
    const joined = concatBytes(part);
    part[0] = 0xff;
    expect(Array.from(joined)).toEqual([1, 2]);
  });
});

describe('bytesEqual and constantTimeEqual', () => {
  const cases: [string, Uint8Array, Uint8Array, boolean][] = [
    ['equal', Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3), true],
    ['both empty', new Uint8Array(0), new Uint8Array(0), true],
    ['last byte differs', Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4), false],
    ['first byte differs', Uint8Array.of(0, 2, 3), Uint8Array.of(1, 2, 3), false],
    ['prefix', Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3), false],
    ['empty against non-empty', new Uint8Array(0), Uint8Array.of(0), false],
    ['equal subarrays at different offsets', Uint8Array.of(0, 5, 6).subarray(1), Uint8Array.of(5, 6, 0).subarray(0, 2), true],
  ];

  it.each(cases)('bytesEqual: %s', (_name, a, b, expected) => {
    expect(bytesEqual(a, b)).toBe(expected);
  });

  it.each(cases)('constantTimeEqual: %s', (_name, a, b, expected) => {
    expect(constantTimeEqual(a, b)).toBe(expected);
  });

  it('agree with each other on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 4 }), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(bytesEqual(a, b));
        expect(bytesEqual(a, Uint8Array.from(a))).toBe(true);
      }),
    );
  });
});

describe('wipe', () => {
  it('zeroes every buffer given', () => {
    const a = Uint8Array.of(1, 2);
    const b = Uint8Array.of(3);
    wipe(a, b);
    expect(Array.from(a)).toEqual([0, 0]);
    expect(Array.from(b)).toEqual([0]);
  });
});

describe('uintToBytes and bytesToUint', () => {
  it.each([
    [0n, 0, ''],
    [0n, 2, '0000'],
    [0x1234n, 2, '1234'],
    [0x1234n, 4, '00001234'],
    [255n, 1, 'ff'],
    [(1n << 128n) - 1n, 16, 'ff'.repeat(16)],
  ])('encodes %s in %i bytes as %j', (value, length, expected) => {
    const bytes = uintToBytes(value, length);
    expect(toHex(bytes)).toBe(expected);
    expect(bytesToUint(bytes)).toBe(value);
  });

  it.each([
    [1n << 128n, 16],
    [256n, 1],
    [1n, 0],
    [-1n, 4],
  ])('rejects %s in %i bytes', (value, length) => {
    expect(() => uintToBytes(value, length)).toThrow(RangeError);
    expect(() => uintToBytes(value, length)).toThrow(/expected an unsigned integer that fits/);
  });

  it.each([-1, 1.5, Number.NaN])('rejects the byte count %s', (length) => {
    expect(() => uintToBytes(1n, length)).toThrow(RangeError);
  });

  it('decodes the empty string as 0 and ignores leading zeros', () => {
    expect(bytesToUint(new Uint8Array(0))).toBe(0n);
    expect(bytesToUint(fromHex('000000ff'))).toBe(255n);
  });

  it('round-trips any value that fits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }).chain((length) =>
          fc.tuple(fc.constant(length), fc.bigInt({ min: 0n, max: (1n << BigInt(8 * length)) - 1n })),
        ),
        ([length, value]) => {
          const bytes = uintToBytes(value, length);
          expect(bytes.length).toBe(length);
          expect(bytesToUint(bytes)).toBe(value);
        },
      ),
    );
  });

  it('readUint16 reads big-endian at an offset', () => {
    expect(readUint16(Uint8Array.of(0xaa, 0x12, 0x34), 1)).toBe(0x1234);
  });
});

describe('UTF-8', () => {
  it.each([
    ['', ''],
    ['PIV', '504956'],
    ['é', 'c3a9'],
    ['€', 'e282ac'],
    ['😀', 'f09f9880'],
  ])('encodes and decodes %j', (text, encoded) => {
    expect(toHex(utf8(text))).toBe(encoded);
    expect(fromUtf8(fromHex(encoded))).toBe(text);
  });

  it('keeps a leading byte order mark (decoding must not lose bytes)', () => {
    expect(fromUtf8(fromHex('efbbbf41'))).toBe('\uFEFFA');
    expect(toHex(utf8(fromUtf8(fromHex('efbbbf41'))))).toBe('efbbbf41');
  });

  // Malformed sequences from RFC 3629 section 3 / the Unicode "maximal subpart" examples.
  it.each([
    ['invalid continuation', 'c328'],
    ['lone continuation byte', '80'],
    ['truncated 3-byte sequence', 'e282'],
    ['overlong NUL', 'c080'],
    ['overlong slash', 'e080af'],
    ['UTF-16 surrogate D800', 'eda080'],
    ['above U+10FFFF', 'f4908080'],
    ['byte FF', 'ff'],
  ])('rejects %s (%s) instead of substituting U+FFFD', (_name, encoded) => {
    expect(() => fromUtf8(fromHex(encoded))).toThrow(TypeError);
  });

  it('round-trips any string of Unicode scalar values', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 32 }), (text) => {
        expect(fromUtf8(utf8(text))).toBe(text);
      }),
    );
    expect(fromUtf8(utf8('\uFEFFx'))).toBe('\uFEFFx');
  });
});
