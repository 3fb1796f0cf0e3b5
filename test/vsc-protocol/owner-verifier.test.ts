// The stored verifier of an owner's auth key (DESIGN "Keys and secrets").
import { describe, expect, it } from 'vitest';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { authVerifier, verifierMatches } from '../../src/vsc-protocol/owner-verifier.js';
import { concatBytes, toHex, utf8 } from '../../src/bytes/index.js';

const authKey = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('owner verifier', () => {
  it('is SHA-256("vsc-auth-verifier/1" ‖ authKey)', () => {
    expect(toHex(authVerifier(authKey))).toBe(toHex(nobleSha256(concatBytes(utf8('vsc-auth-verifier/1'), authKey))));
  });

  it('matches the right key and no other', () => {
    const stored = authVerifier(authKey);
    expect(verifierMatches(authKey, stored)).toBe(true);
    const other = authKey.slice();
    other[31]! ^= 1;
    expect(verifierMatches(other, stored)).toBe(false);
    expect(verifierMatches(authKey, stored.subarray(0, 31))).toBe(false);
    expect(verifierMatches(authKey, new Uint8Array(32))).toBe(false);
  });

  it('refuses an auth key of the wrong length', () => {
    expect(() => authVerifier(new Uint8Array(31))).toThrow(/expected a 32-byte auth key, got 31 bytes/);
    expect(() => verifierMatches(new Uint8Array(33), new Uint8Array(32))).toThrow(/got 33 bytes/);
  });
});
