// The operator's view of the VSC server (issue 6): pino log lines and Prometheus metrics on a
// listener of their own, fed by real operations over the protected channel, on SQLite and
// PostgreSQL; then a real `vsc server start --metrics` process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  mukFromOverride, OperationRefused, destroyCard, enrollCard, extendCounterWindow, insertCard, recoverCard,
  removeCard, unblockCard, unchangedUpload, type ServerEndpoint,
} from '../../src/vsc-client/index.js';
import { decodeProtectedInformation } from '../../src/card/index.js';
import {
  CardStore, combineObservers, countCardsByState, createServerLogger, createServerMetrics, initServerData,
  loadServerKeys, openDatabase, operationLogObserver, serveMetrics, startVscServer, type MetricsListener,
  type RunningVscServer, type ServerKeys, type VscDatabase,
} from '../../src/vsc-server/index.js';
import { freshPostgresDatabase, runVsc, spawnVsc, type VscProcess } from '../support/index.js';

const PASSWORD = utf8('observability is not a leak');
const MUK_A = mukFromOverride('obs-machine-a');
const MUK_B = mukFromOverride('obs-machine-b');

/** One sample of the exposition text: the series with exactly these labels, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((pair) => [pair[1]!, pair[2]!]));
    if (Object.keys(found).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return 0;
}

async function get(url: string, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(url, { method });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

async function refused(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  return error as OperationRefused;
}

interface Deployment {
  readonly keys: ServerKeys;
  readonly database: VscDatabase;
  readonly store: CardStore;
  readonly server: RunningVscServer;
  readonly metrics: MetricsListener;
  readonly endpoint: ServerEndpoint;
  /** Every line the server logged so far. */
  readonly lines: string[];
  scrape(): Promise<string>;
  close(): Promise<void>;
}

/** A real server in this process on `databaseUrl`, logging into `lines`, with metrics on their own port. */
async function deploy(dir: string, databaseUrl: string): Promise<Deployment> {
  await initServerData(join(dir, 'server'), databaseUrl);
  const keys = loadServerKeys(join(dir, 'server'));
  const database = await openDatabase(databaseUrl);
  const lines: string[] = [];
  const logger = createServerLogger({ instance: 'test-instance', destination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter((line) => line.length > 0)) } });
  // TTL 0: every scrape counts afresh, so the gauge can be compared with the database right away.
  const collected = createServerMetrics({ database, cardCountTtlMs: 0 });
  const metrics = await serveMetrics(collected, { host: '127.0.0.1', port: 0 });
  const server = await startVscServer({ keys, database, observer: combineObservers(operationLogObserver(logger), collected.observer) });
  return {
    keys, database, store: new CardStore(database), server, metrics, lines,
    endpoint: { url: server.url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey },
    async scrape() {
      const response = await get(metrics.url);
      expect(response.status).toBe(200);
      return response.body;
    },
    async close() {
      await server.close();
      await metrics.close();
      await database.close();
    },
  };
}

