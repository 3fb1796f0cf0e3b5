// End-to-end helper: real `vsc server start` processes (one, or several sharing one --data DIR and
// one --db URL) on SQLite in a temp dir or on --db URL, and clients as separate `vsc` processes that
// simulate machines with --state-dir/--machine-id. Client calls are spread over the server processes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_ADDRESS_SERVER_ARGS } from './shared-address-limits.js';
import { runVsc, spawnVsc, type VscProcess, type VscRun } from './vsc-spawn.js';

/** A running `vsc card insert`. */
export interface RunningCard extends VscProcess {
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

/** Throws with the command's output unless it exited 0 (no vitest here: benchmarks use this harness too). */
function succeeded(ran: VscRun): void {
  if (ran.code !== 0) throw new Error(`expected exit code 0, got ${ran.code} (signal ${String(ran.signal)}); stderr:\n${ran.stderr}`);
}

export async function startServerHarness(options: ServerHarnessOptions): Promise<ServerHarness> {
  const { port, serverArgs = [], clientArgs = [], servers = 1 } = options;
  if (!Number.isInteger(servers) || servers < 1) throw new Error(`expected servers to be a positive whole number, got ${String(servers)}`);
  /** Where the server and the admin commands keep the cards: --db URL, or the data directory's SQLite. */
  const db = options.db === undefined ? [] : ['--db', options.db];
  const dir = mkdtempSync(join(tmpdir(), 'vsc-e2e-server-'));
  const data = join(dir, 'server');
  const urls = Array.from({ length: servers }, (_, i) => `ws://127.0.0.1:${port + i}`);
  const processes: (VscProcess | undefined)[] = urls.map(() => undefined);
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
    if (processes[index]?.running() === true) return;
    const child = spawnVsc(['server', 'start', '--data', data, ...db, '--listen', `127.0.0.1:${port + index}`, ...SHARED_ADDRESS_SERVER_ARGS, ...serverArgs]);
    processes[index] = child;
    const key = (await child.waitFor(/server public key:\n([0-9a-f]{64})/))[1]!;
    if (serverKey !== '' && serverKey !== key) throw new Error(`server ${index} announced key ${key}, expected the shared ${serverKey}`);
    serverKey = key;
  };
  const stopOne = async (index: number): Promise<void> => {
    const child = processes[index];
    processes[index] = undefined;
    if (child === undefined || !child.running()) return;
    child.child.kill('SIGTERM');
    await child.exited;
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
      // Known to killCards() (and killAllVsc) from the start: a test may time out before the card says "inserted".
      const card: RunningCard = Object.assign(spawnVsc(['card', 'insert', ...clientOn(index, serial, password), ...machine(machineName), ...extra]), { server: index });
      cards.add(card);
      void card.exited.then(() => cards.delete(card));
      // Or exited: the caller looks at how. Still running without having said so is a stuck insert:
      // fail here with what it printed, not later on a remove that finds no card process to ask.
      await card.waitFor(/inserted/, 120_000).catch((error: unknown) => {
        if (card.running()) throw new Error(`vsc card insert on machine ${machineName} neither said "inserted" nor ended within 120 s:\n${card.output()}`, { cause: error });
      });
      return card;
    },
    async enroll(serial, password, extra = []) {
      const created = await runVsc(['admin', 'enroll', ...harness.admin, '--serial', serial]);
      succeeded(created);
      const token = created.stdout.trim().split('\n').at(-1)!;
      // --token=T: a token may begin with '-', which a separate argument would not survive.
      // Enrolled from machine A, which then counts as a machine that has held the card.
      const enrolled = await runVsc(['card', 'enroll', ...harness.client(serial, password), `--token=${token}`, ...machine('A'), '--json', ...extra]);
      succeeded(enrolled);
      return enrolled;
    },
    async state(serial) {
      const shown = await runVsc(['admin', 'show', ...harness.admin, '--serial', serial, '--json']);
      succeeded(shown);
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
      await Promise.all([...cards].map((card) => card.kill()));
    },
    async close() {
      await harness.killCards();
      await harness.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const init = await runVsc(['server', 'init', '--data', data, ...db]);
  succeeded(init);
  await harness.start();
  return harness;
}
