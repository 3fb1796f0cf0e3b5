// One real `vsc server start` process on a fresh SQLite data directory, with its metrics listener,
// for the tests that load, flood and fuzz it: its resident memory (/proc/PID/status), its metrics,
// its cards table, and cards enrolled through the client library from this process.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { utf8 } from '../../src/bytes/index.js';
import { enrollCard, mukFromOverride, type ServerEndpoint } from '../../src/vsc-client/index.js';
import { CardStore, loadServerKeys, openDatabase } from '../../src/vsc-server/index.js';
import { runVsc, spawnVsc, type VscProcess } from './vsc-spawn.js';

export const SPAWNED_PASSWORD = utf8('correct horse battery staple');

export interface SpawnedServer {
  readonly process: VscProcess;
  readonly url: string;
  readonly endpoint: ServerEndpoint;
  readonly masterKey: Uint8Array;
  /** The server's resident set size now, in MiB. */
  rssMiB(): number;
  /** The sum of the series `name` with (at least) these labels, 0 when there is none. */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>;
  /**
   * A card created with `vsc admin`'s store and enrolled with SPAWNED_PASSWORD through the client
   * library, from the machine `muk` names (which then has a wrong-password bucket of its own).
   */
  enroll(serial: string, muk?: Uint8Array): Promise<void>;
  /** Every row of the cards table, blobs as hex, ordered by serial: compare two to see a state change. */
  cardsDump(): string;
  close(): Promise<void>;
}

export async function startSpawnedServer(args: readonly string[] = []): Promise<SpawnedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-spawned-server-'));
  const data = join(dir, 'server');
  const init = await runVsc(['server', 'init', '--data', data]);
  if (init.code !== 0) throw new Error(`expected vsc server init to succeed, got ${init.code}: ${init.stderr}`);
  const child = spawnVsc(['server', 'start', '--data', data, '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--log-level', 'warn', ...args]);
  const listening = await child.waitFor(/listening on (ws:\/\/\S+)\nmetrics on (http:\/\/\S+)\nserver public key:\n[0-9a-f]{64}/, 20_000);
  const [, url, metricsUrl] = listening as unknown as [string, string, string];
  const keys = loadServerKeys(data);
  const endpoint: ServerEndpoint = { url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey, timeoutMs: 30_000, retryMs: 0 };
  const dbPath = join(data, 'vsc.db');
  return {
    process: child,
    url,
    endpoint,
    masterKey: keys.masterKey,
    rssMiB() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      if (kib === null) throw new Error(`expected VmRSS in /proc/${child.pid}/status, got:\n${status}`);
      return Number(kib[1]) / 1024;
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(metricsUrl)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (match === null || match[1] !== name) continue;
        const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
        if (Object.entries(labels).every(([key, value]) => found[key] === value)) sum += Number(match[3]);
      }
      return sum;
    },
    async enroll(serial, muk = mukFromOverride('spawned server enroller')) {
      const database = await openDatabase(dbPath);
      try {
        const token = await new CardStore(database).create(serial);
        await enrollCard(endpoint, serial, token, SPAWNED_PASSWORD, muk);
      } finally {
        await database.close();
      }
    },
    cardsDump() {
      const database = new Database(dbPath, { readonly: true });
      try {
        const rows = database.prepare('SELECT * FROM cards ORDER BY serial').all() as Record<string, unknown>[];
        return JSON.stringify(rows, (_, value: unknown) => (Buffer.isBuffer(value) ? value.toString('hex') : typeof value === 'bigint' ? value.toString() : value));
      } finally {
        database.close();
      }
    },
    async close() {
      if (child.running()) await child.stop('SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
