// Closed-loop load on VSC server processes (issues 6 and 18): CLIENTS clients, each looping insert
// then remove on its own card over the real protocol, as fast as the server answers; the cycles that
// end in the measured window, their latencies, and the servers' CPU meanwhile.
import { randomBytes } from 'node:crypto';
import { wipe } from '../src/bytes/index.js';
import { ChannelConnections, insertCard, removeCard, unchangedUpload, type ServerEndpoint } from '../src/vsc-client/index.js';
import type { BenchCards, WorkingCard } from './card-rows.js';
import type { ServerProcess } from './server-process.js';
import { percentile } from './stats.js';

export const CLIENTS = 200;
export const WARMUP_MS = 3_000;
export const MEASURE_MS = 10_000;

export interface CycleFigure {
  readonly label: string;
  readonly servers: number;
  /** Whether each client kept its WebSocket open across operations (a ChannelConnections of its own). */
  readonly kept: boolean;
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

/** Server CPU seconds per 1,000 cycles, which is also server CPU milliseconds per cycle. */
export const cpuPer1000 = (f: { serverCpuSeconds: number; cycles: number }): number => (f.serverCpuSeconds / f.cycles) * 1000;
export const cyclesPerCpuSecond = (f: { serverCpuSeconds: number; cycles: number }): number => f.cycles / f.serverCpuSeconds;

export function describeFailure(error: unknown): string {
  // Codes and names only: messages of the protocol never carry secrets, but keep the report terse.
  if (error instanceof Error) return (error as Error & { code?: unknown }).code === undefined ? error.name : String((error as Error & { code?: unknown }).code);
  return typeof error;
}

/** One insert + remove of `card` through `endpoint`, with its keys and sealed information wiped after. */
export async function runCycle(endpoint: ServerEndpoint, bench: BenchCards, card: WorkingCard, muk: Uint8Array): Promise<void> {
  const inserted = await insertCard(endpoint, card.serial, { keys: bench.keys }, muk);
  const upload = unchangedUpload(inserted, muk, inserted.counterWindow[0]);
  wipe(inserted.keys.authKey, inserted.keys.protectionKey);
  await removeCard(endpoint, card.serial, upload);
  wipe(inserted.plaintext, inserted.holderSecret, upload.sealed);
}

export function endpointsOf(servers: readonly ServerProcess[], masterKey: Uint8Array, connections?: ChannelConnections): ServerEndpoint[] {
  return servers.map((server) => ({ url: server.url, serverKey: server.serverKey, masterKey, ...(connections === undefined ? {} : { connections }) }));
}

export interface ClosedLoopOptions {
  /** Each client keeps its WebSocket open across operations (new servers); without it each operation opens its own (the old protocol). */
  readonly keep: boolean;
}

/**
 * CLIENTS clients, client i on server i mod servers, each looping insert then remove on its own card.
 * After WARMUP_MS, counts the cycles that end within MEASURE_MS and the servers' CPU time meanwhile.
 */
export async function runCycles(label: string, bench: BenchCards, servers: readonly ServerProcess[], masterKey: Uint8Array, options: ClosedLoopOptions): Promise<CycleFigure> {
  let stop = false;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const latencies: number[] = [];
  let failures = 0;
  const failureKinds = new Set<string>();
  const pools: ChannelConnections[] = [];

  async function client(index: number): Promise<void> {
    const card = bench.cards[index]!;
    const connections = options.keep ? new ChannelConnections({ maxIdlePerServer: 1 }) : undefined;
    if (connections !== undefined) pools.push(connections);
    const endpoint = endpointsOf([servers[index % servers.length]!], masterKey, connections)[0]!;
    const muk = new Uint8Array(randomBytes(32));
    while (!stop) {
      const started = performance.now();
      try {
        await runCycle(endpoint, bench, card, muk);
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
  try {
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
      label, servers: servers.length, kept: options.keep, cycles, seconds: elapsed, cyclesPerSecond: cycles / elapsed,
      p50Ms: cycles === 0 ? NaN : percentile(latencies, 50), p99Ms: cycles === 0 ? NaN : percentile(latencies, 99),
      serverCpuSeconds, loadCpuSeconds: (load.user + load.system) / 1e6, failures, failureKinds: [...failureKinds],
    };
  } finally {
    stop = true;
    await Promise.allSettled(loops);
    for (const pool of pools) pool.close();
  }
}
