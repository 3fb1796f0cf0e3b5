// Write of patent 003 [0059] over the real VSC applet: the example trace of [0054]-[0055] (digests computed with
// Python's hashlib, signatures checked with @noble/curves), and each step's failure as a RentalError naming it.
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, uintToBytes, utf8 } from '../../src/bytes/index.js';
import { ConditionsNotSatisfiedError } from '../../src/card-client/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { recordDigest, verifyRecord, type AuditRecord } from '../../src/rental/audit-record.js';
import { RentalError } from '../../src/rental/rental-error.js';
import { writeRecord, type RentalCard } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

async function rejection(promise: Promise<unknown>): Promise<RentalError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RentalError);
  expect((error as Error).message).not.toContain('\n');
  return error as RentalError;
}

describe('the smart card\'s SignAndIncrement and GetCounter: the example trace of [0054]-[0055]', () => {
  it('counter 6: Signature1 signs hash(hash("m1"), 6), Signature2 hash(hash("m2"), 7), int1 gets 8', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: 6n });
    const signature1 = await rental.signAndIncrement(sha256(utf8('m1')));
    const signature2 = await rental.signAndIncrement(sha256(utf8('m2')));
    const int1 = await rental.getCounter();
    // python3: sha256(sha256(b'm1').digest() + (6).to_bytes(16, 'big')), and likewise m2 with 7
    const h1Prime = fromHex('bb62edb24adf0751ccfa9bc69f86d436433d3c488b0e165965069293e261b601');
    const h2Prime = fromHex('62a2478fd146bdb169e83990291beb2d2aced5455a34bd0320bc32c32279ceb1');
    expect(toHex(sha256(sha256(utf8('m1')), uintToBytes(6n, 16)))).toBe(toHex(h1Prime));
    expect([signature1.counter, signature2.counter, int1]).toEqual([6n, 7n, 8n]);
    expect(ed25519.verify(signature1.signature, h1Prime, trustRoot.publicKey)).toBe(true);
    expect(ed25519.verify(signature2.signature, h2Prime, trustRoot.publicKey)).toBe(true);
    // Each signature binds its counter: Signature1 is not a signature of hash(hash("m1"), 7).
    expect(ed25519.verify(signature1.signature, sha256(sha256(utf8('m1')), uintToBytes(7n, 16)), trustRoot.publicKey)).toBe(false);
  });
});