describe.each(['sqlite', 'postgres'] as const)('operations and cards on %s', { timeout: 60_000 }, (dialect) => {
  let dir: string;
  let deployment: Deployment;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-obs-test-'));
    deployment = await deploy(dir, dialect === 'postgres' ? await freshPostgresDatabase(inject('postgresUrl')) : join(dir, 'vsc.db'));
  });
  afterAll(async () => {
    await deployment.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an insert, a refused insert (wrong password) and a remove show in the counters and the histogram; cards by state match the database', async () => {
    const { store, endpoint, scrape } = deployment;
    await enrollCard(endpoint, 'OBS-1', await store.create('OBS-1'), PASSWORD, MUK_A);
    await enrollCard(endpoint, 'OBS-2', await store.create('OBS-2'), PASSWORD, MUK_A);
    await store.create('OBS-3');
    await store.destroy('OBS-3', 'admin');
    const before = await scrape();

    const inserted = await insertCard(endpoint, 'OBS-1', { password: PASSWORD }, MUK_A);
    expect((await refused(insertCard(endpoint, 'OBS-2', { password: utf8('wrong') }, MUK_A))).reason).toBe('authentication');
    const during = await scrape();
    expect(sample(during, 'vsc_cards', { state: 'in-use' })).toBe(1);
    await removeCard(endpoint, 'OBS-1', unchangedUpload(inserted, MUK_A, inserted.counterWindow[0]));
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}): number => sample(after, name, labels) - sample(before, name, labels);
    expect(sample(before, 'vsc_operations_total', { operation: 'enroll', outcome: 'ok' })).toBe(2);
    expect(delta('vsc_operations_total', { operation: 'insert', outcome: 'ok' })).toBe(1);
    expect(delta('vsc_operations_total', { operation: 'insert', outcome: 'authentication' })).toBe(1);
    expect(delta('vsc_operations_total', { operation: 'remove', outcome: 'ok' })).toBe(1);
    expect(delta('vsc_operation_duration_seconds_count', { operation: 'insert' })).toBe(2);
    expect(delta('vsc_operation_duration_seconds_count', { operation: 'remove' })).toBe(1);
    expect(delta('vsc_operation_duration_seconds_bucket', { operation: 'insert', le: '+Inf' })).toBe(2);
    expect(delta('vsc_operation_duration_seconds_sum', { operation: 'insert' })).toBeGreaterThan(0);
    // Three operations, one at a time: three commits of one (the wrong password's count is committed too).
    expect(delta('vsc_commit_group_operations_count')).toBe(3);
    expect(delta('vsc_commit_group_operations_sum')).toBe(3);
    expect(delta('vsc_commit_group_operations_bucket', { le: '1' })).toBe(3);
    // Sessions are counted while served: none is open between operations.
    expect(sample(after, 'vsc_sessions_active')).toBe(0);

    const cards = await store.list();
    for (const state of ['idle', 'in-use', 'destroyed'] as const) {
      expect(sample(after, 'vsc_cards', { state }), state).toBe(cards.filter((card) => card.state === state).length);
    }
    expect(sample(after, 'vsc_cards', { state: 'idle' })).toBe(2);
    expect(sample(after, 'vsc_cards', { state: 'destroyed' })).toBe(1);
    expect(await countCardsByState(deployment.database)).toEqual({ idle: 2, 'in-use': 0, destroyed: 1 });
  });

  it('logs one JSON line per finished operation with operation, serial, outcome, duration, remote address and instance', () => {
    const parsed = deployment.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const operations = parsed.filter((line) => line['event'] === 'operation');
    expect(operations.map((line) => `${String(line['operation'])} ${String(line['serial'])} ${String(line['outcome'])}`)).toEqual([
      'enroll OBS-1 ok', 'enroll OBS-2 ok', 'insert OBS-1 ok', 'insert OBS-2 authentication', 'remove OBS-1 ok',
    ]);
    for (const line of operations) {
      expect(line).toMatchObject({ instance: 'test-instance', remote: '127.0.0.1', pid: process.pid });
      expect(typeof line['durationMs']).toBe('number');
      expect(line['durationMs']).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(String(line['time'])))).toBe(false);
      expect(line['level']).toBe(line['outcome'] === 'authentication' ? 'warn' : 'info');
    }
  });
});

