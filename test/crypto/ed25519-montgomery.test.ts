// Ed25519 keys as X25519 keys (src/crypto/ed25519-montgomery.ts): the public map is RFC 7748 section 4.1's
// u = (1 + y) / (1 - y) mod p, recomputed here with BigInt; the private map is what X25519 turns into the same u.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, ed25519PublicKeyToX25519, ed25519SeedToX25519, generateEd25519Seed, x25519PublicKey } from '../../src/crypto/index.js';
import { BoundaryError } from '../../src/errors/index.js';
import { thrown } from '../support/index.js';

const P = 2n ** 255n - 19n;

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let b = base % P, e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P;
  return result;
}

/** RFC 7748 4.1: the Montgomery u of an Edwards point, from its encoded y (little-endian, sign bit cleared). */
function montgomeryU(publicKey: Uint8Array): string {
  const bytes = publicKey.slice();
  bytes[31]! &= 0x7f;
  const y = bytes.reduceRight((value, byte) => (value << 8n) | BigInt(byte), 0n);
  const u = ((1n + y) * power((1n - y + P) % P, P - 2n)) % P;
  return toHex(Uint8Array.from({ length: 32 }, (_, i) => Number((u >> BigInt(8 * i)) & 0xffn)));
}

describe('Ed25519 keys as X25519 keys', () => {
  it.each([
    ['RFC 8032 TEST 1', fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')],
    ['RFC 8032 TEST 2', fromHex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb')],
    ['a random seed', generateEd25519Seed()],
  ])('%s: the public map is the birational map, and the private map gives the same public key', (_name, seed) => {
    const publicKey = ed25519KeyFromSeed(seed).publicKey;
    expect(toHex(ed25519PublicKeyToX25519(publicKey))).toBe(montgomeryU(publicKey));
    expect(toHex(x25519PublicKey(ed25519SeedToX25519(seed)))).toBe(montgomeryU(publicKey));
  });

  it('refuses keys of the wrong length and bytes that are no curve point', () => {
    expect(thrown(() => ed25519PublicKeyToX25519(new Uint8Array(31)))).toBeInstanceOf(BoundaryError);
    expect(thrown(() => ed25519SeedToX25519(new Uint8Array(33)))).toBeInstanceOf(BoundaryError);
    expect(thrown(() => ed25519PublicKeyToX25519(fromHex('ff'.repeat(32))))).toBeInstanceOf(Error);
  });
});