describe('Write ([0059])', () => {
  it('runs steps [1]-[10]: a fresh nonce, the card\'s counter c - 1, a signature checked against the trust root, appended', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: 41n });
    const appended: AuditRecord[] = [];
    const record = await writeRecord('WP 15 minutes', { card: rental, trustRoot, append: (r) => void appended.push(r) });
    expect(record.counter).toBe(41n);
    expect(record.nonce).toHaveLength(16);
    expect(record.text).toBe('WP 15 minutes');
    expect(appended).toEqual([record]);
    expect(verifyRecord(record, trustRoot)).toBe(true);
    expect(ed25519.verify(record.signature, recordDigest(record, trustRoot), trustRoot.publicKey)).toBe(true);
    expect(await rental.getCounter()).toBe(42n);
    const second = await writeRecord('WP 15 minutes', { card: rental, trustRoot, append: (r) => void appended.push(r) });
    expect(second.counter).toBe(42n);
    expect(toHex(second.nonce)).not.toBe(toHex(record.nonce));
  });

  it('waits for an asynchronous append (the fsync) before it returns', async () => {
    const { rental, trustRoot } = await vscRentalCard();
    let durable = false;
    await writeRecord('x', { card: rental, trustRoot, append: () => new Promise<void>((resolve) => setTimeout(() => { durable = true; resolve(); }, 20)) });
    expect(durable).toBe(true);
  });

  it('writes on a universal-key card with the serial in the digest ([0101] step [6])', async () => {
    const { rental, trustRoot } = await vscRentalCard({ keyMode: 'universal', serial: 'SN-UNIVERSAL-7' });
    const record = await writeRecord('WP 15 minutes', { card: rental, trustRoot, append: () => undefined });
    expect(verifyRecord(record, trustRoot)).toBe(true);
    expect(verifyRecord(record, { ...trustRoot, serial: 'SN-UNIVERSAL-8' })).toBe(false);
  });

  it('step [3]: a card that refuses SIGN AND INCREMENT (counter exhausted, [0057]) is reason card', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: (1n << 128n) - 1n });
    const error = await rejection(writeRecord('x', { card: rental, trustRoot, append: () => undefined }));
    expect(error).toMatchObject({ reason: 'card', step: 3, code: 'rental.card', exitCode: ExitCode.refusedByState });
    expect(error.message).toMatch(/^Write step \[3\]: SignAndIncrement failed: /);
    expect(error.cause).toBeInstanceOf(ConditionsNotSatisfiedError);
  });

  it('step [4]: a GetCounter that fails is reason card', async () => {
    const { rental, trustRoot } = await vscRentalCard();
    const card: RentalCard = { signAndIncrement: (h) => rental.signAndIncrement(h), getCounter: () => Promise.reject(new Error('card removed')) };
    const error = await rejection(writeRecord('x', { card, trustRoot, append: () => undefined }));
    expect(error).toMatchObject({ reason: 'card', step: 4 });
    expect(error.message).toBe('Write step [4]: GetCounter failed: card removed');
  });

  it('step [5]: another signature between SignAndIncrement and GetCounter is reason counter (the card said c - 2)', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: 10n });
    const appended: AuditRecord[] = [];
    const card: RentalCard = {
      signAndIncrement: async (h) => {
        const answer = await rental.signAndIncrement(h);
        await rental.signAndIncrement(new Uint8Array(32)); // someone else's, unserialised
        return answer;
      },
      getCounter: () => rental.getCounter(),
    };
    const error = await rejection(writeRecord('x', { card, trustRoot, append: (r) => void appended.push(r) }));
    expect(error).toMatchObject({ reason: 'counter', step: 5 });
    expect(error.message).toBe('Write step [5]: the card says it signed with counter 10, but GetCounter() - 1 is 11');
    expect(appended).toEqual([]);
  });

  it('step [5]: a counter that did not move is reason counter', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: 0n });
    const card: RentalCard = { signAndIncrement: (h) => rental.signAndIncrement(h), getCounter: async () => 0n };
    expect(await rejection(writeRecord('x', { card, trustRoot, append: () => undefined }))).toMatchObject({ reason: 'counter', step: 5 });
  });

  it('step [7]: a card other than the keyfile\'s is reason wrong-card, and nothing is appended', async () => {
    const { rental } = await vscRentalCard({ serial: 'SN-OTHER' });
    const keyfiles = await vscRentalCard({ serial: 'SN-RENT-1' });
    const appended: AuditRecord[] = [];
    const error = await rejection(writeRecord('x', { card: rental, trustRoot: keyfiles.trustRoot, append: (r) => void appended.push(r) }));
    expect(error).toMatchObject({ reason: 'wrong-card', step: 7, code: 'rental.wrong-card' });
    expect(error.message).toContain('not the keyfile\'s card');
    expect(appended).toEqual([]);
  });

  it('step [7]: a card whose answer claims another counter than it signed is caught by the signature check', async () => {
    const { rental, trustRoot } = await vscRentalCard({ counter: 5n });
    const card: RentalCard = {
      signAndIncrement: async (h) => ({ ...(await rental.signAndIncrement(h)), counter: 6n }),
      getCounter: async () => 7n,
    };
    expect(await rejection(writeRecord('x', { card, trustRoot, append: () => undefined }))).toMatchObject({ reason: 'wrong-card', step: 7 });
  });

  it('step [9]: an append that fails is reason storage and keeps the cause', async () => {
    const { rental, trustRoot } = await vscRentalCard();
    const cause = new Error('ENOSPC');
    const error = await rejection(writeRecord('x', { card: rental, trustRoot, append: () => Promise.reject(cause) }));
    expect(error).toMatchObject({ reason: 'storage', step: 9 });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('Write step [9]: appending the record to the trail failed: ENOSPC');
  });

  it('step [1]: a nonce source that gives other than 16 bytes, and bad text, are bad input (exit 2) before the card is used', async () => {
    const { rental, trustRoot } = await vscRentalCard();
    expect(await rejection(writeRecord('x', { card: rental, trustRoot, append: () => undefined, nonce: () => new Uint8Array(8) }))).toMatchObject({ reason: 'input', step: 1, exitCode: ExitCode.usage });
    expect(await rejection(writeRecord('\ud800', { card: rental, trustRoot, append: () => undefined }))).toMatchObject({ reason: 'input', exitCode: ExitCode.usage });
    expect(await rejection(writeRecord('x', { card: rental, trustRoot: { ...trustRoot, publicKey: new Uint8Array(31) }, append: () => undefined }))).toMatchObject({ reason: 'input' });
    expect(await rental.getCounter()).toBe(0n);
  });
});
