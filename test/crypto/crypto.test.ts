// The node:crypto facade cross-checked against @noble (RFC 8032 7.1 and FIPS 180-4 vectors).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ed25519KeyFromSeed, ed25519Verify, generateEd25519Seed, sha256 } from '../../src/crypto/index.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';

describe('ed25519', () => {
  it('matches RFC 8032 7.1 TEST 1 (empty message)', () => {
    const key = ed25519KeyFromSeed(fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    expect(toHex(key.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(toHex(key.sign(new Uint8Array(0)))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('agrees with @noble on random keys and messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, message) => {
        const key = ed25519KeyFromSeed(seed);
        expect(toHex(key.publicKey)).toBe(toHex(ed25519.getPublicKey(seed)));
        const signature = key.sign(message);
        expect(toHex(signature)).toBe(toHex(ed25519.sign(message, seed)));
        expect(ed25519Verify(key.publicKey, message, signature)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('rejects wrong signatures, messages and malformed inputs without throwing', () => {
    const key = ed25519KeyFromSeed(generateEd25519Seed());
    const signature = key.sign(utf8('m'));
    expect(ed25519Verify(key.publicKey, utf8('n'), signature)).toBe(false);
    const flipped = Uint8Array.from(signature);
    flipped[10]! ^= 1;
    expect(ed25519Verify(key.publicKey, utf8('m'), flipped)).toBe(false);
    expect(ed25519Verify(key.publicKey, utf8('m'), signature.subarray(0, 63))).toBe(false);
    expect(ed25519Verify(new Uint8Array(31), utf8('m'), signature)).toBe(false);
    expect(() => ed25519KeyFromSeed(new Uint8Array(31))).toThrow(/expected a 32-byte Ed25519 seed, got 31 bytes/);
  });
});

describe('sha256', () => {
  it('matches FIPS 180-4 "abc" and @noble over split inputs', () => {
    expect(toHex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }), (parts) => {
        expect(toHex(sha256(...parts))).toBe(toHex(nobleSha256(concatBytes(...parts))));
      }),
    );
  });
});
