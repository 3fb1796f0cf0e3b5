// End-to-end helper: real `vsc server start` processes (one, or several sharing one --data DIR and
// one --db URL) on SQLite in a temp dir or on --db URL, and clients as separate `vsc` processes that
// simulate machines with --state-dir/--machine-id. Client calls are spread over the server processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT, runVsc, type VscRun } from './vsc-process.js';

export interface RunningCard {
  readonly child: ChildProcess;
  readonly exited: Promise<VscRun>;
  /** Index of the server process this card was inserted through (its removes go there too). */
  readonly server: number;
}

export interface ServerHarnessOptions {
  /** Port of server process 0; process i listens on port + i. */
  readonly port: number;
  readonly serverArgs?: string[];
  readonly clientArgs?: string[];
  /** --db URL (postgres://...); default: the SQLite database in the data directory. */
  readonly db?: string;
  /** How many `vsc server start` processes serve the same data directory and database (default 1). */
  readonly servers?: number;
}

export interface ServerHarness {
  readonly dir: string;
  readonly data: string;
  /** Port of server process 0. */
  readonly port: number;
  /** ws:// URL of each server process, by index. */
  readonly urls: readonly string[];
  /** How many server processes share the cards. */
  readonly servers: number;
  /** Where the cards live: the postgres:// URL, or the path of the data directory's SQLite file. */
  readonly database: string;
  /** --data DIR, and --db URL when the cards live elsewhere: what every admin command needs. */
  readonly admin: string[];
  serverKey(): string;
  /**
   * The flags every card command needs, for one card and password. `server` picks the server
   * process (taken modulo their number); without it, calls go round-robin over the processes, so
   * consecutive operations on one card reach different processes.
   */
  client(serial: string, password: string, server?: number): string[];
  /** --state-dir and --machine-id of one simulated machine. */
  machine(name: string): string[];
  /** A running `vsc card insert`; resolves once it says "inserted" (or exited). */
  startInsert(serial: string, password: string, machineName: string, extra?: string[], server?: number): Promise<RunningCard>;
  /** `admin enroll` then `card enroll`; returns the enrollment output. */
  enroll(serial: string, password: string, extra?: string[]): Promise<VscRun>;
  state(serial: string): Promise<string>;
  /** Starts (or restarts) one server process, or every one that is not running. */
  start(server?: number): Promise<void>;
  /** Stops one server process, or all of them (SIGTERM). */
  stop(server?: number): Promise<void>;
  /** SIGKILLs every `vsc card insert` this harness started that still runs (after a failed test). */
  killCards(): Promise<void>;
  /** Stops the servers and the card processes left running, and removes the temp dir. */
  close(): Promise<void>;
}

