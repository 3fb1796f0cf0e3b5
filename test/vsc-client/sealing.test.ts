// Sealing the protected information under the protection key (DESIGN "Keys and secrets").
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { SealError, openProtectedInformation, sealProtectedInformation } from '../../src/vsc-client/sealing.js';
import { concatBytes, toHex, uintToBytes, utf8 } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const cardId = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const plaintext = utf8('PIV PIN 123456, PUK 12345678, card key ...');

function expectSealError(fn: () => unknown): SealError {
  let error: unknown;
  try {
    fn();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(SealError);
  const sealError = error as SealError;
  expect(sealError.code).toBe('seal.open');
  expect(sealError.exitCode).toBe(ExitCode.authenticationFailed);
  expect(sealError.message).not.toContain(toHex(key));
  return sealError;
}

describe('sealProtectedInformation / openProtectedInformation', () => {
  it('round-trips, with the layout nonce(24) ‖ XChaCha20-Poly1305 under AD "vsc-sealed/1" ‖ card id ‖ version', () => {
    const sealed = sealProtectedInformation(key, cardId, 7n, plaintext);
    expect(sealed).toHaveLength(24 + plaintext.length + 16);
    expect(toHex(openProtectedInformation(key, cardId, 7n, sealed))).toBe(toHex(plaintext));
    const ad = concatBytes(utf8('vsc-sealed/1'), cardId, uintToBytes(7n, 8));
    const opened = xchacha20poly1305(key, sealed.subarray(0, 24), ad).decrypt(sealed.subarray(24));
    expect(toHex(opened)).toBe(toHex(plaintext));
  });

  it('round-trips random contents and versions, with a fresh nonce each time', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (data, version) => {
        const a = sealProtectedInformation(key, cardId, version, data);
        const b = sealProtectedInformation(key, cardId, version, data);
        expect(toHex(a.subarray(0, 24))).not.toBe(toHex(b.subarray(0, 24)));
        expect(toHex(openProtectedInformation(key, cardId, version, a))).toBe(toHex(data));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a wrong key, card id or version', () => {
    const sealed = sealProtectedInformation(key, cardId, 7n, plaintext);
    const otherKey = key.slice();
    otherKey[0]! ^= 1;
    const otherCard = cardId.slice();
    otherCard[15]! ^= 0x80;
    expectSealError(() => openProtectedInformation(otherKey, cardId, 7n, sealed));
    expectSealError(() => openProtectedInformation(key, otherCard, 7n, sealed));
    expectSealError(() => openProtectedInformation(key, cardId, 8n, sealed));
    expectSealError(() => openProtectedInformation(key, cardId, 6n, sealed));
  });

  it('refuses any flipped bit', () => {
    const sealed = sealProtectedInformation(key, cardId, 1n, plaintext);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sealed.length * 8 - 1 }), (bit) => {
        const tampered = sealed.slice();
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expectSealError(() => openProtectedInformation(key, cardId, 1n, tampered));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses truncated or extended sealed information', () => {
    const sealed = sealProtectedInformation(key, cardId, 1n, plaintext);
    for (const length of [0, 1, 24, 39, sealed.length - 1]) {
      expectSealError(() => openProtectedInformation(key, cardId, 1n, sealed.subarray(0, length)));
    }
    expectSealError(() => openProtectedInformation(key, cardId, 1n, concatBytes(sealed, Uint8Array.of(0))));
  });

  it('checks its arguments', () => {
    expect(() => sealProtectedInformation(new Uint8Array(31), cardId, 1n, plaintext)).toThrow(/32-byte protection key, got 31 bytes/);
    expect(() => sealProtectedInformation(key, new Uint8Array(8), 1n, plaintext)).toThrow(/16-byte card id, got 8 bytes/);
    expect(() => sealProtectedInformation(key, cardId, -1n, plaintext)).toThrow(RangeError);
    expect(() => sealProtectedInformation(key, cardId, 1n << 64n, plaintext)).toThrow(RangeError);
    expect(() => sealProtectedInformation(key, cardId, 1 as unknown as bigint, plaintext)).toThrow(/version as a bigint/);
    expect(() => openProtectedInformation(key, cardId, 1n, 'x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('a wiped key', () => {
  it('is refused: information sealed under zeros would reach the server unopenable', () => {
    expect(() => sealProtectedInformation(new Uint8Array(32), new Uint8Array(16).fill(1), 1n, new Uint8Array(8))).toThrow(/protection key of zeros/);
  });
});
