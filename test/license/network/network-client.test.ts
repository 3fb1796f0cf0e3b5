// The program's side of the network license servers (src/license/network/network-client.ts, held-seat.ts,
// server-lease.ts; Wibu 002 Table 1: high availability "2 out of 3", hot and cold standby): real servers on 127.0.0.1
// over card doubles, servers stopped and started again on their port, an injected clock, heartbeats run by hand.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  encodeCardBinding, NetworkLicenseClient, parseSeatRecordText, signCardBinding, type HeldSeat, type StandbySeat, type LicenseServers, type ProductSpec,
} from '../../../src/license/index.js';
import { LICENSOR, OTHER_LICENSOR, simpleProduct, T0 } from '../../support/index.js';
import { CardDouble } from './network-card-double.js';
import { clock, reasonOf, serve, stopAll } from './network-test-servers.js';

const product = (spec: Partial<ProductSpec> = {}, code = 5) => simpleProduct(code, 'unlimited', { licenseQuantity: 1, featureMap: 0b11, ...spec });
const client = (servers: LicenseServers, name: string, onLost?: (seat: HeldSeat) => void) =>
  new NetworkLicenseClient({ servers, client: name, heartbeatMs: 0, now: () => clock.now, timeoutMs: 2_000, ...(onLost === undefined ? {} : { onLost }) });

beforeEach(() => {
  clock.now = T0 + 10;
});
afterEach(stopAll);

describe('high availability, "2 out of 3"', () => {
  it('a seat is held while two of three servers grant it: with one down it holds, with two down it does not', async () => {
    const cards = [new CardDouble([product()]), new CardDouble([product()]), new CardDouble([product()])];
    const servers = await Promise.all(cards.map((link) => serve({ link })));
    const three: LicenseServers = { kind: 'high-availability', urls: servers.map((server) => server.url) };
    const a = await client(three, 'a').acquire(LICENSOR.publicKey, 5, 1);
    expect(a.leases).toHaveLength(3);
    expect(await reasonOf(client(three, 'b').acquire(LICENSOR.publicKey, 5, 1))).toBe('seats');
    await a.release();
    await servers[2]!.close();
    const lost: HeldSeat[] = [];
    const b = await client(three, 'b', (seat) => lost.push(seat)).acquire(LICENSOR.publicKey, 5, 1);
    expect(b.leases).toHaveLength(2);
    clock.now += 20;
    expect(await b.refresh()).toBe(true);
    await servers[1]!.close();
    clock.now += 20;
    expect(await b.refresh()).toBe(false);
    expect(lost).toEqual([b]);
    // The one server left still counts b's seat, so it refuses; once b returns it, one grant is still no majority.
    expect(await reasonOf(client(three, 'c').acquire(LICENSOR.publicKey, 5, 1))).toBe('seats');
    await b.release();
    expect(await reasonOf(client(three, 'c').acquire(LICENSOR.publicKey, 5, 1))).toBe('card');
  });

  it('two servers of one card do not pass for a majority', async () => {
    const card = new CardDouble([product({ licenseQuantity: 3 })]);
    const [one, twin, down] = [await serve({ link: card }), await serve({ link: card }), await serve({ link: new CardDouble([product()]) })];
    await down.close();
    expect(await reasonOf(client({ kind: 'high-availability', urls: [one.url, twin.url, down.url] }, 'a').acquire(LICENSOR.publicKey, 5, 1))).toBe('card');
    const status = (await (await fetch(`${one.url}/v1/status`)).json()) as { leases: unknown[] };
    expect(status.leases).toEqual([]);
  });
});

describe('hot standby', () => {
  it('fails over to the standby when the primary does not answer, back when it returns, and stops at the standby\'s limit', async () => {
    const main = new CardDouble([product()]);
    const spare = new CardDouble([product({ standby: { kind: 'hot', maxSeconds: 150 } }), product({}, 6)]);
    let primary = await serve({ link: main });
    const standby = await serve({ link: spare, standby: { kind: 'hot', active: true } });
    const pair: LicenseServers = { kind: 'standby', primary: primary.url, standby: standby.url };
    const seat = await client(pair, 'cad-1').acquire(LICENSOR.publicKey, 5, 1) as StandbySeat;
    expect(seat.onStandby).toBe(false);
    await primary.close();
    clock.now += 20;
    expect(await seat.refresh()).toBe(true);
    expect(seat.onStandby).toBe(true);
    primary = await serve({ link: main, port: primary.port });
    clock.now += 20;
    expect(await seat.refresh()).toBe(true);
    expect(seat.onStandby).toBe(false);
    // 20 s were served from the standby: the lease counted ahead to its end, the rest given back when it returned.
    const status = async () => (await (await fetch(`${standby.url}/v1/status`)).json()) as { items: Array<{ productCode: number; standby?: { usedSeconds: number } }> };
    expect((await status()).items[0]!.standby!.usedSeconds).toBe(20);
    // Down again: the standby serves until its 150 s are used, then refuses (one trail record per started minute).
    await primary.close();
    let held = true;
    for (let round = 0; round < 12 && held; round += 1) {
      clock.now += 20;
      held = await seat.refresh();
    }
    expect(held).toBe(false);
    expect((await status()).items[0]!.standby!.usedSeconds).toBe(150);
    expect(spare.texts('license standby').map((text) => parseSeatRecordText(text)).map((record) => record.kind === 'standby' && record.minute)).toEqual([1, 2, 3]);
    expect(await reasonOf(client(pair, 'cad-2').acquire(LICENSOR.publicKey, 5, 1))).toBe('expired');
    // The standby serves only items with a hot standby license.
    expect(await reasonOf(client(pair, 'cad-2').acquire(LICENSOR.publicKey, 6, 1))).toBe('no-license');
  });

  it('a refusal by the primary stands: the standby is asked only when the primary does not answer', async () => {
    const primary = await serve({ link: new CardDouble([product()]) });
    const standby = await serve({ link: new CardDouble([product({ standby: { kind: 'hot', maxSeconds: 3_600 } })]), standby: { kind: 'hot', active: true } });
    const pair: LicenseServers = { kind: 'standby', primary: primary.url, standby: standby.url };
    await client(pair, 'a').acquire(LICENSOR.publicKey, 5, 1);
    expect(await reasonOf(client(pair, 'b').acquire(LICENSOR.publicKey, 5, 1))).toBe('seats');
  });
});