export async function startServerHarness(options: ServerHarnessOptions): Promise<ServerHarness> {
  const { port, serverArgs = [], clientArgs = [], servers = 1 } = options;
  if (!Number.isInteger(servers) || servers < 1) throw new Error(`expected servers to be a positive whole number, got ${String(servers)}`);
  /** Where the server and the admin commands keep the cards: --db URL, or the data directory's SQLite. */
  const db = options.db === undefined ? [] : ['--db', options.db];
  const dir = mkdtempSync(join(tmpdir(), 'vsc-e2e-server-'));
  const data = join(dir, 'server');
  const urls = Array.from({ length: servers }, (_, i) => `ws://127.0.0.1:${port + i}`);
  const processes: (ChildProcess | undefined)[] = urls.map(() => undefined);
  let serverKey = '';
  let nextServer = 0;
  const passwordFiles = new Map<string, string>();
  const cards = new Set<RunningCard>();

  const passwordFile = (password: string): string => {
    let path = passwordFiles.get(password);
    if (path === undefined) {
      path = join(dir, `password-${passwordFiles.size}`);
      writeFileSync(path, `${password}\n`, { mode: 0o600 });
      passwordFiles.set(password, path);
    }
    return path;
  };
  const pick = (server: number | undefined): number => (server ?? nextServer++) % servers;
  const clientOn = (index: number, serial: string, password: string): string[] => [
    '--server', urls[index]!, '--server-key', serverKey, '--master-key-file', join(data, 'master.key'), '--serial', serial, '--password-file', passwordFile(password), ...clientArgs,
  ];
  const machine = (name: string): string[] => ['--state-dir', join(dir, `machine-${name}`), '--machine-id', name];
  const indexes = (server: number | undefined): number[] => {
    if (server === undefined) return urls.map((_, i) => i);
    if (!Number.isInteger(server) || server < 0 || server >= servers) throw new Error(`expected a server index below ${servers}, got ${String(server)}`);
    return [server];
  };

  const startOne = async (index: number): Promise<void> => {
    const running = processes[index];
    if (running !== undefined && running.exitCode === null && running.signalCode === null) return;
    const child = spawn(process.execPath, ['bin/vsc.js', 'server', 'start', '--data', data, ...db, '--listen', `127.0.0.1:${port + index}`, ...serverArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    processes[index] = child;
    let out = '';
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-65_536);
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const key = /server public key:\n([0-9a-f]{64})/.exec(out);
        if (key !== null) {
          if (serverKey !== '' && serverKey !== key[1]) reject(new Error(`server ${index} announced key ${key[1]!}, expected the shared ${serverKey}`));
          serverKey = key[1]!;
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`vsc server start (server ${index}) exited with ${String(code)}: ${err}`)));
    });
  };
  const stopOne = async (index: number): Promise<void> => {
    const child = processes[index];
    processes[index] = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };

  const harness: ServerHarness = {
    dir,
    data,
    port,
    urls,
    servers,
    database: options.db ?? join(data, 'vsc.db'),
    admin: ['--data', data, ...db],
    serverKey: () => serverKey,
    client: (serial, password, server) => clientOn(pick(server), serial, password),
    machine,
    async startInsert(serial, password, machineName, extra = [], server) {
      const index = pick(server);
      const child = spawn(process.execPath, ['bin/vsc.js', 'card', 'insert', ...clientOn(index, serial, password), ...machine(machineName), ...extra], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const exited = new Promise<VscRun>((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
      // Known to killCards() from the start: a test may time out before the card says "inserted".
      const card: RunningCard = { child, exited, server: index };
      cards.add(card);
      void exited.then(() => cards.delete(card));
      await new Promise<void>((resolve) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('inserted')) resolve();
        });
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        void exited.then(() => resolve());
      });
      return card;
    },
    async enroll(serial, password, extra = []) {
      const created = await runVsc(['admin', 'enroll', ...harness.admin, '--serial', serial]);
      expect(created.code, created.stderr).toBe(0);
      const token = created.stdout.trim().split('\n').at(-1)!;
      // --token=T: a token may begin with '-', which a separate argument would not survive.
      const enrolled = await runVsc(['card', 'enroll', ...harness.client(serial, password), `--token=${token}`, ...extra]);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      return enrolled;
    },
    async state(serial) {
      const shown = await runVsc(['admin', 'show', ...harness.admin, '--serial', serial, '--json']);
      expect(shown.code, shown.stderr).toBe(0);
      return (JSON.parse(shown.stdout) as { state: string }).state;
    },
    async start(server) {
      // One after another: the first start applies the schema, the others find it in place.
      for (const index of indexes(server)) await startOne(index);
    },
    async stop(server) {
      await Promise.all(indexes(server).map(stopOne));
    },
    async killCards() {
      const left = [...cards];
      for (const card of left) card.child.kill('SIGKILL');
      await Promise.all(left.map((card) => card.exited));
    },
    async close() {
      await harness.killCards();
      await harness.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const init = await runVsc(['server', 'init', '--data', data, ...db]);
  expect(init.code, init.stderr).toBe(0);
  await harness.start();
  return harness;
}
