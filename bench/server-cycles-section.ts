// The BENCHMARKS.md section of the server-cycle benchmark (issues 6 and 18): the figures, the goals
// with each figure's ratio to its limit, and how they were measured.
import { cpus } from 'node:os';
import { CLIENTS, cpuPer1000, cyclesPerCpuSecond, MEASURE_MS, WARMUP_MS, type CycleFigure } from './closed-loop.js';
import { FLOOR_LOOP_MS } from './crypto-floor.js';
import type { OpenLoopFigure } from './open-loop.js';
import type { ServerCycleResults } from './server-cycles.js';

export const SERVER_CYCLES_HEADING = '## VSC server: insert + remove cycles';
/** Issue 18: server CPU per cycle at most this many times the crypto floor. */
const FLOOR_FACTOR_GOAL = 2;
const OPEN_P99_GOAL_MS = 50;
const TWO_PROCESS_SHARE_GOAL = 0.85;
/** Issue 6: one SQLite server process sustains this many cycles per second. */
const CYCLES_GOAL = 1000;
const GROWTH_RATIO_GOAL = 1.5;

const fmt = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–');
const met = (ok: boolean): string => (ok ? 'met' : 'not met');
const ms = (value: number, digits = 2): string => `${fmt(value, digits)} ms`;

function failed(f: { failures: number; failureKinds: readonly string[] }, what: string): string {
  return f.failures === 0 ? '' : `; ${f.failures} ${what} failed (${f.failureKinds.join(', ')})`;
}

function closedRow(f: CycleFigure, floorMs: number): string {
  return `| ${f.label}${f.kept ? '' : ' (a connection per operation)'} | ${fmt(f.cyclesPerSecond)}/s | ${ms(f.p50Ms, 1)} | ${ms(f.p99Ms, 1)} | ${ms(cpuPer1000(f))} | ${fmt(cpuPer1000(f) / floorMs, 2)}x | ${fmt(cyclesPerCpuSecond(f))} | ${fmt(f.serverCpuSeconds / f.seconds, 2)} / ${fmt(f.loadCpuSeconds / f.seconds, 2)} | ${fmt(f.cycles)} in ${fmt(f.seconds, 1)} s${failed(f, 'clients')} |`;
}

function openRow(f: OpenLoopFigure, floorMs: number): string {
  return `| ${f.label} | ${fmt(f.targetRate)}/s | ${fmt(f.achievedRate)}/s | ${ms(f.p50Ms, 1)} | ${ms(f.p99Ms, 1)} | ${ms(cpuPer1000(f))} | ${fmt(cpuPer1000(f) / floorMs, 2)}x | ${fmt(f.overCapacity)} of ${fmt(f.arrivals)} | ${fmt(f.failures)}${f.failures === 0 ? '' : ` (${f.failureKinds.join(', ')})`} |`;
}

/** A goal row: the limit, the measured figure, measured ÷ limit, and the verdict. */
function goal(what: string, limit: string, measured: string, ratio: number, ok: boolean): string {
  return `| ${what} | ${limit} | ${measured} | ${fmt(ratio, 2)} | ${met(ok)} |`;
}