describe('cold standby', () => {
  it('serves only once its operator started it active, and only items with a cold standby license', async () => {
    const spare = new CardDouble([product({ standby: { kind: 'cold', maxSeconds: 3_600 } }), product({ standby: { kind: 'hot', maxSeconds: 3_600 } }, 6)]);
    const down = await serve({ link: new CardDouble([product()]) });
    await down.close();
    const idle = await serve({ link: spare, standby: { kind: 'cold', active: false } });
    expect(await reasonOf(client({ kind: 'standby', primary: down.url, standby: idle.url }, 'a').acquire(LICENSOR.publicKey, 5, 1))).toBe('seats');
    await idle.close();
    const active = await serve({ link: spare, standby: { kind: 'cold', active: true }, port: idle.port });
    const pair: LicenseServers = { kind: 'standby', primary: down.url, standby: active.url };
    const seat = await client(pair, 'a').acquire(LICENSOR.publicKey, 5, 1) as StandbySeat;
    expect(seat.onStandby).toBe(true);
    expect(await reasonOf(client(pair, 'a').acquire(LICENSOR.publicKey, 6, 1))).toBe('no-license');
  });
});

describe('what the client believes', () => {
  /** A "server" answering every seat request with `answer` (a lease a real server gave, tampered). */
  async function lyingServer(answer: unknown): Promise<{ url: string; server: Server }> {
    const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }

  it('refuses a lease whose record is not a fresh allocation of this product, signed by a card the licensor bound', async () => {
    const card = new CardDouble([product({ licenseQuantity: 10 }), product({ licenseQuantity: 10 }, 6)]);
    const { url } = await serve({ link: card });
    const lease = async (productCode: number) => (await (await fetch(`${url}/v1/seats`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ licensorKey: toHex(LICENSOR.publicKey), productCode, features: 1, client: `probe-${productCode}` }),
    })).json()) as Record<string, unknown>;
    const genuine = await lease(5);
    const record = genuine['record'] as Record<string, string>;
    const flipped = `${record['signature']!.slice(0, -2)}${record['signature']!.endsWith('00') ? '01' : '00'}`;
    const cases: Array<[string, Record<string, unknown>, string, number?]> = [
      ['the genuine lease, an hour later', genuine, 'signature', 3_600],
      ['another product\'s record', { ...genuine, record: (await lease(6))['record'] }, 'signature'],
      ['a record whose signature was changed', { ...genuine, record: { ...record, signature: flipped } }, 'signature'],
      ['a binding by another licensor', { ...genuine, binding: encodeCardBinding(signCardBinding(OTHER_LICENSOR, { serial: card.card.serial, cardPublicKey: card.card.publicKey, keyMode: 'individual' })) }, 'signature'],
      ['a binding of another card', { ...genuine, binding: encodeCardBinding(signCardBinding(LICENSOR, { serial: 'OTHER', cardPublicKey: new CardDouble([]).card.publicKey, keyMode: 'individual' })) }, 'signature'],
      ['an extra field', { ...genuine, admin: true }, 'input'],
      ['a malformed lease id', { ...genuine, leaseId: 'x' }, 'input'],
    ];
    for (const [name, answer, reason, later] of cases) {
      const liar = await lyingServer(answer);
      try {
        clock.now += later ?? 0;
        expect(await reasonOf(client({ kind: 'single', url: liar.url }, 'a').acquire(LICENSOR.publicKey, 5, 1)), name).toBe(reason);
      } finally {
        clock.now -= later ?? 0;
        liar.server.close();
      }
    }
    const honest = await lyingServer(genuine);
    expect((await client({ kind: 'single', url: honest.url }, 'a').acquire(LICENSOR.publicKey, 5, 1)).held).toBe(true);
    honest.server.close();
  });

  it('checks its configuration: three servers for "2 out of 3", http(s) URLs, a client name', () => {
    const cases: Array<[string, () => unknown]> = [
      ['two servers', () => client({ kind: 'high-availability', urls: ['http://a', 'http://b'] }, 'a')],
      ['a file URL', () => client({ kind: 'single', url: 'file:///etc/passwd' }, 'a')],
      ['not a URL', () => client({ kind: 'single', url: 'license-server' }, 'a')],
      ['a client name with a space', () => client({ kind: 'single', url: 'http://a' }, 'a b')],
    ];
    for (const [name, run] of cases) expect(run, name).toThrow(/expected/);
  });
});
