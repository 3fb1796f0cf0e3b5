// License containers end to end with the real parts (issue "License containers", Show; Wibu 002 back-end issuing):
// a `vsc card emulate` card behind the real pcscd, `vsc rental serve` as the machine's license agent, `vsc license
// serve` as the licensor's issuing service over real HTTP, and the customer's `vsc license` commands and the SDK.
// order -> ticket -> online activation; the same offline through files; a subscription renewed by a second ticket; a
// pay-per-use counter going down through SIGN AND INCREMENT and its usage reproduced from the trail.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../src/bytes/index.js';
import { acquireSeat, checkBorrowed, IssuingClient, License, LicenseError, parseBorrowCertificate } from '../../src/license/index.js';
import { runVsc, spawnVsc, startEmulator, waitForCard, type EmulatorProcess, type VscProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const DAY = 86_400;

let dir: string;
let emulator: EmulatorProcess;
let agent: VscProcess;
let service: VscProcess;
let url: string;
let licensorKey: string;
const socket = () => join(dir, 'run', 'rental.sock');
const apiKey = () => join(dir, 'acme.key');

async function vsc(args: string[]): Promise<Record<string, unknown>> {
  const run = await runVsc([...args, '--json']);
  expect(run.code, `vsc ${args.join(' ')}: ${run.stderr}`).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** A licensor's order through the service, as an ERP would place it; the ticket is written to a file for the customer. */
async function order(orderId: string, product: number, extra: string[] = []): Promise<string> {
  const answer = await vsc(['license', 'order', '--server', url, '--api-key-file', apiKey(), '--order-id', orderId, '--product', String(product), ...extra]);
  const ticket = (answer['tickets'] as string[])[0]!;
  const file = join(dir, `${orderId}.ticket`);
  writeFileSync(file, `${ticket}\n`, { mode: 0o600 });
  return file;
}

async function define(code: number, args: string[]): Promise<void> {
  await vsc(['license', 'product', 'define', '--server', url, '--api-key-file', apiKey(), '--code', String(code), '--text', `Product ${code}`, ...args]);
}

interface ListedProduct { productCode: number; unitsLeft: number | 'unlimited'; expiration: string | null }
async function listed(code: number): Promise<ListedProduct | undefined> {
  const shown = await vsc(['license', 'list', '--socket', socket()]);
  const firms = shown['firms'] as Array<{ products: ListedProduct[] }>;
  return firms.flatMap((firm) => firm.products).find((product) => product.productCode === code);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-license-e2e-'));
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
  agent = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'trail'), '--backup-trail', join(dir, 'backup'), '--socket', socket(), '--json']);
  await agent.waitFor(/"event":"serving"/, 30_000);
  const added = await vsc(['license', 'licensor', 'add', '--data', join(dir, 'issuing'), '--name', 'ACME Software', '--firm-code', '10101', '--api-key-out', apiKey()]);
  licensorKey = added['publicKey'] as string;
  service = spawnVsc(['license', 'serve', '--data', join(dir, 'issuing'), '--listen', '127.0.0.1:0', '--json']);
  url = JSON.parse((await service.waitFor(/\{"event":"serving".*\}/, 30_000))[0]) ['url'] as string;
}, 120_000);

afterAll(async () => {
  await service?.kill();
  await agent?.kill();
  await emulator?.stop().catch(() => null);
  rmSync(dir, { recursive: true, force: true });
});