/** A deployment on SQLite in a temp dir for the enclosing describe block; the getter works from its beforeAll on. */
function sqliteDeployment(): () => Deployment {
  let dir = '';
  let deployment: Deployment | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-obs-test-'));
    deployment = await deploy(dir, join(dir, 'vsc.db'));
  });
  afterAll(async () => {
    await deployment?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => deployment!;
}

describe('the metrics listener', { timeout: 60_000 }, () => {
  const use = sqliteDeployment();
  let deployment: Deployment;
  beforeAll(() => void (deployment = use()));

  it('serves GET /metrics on its own port only: the WebSocket port still answers 426, anything else is 404', async () => {
    const metrics = await get(deployment.metrics.url);
    expect(metrics.status).toBe(200);
    expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(metrics.body).toContain('# TYPE vsc_operations_total counter');
    expect(metrics.body).toContain('# TYPE vsc_operation_duration_seconds histogram');
    expect(metrics.body).toContain('process_cpu_user_seconds_total');
    expect(deployment.metrics.port).not.toBe(deployment.server.port);
    const onWebSocketPort = await get(`http://127.0.0.1:${deployment.server.port}/metrics`);
    expect(onWebSocketPort.status).toBe(426);
    expect(onWebSocketPort.body).not.toContain('vsc_');
    const base = deployment.metrics.url.replace(/\/metrics$/, '');
    expect((await get(`${base}/`)).status).toBe(404);
    expect((await get(`${base}/metrics/x`)).status).toBe(404);
    expect((await get(deployment.metrics.url, 'POST')).status).toBe(404);
  });

  it('a scrape storm costs the database one count per second', async () => {
    let counts = 0;
    const counter: KyselyPlugin = {
      transformQuery: (args) => {
        if (args.node.kind === 'SelectQueryNode') counts += 1;
        return args.node;
      },
      transformResult: (args) => Promise.resolve(args.result),
    };
    let clock = 1_000_000;
    const counted = { ...deployment.database, db: deployment.database.db.withPlugin(counter) };
    const metrics = createServerMetrics({ database: counted, now: () => clock, processMetrics: false });
    const storm = await Promise.all(Array.from({ length: 20 }, () => metrics.scrape()));
    for (let i = 0; i < 20; i += 1) storm.push(await metrics.scrape());
    expect(counts).toBe(1);
    expect(new Set(storm.map((text) => sample(text, 'vsc_cards', { state: 'idle' }))).size).toBe(1);
    clock += 999;
    await metrics.scrape();
    expect(counts).toBe(1);
    clock += 1;
    await metrics.scrape();
    expect(counts).toBe(2);
  });
});

describe('secrecy', { timeout: 60_000 }, () => {
  const use = sqliteDeployment();
  let deployment: Deployment;
  beforeAll(() => void (deployment = use()));

  it('no password, key, MUK, holder secret, token, recovery code or card key reaches a log line or the metrics, in hex or base64', async () => {
    const { store, endpoint, keys } = deployment;
    const token = await store.create('SECRET-1');
    const { recoveryCode } = await enrollCard(endpoint, 'SECRET-1', token, PASSWORD, MUK_A);
    await expect(enrollCard(endpoint, 'SECRET-1', token, PASSWORD, MUK_A)).rejects.toMatchObject({ code: 'enroll.token' });
    await expect(unblockCard(endpoint, 'SECRET-1', 'A'.repeat(32))).rejects.toMatchObject({ reason: 'authentication' });
    await unblockCard(endpoint, 'SECRET-1', recoveryCode);
    const inserted = await insertCard(endpoint, 'SECRET-1', { password: PASSWORD }, MUK_A);
    await refused(insertCard(endpoint, 'SECRET-1', { password: PASSWORD }, MUK_B));
    const holder = { muk: MUK_A, holderSecret: inserted.holderSecret };
    const window = await extendCounterWindow(endpoint, 'SECRET-1', holder);
    const upload = unchangedUpload(inserted, MUK_A, window[0]);
    await refused(removeCard(endpoint, 'SECRET-1', { ...upload, holderSecret: new Uint8Array(32).fill(7) }));
    await removeCard(endpoint, 'SECRET-1', upload);
    await insertCard(endpoint, 'SECRET-1', { password: PASSWORD }, MUK_B);
    await recoverCard(endpoint, 'SECRET-1', PASSWORD, MUK_B);
    await refused(destroyCard(endpoint, 'SECRET-1', { password: utf8('not the password') }, MUK_B));
    await destroyCard(endpoint, 'SECRET-1', { password: PASSWORD }, MUK_A);

    const secrets: Record<string, Uint8Array> = {
      password: PASSWORD, token: utf8(token), recoveryCode: utf8(recoveryCode), authKey: inserted.keys.authKey, protectionKey: inserted.keys.protectionKey, mukA: MUK_A, mukB: MUK_B,
      holderSecret: inserted.holderSecret, cardSigningSeed: decodeProtectedInformation(inserted.plaintext).signingSeed,
      masterKey: keys.masterKey, channelPrivateKey: keys.channelPrivateKey, signingSeed: keys.signingSeed, keyfileSecret: keys.keyfileSecret,
    };
    const forms = (value: Uint8Array): string[] => {
      const buffer = Buffer.from(value);
      const hexWindows = Array.from({ length: Math.max(1, value.length - 7) }, (_, i) => toHex(value.subarray(i, i + 8)));
      return [...hexWindows, ...hexWindows.map((hex) => hex.toUpperCase()), buffer.toString('base64'), buffer.toString('base64url'), buffer.toString('latin1')];
    };
    const everything = [...deployment.lines, await deployment.scrape()].join('\n');
    expect(deployment.lines.filter((line) => line.includes('"event":"operation"'))).toHaveLength(13);
    expect(everything).toContain('"serial":"SECRET-1"'); // the lines searched are the real ones
    for (const [name, value] of Object.entries(secrets)) {
      for (const form of forms(value)) expect(everything.includes(form), `${name} as ${form}`).toBe(false);
    }
  });

  it('redacts secret-looking fields should one ever be passed to the logger', () => {
    const lines: string[] = [];
    const logger = createServerLogger({ destination: { write: (chunk: string) => void lines.push(chunk) } });
    logger.info({ serial: 'S-1', authKey: 'leak-1', holderSecret: 'leak-2', muk: 'leak-3', password: 'leak-4', sealed: 'leak-5', token: 'leak-6' }, 'careless');
    const line = JSON.parse(lines.join('')) as Record<string, unknown>;
    expect(lines.join('')).not.toMatch(/leak-/);
    expect(line).toMatchObject({ serial: 'S-1', authKey: '[redacted]', holderSecret: '[redacted]', muk: '[redacted]', password: '[redacted]', sealed: '[redacted]', token: '[redacted]' });
  });
});

describe('vsc server start --metrics --log-level', { timeout: 60_000 }, () => {
  let dir: string;
  let data: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-obs-cli-'));
    data = join(dir, 'server');
    const init = await runVsc(['server', 'init', '--data', data]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A running `vsc server start`: resolves once it printed the public key (or exited). */
  async function startServer(args: string[]): Promise<VscProcess> {
    const server = spawnVsc(['server', 'start', '--data', data, '--listen', '127.0.0.1:0', ...args]);
    await server.waitFor(/server public key:\n[0-9a-f]{64}\n/).catch(() => undefined); // or it ended: the test says how
    return server;
  }

  it('logs JSON lines on stderr, keeps the public key on stdout, serves /metrics on its own port, and stops both on SIGTERM', async () => {
    const server = await startServer(['--metrics', '127.0.0.1:0', '--log-level', 'info']);
    expect(server.child.exitCode, server.stderr()).toBeNull();
    const url = /VSC server listening on (ws:\/\/\S+)/.exec(server.stdout())![1]!;
    const metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(server.stdout())![1]!;
    const keys = loadServerKeys(data);
    expect(server.stdout()).toContain(`server public key:\n${toHex(keys.channelPublicKey)}\n`);

    const admin = await runVsc(['admin', 'enroll', '--data', data, '--serial', 'CLI-1']);
    expect(admin.code, admin.stderr).toBe(0);
    const endpoint = { url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey };
    await enrollCard(endpoint, 'CLI-1', admin.stdout.trim().split('\n').at(-1)!, PASSWORD, MUK_A);
    expect((await refused(insertCard(endpoint, 'CLI-1', { password: utf8('wrong') }, MUK_A))).reason).toBe('authentication');

    const scraped = await get(metricsUrl);
    expect(scraped.status).toBe(200);
    expect(sample(scraped.body, 'vsc_operations_total', { operation: 'enroll', outcome: 'ok' })).toBe(1);
    expect(sample(scraped.body, 'vsc_operations_total', { operation: 'insert', outcome: 'authentication' })).toBe(1);
    expect(sample(scraped.body, 'vsc_cards', { state: 'idle' })).toBe(1);
    expect(scraped.body).toContain('process_resident_memory_bytes');
    expect((await get(url.replace(/^ws:/, 'http:'))).status).toBe(426);

    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(ExitCode.ok);
    await expect(fetch(metricsUrl)).rejects.toThrow();
    const lines = server.stderr().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line['event'])).toEqual(['start', 'operation', 'operation', 'stop', 'stopped']);
    expect(lines[0]).toMatchObject({ level: 'info', url, metrics: metricsUrl, database: 'sqlite' });
    expect(lines[2]).toMatchObject({ level: 'warn', operation: 'insert', serial: 'CLI-1', outcome: 'authentication', remote: '127.0.0.1' });
    expect(new Set(lines.map((line) => line['instance'])).size).toBe(1);
    expect(lines[3]).toMatchObject({ signal: 'SIGTERM' });
  });

  it('a metrics port already taken gives one readable line and exit 1; a bad --log-level is a usage error', async () => {
    const first = await startServer(['--metrics', '127.0.0.1:0', '--log-level', 'silent']);
    const metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(first.stdout())![1]!;
    const taken = /:(\d+)\/metrics$/.exec(metricsUrl)![1]!;
    try {
      const second = await runVsc(['server', 'start', '--data', data, '--listen', '127.0.0.1:0', '--metrics', `127.0.0.1:${taken}`]);
      expect(second.code).toBe(ExitCode.other);
      expect(second.stdout).toBe('');
      expect(second.stderr.trim()).toBe(`vsc: cannot listen for metrics on 127.0.0.1:${taken}: the address is already in use`);
      expect(first.stderr()).toBe(''); // silent
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    const usage = await runVsc(['server', 'start', '--data', data, '--log-level', 'loud']);
    expect(usage.code).toBe(ExitCode.usage);
    expect(usage.stderr).toContain('--log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"');
  });
});
