// The network license server (src/license/network/license-server.ts, seat-service.ts; Wibu 002 Table 1: network /
// floating, overflow, borrowable) through real HTTP on 127.0.0.1 with the card double and an injected clock.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import { acquireSeat, borrowSeat, checkBorrowed, parseSeatRecordText, returnBorrowed, type ProductSpec } from '../../../src/license/index.js';
import { LICENSOR, simpleProduct, T0 } from '../../support/index.js';
import { CardDouble } from './network-card-double.js';
import { clock, reasonOf, serve, stopAll } from './network-test-servers.js';

const DAY = 86_400;
const product = (spec: Partial<ProductSpec> = {}, code = 5) => simpleProduct(code, 'unlimited', { licenseQuantity: 2, featureMap: 0b11, ...spec });
const seat = (url: string, client: string, features = 1) => acquireSeat(url, { licensorKey: LICENSOR.publicKey, productCode: 5, features, client, heartbeatMs: 0, now: () => clock.now });
const laptop = { serial: 'LAPTOP-1', publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const };
const borrow = (url: string, client: string, seconds: number, productCode = 5) => borrowSeat(url, { licensorKey: LICENSOR.publicKey, productCode, features: 1, client, borrowerCard: laptop, seconds, now: () => clock.now });

let dir: string;
beforeEach(() => {
  clock.now = T0 + 10;
  dir = mkdtempSync(join(tmpdir(), 'vsc-network-'));
});
afterEach(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('floating seats', () => {
  it('a license of 2 seats refuses the third program, gives a program asking again its own seat, and serves the third once one returns', async () => {
    const card = new CardDouble([product()]);
    const { url } = await serve({ link: card });
    const a = await seat(url, 'host-a');
    const b = await seat(url, 'host-b');
    const records = card.trail.length;
    expect(await reasonOf(seat(url, 'host-c'))).toBe('seats');
    expect(card.trail).toHaveLength(records);
    const again = await seat(url, 'host-a');
    expect(again.leases[0]!.leaseId).toBe(a.leases[0]!.leaseId);
    await b.release();
    const c = await seat(url, 'host-c');
    expect(c.overflow).toBe(false);
    // Every grant is a card-signed use of 0 units: a, b, a again, c.
    expect(card.texts('license use')).toHaveLength(4);
    expect(card.texts('license use').every((text) => text.includes(' units 0 '))).toBe(true);
  });

  it('a lease without heartbeats runs out and frees its seat; heartbeats keep it', async () => {
    const { url } = await serve({ link: new CardDouble([product({ licenseQuantity: 1 })]) });
    const a = await seat(url, 'host-a');
    clock.now += 50;
    expect(await a.refresh()).toBe(true);
    clock.now += 50;
    expect(await reasonOf(seat(url, 'host-b'))).toBe('seats');
    clock.now += 11;
    await seat(url, 'host-b');
    expect(await a.refresh()).toBe(false);
  });

  it('a lease never outlives the item: it ends at the expiration, and the card refuses the seat after it', async () => {
    const { url } = await serve({ link: new CardDouble([product({ expiration: T0 + 40 })]) });
    const a = await seat(url, 'host-a');
    expect(a.leases[0]!.expiresAt).toBe(T0 + 40);
    clock.now = T0 + 40;
    expect(await reasonOf(seat(url, 'host-b'))).toBe('expired');
  });

  it('overflow seats beyond the quantity are flagged, logged in the trail, limited in number and in time', async () => {
    const card = new CardDouble([product({ overflow: { seats: 1 } }), product({ overflow: { seats: 1, until: T0 } }, 6)]);
    const { url } = await serve({ link: card });
    await seat(url, 'a');
    await seat(url, 'b');
    const c = await seat(url, 'c');
    expect(c.overflow).toBe(true);
    const logged = card.texts('license overflow').map(parseSeatRecordText);
    expect(logged).toEqual([expect.objectContaining({ kind: 'overflow', productCode: 5, lease: c.leases[0]!.leaseId, at: clock.now })]);
    expect(await reasonOf(seat(url, 'd'))).toBe('seats');
    // Product 6's overflow ended at T0: two seats, then none.
    const six = (client: string) => acquireSeat(url, { licensorKey: LICENSOR.publicKey, productCode: 6, client, heartbeatMs: 0, now: () => clock.now });
    await six('a');
    await six('b');
    expect(await reasonOf(six('c'))).toBe('seats');
  });

  it('the card refuses what the item does not allow before any seat is taken', async () => {
    const card = new CardDouble([product()]);
    const { url } = await serve({ link: card });
    expect(await reasonOf(seat(url, 'a', 0b100))).toBe('feature');
    expect(await reasonOf(acquireSeat(url, { licensorKey: LICENSOR.publicKey, productCode: 9, client: 'a', heartbeatMs: 0, now: () => clock.now }))).toBe('no-license');
    expect(card.trail).toHaveLength(0);
    const status = await (await fetch(`${url}/v1/status`)).json() as { leases: unknown[] };
    expect(status.leases).toEqual([]);
  });
});

describe('borrowing', () => {
  it('a borrowed seat works offline with its certificate until its end, on the borrowing card only, and stays taken until then', async () => {
    const { url } = await serve({ link: new CardDouble([product({ licenseQuantity: 1, maxBorrowSeconds: 7 * DAY })]) });
    const borrowed = await borrow(url, 'laptop', 3 * DAY);
    expect(borrowed.until).toBe(clock.now + 3 * DAY);
    const offline = { licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, ownCard: laptop };
    // Offline: the certificate's text and the licensor key the program carries, nothing else.
    expect(checkBorrowed(borrowed.text, { ...offline, now: clock.now + 3 * DAY - 1 }).until).toBe(borrowed.until);
    const cases: Array<[string, () => unknown, string]> = [
      ['at its end', () => checkBorrowed(borrowed.text, { ...offline, now: borrowed.until }), 'expired'],
      ['on another card', () => checkBorrowed(borrowed.text, { ...offline, now: clock.now, ownCard: { ...laptop, publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey } }), 'computer'],
      ['on a card of the same universal key', () => checkBorrowed(borrowed.text, { ...offline, now: clock.now, ownCard: { ...laptop, keyMode: 'universal' } }), 'computer'],
      ['for a feature not borrowed', () => checkBorrowed(borrowed.text, { ...offline, now: clock.now, features: 2 }), 'feature'],
      ['for another product', () => checkBorrowed(borrowed.text, { ...offline, now: clock.now, productCode: 6 }), 'no-license'],
    ];
    for (const [name, run, reason] of cases) expect(await reasonOf(run), name).toBe(reason);
    expect(await reasonOf(seat(url, 'desk'))).toBe('seats');
    // Asking again gives the same borrow, never a second seat.
    expect((await borrow(url, 'laptop', 3 * DAY)).id).toBe(borrowed.id);
    clock.now = borrowed.until;
    await (await seat(url, 'desk')).release();
  });

  it('an early return frees the seat at once; a copy kept still checks offline until its end, as the README says', async () => {
    const { url } = await serve({ link: new CardDouble([product({ licenseQuantity: 1, maxBorrowSeconds: 7 * DAY })]) });
    const borrowed = await borrow(url, 'laptop', DAY);
    await returnBorrowed(url, borrowed.id);
    await (await seat(url, 'desk')).release();
    expect(checkBorrowed(borrowed.text, { licensorKey: LICENSOR.publicKey, productCode: 5, now: clock.now + DAY - 1, ownCard: laptop }).id).toBe(borrowed.id);
    expect(await reasonOf(returnBorrowed(url, borrowed.id))).toBe('no-license');
  });

  it('borrowing is limited to the item\'s maxBorrowSeconds, to borrowable items, and to regular seats', async () => {
    const { url } = await serve({ link: new CardDouble([product({ licenseQuantity: 1, maxBorrowSeconds: DAY, overflow: { seats: 2 } }), product({}, 6)]) });
    expect(await reasonOf(borrow(url, 'laptop', DAY + 1))).toBe('limit');
    expect(await reasonOf(borrow(url, 'laptop', 60, 6))).toBe('limit');
    await seat(url, 'desk');
    expect(await reasonOf(borrow(url, 'laptop', 60))).toBe('seats');
  });
});

describe('state across restarts', () => {
  it('keeps leases and borrows in a 0600 state file, so a restarted server neither forgets nor doubles them', async () => {
    const card = new CardDouble([product({ maxBorrowSeconds: DAY })]);
    const stateFile = join(dir, 'seats.json');
    const first = await serve({ link: card, stateFile });
    const a = await seat(first.url, 'host-a');
    await borrow(first.url, 'laptop', DAY);
    await first.close();
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    const second = await serve({ link: card, stateFile });
    expect(await reasonOf(seat(second.url, 'host-b'))).toBe('seats');
    const heartbeat = await fetch(`${second.url}/v1/seats/${a.leases[0]!.leaseId}/heartbeat`, { method: 'POST' });
    expect(heartbeat.status).toBe(200);
    const status = await (await fetch(`${second.url}/v1/status`)).json() as { items: Array<{ leases: number; borrows: number }> };
    expect(status.items[0]).toMatchObject({ leases: 1, borrows: 1 });
  });
});

describe('refusals', () => {
  it('bad input gets a clear 4xx as {error: {reason, message}} and changes nothing', async () => {
    const card = new CardDouble([product({ maxBorrowSeconds: DAY })]);
    const { url } = await serve({ link: card });
    await seat(url, 'holder');
    const before = await (await fetch(`${url}/v1/status`)).text();
    const good = { licensorKey: toHex(LICENSOR.publicKey), productCode: 5, features: 1, client: 'x' };
    const borrowGood = { ...good, borrowerCard: { serial: 'L', cardPublicKey: toHex(laptop.publicKey), keyMode: 'individual' }, seconds: 60 };
    const json = (path: string, body: unknown, method = 'POST') => fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const cases: Array<[string, () => Promise<Response>, number, string]> = [
      ['malformed JSON', () => json('/v1/seats', '{'), 400, 'input'],
      ['a number as a string', () => json('/v1/seats', { ...good, productCode: '5' }), 400, 'input'],
      ['an unknown field', () => json('/v1/seats', { ...good, admin: true }), 400, 'input'],
      ['a missing field', () => json('/v1/seats', { ...good, client: undefined }), 400, 'input'],
      ['a client name with a space', () => json('/v1/seats', { ...good, client: 'a b' }), 400, 'input'],
      ['a client name of 65 characters', () => json('/v1/seats', { ...good, client: 'x'.repeat(65) }), 400, 'input'],
      ['a short licensor key', () => json('/v1/seats', { ...good, licensorKey: 'ab' }), 400, 'input'],
      ['a product code beyond 32 bits', () => json('/v1/seats', { ...good, productCode: 2 ** 32 }), 400, 'input'],
      ['a host clock 10 minutes off', () => json('/v1/seats', { ...good, hostTime: clock.now + 600 }), 409, 'clock-set-back'],
      ['an oversized body', () => json('/v1/seats', { ...good, user: 'x'.repeat(20_000) }), 413, 'limit'],
      ['text/plain', () => fetch(`${url}/v1/seats`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }), 415, 'input'],
      ['an unknown product', () => json('/v1/seats', { ...good, productCode: 6 }), 404, 'no-license'],
      ['another licensor', () => json('/v1/seats', { ...good, licensorKey: 'ab'.repeat(32) }), 404, 'no-license'],
      ['an unknown lease', () => fetch(`${url}/v1/seats/${'ab'.repeat(12)}`, { method: 'DELETE' }), 404, 'no-license'],
      ['a heartbeat for an unknown lease', () => fetch(`${url}/v1/seats/${'ab'.repeat(12)}/heartbeat`, { method: 'POST' }), 404, 'no-license'],
      ['a malformed lease id', () => fetch(`${url}/v1/seats/xyz`, { method: 'DELETE' }), 400, 'input'],
      ['an unknown borrow', () => fetch(`${url}/v1/borrow/${'ab'.repeat(12)}`, { method: 'DELETE' }), 404, 'no-license'],
      ['a borrow without a key mode', () => json('/v1/borrow', { ...borrowGood, borrowerCard: { serial: 'L', cardPublicKey: toHex(laptop.publicKey) } }), 400, 'input'],
      ['a borrow of 0 seconds', () => json('/v1/borrow', { ...borrowGood, seconds: 0 }), 400, 'input'],
      ['a borrow longer than allowed', () => json('/v1/borrow', { ...borrowGood, seconds: DAY + 1 }), 409, 'limit'],
      ['an unknown route', () => fetch(`${url}/v1/admin`), 404, 'input'],
    ];
    for (const [name, request, status, reason] of cases) {
      const answer = await request();
      expect(answer.status, name).toBe(status);
      const body = await answer.json() as { error: { reason: string; message: string } };
      expect(body.error.reason, name).toBe(reason);
      expect(body.error.message.length, name).toBeGreaterThan(0);
    }
    expect(await (await fetch(`${url}/v1/status`)).text()).toBe(before);
    expect(card.texts('license use')).toHaveLength(1);
  });

  it('the status names items, seats and clients, never a lease or borrow id', async () => {
    const { url } = await serve({ link: new CardDouble([product({ maxBorrowSeconds: DAY })]) });
    const a = await seat(url, 'host-a');
    const borrowed = await borrow(url, 'laptop', DAY);
    const text = await (await fetch(`${url}/v1/status`)).text();
    expect(text).not.toContain(a.leases[0]!.leaseId);
    expect(text).not.toContain(borrowed.id);
    expect(JSON.parse(text)).toMatchObject({ items: [{ productCode: 5, licenseQuantity: 2, leases: 1, borrows: 1 }], leases: [{ client: 'host-a' }], borrows: [{ client: 'laptop', until: borrowed.until }] });
  });

  it('limits requests per address (429 with Retry-After) and answers 503 when its card cannot be reached', async () => {
    const card = new CardDouble([product()]);
    const limited = await serve({ link: card, perClientPerMinute: 2 });
    await fetch(`${limited.url}/v1/status`);
    await fetch(`${limited.url}/v1/status`);
    const refused = await fetch(`${limited.url}/v1/status`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const { url } = await serve({ link: card });
    card.broken = true;
    const answer = await fetch(`${url}/v1/seats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ licensorKey: toHex(LICENSOR.publicKey), productCode: 5, features: 0, client: 'a' }) });
    expect(answer.status).toBe(503);
    expect(await answer.json()).toEqual({ error: { reason: 'card', message: expect.not.stringContaining('agent does not answer') as unknown } });
    expect(await reasonOf(seat(url, 'a'))).toBe('card');
  });
});
