// Implementation authentication (patent [0042]-[0047], [0087], DESIGN "Keys and secrets").
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import {
  AS1_LENGTH,
  CHALLENGE_NONCE_LENGTH,
  keyfileProof,
  keyfileSecretFor,
  masterProof,
  newChallengeNonce,
  verifyProof,
} from '../../src/vsc-protocol/implementation-auth.js';
import { concatBytes, toHex, utf8 } from '../../src/bytes/index.js';

const bytes = (length: number, start: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
const masterKey = bytes(32, 0x10);
const keyfileSecret = bytes(32, 0x40);
const ri1 = bytes(CHALLENGE_NONCE_LENGTH, 1);
const ri2 = bytes(CHALLENGE_NONCE_LENGTH, 101);

describe('challenge proofs', () => {
  it('are HMAC-SHA256 over domain ‖ ri1 ‖ ri2 ‖ serial (cross-checked with @noble/hashes)', () => {
    expect(toHex(masterProof(masterKey, ri1, ri2, 'VSC-0001'))).toBe(
      toHex(hmac(nobleSha256, masterKey, concatBytes(utf8('vsc-impl-master/1'), ri1, ri2, utf8('VSC-0001')))),
    );
    const as1 = bytes(AS1_LENGTH, 0x33);
    expect(toHex(keyfileProof(as1, ri1, ri2, 'VSC-0001'))).toBe(
      toHex(hmac(nobleSha256, as1, concatBytes(utf8('vsc-impl-keyfile/1'), ri1, ri2, utf8('VSC-0001')))),
    );
  });

  it('differ per serial, ri1, ri2 and key', () => {
    for (const prove of [
      (key: Uint8Array, a: Uint8Array, b: Uint8Array, s: string) => masterProof(key, a, b, s),
      (key: Uint8Array, a: Uint8Array, b: Uint8Array, s: string) => keyfileProof(key.subarray(0, AS1_LENGTH), a, b, s),
    ]) {
      const key = masterKey;
      const base = toHex(prove(key, ri1, ri2, 'VSC-0001'));
      const variants = [
        prove(key, ri1, ri2, 'VSC-0002'),
        prove(key, ri2, ri2, 'VSC-0001'),
        prove(key, ri1, ri1, 'VSC-0001'),
        prove(key, ri2, ri1, 'VSC-0001'),
        prove(bytes(32, 0x11), ri1, ri2, 'VSC-0001'),
      ].map(toHex);
      for (const variant of variants) expect(variant).not.toBe(base);
      expect(new Set(variants).size).toBe(variants.length);
    }
  });

  it('verifyProof accepts the expected proof only', () => {
    const expected = masterProof(masterKey, ri1, ri2, 'VSC-0001');
    expect(verifyProof(expected, expected.slice())).toBe(true);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (bit) => {
        const received = expected.slice();
        received[bit >> 3]! ^= 1 << (bit & 7);
        expect(verifyProof(expected, received)).toBe(false);
      }),
    );
    expect(verifyProof(expected, expected.subarray(0, 31))).toBe(false);
    expect(verifyProof(expected, new Uint8Array(0))).toBe(false);
  });

  it('checks nonce, key and serial arguments', () => {
    expect(() => masterProof(masterKey, ri1.subarray(0, 16), ri2, 'S')).toThrow(/32-byte server nonce ri1, got 16 bytes/);
    expect(() => masterProof(masterKey, ri1, new Uint8Array(33), 'S')).toThrow(/client nonce ri2, got 33 bytes/);
    expect(() => masterProof(new Uint8Array(16), ri1, ri2, 'S')).toThrow(/32-byte master key/);
    expect(() => keyfileProof(new Uint8Array(32), ri1, ri2, 'S')).toThrow(/16-byte keyfile secret as1/);
    expect(() => masterProof(masterKey, ri1, ri2, '')).toThrow(/non-empty serial/);
    expect(newChallengeNonce()).toHaveLength(CHALLENGE_NONCE_LENGTH);
    expect(toHex(newChallengeNonce())).not.toBe(toHex(newChallengeNonce()));
  });
});

describe('keyfile secrets (the keyfile itself: keyfile.test.ts)', () => {
  it('derive as1 as the first 16 bytes of HMAC-SHA256(keyfileSecret, "vsc-as1/1" ‖ installId)', () => {
    const as1 = keyfileSecretFor(keyfileSecret, 'install-1');
    expect(as1).toHaveLength(16);
    expect(toHex(as1)).toBe(toHex(hmac(nobleSha256, keyfileSecret, utf8('vsc-as1/1install-1')).subarray(0, 16)));
    expect(toHex(keyfileSecretFor(keyfileSecret, 'install-2'))).not.toBe(toHex(as1));
  });
});
