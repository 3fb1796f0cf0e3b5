// Signature checks at worker threads (validate-trail.ts with verify-pool.ts): the same answers as checking in the
// main thread, the first bad signature by index, bad input refused, and a closed pool refusing work.
import { afterAll, describe, expect, it } from 'vitest';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { SignatureVerifierPool } from '../../src/rental/verify-pool.js';

const key = ed25519KeyFromSeed(generateEd25519Seed());
const pool = new SignatureVerifierPool(2);
afterAll(() => pool.close());

function batch(count: number) {
  const digests = new Uint8Array(count * 32);
  const signatures = new Uint8Array(count * 64);
  for (let i = 0; i < count; i++) {
    const digest = Uint8Array.from({ length: 32 }, (_, j) => (i * 7 + j) & 0xff);
    digests.set(digest, i * 32);
    signatures.set(key.sign(digest), i * 64);
  }
  return { digests, signatures };
}

describe('SignatureVerifierPool', () => {
  it('answers -1 for a batch of good signatures, and the index of the first bad one otherwise', async () => {
    const good = batch(100);
    expect(await pool.verify(key.publicKey, good.digests.slice(), good.signatures.slice(), 100)).toBe(-1);
    for (const bad of [0, 41, 99]) {
      const { digests, signatures } = batch(100);
      signatures[bad * 64 + 10]! ^= 0x01;
      if (bad === 41) digests[60 * 32]! ^= 0x80; // a later bad digest does not hide the first bad signature
      expect(await pool.verify(key.publicKey, digests, signatures, 100)).toBe(bad);
    }
  });

  it('runs many batches at once over both workers, each answered for its own batch', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const { digests, signatures } = batch(50);
      if (i % 5 === 0) signatures[(i % 50) * 64]! ^= 0xff;
      return pool.verify(key.publicKey, digests, signatures, 50).then((bad) => [i, bad]);
    });
    for (const [i, bad] of await Promise.all(jobs)) expect(bad).toBe(i! % 5 === 0 ? i! % 50 : -1);
  });

  it('fails every signature against another key, a malformed key, and mismatched buffers', async () => {
    const { digests, signatures } = batch(3);
    const other = ed25519KeyFromSeed(generateEd25519Seed());
    expect(await pool.verify(other.publicKey, digests.slice(), signatures.slice(), 3)).toBe(0);
    expect(await pool.verify(new Uint8Array(31), digests.slice(), signatures.slice(), 3)).toBe(0);
    await expect(pool.verify(key.publicKey, digests.slice(0, 64), signatures.slice(), 3)).rejects.toThrow(/expected 3 digests/);
    expect(await pool.verify(key.publicKey, new Uint8Array(0), new Uint8Array(0), 0)).toBe(-1);
  });

  it('a closed pool refuses work; a pool needs at least one worker', async () => {
    const closing = new SignatureVerifierPool(1);
    const { digests, signatures } = batch(1);
    expect(await closing.verify(key.publicKey, digests.slice(), signatures.slice(), 1)).toBe(-1);
    await closing.close();
    await expect(closing.verify(key.publicKey, digests, signatures, 1)).rejects.toThrow(/closed/);
    expect(() => new SignatureVerifierPool(0)).toThrow(/at least one/);
  });
});
