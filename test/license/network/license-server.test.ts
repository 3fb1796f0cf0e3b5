// The network license server and its clients (src/license/network; Wibu 002 Table 1: network / floating, overflow,
// borrowable, high availability "2 out of 3", hot and cold standby) with the real parts: the card's license applet
// behind a real rental server (the license agent), real fastify on 127.0.0.1, real HTTP, an injected clock.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import {
  acquireMajority, acquireSeat, acquireWithStandby, AgentLicenseLink, borrowSeat, checkBorrowCertificate, LicenseError, returnBorrowed, startLicenseServer,
  type ProductSpec, type RunningLicenseServer, type StandbyMode,
} from '../../../src/license/index.js';
import { firstUpdate, LICENSOR, simpleProduct, startLicenseAgent, T0, type RunningLicenseAgent } from '../../support/index.js';

let agent: RunningLicenseAgent;
const servers: RunningLicenseServer[] = [];
const links: AgentLicenseLink[] = [];
const clock = { now: T0 + 10 };

async function server(options: { standby?: StandbyMode } = {}): Promise<RunningLicenseServer> {
  const link = await AgentLicenseLink.connect(agent.socket);
  links.push(link);
  const running = await startLicenseServer({ link, host: '127.0.0.1', port: 0, now: () => clock.now, leaseSeconds: 60, ...options });
  servers.push(running);
  return running;
}

async function withProduct(spec: Partial<ProductSpec>): Promise<void> {
  await agent.activate(firstUpdate([{ op: 'put-product', product: simpleProduct(5, 'unlimited', { licenseQuantity: 2, featureMap: 0b11, ...spec }) }]));
}

const request = (client: string) => ({ licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, client, heartbeatMs: 0 });
async function reason(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    expect(error).toBeInstanceOf(LicenseError);
    return (error as LicenseError).reason;
  }
  throw new Error('expected a refusal');
}

beforeEach(async () => {
  clock.now = T0 + 10;
  agent = await startLicenseAgent();
});

afterEach(async () => {
  for (const running of servers.splice(0)) await running.close().catch(() => undefined);
  for (const link of links.splice(0)) await link.close();
  await agent.close();
});

