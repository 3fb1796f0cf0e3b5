// Server-cycle benchmark (issue 6): insert + remove cycles per second that one `vsc server start`
// process sustains for 200 concurrent clients over the real protocol, against the X25519 bound of
// the channel measured in the same run; the same with 10,000 and 1,000,000 more cards in the
// database; and one versus two server processes on one PostgreSQL, per server CPU-second.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { fromHex, wipe } from '../src/bytes/index.js';
import { generateX25519KeyPair, generateX25519PrivateKey } from '../src/crypto/index.js';
import { insertCard, removeCard, unchangedUpload, type ServerEndpoint } from '../src/vsc-client/index.js';
import { freshPostgresDatabase, startPostgresCluster } from '../test/support/index.js';
import { loadPostgresCards, loadSqliteCards, loadSqliteFiller, makeBenchCards, type BenchCards } from './card-rows.js';
import { runVsc, startServerProcess, type ServerProcess } from './server-process.js';
import { percentile } from './stats.js';

export const CLIENTS = 200;
const WARMUP_MS = 3_000;
const MEASURE_MS = 10_000;
/**
 * X25519 operations the server does per cycle, counted from src/channel/noise-nk.ts: each session
 * (an insert and a remove are one each) is a Noise NK responder that generates its ephemeral key
 * (1), and computes DH(s, re) for "es" (1) and DH(e, re) for "ee" (1). The static key is imported
 * and checked once per process, not per session.
 */
export const X25519_PER_CYCLE = 6;

export interface CycleFigure {
  readonly label: string;
  readonly servers: number;
  readonly cycles: number;
  readonly seconds: number;
  readonly cyclesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuSeconds: number;
  /** CPU seconds of the load generator (this process) over the same interval. */
  readonly loadCpuSeconds: number;
  readonly failures: number;
  readonly failureKinds: readonly string[];
}

export const cpuPer1000 = (f: CycleFigure): number => (f.serverCpuSeconds / f.cycles) * 1000;
export const cyclesPerCpuSecond = (f: CycleFigure): number => f.cycles / f.serverCpuSeconds;

export interface X25519Rate {
  /** X25519 operations per second through the facade the channel uses (node:crypto), one core. */
  readonly opsPerSecond: number;
  /** The same for @noble/curves, which the channel used before. */
  readonly nobleOpsPerSecond: number;
}

export interface ServerCycleResults {
  readonly argon2Ms: number;
  readonly x25519: X25519Rate;
  /** 200 cards, measured first and again last; the goals use the better of the two. */
  readonly sqlite: { readonly first: CycleFigure; readonly last: CycleFigure; readonly plus10k: CycleFigure; readonly plus1m: CycleFigure };
  readonly postgres?: { readonly one: CycleFigure; readonly two: CycleFigure };
  readonly notes: readonly string[];
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The server's own mix, as it runs per session: one key generation and two DHs against a peer key
 * received as bytes. Yields between batches, as a server does between sessions.
 */
export async function measureX25519(durationMs: number): Promise<X25519Rate> {
  const peer = generateX25519KeyPair().publicKey;
  let sessions = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 50; i++) {
      const e = generateX25519PrivateKey();
      wipe(e.sharedSecret(peer), e.sharedSecret(peer));
    }
    sessions += 50;
    await yieldToLoop();
  }
  const opsPerSecond = (sessions * 3) / ((performance.now() - start) / 1000);
  const scalar = new Uint8Array(randomBytes(32));
  let nobleOps = 0;
  const nobleStart = performance.now();
  while (performance.now() - nobleStart < 500) {
    nobleX25519.getSharedSecret(scalar, peer);
    nobleOps++;
  }
  return { opsPerSecond, nobleOpsPerSecond: nobleOps / ((performance.now() - nobleStart) / 1000) };
}

function describeFailure(error: unknown): string {
  // Codes and names only: messages of the protocol never carry secrets, but keep the report terse.
  if (error instanceof Error) return (error as Error & { code?: unknown }).code === undefined ? error.name : String((error as Error & { code?: unknown }).code);
  return typeof error;
}

/**
 * CLIENTS clients, client i on server i mod servers, each looping insert then remove on its own card.
 * After WARMUP_MS, counts the cycles that end within MEASURE_MS and the servers' CPU time meanwhile.
 */