/** The BENCHMARKS.md section: figures, goals, and how they were measured. */
export function serverCyclesSection(r: ServerCycleResults): string[] {
  const { floor } = r;
  const floorMs = floor.cycleMs;
  const { closed: base, open: baseOpen, plus10k, plus1m } = r.sqlite;
  const pg = r.postgres;
  const closedFigures = [base, plus10k, plus1m, ...(pg === undefined ? [] : [pg.one.closed, pg.two.closed])];
  const before = [r.baseline.sqlite, r.baseline.postgres].filter((f): f is CycleFigure => f !== undefined);
  const openFigures = [baseOpen, ...(pg === undefined ? [] : [pg.one.open, pg.two.open])];
  const { parts } = floor;

  const cpuGoal = (f: CycleFigure): string => {
    const factor = cpuPer1000(f) / floorMs;
    return goal(`${f.label}, closed loop: server CPU per cycle ≤ ${FLOOR_FACTOR_GOAL}x the crypto floor`, ms(FLOOR_FACTOR_GOAL * floorMs, 3), `${ms(cpuPer1000(f), 3)} = ${fmt(factor, 2)}x`, factor / FLOOR_FACTOR_GOAL, factor <= FLOOR_FACTOR_GOAL);
  };
  const p99Goal = (f: OpenLoopFigure): string =>
    goal(`${f.label}, open loop at ${fmt(f.targetRate)} arrivals/s (half the closed loop's cycles/s): p99 < ${OPEN_P99_GOAL_MS} ms`, ms(OPEN_P99_GOAL_MS, 0), ms(f.p99Ms, 1), f.p99Ms / OPEN_P99_GOAL_MS, f.p99Ms < OPEN_P99_GOAL_MS);
  const time10k = base.cyclesPerSecond / plus10k.cyclesPerSecond;
  const time1m = base.cyclesPerSecond / plus1m.cyclesPerSecond;
  const failures = [...closedFigures, ...openFigures].reduce((sum, f) => sum + f.failures, 0);
  const goals = [
    '| goal | limit | measured | ratio to the limit | verdict |',
    '|---|---|---|---|---|',
    ...[base, ...(pg === undefined ? [] : [pg.one.closed, pg.two.closed])].map(cpuGoal),
    ...openFigures.map(p99Goal),
  ];
  if (pg !== undefined) {
    const share = cyclesPerCpuSecond(pg.two.closed) / cyclesPerCpuSecond(pg.one.closed);
    goals.push(goal(`PostgreSQL, two server processes ≥ ${fmt(TWO_PROCESS_SHARE_GOAL * 100)} % of one, cycles per server CPU-second (closed loop)`, `${fmt(TWO_PROCESS_SHARE_GOAL * 100)} %`, `${fmt(cyclesPerCpuSecond(pg.two.closed))} vs ${fmt(cyclesPerCpuSecond(pg.one.closed))} = ${fmt(share * 100, 1)} %`, share / TWO_PROCESS_SHARE_GOAL, share >= TWO_PROCESS_SHARE_GOAL));
  }
  goals.push(
    goal(`issue 6: one SQLite server process, ${CLIENTS} clients, ≥ ${fmt(CYCLES_GOAL)} cycles/s`, `${fmt(CYCLES_GOAL)}/s`, `${fmt(base.cyclesPerSecond)}/s`, base.cyclesPerSecond / CYCLES_GOAL, base.cyclesPerSecond >= CYCLES_GOAL),
    goal(`issue 6: +10,000 cards, cycle time ratio < ${GROWTH_RATIO_GOAL}`, fmt(GROWTH_RATIO_GOAL, 1), `${fmt(time10k, 2)} (p50 ${fmt(plus10k.p50Ms / base.p50Ms, 2)}, server CPU per cycle ${fmt(cpuPer1000(plus10k) / cpuPer1000(base), 2)})`, time10k / GROWTH_RATIO_GOAL, time10k < GROWTH_RATIO_GOAL),
    goal(`issue 6: +1,000,000 cards, cycle time ratio < ${GROWTH_RATIO_GOAL}`, fmt(GROWTH_RATIO_GOAL, 1), `${fmt(time1m, 2)} (p50 ${fmt(plus1m.p50Ms / base.p50Ms, 2)}, server CPU per cycle ${fmt(cpuPer1000(plus1m) / cpuPer1000(base), 2)})`, time1m / GROWTH_RATIO_GOAL, time1m < GROWTH_RATIO_GOAL),
    `| no failed operation in any run above | 0 | ${fmt(failures)} | – | ${met(failures === 0)} |`,
  );

  const beforeAfter = r.baseline.notMeasured !== undefined || before.length === 0
    ? [`Before and after: not measured: ${r.baseline.notMeasured ?? 'the runs of the code before issue 18 failed (see the notes)'}`]
    : [
      `| configuration, closed loop | before issue 18 (${r.baseline.commit}, a connection per operation) | after (kept connections) | cycles/s after ÷ before | server CPU per cycle after ÷ before |`,
      '|---|---|---|---|---|',
      ...[[r.baseline.sqlite, base], [r.baseline.postgres, pg?.one.closed]].flatMap(([old, now]) =>
        old === undefined || now === undefined ? [] : [`| ${now.label} | ${fmt(old.cyclesPerSecond)}/s, ${ms(cpuPer1000(old))} per cycle | ${fmt(now.cyclesPerSecond)}/s, ${ms(cpuPer1000(now))} per cycle | ${fmt(now.cyclesPerSecond / old.cyclesPerSecond, 2)}x | ${fmt(cpuPer1000(now) / cpuPer1000(old), 2)}x |`]),
    ];

  const bytes = (list: readonly number[]): string => list.map((n) => fmt(n)).join(' / ');
  return [
    SERVER_CYCLES_HEADING,
    '',
    `Client-side Argon2id, excluded: one derivation (m = ${fmt(65536)} KiB, t = 3, p = 1) took ${fmt(r.argon2Ms)} ms; every bench card shares that password, and the clients send the keys derived from it.`,
    '',
    `Crypto floor: **${ms(floorMs, 3)} of CPU per cycle** on one core of this machine (node:crypto, keys held as KeyObjects), the whole cycle run in one loop for ${fmt(FLOOR_LOOP_MS / 1000)} s. Its parts, each run alone: X25519 ${ms(parts.x25519Ms, 3)} (2 key generations, 4 DH, 2 imports of the client's ephemeral key as ${floor.peerImport.toUpperCase()}: ${fmt(floor.importUs[floor.peerImport], 1)} µs each, the other way ${fmt(floor.importUs[floor.peerImport === 'jwk' ? 'der' : 'jwk'], 1)} µs), ChaCha20-Poly1305 ${ms(parts.aeadMs, 3)} (${floor.aeadPerCycle} operations), SHA-256 and HMAC ${ms(parts.hashMs, 3)} (${floor.sha256PerCycle} and ${floor.hmacPerCycle}), SQL ${ms(parts.sqlMs, 3)} (2 prepared UPDATEs); together ${ms(parts.x25519Ms + parts.aeadMs + parts.hashMs + parts.sqlMs, 3)}.`,
    '',
    '| figure, closed loop | cycles/s | p50 | p99 | server CPU per cycle | × crypto floor | cycles per server CPU-second | CPU cores busy: servers / load generator | sample |',
    '|---|---|---|---|---|---|---|---|---|',
    ...[...closedFigures, ...before].map((f) => closedRow(f, floorMs)),
    '',
    '| figure, open loop | arrivals asked | cycles achieved | p50 | p99 | server CPU per cycle | × crypto floor | over capacity (no free card) | failed |',
    '|---|---|---|---|---|---|---|---|---|',
    ...openFigures.map((f) => openRow(f, floorMs)),
    '',
    ...beforeAfter,
    '',
    ...goals,
    '',
    '### How they were measured',
    '',
    `- Servers: real \`node bin/vsc.js server start --data DIR [--db URL] --listen 127.0.0.1:0\` processes after \`vsc server init\`, with their default settings (implementation proofs by master key, pino log at info on a pipe) and the per-address limits raised (every simulated machine comes from 127.0.0.1). Server CPU is utime + stime of each server process from /proc/PID/stat over the measured interval, divided by the cycles that ended in it; for PostgreSQL the database's own processes are not in it.`,
    `- Crypto floor: what the server's side of one cycle needs at least, in one loop in the benchmark process before any server starts: per session (an insert and a remove are one each) one ephemeral key generation, one import of the client's ephemeral key, DH for "es" and "ee", the Noise NK hashing (4 MixHash, 3 HKDF of 3 HMAC-SHA256; the hash of the protocol name, prologue and static key is fixed and not counted), ChaCha20-Poly1305 on the two handshake tags and on hello, challenge, proof and result (insert ${bytes(floor.messageBytes.insert)} bytes, remove ${bytes(floor.messageBytes.remove)}: the insert's result and the remove's proof carry the bench card's sealed information), the protocol's master-key proof and holder, verifier and machine hashes, and one prepared UPDATE per operation on better-sqlite3 (WAL, synchronous=OFF, ${floor.sqlGroup} operations per transaction: a group commit's fsync is wall time shared by the group, not CPU). CPU from process.cpuUsage.`,
    `- Closed loop: ${CLIENTS} concurrent clients in the benchmark process (one Node process: the machine has ${cpus().length} cores, one for the server and one for the load; the busy-cores column shows how busy each side was), each looping \`insertCard\` then \`removeCard\` (src/vsc-client) on its own card. Each client keeps its WebSocket open across operations (a \`ChannelConnections\` of its own); each operation is still its own Noise NK session with fresh ephemeral keys. With two servers, client i talks to server i mod 2. ${fmt(WARMUP_MS / 1000)} s of warm-up, then the cycles that end within ${fmt(MEASURE_MS / 1000)} s are counted and their latencies (insert start to remove answer) give p50 and p99.`,
    `- Before and after: the code of the last commit before issue 18 (${r.baseline.commit}) runs from a git worktree in the same run, on a data directory (and PostgreSQL database) its own \`vsc server init\` made, with the same bench cards; its clients open a WebSocket per operation, as that server closes the socket after each one.`,
    `- Open loop: right after the closed loop of the same configuration, on fresh server processes and the same database, arrivals at a fixed rate of half the closed loop's cycles/s, spread over the servers in turn. Each arrival takes a free card of the ${CLIENTS} and runs \`insertCard\` + \`removeCard\` on it through one shared \`ChannelConnections\` (a kept socket per session under way); an arrival that finds no free card is counted as over capacity and not started. Latency runs from the arrival's scheduled time, so a late start (a busy load generator or server) counts against it, not the send time (no coordinated omission). ${fmt(WARMUP_MS / 1000)} s of warm-up, ${fmt(MEASURE_MS / 1000)} s measured; p50 and p99 over that window's arrivals, the achieved rate from the cycles that ended in it.`,
    '- Cards: enrolled rows written straight into the database with the columns an enrollment leaves (Argon2id parameters, owner verifier, sealed information bound to each card id, version 1, a counter range per card id). The filler cards are generated inside SQLite (random card ids, one shared sealed blob, never inserted) into the same directory after its 200-card runs, which then grows from 200 to 10,200 to 1,000,200 cards.',
    '- SQLite runs as the server configures it: WAL, synchronous=FULL on the machine\'s disk, which other work shares; operations that arrive together share one commit and its fsync (group commit), and none is answered before that commit is durable. PostgreSQL is the tests\' throw-away cluster (test/support/postgres-cluster.ts), which runs with fsync=off and synchronous_commit=off: its figures show the server and the database\'s locking, not a disk.',
    `- With ${CLIENTS} clients in a closed loop, the mean cycle time is ${CLIENTS} ÷ throughput (Little's law): the closed loop's p99 measures the queue the benchmark itself builds, which is why the latency goal is the open loop's. The cycle-time ratios of the filler rows compare mean cycle times (inverse throughputs) at the same concurrency.`,
    ...r.notes.map((note) => `- ${note}`),
    `- This section took ${fmt(r.wallSeconds)} s of wall time.`,
    '',
  ];
}
