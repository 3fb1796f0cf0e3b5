// Lost licenses end to end with the real parts (issue "Lost licenses", Show; Wibu 000 "Single Action License Restore
// Process" and "CM-Box Backup" §2.1-2.12, 001): `vsc card emulate` cards behind the real pcscd, `vsc rental serve` as
// each machine's license agent, two licensors' `vsc license serve` restoring services and `vsc license hub serve`
// over real HTTP, and the customer's `vsc license` commands.
// Two licensors put licenses on card A; the user backs A up; A is lost; one command restores both licensors' items onto
// card B through the hub with progress; A is locked at its next contact (a checkpoint renewal); a transfer moves one
// licensor's item from B to card C and deletes it at B; restores along the chain A -> B -> C raise the alert and
// then stop until the licensor approves.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RentalClient } from '../../src/rental/index.js';
import { freePort, runVsc, spawnVsc, startEmulator, waitForCard, type EmulatorProcess, type VscProcess } from '../support/index.js';

const DAY = 86_400;
const READERS = { a: 'Virtual PCD 00 00', b: 'Virtual PCD 00 01' } as const;

let dir: string;
const processes: VscProcess[] = [];
const agents = new Map<string, VscProcess>();
const emulators: EmulatorProcess[] = [];
let hubUrl: string;
const licensors: Array<{ name: string; key: string; url: string; apiKey: string }> = [];
const socket = (card: string) => join(dir, `run-${card}`, 'rental.sock');

