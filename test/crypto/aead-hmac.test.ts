// ChaCha20-Poly1305 (RFC 8439 section 2.8.2) and HMAC-SHA256 (RFC 4231 test case 2) on node:crypto,
// cross-checked against @noble/ciphers and @noble/hashes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { AeadAuthenticationError, chacha20Poly1305Decrypt, chacha20Poly1305Encrypt, hmacSha256 } from '../../src/crypto/index.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';

describe('chacha20-poly1305', () => {
  it('matches RFC 8439 section 2.8.2', () => {
    const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = fromHex('070000004041424344454647');
    const ad = fromHex('50515253c0c1c2c3c4c5c6c7');
    const plaintext = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const sealed = chacha20Poly1305Encrypt(key, nonce, ad, plaintext);
    expect(toHex(sealed.subarray(0, 16))).toBe('d31a8d34648e60db7b86afbc53ef7ec2');
    expect(toHex(sealed.subarray(sealed.length - 16))).toBe('1ae10b594f09e26a7e902ecbd0600691');
    expect(toHex(chacha20Poly1305Decrypt(key, nonce, ad, sealed))).toBe(toHex(plaintext));
  });

  it('agrees with @noble on random keys, nonces, data and empty plaintexts', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 300 }),
        (key, nonce, ad, plaintext) => {
          const sealed = chacha20Poly1305Encrypt(key, nonce, ad, plaintext);
          expect(toHex(sealed)).toBe(toHex(chacha20poly1305(key, nonce, ad).encrypt(plaintext)));
          expect(toHex(chacha20Poly1305Decrypt(key, nonce, ad, sealed))).toBe(toHex(plaintext));
        },
      ),
    );
  });

  it('refuses a modified ciphertext, tag or associated data, and short or malformed input', () => {
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(12);
    const sealed = chacha20Poly1305Encrypt(key, nonce, utf8('ad'), utf8('message'));
    for (const index of [0, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[index]! ^= 1;
      expect(() => chacha20Poly1305Decrypt(key, nonce, utf8('ad'), bad)).toThrow(AeadAuthenticationError);
    }
    expect(() => chacha20Poly1305Decrypt(key, nonce, utf8('ae'), sealed)).toThrow(AeadAuthenticationError);
    expect(() => chacha20Poly1305Decrypt(key, nonce, utf8('ad'), sealed.subarray(0, 15))).toThrow(AeadAuthenticationError);
    expect(() => chacha20Poly1305Encrypt(key.subarray(1), nonce, utf8(''), utf8(''))).toThrow('expected a 32-byte ChaCha20-Poly1305 key, got 31 bytes');
    expect(() => chacha20Poly1305Encrypt(key, new Uint8Array(8), utf8(''), utf8(''))).toThrow('expected a 12-byte ChaCha20-Poly1305 nonce, got 8 bytes');
  });
});

describe('hmacSha256', () => {
  it('matches RFC 4231 test case 2 one-shot and in parts, and @noble on random input', () => {
    const mac = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
    expect(toHex(hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(mac);
    expect(toHex(hmacSha256(utf8('Jefe'), utf8('what do ya '), utf8('want for nothing?')))).toBe(mac);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.array(fc.uint8Array({ maxLength: 60 }), { maxLength: 4 }), (key, parts) => {
        expect(toHex(hmacSha256(key, ...parts))).toBe(toHex(hmac(sha256, key, concatBytes(...parts))));
      }),
    );
  });
});