export async function runCycles(label: string, bench: BenchCards, servers: readonly ServerProcess[], masterKey: Uint8Array): Promise<CycleFigure> {
  const endpoints: ServerEndpoint[] = servers.map((server) => ({ url: server.url, serverKey: server.serverKey, masterKey }));
  let stop = false;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const latencies: number[] = [];
  let failures = 0;
  const failureKinds = new Set<string>();

  async function client(index: number): Promise<void> {
    const card = bench.cards[index]!;
    const endpoint = endpoints[index % endpoints.length]!;
    const muk = new Uint8Array(randomBytes(32));
    while (!stop) {
      const started = performance.now();
      try {
        const inserted = await insertCard(endpoint, card.serial, { keys: bench.keys }, muk);
        const upload = unchangedUpload(inserted, muk, inserted.counterWindow[0]);
        wipe(inserted.keys.authKey, inserted.keys.protectionKey);
        await removeCard(endpoint, card.serial, upload);
        wipe(inserted.plaintext, inserted.holderSecret, upload.sealed);
      } catch (error) {
        // The card's state is unknown after a failure: this client stops, and the failure is reported.
        failures++;
        failureKinds.add(describeFailure(error));
        return;
      }
      const ended = performance.now();
      if (ended > windowStart && ended <= windowEnd) latencies.push(ended - started);
    }
  }

  const loops = Array.from({ length: CLIENTS }, (_, i) => client(i));
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const cpuBefore = servers.map((server) => server.cpuSeconds());
  const loadBefore = process.cpuUsage();
  windowStart = performance.now();
  windowEnd = windowStart + MEASURE_MS;
  await new Promise((resolve) => setTimeout(resolve, MEASURE_MS));
  const elapsed = (performance.now() - windowStart) / 1000;
  const serverCpuSeconds = servers.reduce((sum, server, i) => sum + server.cpuSeconds() - cpuBefore[i]!, 0);
  const load = process.cpuUsage(loadBefore);
  stop = true;
  await Promise.all(loops);
  const cycles = latencies.length;
  return {
    label, servers: servers.length, cycles, seconds: elapsed, cyclesPerSecond: cycles / elapsed,
    p50Ms: cycles === 0 ? NaN : percentile(latencies, 50), p99Ms: cycles === 0 ? NaN : percentile(latencies, 99),
    serverCpuSeconds, loadCpuSeconds: (load.user + load.system) / 1e6, failures, failureKinds: [...failureKinds],
  };
}

async function withServers<T>(count: number, data: string, db: string | undefined, nodeArgs: readonly string[], body: (servers: ServerProcess[]) => Promise<T>): Promise<T> {
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await startServerProcess({ data, ...(db === undefined ? {} : { db }), nodeArgs }));
    return await body(servers);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

export interface ServerCycleOptions {
  /** Run the servers under `node --cpu-prof` and write their profiles here. */
  readonly cpuProfileDir?: string;
  readonly log?: (line: string) => void;
}