async function vsc(args: string[], code = 0): Promise<Record<string, unknown>> {
  const run = await runVsc([...args, '--json']);
  expect(run.code, `vsc ${args.join(' ')}: ${run.stderr}`).toBe(code);
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

async function vscLines(args: string[], code = 0): Promise<Array<Record<string, unknown>>> {
  const run = await runVsc([...args, '--json']);
  expect(run.code, `vsc ${args.join(' ')}: ${run.stderr}`).toBe(code);
  return run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A card on one of vpcd's two readers, with its license agent. */
async function startCard(name: string, reader: keyof typeof READERS): Promise<void> {
  await waitForCard(READERS[reader], false, 10_000);
  emulators.push(await startEmulator({ port: reader === 'a' ? 35963 : 35964, stateFile: join(dir, `card-${name}.state`) }));
  await waitForCard(READERS[reader], true);
  const agent = spawnVsc(['rental', 'serve', '--reader', READERS[reader], '--trail', join(dir, `trail-${name}`), '--socket', socket(name), '--json']);
  agents.set(name, agent);
  await agent.waitFor(/"event":"serving"/, 30_000);
}

const licensor = (index: number) => ['--server', licensors[index]!.url, '--api-key-file', licensors[index]!.apiKey];

async function order(index: number, orderId: string, product: number): Promise<string> {
  const answer = await vsc(['license', 'order', ...licensor(index), '--order-id', orderId, '--product', String(product)]);
  const file = join(dir, `${orderId}.ticket`);
  writeFileSync(file, `${(answer['tickets'] as string[])[0]}\n`, { mode: 0o600 });
  return file;
}

interface Listed { productCode: number; unitsLeft: number | 'unlimited'; expiration: string | null }
async function products(card: string): Promise<Listed[]> {
  const shown = await vsc(['license', 'list', '--socket', socket(card)]);
  return (shown['firms'] as Array<{ products: Listed[] }>).flatMap((firm) => firm.products);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-restore-e2e-'));
  const hub = spawnVsc(['license', 'hub', 'serve', '--data', join(dir, 'hub'), '--listen', '127.0.0.1:0', '--json']);
  processes.push(hub);
  const listening = JSON.parse((await hub.waitFor(/\{"event":"listening".*\}/, 30_000))[0]) as { url: string; authorityKey: string };
  hubUrl = listening.url;
  for (const [index, name] of ['ACME Software', 'Globex Tools'].entries()) {
    const data = join(dir, `issuing-${index}`);
    const apiKey = join(dir, `licensor-${index}.key`);
    const added = await vsc(['license', 'licensor', 'add', '--data', data, '--name', name, '--firm-code', String(10101 + index), '--api-key-out', apiKey]);
    await vsc(['license', 'hub', 'authorize', '--data', join(dir, 'hub'), '--licensor-key', added['publicKey'] as string, '--name', name]);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const service = spawnVsc(['license', 'serve', '--data', data, '--listen', `127.0.0.1:${port}`, '--hub', hubUrl, '--hub-key', listening.authorityKey, '--public-url', url, '--hub-sync', '2', '--json']);
    processes.push(service);
    await service.waitFor(/"event":"serving"/, 30_000);
    licensors.push({ name, key: added['publicKey'] as string, url, apiKey });
  }
  // Both licensors opt in: full restores, unit counters by age (000 §2.3's example); ACME alerts at the first restore
  // along a chain and stops at the second (000 §2.11).
  const policy = (alertAt: number, stopAt: number) => ({
    mode: 'full', units: { maxTimeSeconds: DAY, maxDegreePercent: 80, minTimeSeconds: 9 * DAY, minDegreePercent: 10 }, secretData: { mode: 'none' },
    alerts: { intervalSeconds: 30 * DAY, alertAt, stopAt },
  });
  for (const [index, rule] of [[0, policy(1, 2)], [1, policy(2, 3)]] as const) {
    writeFileSync(join(dir, `policy-${index}.json`), JSON.stringify(rule));
    await vsc(['license', 'restore-policy', ...licensor(index), '--policy', join(dir, `policy-${index}.json`)]);
  }
  await vsc(['license', 'product', 'define', ...licensor(0), '--code', '7', '--text', 'Pay per use', '--model', 'pay-per-use', '--option', 'payment=prepaid', '--option', 'unit=calls', '--option', 'units=100', '--option', 'productCode=7']);
  writeFileSync(join(dir, 'checkpoint.json'), JSON.stringify({ productCode: 9, text: 'Checkpoint', featureMap: 1, payment: 'prepaid', licenseQuantity: 1, protectedData: '', hiddenData: '', secretData: '', checkpoint: { validityDays: 30, thresholdDays: 31 } }));
  await vsc(['license', 'product', 'define', ...licensor(0), '--code', '9', '--text', 'Checkpoint', '--template-file', join(dir, 'checkpoint.json')]);
  await vsc(['license', 'product', 'define', ...licensor(1), '--code', '3', '--text', 'Perpetual', '--model', 'perpetual', '--option', 'productCode=3']);
  // Wait until both services registered at the hub.
  for (let tries = 0; ; tries++) {
    const listed = await (await fetch(`${hubUrl}/v1/licensors`)).json() as { licensors: unknown[] };
    if (listed.licensors.length === 2) break;
    if (tries > 100) throw new Error('the issuing services did not register at the hub');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await startCard('A', 'a');
  await startCard('B', 'b');
}, 180_000);

afterAll(async () => {
  for (const child of [...agents.values(), ...processes.reverse()]) await child.kill();
  for (const emulator of emulators) await emulator.stop().catch(() => null);
  rmSync(dir, { recursive: true, force: true });
});

describe('lost licenses with the real hub, restoring services, cards, pcscd and license agents', () => {
  let backupA: string;
  let cardA: string;

  it('two licensors put licenses on card A, which the user backs up', async () => {
    await vsc(['license', 'activate', '--server', licensors[0]!.url, '--ticket-file', await order(0, 'acme-1', 7), '--socket', socket('A')]);
    await vsc(['license', 'activate', '--server', licensors[0]!.url, '--ticket-file', await order(0, 'acme-2', 9), '--socket', socket('A')]);
    await vsc(['license', 'activate', '--server', licensors[1]!.url, '--ticket-file', await order(1, 'globex-1', 3), '--socket', socket('A')]);
    for (let i = 0; i < 3; i++) await vsc(['license', 'use', '--licensor-key', licensors[0]!.key, '--product', '7', '--units', '1', '--socket', socket('A')]);
    expect((await products('A')).find((product) => product.productCode === 7)).toMatchObject({ unitsLeft: 97 });
    // A checkpoint license renews while the card is in good standing.
    const renewed = await vsc(['license', 'checkpoint', '--server', licensors[0]!.url, '--ticket-file', join(dir, 'acme-2.ticket'), '--socket', socket('A')]);
    expect(renewed['event']).toBe('renewed');
    backupA = join(dir, 'backup-A.json');
    const backup = await vsc(['license', 'backup', '--out', backupA, '--socket', socket('A')]);
    expect(backup['firms']).toEqual([10101, 10102]);
    const file = JSON.parse(readFileSync(backupA, 'utf8')) as { box: { serial: string }; record: { text: string } };
    cardA = file.box.serial;
    expect(file.record.text).toMatch(/^license backup items 2 root [0-9a-f]{64} at \d+$/);
  });

  it('card A is lost: one command restores both licensors\' items onto card B through the hub, with progress', async () => {
    const events = await vscLines(['license', 'restore', '--hub', hubUrl, '--backup', backupA, '--socket', socket('B')]);
    const progress = events.filter((event) => event['event'] === 'restore-progress');
    expect(progress.filter((event) => event['status'] === 'restored').map((event) => event['firmCode']).sort()).toEqual([10101, 10102]);
    expect(events.at(-1)).toMatchObject({ event: 'restored', failed: [], unsentReceipts: [] });
    const onB = await products('B');
    expect(onB.find((product) => product.productCode === 7)).toMatchObject({ unitsLeft: 97 });
    expect(onB.map((product) => product.productCode).sort()).toEqual([3, 7, 9]);
  });

  it('card A is locked at its next contact (its checkpoint renewal): no license, no signature', async () => {
    const renewal = await runVsc(['license', 'checkpoint', '--server', licensors[0]!.url, '--ticket-file', join(dir, 'acme-2.ticket'), '--socket', socket('A'), '--json']);
    expect(renewal.code).toBe(3);
    expect(renewal.stderr).toContain('locked');
    const use = await runVsc(['license', 'use', '--licensor-key', licensors[1]!.key, '--product', '3', '--units', '0', '--socket', socket('A'), '--json']);
    expect(use.code).toBe(3);
    expect(use.stdout + use.stderr).toContain('locked');
    // The card's SIGN AND INCREMENT is refused too: a plain rental Write through A's agent fails.
    const client = await RentalClient.connect(socket('A'));
    try {
      await expect(client.write(new Uint8Array(16).fill(1), 'after the lock')).rejects.toThrow();
    } finally {
      client.close();
    }
    const backup = await runVsc(['license', 'backup', '--socket', socket('A'), '--json']);
    expect(backup.code).toBe(3);
    expect(cardA).toMatch(/./);
  });

  it('a transfer moves Globex\'s item from card B to card C and deletes it at the source, which stays usable', async () => {
    await agents.get('A')!.kill();
    agents.delete('A');
    await emulators.shift()!.stop();
    await startCard('C', 'a');
    const target = join(dir, 'target-C.json');
    await vsc(['license', 'target-info', '--out', target, '--socket', socket('C')]);
    const moved = await vsc(['license', 'transfer', '--server', licensors[1]!.url, '--licensor-key', licensors[1]!.key, '--target', target, '--target-socket', socket('C'), '--socket', socket('B')]);
    expect(moved).toMatchObject({ event: 'transferred', restored: [3], applied: true });
    expect((await products('B')).map((product) => product.productCode).sort()).toEqual([7, 9]);
    expect((await products('C')).map((product) => product.productCode)).toEqual([3]);
    const use = await vsc(['license', 'use', '--licensor-key', licensors[0]!.key, '--product', '7', '--units', '1', '--socket', socket('B')]);
    expect(use).toMatchObject({ allowed: true, remaining: 96 });
  });

  it('restores along the chain A -> B -> C: the first raised ACME\'s alert, the second stops until ACME approves', async () => {
    const backupB = join(dir, 'backup-B.json');
    await vsc(['license', 'backup', '--out', backupB, '--socket', socket('B')]);
    // The restore A -> B was the first along its chain: ACME (alert at 1) was told, nothing stopped.
    const notices = (await vsc(['license', 'alerts', ...licensor(0)]))['alerts'] as Array<{ id: number; state: string; chain?: number }>;
    expect(notices).toMatchObject([{ state: 'notice', chain: 1 }]);
    const stopped = await vscLines(['license', 'restore', '--hub', hubUrl, '--backup', backupB, '--licensor-key', licensors[0]!.key, '--socket', socket('C')], 3);
    expect(stopped.filter((event) => event['event'] === 'restore-progress').at(-1)).toMatchObject({ status: 'approval' });
    const waiting = ((await vsc(['license', 'alerts', ...licensor(0)]))['alerts'] as Array<{ id: number; state: string; chain?: number }>).filter((alert) => alert.state === 'pending');
    expect(waiting).toMatchObject([{ chain: 2 }]);
    await vsc(['license', 'alerts', ...licensor(0), '--approve', String(waiting[0]!.id)]);
    const restored = await vscLines(['license', 'restore', '--hub', hubUrl, '--backup', backupB, '--licensor-key', licensors[0]!.key, '--socket', socket('C')]);
    expect(restored.at(-1)).toMatchObject({ event: 'restored', failed: [] });
    expect((await products('C')).map((product) => product.productCode).sort()).toEqual([3, 7, 9]);
  });
});