describe('network license server', () => {
  it('a floating license with 2 seats refuses the third program and serves it once one returns', async () => {
    await withProduct({});
    const { url } = await server();
    const a = await acquireSeat(url, request('host-a'));
    const b = await acquireSeat(url, request('host-b'));
    expect(await reason(acquireSeat(url, request('host-c')))).toBe('seats');
    // Asking again is the same seat, never a second one.
    expect((await acquireSeat(url, request('host-a'))).id).toBe(a.id);
    await b.release();
    const c = await acquireSeat(url, request('host-c'));
    expect(c.overflow).toBe(false);
    await a.release();
    await c.release();
  });

  it('a lease without heartbeats runs out and frees its seat; a heartbeat keeps it', async () => {
    await withProduct({ licenseQuantity: 1 });
    const { url } = await server();
    const a = await acquireSeat(url, request('host-a'));
    clock.now += 50;
    await a.heartbeat();
    clock.now += 50;
    expect(await reason(acquireSeat(url, request('host-b')))).toBe('seats');
    clock.now += 11;
    await acquireSeat(url, request('host-b'));
    expect(await reason(a.heartbeat())).toBe('no-license');
  });

  it('overflow seats are flagged and limited; the card refuses an unlicensed feature before any seat is taken', async () => {
    await withProduct({ overflow: { seats: 1 } });
    const { url } = await server();
    await acquireSeat(url, request('a'));
    await acquireSeat(url, request('b'));
    expect((await acquireSeat(url, request('c'))).overflow).toBe(true);
    expect(await reason(acquireSeat(url, request('d')))).toBe('seats');
    expect(await reason(acquireSeat(url, { ...request('e'), features: 0b100 }))).toBe('feature');
  });

  it('a borrowed seat works offline with its certificate until its end, on the borrowing card only; returned early it frees the seat', async () => {
    await withProduct({ licenseQuantity: 1, maxBorrowSeconds: 7 * 86_400 });
    const { url } = await server();
    const borrower = ed25519KeyFromSeed(generateEd25519Seed());
    const card = { serial: 'LAPTOP-1', publicKey: borrower.publicKey, keyMode: 'individual' as const };
    const borrowed = await borrowSeat(url, { ...request('laptop'), borrowerCard: card, seconds: 3 * 86_400 });
    const expect1 = { licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, card };
    // Offline: only the certificate and the licensor key the program carries.
    expect(checkBorrowCertificate(borrowed.certificate, { ...expect1, now: clock.now + 86_400 }).until).toBe(clock.now + 3 * 86_400);
    expect(await reason(Promise.resolve().then(() => checkBorrowCertificate(borrowed.certificate, { ...expect1, now: clock.now + 3 * 86_400 })))).toBe('expired');
    const other = { ...card, publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey };
    expect(await reason(Promise.resolve().then(() => checkBorrowCertificate(borrowed.certificate, { ...expect1, card: other, now: clock.now })))).toBe('computer');
    expect(await reason(borrowSeat(url, { ...request('laptop-2'), borrowerCard: card, seconds: 8 * 86_400 }))).toBe('limit');
    // While borrowed, the seat stays taken on the server; it comes back at the end, or at once when returned.
    expect(await reason(acquireSeat(url, request('desk')))).toBe('seats');
    clock.now += 3 * 86_400;
    const desk = await acquireSeat(url, request('desk'));
    await desk.release();
    const again = await borrowSeat(url, { ...request('laptop'), borrowerCard: card, seconds: 86_400 });
    await returnBorrowed(url, again.id);
    await (await acquireSeat(url, request('desk'))).release();
  });

  it('high availability, "2 out of 3": a seat is held while two servers grant it', async () => {
    await withProduct({ licenseQuantity: 1 });
    const [s1, s2, s3] = [await server(), await server(), await server()];
    const urls = [s1!.url, s2!.url, s3!.url];
    const a = await acquireMajority(urls, request('a'));
    expect(a.seats).toHaveLength(3);
    expect(await reason(acquireMajority(urls, request('b')))).toBe('seats');
    await a.release();
    await s3!.close();
    const b = await acquireMajority(urls, request('b'));
    expect(b.seats).toHaveLength(2);
    await b.release();
    await s2!.close();
    expect(await reason(acquireMajority(urls, request('c')))).toBe('seats');
  });

  it('hot standby takes over when the primary does not answer, and stops at its limit; a cold standby serves only once made active', async () => {
    await withProduct({ licenseQuantity: 1, standby: { kind: 'hot', maxSeconds: 90 } });
    const primary = await server();
    const standby = await server({ standby: { kind: 'hot', active: true } });
    const first = await acquireWithStandby(primary.url, standby.url, request('a'));
    expect(first.server).toBe(primary.url);
    await first.release();
    await primary.close();
    const failedOver = await acquireWithStandby(primary.url, standby.url, request('a'));
    expect(failedOver.server).toBe(standby.url);
    // 50 s of standby service counted at the heartbeat, 50 more at the release: past the 90 s the licensor allows.
    clock.now += 50;
    await failedOver.heartbeat();
    clock.now += 50;
    await failedOver.release();
    expect(await reason(acquireWithStandby(primary.url, standby.url, request('b')))).toBe('expired');
    const cold = await server({ standby: { kind: 'cold', active: false } });
    expect(await reason(acquireSeat(cold.url, request('c')))).toBe('seats');
  });

  it('bad input gets a clear 4xx and changes nothing', async () => {
    await withProduct({});
    const { url } = await server();
    const status = async () => (await (await fetch(`${url}/v1/status`)).json()) as { seats: unknown[] };
    const post = (body: string, path = '/v1/seats') => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const good = { licensorKey: Buffer.from(LICENSOR.publicKey).toString('hex'), productCode: 5, features: 1, client: 'x' };
    const cases: Array<[string, Promise<Response>, number]> = [
      ['malformed JSON', post('{'), 400],
      ['a wrong type', post(JSON.stringify({ ...good, productCode: '5' })), 400],
      ['an unknown field', post(JSON.stringify({ ...good, admin: true })), 400],
      ['an oversized body', post(JSON.stringify({ ...good, client: 'x'.repeat(20_000) })), 413],
      ['an unknown product', post(JSON.stringify({ ...good, productCode: 6 })), 404],
      ['an unknown seat', fetch(`${url}/v1/seats/${'ab'.repeat(12)}`, { method: 'DELETE' }), 404],
      ['text/plain', fetch(`${url}/v1/seats`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }), 415],
    ];
    for (const [name, response, code] of cases) {
      const answer = await response;
      expect(answer.status, name).toBe(code);
      expect(await answer.json(), name).toHaveProperty('error');
    }
    expect((await status()).seats).toEqual([]);
  });
});