describe('license containers with the real issuing service, card, pcscd and license agent', () => {
  it('order -> ticket -> online activation; a pay-per-use counter goes down through SIGN AND INCREMENT and the trail reproduces it', async () => {
    await define(7, ['--model', 'pay-per-use', '--option', 'payment=prepaid', '--option', 'unit=calls', '--option', 'units=3', '--option', 'productCode=7']);
    const ticket = await order('erp-1001', 7);
    const activated = await vsc(['license', 'activate', '--server', url, '--ticket-file', ticket, '--socket', socket()]);
    expect(activated['text']).toMatch(/^license update [0-9a-f]{32} 10101 counter 1 digest [0-9a-f]{64}$/);
    expect(await listed(7)).toMatchObject({ unitsLeft: 3 });
    const view = await new IssuingClient({ server: url }).ticket(readFileSync(ticket, 'utf8').trim());
    expect(view.activations).toMatchObject([{ state: 'confirmed' }]);

    const license = await License.open({ licensorKey: fromHex(licensorKey), productCode: 7, socket: socket() });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await license.use(0, 1));
    await license.close();
    expect(decisions.map((d) => (d.allowed ? d.remaining : d.reason))).toEqual([2, 1, 0, 'exhausted']);
    const report = await vsc(['license', 'report', '--licensor-key', licensorKey, '--socket', socket()]);
    expect(report).toMatchObject({ updates: 1, missing: [], products: [{ productCode: 7, uses: 3, units: 3, lastLeft: 0 }] });
  });

  it('the same activation offline, through a request file, an update file and a receipt file', async () => {
    await define(8, ['--model', 'perpetual', '--option', 'productCode=8']);
    const ticket = await order('shop-2002', 8);
    const request = join(dir, 'request.json');
    await vsc(['license', 'activate', '--ticket-file', ticket, '--licensor-key', licensorKey, '--request-out', request, '--socket', socket()]);
    expect(JSON.parse(readFileSync(request, 'utf8'))).toMatchObject({ firmUpdateCounter: 1 });
    // The online leg, on "another machine": the request becomes an update file and the licensor's card binding.
    await vsc(['license', 'submit', '--server', url, '--request', request, '--update-out', join(dir, 'update.json'), '--binding-out', join(dir, 'binding.json')]);
    await vsc(['license', 'apply', '--update', join(dir, 'update.json'), '--binding', join(dir, 'binding.json'), '--receipt-out', join(dir, 'receipt.json'), '--ticket-file', ticket, '--socket', socket()]);
    expect((await new IssuingClient({ server: url }).ticket(readFileSync(ticket, 'utf8').trim())).activations).toMatchObject([{ state: 'pending' }]);
    const confirmed = await vsc(['license', 'submit', '--server', url, '--receipt', join(dir, 'receipt.json')]);
    expect(confirmed['event']).toBe('receipt');
    expect((await new IssuingClient({ server: url }).ticket(readFileSync(ticket, 'utf8').trim())).activations).toMatchObject([{ state: 'confirmed' }]);
    const used = await runVsc(['license', 'use', '--licensor-key', licensorKey, '--product', '8', '--units', '0', '--socket', socket(), '--json']);
    expect(used.code, used.stderr).toBe(0);
    expect(JSON.parse(used.stdout)).toMatchObject({ allowed: true, remaining: 'unlimited' });
  });

  it('a subscription is renewed by a second ticket: the expiration moves by the period', async () => {
    const now = Math.floor(Date.now() / 1000);
    // A subscription sold by the month: valid for 30 days from its activation, each renewal 30 days more.
    await define(9, ['--model', 'perpetual', '--option', 'productCode=9', '--duration-seconds', String(30 * DAY)]);
    const first = await order('sub-3003', 9);
    await vsc(['license', 'activate', '--server', url, '--ticket-file', first, '--socket', socket()]);
    const before = Date.parse((await listed(9))!.expiration!) / 1000;
    expect(before).toBeGreaterThanOrEqual(now + 30 * DAY - 5);
    expect(before).toBeLessThanOrEqual(now + 30 * DAY + 120);
    const renewal = await order('sub-3004', 9, ['--renewal-of', readFileSync(first, 'utf8').trim()]);
    await vsc(['license', 'activate', '--server', url, '--ticket-file', renewal, '--socket', socket()]);
    expect(Date.parse((await listed(9))!.expiration!) / 1000).toBe(before + 30 * DAY);
  });

  it('a floating license with 2 seats refuses the third program and serves it once one returns; a borrowed seat works offline and comes back', async () => {
    await define(10, ['--model', 'borrowable', '--option', 'productCode=10', '--option', 'seats=2', '--option', 'maxBorrowDays=7', '--option', 'featureMap=1']);
    await vsc(['license', 'activate', '--server', url, '--ticket-file', await order('net-4004', 10), '--socket', socket()]);
    const network = spawnVsc(['license', 'network', 'serve', '--listen', '127.0.0.1:0', '--socket', socket(), '--state', join(dir, 'seats.json'), '--json']);
    try {
      const served = JSON.parse((await network.waitFor(/\{"event":"serving".*\}/, 30_000))[0]) as { url: string };
      const seat = (client: string) => acquireSeat(served.url, { licensorKey: fromHex(licensorKey), productCode: 10, features: 1, client, heartbeatMs: 0 });
      const a = await seat('workstation-a');
      const b = await seat('workstation-b');
      await expect(seat('workstation-c')).rejects.toMatchObject({ reason: 'seats' });
      await b.release();
      const c = await seat('workstation-c');
      await a.release();
      // Borrowed onto this machine's card for a day: checked offline with nothing but the file and the licensor key.
      const file = join(dir, 'borrowed.json');
      await vsc(['license', 'borrow', '--server', served.url, '--licensor-key', licensorKey, '--product', '10', '--features', '1', '--days', '1', '--out', file, '--socket', socket()]);
      const kept = JSON.parse(readFileSync(file, 'utf8')) as { certificate: unknown };
      const certificate = parseBorrowCertificate(JSON.stringify(kept.certificate));
      const card = (await vsc(['rental', 'status', '--socket', socket()]))['card'] as { serial: string; publicKey: string; keyMode: 'individual' };
      const root = { serial: card.serial, publicKey: fromHex(card.publicKey), keyMode: card.keyMode };
      const now = Math.floor(Date.now() / 1000);
      expect(checkBorrowed(certificate, { licensorKey: fromHex(licensorKey), productCode: 10, features: 1, now, ownCard: root }).until).toBeGreaterThan(now + 86_000);
      expect(() => checkBorrowed(certificate, { licensorKey: fromHex(licensorKey), productCode: 10, features: 1, now: now + 86_401, ownCard: root })).toThrow(LicenseError);
      // Both seats are taken now (workstation-c and the borrow); the borrow returned early frees one.
      await expect(seat('workstation-d')).rejects.toMatchObject({ reason: 'seats' });
      await vsc(['license', 'return', '--certificate', file]);
      await (await seat('workstation-d')).release();
      await c.release();
    } finally {
      await network.kill();
    }
  });

  it('refuses, naming why: a product not licensed, a used-up ticket, a feature the item lacks', async () => {
    const missing = await runVsc(['license', 'use', '--licensor-key', licensorKey, '--product', '99', '--socket', socket()]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no-license/);
    const used = await runVsc(['license', 'activate', '--server', url, '--ticket-file', join(dir, 'erp-1001.ticket'), '--socket', socket()]);
    expect(used.code).toBe(3);
    expect(used.stderr).toMatch(/ticket/);
    const feature = await runVsc(['license', 'use', '--licensor-key', licensorKey, '--product', '8', '--features', '4', '--socket', socket()]);
    expect(feature.code).toBe(3);
    expect(feature.stderr).toMatch(/feature/);
  });
});
