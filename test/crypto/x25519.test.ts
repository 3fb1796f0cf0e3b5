// X25519 on node:crypto against RFC 7748 (sections 5.2 and 6.1) and cross-checked against @noble/curves
// on random, non-canonical and low-order inputs.
import { describe, expect, it } from 'vitest';
import { BoundaryError } from '../../src/errors/index.js';
import fc from 'fast-check';
import { x25519 as noble } from '@noble/curves/ed25519.js';
import { generateX25519KeyPair, generateX25519PrivateKey, x25519PrivateKey, x25519PublicKey, x25519SharedSecret } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/bytes/index.js';

const P = 2n ** 255n - 19n;

function le(value: bigint): Uint8Array {
  return fromHex(value.toString(16).padStart(64, '0')).reverse();
}

// u of order 1, 2, 4 and 8 (RFC 7748 section 6.1 "low order"; libsodium's blocklist).
const LOW_ORDER_U = [
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
  P,
  P + 1n,
];

function nobleRefuses(privateKey: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    noble.getSharedSecret(privateKey, publicKey);
    return false;
  } catch {
    return true;
  }
}

describe('x25519 RFC 7748 vectors', () => {
  it('section 5.2: the two scalar-multiplication vectors', () => {
    const vectors: [string, string, string][] = [
      [
        'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
        'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
        'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
      ],
      [
        '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
        'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
        '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
      ],
    ];
    for (const [scalar, u, out] of vectors) expect(toHex(x25519SharedSecret(fromHex(scalar), fromHex(u)))).toBe(out);
  });

  it('section 5.2: the iterated vector after 1 and 1,000 iterations', () => {
    let k: Uint8Array = fromHex('0900000000000000000000000000000000000000000000000000000000000000');
    let u: Uint8Array = k.slice();
    for (let i = 1; i <= 1000; i++) {
      const next = x25519SharedSecret(k, u);
      u = k;
      k = next;
      if (i === 1) expect(toHex(k)).toBe('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    expect(toHex(k)).toBe('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
  });

  it('section 6.1: Alice and Bob', () => {
    const alice = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bob = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    expect(toHex(x25519PublicKey(alice))).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(toHex(x25519PrivateKey(bob).publicKey)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(toHex(x25519SharedSecret(alice, x25519PublicKey(bob)))).toBe(shared);
    expect(toHex(x25519PrivateKey(bob).sharedSecret(x25519PublicKey(alice)))).toBe(shared);
  });
});

describe('x25519 against @noble/curves', () => {
  it('agrees on public keys and shared secrets for random scalars and u', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (scalar, u) => {
        expect(toHex(x25519PublicKey(scalar))).toBe(toHex(noble.getPublicKey(scalar)));
        if (nobleRefuses(scalar, u)) {
          expect(() => x25519SharedSecret(scalar, u)).toThrow(RangeError);
        } else {
          expect(toHex(x25519SharedSecret(scalar, u))).toBe(toHex(noble.getSharedSecret(scalar, u)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('agrees on u with bit 255 set and on non-canonical u in p..2^255-1 (RFC 7748 section 5)', () => {
    const scalar = generateX25519KeyPair().privateKey;
    const inputs = [P + 2n, P + 5n, P + 18n, 2n ** 255n - 1n].map(le);
    const random = generateX25519KeyPair().publicKey;
    const highBit = random.slice();
    highBit[31]! |= 0x80;
    inputs.push(highBit);
    for (const u of inputs) expect(toHex(x25519SharedSecret(scalar, u))).toBe(toHex(noble.getSharedSecret(scalar, u)));
    expect(toHex(x25519SharedSecret(scalar, highBit))).toBe(toHex(x25519SharedSecret(scalar, random)));
  });

  it('refuses every low-order u, with or without bit 255, exactly where noble does', () => {
    const key = generateX25519PrivateKey();
    const raw = generateX25519KeyPair().privateKey;
    for (const value of LOW_ORDER_U) {
      for (const u of [le(value), Uint8Array.from(le(value), (b, i) => (i === 31 ? b | 0x80 : b))]) {
        expect(nobleRefuses(raw, u)).toBe(true);
        expect(() => key.sharedSecret(u)).toThrow(/low order/);
        expect(() => x25519SharedSecret(raw, u)).toThrow(RangeError);
      }
    }
  });

  it('generated keys are consistent: the raw pair, the opaque key and noble agree', () => {
    const pair = generateX25519KeyPair();
    expect(toHex(noble.getPublicKey(pair.privateKey))).toBe(toHex(pair.publicKey));
    const ephemeral = generateX25519PrivateKey();
    expect(toHex(ephemeral.sharedSecret(pair.publicKey))).toBe(toHex(noble.getSharedSecret(pair.privateKey, ephemeral.publicKey)));
    expect(toHex(x25519PrivateKey(pair.privateKey).publicKey)).toBe(toHex(pair.publicKey));
  });
});

describe('x25519 key generation', () => {
  it('makes 30,000 keys back to back without the event loop turning (no generateKeyPairSync + JWK export deadlock)', () => {
    // On Node 20 that pattern hung a process like this one after about 14,000 keys.
    const seen = new Set<string>();
    for (let i = 0; i < 30_000; i++) {
      const key = generateX25519PrivateKey();
      if (i % 3_000 === 0) seen.add(toHex(key.publicKey));
    }
    expect(seen.size).toBe(10);
  }, 60_000);
});

describe('x25519 malformed inputs', () => {
  it('names the expected length and what came in, never the key bytes', () => {
    const key = generateX25519PrivateKey();
    expect(() => x25519PrivateKey(new Uint8Array(31))).toThrow('expected a 32-byte X25519 private key, got 31 bytes');
    expect(() => x25519PublicKey(new Uint8Array(33))).toThrow('expected a 32-byte X25519 private key, got 33 bytes');
    expect(() => key.sharedSecret(new Uint8Array(0))).toThrow('expected a 32-byte X25519 public key, got 0 bytes');
    expect(() => key.sharedSecret('ab' as unknown as Uint8Array)).toThrow('expected a 32-byte X25519 public key, got a string');
    expect(() => x25519SharedSecret(new Uint8Array(32), new Uint8Array(64).subarray(0, 31))).toThrow(BoundaryError);
  });

  it('reads a key from a subarray at an offset', () => {
    const pair = generateX25519KeyPair();
    const padded = new Uint8Array(40);
    padded.set(pair.privateKey, 5);
    expect(toHex(x25519PublicKey(padded.subarray(5, 37)))).toBe(toHex(pair.publicKey));
  });
});
