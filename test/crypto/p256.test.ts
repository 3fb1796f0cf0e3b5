// P-256 ECDSA and ECDH, against RFC 6979 A.2.5 and cross-checked with node:crypto (OpenSSL).
import { createECDH, createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isValidP256PrivateKey, isValidP256PublicKey, p256DerivePublicKey, p256GenerateKey, p256SharedSecret, p256Sign } from '../../src/crypto/p256.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';

/** RFC 6979 A.2.5: the P-256 private key and its public point. */
const RFC6979_KEY = fromHex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721');
const RFC6979_PUBLIC = fromHex(
  '04' + '60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6' + '7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299',
);

const digest = (algorithm: string, message: string | Uint8Array): Uint8Array => Uint8Array.from(createHash(algorithm).update(message).digest());

/** DER SEQUENCE { INTEGER r, INTEGER s } for 32-byte r and s. */
function derSignature(rHex: string, sHex: string): string {
  const integer = (hex: string): string => {
    let body = hex.replace(/^(00)+/, '');
    if (parseInt(body.slice(0, 2), 16) >= 0x80) body = '00' + body;
    return '02' + (body.length / 2).toString(16).padStart(2, '0') + body;
  };
  const content = integer(rHex.toLowerCase()) + integer(sHex.toLowerCase());
  return '30' + (content.length / 2).toString(16).padStart(2, '0') + content;
}

function publicKeyObject(point: Uint8Array) {
  const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) }, format: 'jwk' });
}

describe('p256Sign', () => {
  it('derives the RFC 6979 A.2.5 public key', () => {
    expect(toHex(p256DerivePublicKey(RFC6979_KEY))).toBe(toHex(RFC6979_PUBLIC));
  });

  it('matches RFC 6979 A.2.5 for SHA-256("sample") (noble derives k with SHA-256, so only this row applies)', () => {
    const signature = p256Sign(RFC6979_KEY, digest('sha256', 'sample'));
    expect(toHex(signature)).toBe(
      derSignature('efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716', 'f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8'),
    );
  });

  // FIPS 186-5 6.4.1: a longer digest keeps its leftmost 256 bits, a shorter one is the same integer.
  // OpenSSL applies the same rule when it verifies, so it checks both directions.
  it.each(['sha1', 'sha224', 'sha384', 'sha512'])('a %s digest is truncated or padded as OpenSSL expects', (hash) => {
    const signature = p256Sign(RFC6979_KEY, digest(hash, 'sample'));
    expect(verify(hash, utf8('sample'), publicKeyObject(RFC6979_PUBLIC), signature)).toBe(true);
  });

  it('signatures verify with node:crypto (OpenSSL) on random keys and messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (message) => {
        const { privateKey, publicKey } = p256GenerateKey();
        const signature = p256Sign(privateKey, digest('sha256', message));
        expect(verify('sha256', message, publicKeyObject(publicKey), signature)).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('a signature over another digest does not verify', () => {
    const { privateKey, publicKey } = p256GenerateKey();
    const signature = p256Sign(privateKey, digest('sha256', 'm1'));
    expect(verify('sha256', utf8('m2'), publicKeyObject(publicKey), signature)).toBe(false);
    expect(verify('sha256', utf8('m1'), publicKeyObject(publicKey), signature)).toBe(true);
  });

  it('refuses malformed keys and digests without echoing the key', () => {
    expect(() => p256Sign(new Uint8Array(31), new Uint8Array(32))).toThrow(/expected a 32-byte P-256 private key, got 31 bytes/);
    expect(() => p256Sign(new Uint8Array(32), new Uint8Array(32))).toThrow(/1\.\.n-1/);
    expect(() => p256Sign(new Uint8Array(32).fill(0xff), new Uint8Array(32))).toThrow(/1\.\.n-1/);
    expect(() => p256Sign(RFC6979_KEY, new Uint8Array(0))).toThrow(/expected a non-empty digest, got 0 bytes/);
    expect(isValidP256PrivateKey(RFC6979_KEY)).toBe(true);
    expect(isValidP256PrivateKey(new Uint8Array(32))).toBe(false);
  });
});

describe('p256SharedSecret', () => {
  it('agrees with node:crypto ECDH in both directions', () => {
    for (let i = 0; i < 10; i++) {
      const mine = p256GenerateKey();
      const theirs = createECDH('prime256v1');
      const theirPoint = Uint8Array.from(theirs.generateKeys());
      const expected = toHex(theirs.computeSecret(mine.publicKey));
      expect(toHex(p256SharedSecret(mine.privateKey, theirPoint))).toBe(expected);
    }
  });

  it('refuses points off the curve, compressed points, infinity and wrong lengths', () => {
    const { privateKey, publicKey } = p256GenerateKey();
    const offCurve = Uint8Array.from(publicKey);
    offCurve[64]! ^= 1;
    const compressed = concatBytes(Uint8Array.of(2 + (publicKey[64]! & 1)), publicKey.subarray(1, 33));
    for (const bad of [offCurve, compressed, new Uint8Array(65), concatBytes(Uint8Array.of(4), new Uint8Array(64)), publicKey.subarray(0, 64)]) {
      expect(isValidP256PublicKey(bad)).toBe(false);
      expect(() => p256SharedSecret(privateKey, bad)).toThrow(/expected an uncompressed P-256 point on the curve/);
    }
    expect(isValidP256PublicKey(publicKey)).toBe(true);
  });

  it('generates distinct valid keys', () => {
    const a = p256GenerateKey();
    const b = p256GenerateKey();
    expect(toHex(a.privateKey)).not.toBe(toHex(b.privateKey));
    expect(a.publicKey).toHaveLength(65);
    expect(toHex(p256DerivePublicKey(a.privateKey))).toBe(toHex(a.publicKey));
  });
});
