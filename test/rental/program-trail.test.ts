// A rented program's Write and ValidateTrail through a rental server it does not trust ([0058]: "the rented
// applications do not trust the Rental Server"): every answer is checked as [0059] steps [5]-[8] and [0060] say.
// The server here is the smallest honest one (the real VSC applet in-process and a trail file), and dishonest
// variants of it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recordHash, RentalError, TrailFile, validateThroughServer, writeThroughServer, type AuditRecord, type RentalReason, type RentalServerLink } from '../../src/rental/index.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-program-trail-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** One card transaction per write, as the rental server does it, appending before it answers. */
async function honestServer(init: Parameters<typeof vscRentalCard>[0] = {}) {
  const card = await vscRentalCard(init);
  const trail = TrailFile.inDirectory(join(root, `trail-${dirs++}`));
  const link: RentalServerLink = {
    counter: () => card.rental.getCounter(),
    async write(nonce, text, expectCounter) {
      if (expectCounter !== undefined && (await card.rental.getCounter()) !== expectCounter) throw new RentalError('counter-moved' as RentalReason, 'the card\'s counter moved');
      const { counter, signature } = await card.rental.signAndIncrement(recordHash(nonce, text));
      const record: AuditRecord = { nonce, text, counter, signature };
      trail.append(record);
      return { record, counterAfter: await card.rental.getCounter() };
    },
  };
  return { ...card, trail, link };
}

async function refusal(promise: Promise<unknown>, reason: RentalReason): Promise<RentalError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RentalError);
  expect((error as RentalError).reason).toBe(reason);
  return error as RentalError;
}

describe('Write through the rental server ([0058], [0059])', () => {
  it('returns the record the server appended, signed by the keyfile\'s card at the next counter', async () => {
    const { link, trustRoot, trail } = await honestServer({ counter: 7n });
    const record = await writeThroughServer(link, 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3', trustRoot);
    expect(record.counter).toBe(7n);
    expect(trail.readAll()).toEqual([record]);
  });

  it('refuses a server that answers another text or nonce than the one sent (step [8])', async () => {
    const { link, trustRoot } = await honestServer();
    const swapped: RentalServerLink = { ...link, write: (nonce, _text, expect) => link.write(nonce, 'something else', expect) };
    expect((await refusal(writeThroughServer(swapped, 'mine', trustRoot), 'wrong-card')).step).toBe(8);
    const renonced: RentalServerLink = { ...link, write: (nonce, text, expect) => link.write(nonce.map((b) => b ^ 1), text, expect) };
    expect((await refusal(writeThroughServer(renonced, 'mine', trustRoot), 'wrong-card')).step).toBe(8);
  });

  it('refuses counters that do not agree (step [5]): the counter did not move by one, or not at the counter asked', async () => {
    const { link, trustRoot } = await honestServer({ counter: 3n });
    const lagging: RentalServerLink = { ...link, write: async (n, t, e) => ({ ...(await link.write(n, t, e)), counterAfter: 99n }) };
    expect((await refusal(writeThroughServer(lagging, 'x', trustRoot), 'counter')).step).toBe(5);
    const ignoring: RentalServerLink = { ...link, write: (n, t) => link.write(n, t) };
    expect((await refusal(writeThroughServer(ignoring, 'x', trustRoot, { expectCounter: 2n }), 'counter')).step).toBe(5);
  });

  it('refuses a record signed by another card than the keyfile\'s (step [7]), and bad input before the server sees it', async () => {
    const mine = await honestServer();
    const theirs = await honestServer({ serial: mine.trustRoot.serial });
    expect((await refusal(writeThroughServer(theirs.link, 'x', mine.trustRoot), 'wrong-card')).step).toBe(7);
    await refusal(writeThroughServer(mine.link, '\uD800 lone surrogate', mine.trustRoot), 'input');
    await refusal(writeThroughServer(mine.link, 'x', mine.trustRoot, { nonce: new Uint8Array(15) }), 'input');
    expect(await mine.rental.getCounter()).toBe(0n);
  });
});

describe('ValidateTrail through the rental server ([0060])', () => {
  it('writes Write(c) at exactly c, retrying when another program signed in between, then checks the trail it reads', async () => {
    const { link, trustRoot, trail } = await honestServer();
    await writeThroughServer(link, 'first', trustRoot);
    let interleaved = 0;
    const busy: RentalServerLink = {
      ...link,
      async write(nonce, text, expectCounter) {
        // Another program's Write lands between this program's GetCounter and its Write, twice.
        if (expectCounter !== undefined && interleaved < 2) {
          interleaved += 1;
          await writeThroughServer(link, `other program ${interleaved}`, trustRoot);
        }
        return link.write(nonce, text, expectCounter);
      },
    };
    const result = await validateThroughServer({ link: busy, trustRoot, offset: 0n, text: (c) => `validated ${c}`, records: () => trail.recordBatches() });
    expect(result).toMatchObject({ valid: true, records: 4, lastCounter: 3n });
    expect(result.record.text).toBe('validated 3');
    expect(trail.readAll().map((record) => record.text)).toEqual(['first', 'other program 1', 'other program 2', 'validated 3']);
  });

  it('gives up after its attempts when the counter keeps moving, and refuses a card below the offset (rollback)', async () => {
    const { link, trustRoot, trail } = await honestServer({ counter: 5n });
    const moving: RentalServerLink = { ...link, write: async () => { throw new RentalError('counter-moved' as RentalReason, 'moved'); } };
    await refusal(validateThroughServer({ link: moving, trustRoot, offset: 0n, text: String, records: () => trail.recordBatches(), attempts: 3 }), 'counter-moved' as RentalReason);
    await refusal(validateThroughServer({ link, trustRoot, offset: 6n, text: String, records: () => trail.recordBatches() }), 'rollback');
  });

  it('refuses a trail the server did not append to (stale): the program reads the trail itself', async () => {
    const { link, trustRoot, trail } = await honestServer();
    await writeThroughServer(link, 'kept', trustRoot);
    const forgetful: RentalServerLink = {
      ...link,
      write: async (n, t, e) => {
        const answer = await link.write(n, t, e);
        // Drop the record from the trail after answering, as a server that lies about durability would.
        const kept = trail.readAll().slice(0, -1);
        const fresh = TrailFile.inDirectory(join(root, `trail-${dirs++}`));
        for (const record of kept) fresh.append(record);
        forgotten = fresh;
        return answer;
      },
    };
    let forgotten: TrailFile | undefined;
    const error = await refusal(validateThroughServer({ link: forgetful, trustRoot, offset: 0n, text: String, records: () => forgotten!.recordBatches() }), 'stale');
    expect(error.message).toContain('counter 1');
  });
});