export async function measureServerCycles(options: ServerCycleOptions = {}): Promise<ServerCycleResults> {
  const log = options.log ?? ((line: string) => console.log(line));
  const nodeArgs = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-server-'));
  try {
    log('server cycles: X25519 rate of the channel\'s library…');
    const x25519 = await measureX25519(1_500);
    log('server cycles: one Argon2id derivation for the bench cards…');
    const bench = await makeBenchCards(CLIENTS);

    // Two data directories: one keeps 200 cards and is measured first and last (a commit waits for
    // an fsync, so the shared disk's mood shows in these figures), the other grows.
    const sqliteDir = async (name: string): Promise<{ data: string; path: string; masterKey: Uint8Array }> => {
      const data = join(dir, name);
      await runVsc(['server', 'init', '--data', data]);
      const path = join(data, 'vsc.db');
      loadSqliteCards(path, bench);
      return { data, path, masterKey: fromHex(readFileSync(join(data, 'master.key'), 'utf8').trim()) };
    };
    const fixed = await sqliteDir('sqlite-200');
    const growing = await sqliteDir('sqlite-growing');
    const sqliteRun = (label: string, on: { data: string; masterKey: Uint8Array }): Promise<CycleFigure> => {
      log(`server cycles: ${label}…`);
      return withServers(1, on.data, undefined, nodeArgs, (servers) => runCycles(label, bench, servers, on.masterKey));
    };
    const sqlitePath = growing.path;
    const first = await sqliteRun('SQLite, 200 cards (first)', fixed);
    let started = performance.now();
    loadSqliteFiller(sqlitePath, bench, 0, 10_000);
    notes.push(`10,000 filler cards written into SQLite in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    const plus10k = await sqliteRun('SQLite, 200 + 10,000 cards', growing);
    started = performance.now();
    loadSqliteFiller(sqlitePath, bench, 10_000, 1_000_000);
    notes.push(`990,000 more filler cards written into SQLite in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    const plus1m = await sqliteRun('SQLite, 200 + 1,000,000 cards', growing);
    const last = await sqliteRun('SQLite, 200 cards (again, last)', fixed);

    let postgres: ServerCycleResults['postgres'];
    try {
      log('server cycles: starting a throw-away PostgreSQL cluster…');
      const cluster = await startPostgresCluster();
      try {
        const url = await freshPostgresDatabase(cluster.url);
        const pgData = join(dir, 'postgres');
        await runVsc(['server', 'init', '--data', pgData, '--db', url]);
        const pgMaster = fromHex(readFileSync(join(pgData, 'master.key'), 'utf8').trim());
        await loadPostgresCards(url, bench);
        log('server cycles: PostgreSQL, one server process…');
        const one = await withServers(1, pgData, url, nodeArgs, (servers) => runCycles('PostgreSQL, 1 server process', bench, servers, pgMaster));
        log('server cycles: PostgreSQL, two server processes…');
        const two = await withServers(2, pgData, url, nodeArgs, (servers) => runCycles('PostgreSQL, 2 server processes', bench, servers, pgMaster));
        postgres = { one, two };
      } finally {
        await cluster.stop();
      }
    } catch (error) {
      notes.push(`PostgreSQL not measured: ${(error as Error).message.split('\n')[0]}`);
    }
    wipe(bench.keys.authKey, bench.keys.protectionKey);
    return { argon2Ms: bench.argon2Ms, x25519, sqlite: { first, last, plus10k, plus1m }, ...(postgres === undefined ? {} : { postgres }), notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const met = (ok: boolean): string => (ok ? 'met' : 'not met');

function figureRow(f: CycleFigure): string {
  const failures = f.failures === 0 ? '' : `; ${f.failures} clients failed (${f.failureKinds.join(', ')})`;
  return `| ${f.label} | ${fmt(f.cyclesPerSecond)}/s | ${fmt(f.p50Ms, 1)} ms | ${fmt(f.p99Ms, 1)} ms | ${fmt(cpuPer1000(f), 2)} s | ${fmt(cyclesPerCpuSecond(f))} | ${fmt(f.serverCpuSeconds / f.seconds, 2)} / ${fmt(f.loadCpuSeconds / f.seconds, 2)} | ${fmt(f.cycles)} in ${fmt(f.seconds, 1)} s${failures} |`;
}

/** The BENCHMARKS.md section: figures, goals, and how they were measured. */
export function serverCyclesSection(r: ServerCycleResults): string[] {
  const bound = r.x25519.opsPerSecond / X25519_PER_CYCLE;
  const { first, last, plus10k, plus1m } = r.sqlite;
  const base = first.cyclesPerSecond >= last.cyclesPerSecond ? first : last;
  const ratio = base.cyclesPerSecond / bound;
  // Cycle time at a fixed number of clients: the mean is 1 / throughput, so compare throughputs;
  // p50 is given beside it.
  const time10k = base.cyclesPerSecond / plus10k.cyclesPerSecond;
  const time1m = base.cyclesPerSecond / plus1m.cyclesPerSecond;
  const figures = [first, plus10k, plus1m, last, ...(r.postgres === undefined ? [] : [r.postgres.one, r.postgres.two])];
  const goals = [
    '| goal | measured | verdict |',
    '|---|---|---|',
    `| one server process, SQLite, 200 clients (the better 200-card run): ≥ 50 % of the crypto bound | ${fmt(base.cyclesPerSecond)}/s = ${fmt(ratio * 100, 1)} % of ${fmt(bound)}/s | ${met(ratio >= 0.5)} |`,
    `| floor 1,000 cycles/s | ${fmt(base.cyclesPerSecond)}/s | ${met(base.cyclesPerSecond >= 1000)} |`,
    `| p99 < 50 ms | ${fmt(base.p99Ms, 1)} ms | ${met(base.p99Ms < 50)} |`,
    `| +10,000 cards: cycle time ratio < 1.5 | ${fmt(time10k, 2)} (p50 ${fmt(plus10k.p50Ms / base.p50Ms, 2)}, server CPU per cycle ${fmt(cpuPer1000(plus10k) / cpuPer1000(base), 2)}) | ${met(time10k < 1.5)} |`,
    `| +1,000,000 cards: cycle time ratio < 1.5 | ${fmt(time1m, 2)} (p50 ${fmt(plus1m.p50Ms / base.p50Ms, 2)}, server CPU per cycle ${fmt(cpuPer1000(plus1m) / cpuPer1000(base), 2)}) | ${met(time1m < 1.5)} |`,
  ];
  if (r.postgres !== undefined) {
    const { one, two } = r.postgres;
    const share = cyclesPerCpuSecond(two) / cyclesPerCpuSecond(one);
    goals.push(`| PostgreSQL, two server processes ≥ 85 % of one, cycles per server CPU-second | ${fmt(cyclesPerCpuSecond(two))} vs ${fmt(cyclesPerCpuSecond(one))} = ${fmt(share * 100, 1)} % | ${met(share >= 0.85)} |`);
  }
  return [
    '## VSC server: insert + remove cycles',
    '',
    `Client-side Argon2id, excluded: one derivation (m = ${fmt(65536)} KiB, t = 3, p = 1) took ${fmt(r.argon2Ms)} ms; every bench card shares that password, and the clients send the keys derived from it.`,
    '',
    `Crypto bound: the channel's X25519 (node:crypto) does ${fmt(r.x25519.opsPerSecond)} operations/s on one core of this machine (@noble/curves: ${fmt(r.x25519.nobleOpsPerSecond)}/s); the server does ${X25519_PER_CYCLE} per cycle, so the bound is ${fmt(bound)} cycles/s.`,
    '',
    '| figure | cycles/s | p50 | p99 | server CPU s per 1,000 cycles | cycles per server CPU-second | CPU cores busy: servers / load generator | sample |',
    '|---|---|---|---|---|---|---|---|',
    ...figures.map(figureRow),
    '',
    ...goals,
    '',
    '### How they were measured',
    '',
    `- Servers: real \`node bin/vsc.js server start --data DIR [--db URL] --listen 127.0.0.1:0\` processes after \`vsc server init\`, with their default settings (implementation proofs by master key, pino log at info on a pipe). Server CPU is utime + stime of each server process from /proc/PID/stat over the measured interval.`,
    `- Load: ${CLIENTS} concurrent clients in the benchmark process (one Node process: the machine has ${cpus().length} cores, one for the server and one for the load; the last column shows how busy each side was), each looping \`insertCard\` then \`removeCard\` (src/vsc-client) on its own card, each operation a new Noise NK session over a WebSocket; with two servers, client i talks to server i mod 2. ${fmt(WARMUP_MS / 1000)} s of warm-up, then the cycles that end within ${fmt(MEASURE_MS / 1000)} s are counted and their latencies (insert start to remove answer) give p50 and p99.`,
    '- Cards: enrolled rows written straight into the database with the columns an enrollment leaves (Argon2id parameters, owner verifier, sealed information bound to each card id, version 1, a counter range per card id). The filler cards are generated inside SQLite (random card ids, one shared sealed blob, never inserted).',
    '- The 200-card SQLite database is a directory of its own, measured first and again last; the goals use the better of its two runs (for the cycle-time ratios that is the stricter choice). The filler cards go into a second directory that grows from 200 to 10,200 to 1,000,200 cards.',
    '- SQLite runs as the server configures it: WAL, synchronous=FULL (an fsync per commit) on the machine\'s disk, which other work shares: a commit blocks the server\'s event loop for the fsync, so the SQLite figures move with the disk\'s latency (the servers\' busy-core column shows when they waited). PostgreSQL is the tests\' throw-away cluster (test/support/postgres-cluster.ts), which runs with fsync=off and synchronous_commit=off: its figures show the server and the database\'s locking, not a disk.',
    `- With ${CLIENTS} clients in a closed loop, the mean cycle time is ${CLIENTS} ÷ throughput (Little's law): p99 < 50 ms needs more than ${fmt(CLIENTS / 0.05)} cycles/s${CLIENTS / 0.05 > bound ? `, above this run's crypto bound of ${fmt(bound)}/s: at this concurrency that goal cannot be met here whatever the server does` : ''}. The cycle-time ratios compare mean cycle times (inverse throughputs) at the same concurrency.`,
    '- The crypto bound is measured in the same run, before the servers start: the server\'s per-session mix (one key generation, two DHs against a peer key received as bytes) through src/crypto on one core.',
    ...r.notes.map((note) => `- ${note}`),
    '',
  ];
}

// `npx tsx bench/server-cycles.ts [--cpu-prof DIR]`: this benchmark alone, printed, BENCHMARKS.md untouched.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const profile = process.argv.indexOf('--cpu-prof');
  const cpuProfileDir = profile === -1 ? undefined : process.argv[profile + 1];
  const results = await measureServerCycles(cpuProfileDir === undefined ? {} : { cpuProfileDir });
  console.log(serverCyclesSection(results).join('\n'));
}
