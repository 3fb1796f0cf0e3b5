// `vsc license serve | licensor add | product define | order | audit` (Wibu 002 back-end license issuing): serve runs as
// its own process and prints its URL; licensor add writes the API key to a 0600 file and never prints it; the
// licensor's back office defines a product (from a template file or a model of the catalogue), orders tickets and
// reads its audit through the service. --json on each, --help, exit codes 0 ok, 2 usage, 3 refused, 4 unauthenticated.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IssuingClient, openIssuingBackend, listLicensors } from '../../src/license/index.js';
import { spawnTsScript, type VscProcess } from '../support/index.js';
import { runLicenseCommand } from './license-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-license-issuing-cli-'));
const data = join(dir, 'data');
const keyFile = join(dir, 'example.key');
const RUNNER = fileURLToPath(new URL('./license-runner.ts', import.meta.url));

async function vsc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...line: unknown[]) => void out.push(line.map(String).join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...line: unknown[]) => void err.push(line.map(String).join(' ')));
  try {
    return { code: await runLicenseCommand(args), stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

let server: VscProcess;
let url: string;
let publicKey: string;

beforeAll(async () => {
  const added = await vsc('licensor', 'add', '--data', data, '--name', 'Example Software', '--firm-code', '1001', '--api-key-out', keyFile, '--json');
  expect(added.code, added.stderr).toBe(0);
  publicKey = (JSON.parse(added.stdout) as { publicKey: string }).publicKey;
  server = spawnTsScript(RUNNER, ['serve', '--data', data, '--listen', '127.0.0.1:0', '--json']);
  [, url] = (await server.waitFor(/"url":"(http:[^"]+)"/, 30_000)) as unknown as [string, string];
}, 60_000);
afterAll(async () => {
  if (server?.running()) await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('vsc license licensor add', () => {
  it('writes the API key to a new 0600 file, prints the public key but never the API key, and made the data directory 0700', async () => {
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(key).toMatch(/^vsclk_1_[0-9a-f]{64}$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    expect(publicKey).toMatch(/^[0-9a-f]{64}$/);
    const people = await vsc('licensor', 'add', '--data', data, '--name', 'Second', '--firm-code', '1002', '--api-key-out', join(dir, 'second.key'));
    expect(people.code).toBe(0);
    expect(people.stdout).toMatch(/licensor public key: [0-9a-f]{64}/);
    expect(people.stdout).not.toContain(readFileSync(join(dir, 'second.key'), 'utf8').trim());
  });

  it('refuses an existing key file (exit 2) and a taken firm code (exit 2), adding no licensor and leaving no file', async () => {
    writeFileSync(join(dir, 'taken.key'), 'x');
    const exists = await vsc('licensor', 'add', '--data', data, '--name', 'Third', '--firm-code', '1003', '--api-key-out', join(dir, 'taken.key'));
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/must not exist/);
    const taken = await vsc('licensor', 'add', '--data', data, '--name', 'Third', '--firm-code', '1001', '--api-key-out', join(dir, 'third.key'));
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/firm code 1001/);
    expect(() => statSync(join(dir, 'third.key'))).toThrow();
    expect((await vsc('licensor', 'add', '--data', data, '--name', 'Third', '--firm-code', 'x', '--api-key-out', join(dir, 'third.key'))).code).toBe(2);
    const backend = await openIssuingBackend({ dataDir: data });
    try {
      expect((await listLicensors(backend)).map((licensor) => licensor.name)).toEqual(['Example Software', 'Second']);
    } finally {
      await backend.close();
    }
  });
});

describe('vsc license serve, product define, order, audit', () => {
  it('defines a product from a template file and from a model, orders tickets, and reads the audit', async () => {
    const templateFile = join(dir, 'template.json');
    writeFileSync(templateFile, JSON.stringify({ featureMap: 3, durationSeconds: 86_400, maxActivations: 2 }));
    const defined = await vsc('product', 'define', '--server', url, '--api-key-file', keyFile, '--code', '10', '--text', 'Editor', '--template-file', templateFile, '--json');
    expect(defined.code, defined.stderr).toBe(0);
    expect(JSON.parse(defined.stdout)).toMatchObject({ event: 'product-defined', code: 10, text: 'Editor', template: { durationSeconds: 86_400, maxActivations: 2, featureMap: 3 } });

    const model = await vsc('product', 'define', '--server', url, '--api-key-file', keyFile, '--code', '11', '--text', 'Credits', '--model', 'pay-per-use',
      '--option', 'payment=prepaid', '--option', 'unit=calls', '--option', 'units=500', '--max-activations', '1', '--json');
    expect(model.code, model.stderr).toBe(0);
    expect(JSON.parse(model.stdout).template).toMatchObject({ productCode: 11, text: 'Credits', unitLimit: 500, payment: 'prepaid', maxActivations: 1 });

    const ordered = await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-1', '--product', '10', '--quantity', '3');
    expect(ordered.code, ordered.stderr).toBe(0);
    const tickets = ordered.stdout.split('\n');
    expect(tickets).toHaveLength(2);
    for (const ticket of tickets) expect(ticket).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){4}$/);
    const again = await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-1', '--product', '10', '--quantity', '3', '--json');
    expect(JSON.parse(again.stdout)).toEqual({ event: 'order', orderId: 'SO-1', tickets });
    const renewal = await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-2', '--product', '10', '--renewal-of', tickets[0]!, '--json');
    expect(renewal.code, renewal.stderr).toBe(0);
    expect((await new IssuingClient({ server: url }).ticket(JSON.parse(renewal.stdout).tickets[0])).renewalOf).toMatch(/^[0-9a-f]{16}$/);

    const audit = await vsc('audit', '--server', url, '--api-key-file', keyFile, '--json');
    expect(audit.code, audit.stderr).toBe(0);
    const records = (JSON.parse(audit.stdout) as { records: Array<{ action: string; outcome: string }> }).records;
    expect(records.map((record) => `${record.action} ${record.outcome}`)).toEqual(expect.arrayContaining(['licensor.add ok', 'product.define ok', 'order.create ok', 'order.create repeated', 'ticket.view ok']));
    const lines = await vsc('audit', '--server', url, '--api-key-file', keyFile, '--limit', '2');
    expect(lines.stdout.split('\n')).toHaveLength(2);
    // The service logs a line per request on stderr, never a key or a ticket.
    expect(server.stderr()).toMatch(/"event":"request"/);
    expect(server.stderr()).not.toContain(readFileSync(keyFile, 'utf8').trim());
    for (const ticket of tickets) expect(server.stderr()).not.toContain(ticket);
  });

  it('maps refusals to exit codes: 4 for a wrong key, 3 for an unknown product, 2 for bad input and flags', async () => {
    const wrongKey = join(dir, 'wrong.key');
    writeFileSync(wrongKey, `vsclk_1_${'0'.repeat(64)}\n`, { mode: 0o600 });
    const unauthenticated = await vsc('order', '--server', url, '--api-key-file', wrongKey, '--order-id', 'SO-9', '--product', '10');
    expect(unauthenticated.code).toBe(4);
    expect(unauthenticated.stderr).toMatch(/API key is not valid/);
    const unknown = await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-7', '--product', '99');
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/no product 99/);
    // An order id used for other items is the caller's mistake: reason input, exit 2.
    const reused = await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-1', '--product', '10', '--quantity', '4');
    expect(reused.code).toBe(2);
    expect(reused.stderr).toMatch(/SO-1 was used for other items/);
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, readFileSync(keyFile), { mode: 0o644 });
    expect((await vsc('audit', '--server', url, '--api-key-file', loose)).code).toBe(2);
    expect((await vsc('product', 'define', '--server', url, '--api-key-file', keyFile, '--code', '12', '--text', 'T')).code).toBe(2);
    expect((await vsc('order', '--server', url, '--api-key-file', keyFile, '--order-id', 'SO-8', '--product', '10', '--quantity', '0')).code).toBe(2);
    expect((await vsc('serve', '--data', data, '--listen', 'nowhere')).code).toBe(2);
    expect((await vsc('serve', '--data', data, '--db', 'postgres://user:secret@127.0.0.1/db')).code).toBe(2);
  });

  it('has --help on every command', async () => {
    for (const path of [['serve'], ['licensor', 'add'], ['product', 'define'], ['order'], ['audit']]) {
      const help = await vsc(...path, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: vsc license /);
      expect(help.stdout).toContain('--json');
    }
  });

  it('stops on SIGTERM with exit 0', async () => {
    const stopped = await server.stop('SIGTERM');
    expect(stopped.code, server.output()).toBe(0);
    expect(server.stdout()).toMatch(/"event":"stopped"/);
  });
});
