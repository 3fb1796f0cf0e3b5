// Open-loop load on VSC server processes (issue 18, "benchmark as users would load it"): arrivals at a
// fixed rate whatever the server answers, each an insert + remove on a free bench card, latency taken
// from the arrival's scheduled time (no coordinated omission: a late start counts against the server).
import { randomBytes } from 'node:crypto';
import { ChannelConnections } from '../src/vsc-client/index.js';
import type { BenchCards, WorkingCard } from './card-rows.js';
import { describeFailure, endpointsOf, MEASURE_MS, runCycle, WARMUP_MS } from './closed-loop.js';
import type { ServerProcess } from './server-process.js';
import { percentile } from './stats.js';

export interface OpenLoopFigure {
  readonly label: string;
  readonly servers: number;
  /** Arrivals per second asked for. */
  readonly targetRate: number;
  /** Arrivals scheduled in the measured window. */
  readonly arrivals: number;
  /** Cycles that ended within the measured window, per second of it. */
  readonly achievedRate: number;
  /** Arrivals of the measured window that found no free card (all of them in a cycle still): not started. */
  readonly overCapacity: number;
  /** Cycles that failed, warm-up included (the card is then left out). */
  readonly failures: number;
  readonly failureKinds: readonly string[];
  /** From scheduled arrival to the remove's answer, over the measured window's successful arrivals. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly completed: number;
  readonly serverCpuSeconds: number;
  /** Cycles that ended within the measured window (what the servers' CPU over the window served). */
  readonly cycles: number;
  readonly seconds: number;
}

interface Slot {
  readonly card: WorkingCard;
  readonly muk: Uint8Array;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Arrivals every 1/`rate` s for WARMUP_MS + MEASURE_MS, spread over `servers` in turn, through one
 * shared ChannelConnections (kept sockets, one per session under way). Waits for every started cycle.
 */
export async function runOpenLoop(label: string, bench: BenchCards, servers: readonly ServerProcess[], masterKey: Uint8Array, rate: number): Promise<OpenLoopFigure> {
  if (!Number.isFinite(rate) || rate <= 0) throw new RangeError(`expected a positive arrival rate, got ${rate}`);
  const connections = new ChannelConnections({ maxIdlePerServer: bench.cards.length });
  const endpoints = endpointsOf(servers, masterKey, connections);
  const free: Slot[] = bench.cards.map((card) => ({ card, muk: new Uint8Array(randomBytes(32)) }));
  const inFlight = new Set<Promise<void>>();
  const latencies: number[] = [];
  const failureKinds = new Set<string>();
  let failures = 0;
  let overCapacity = 0;
  let arrivals = 0;
  let endedInWindow = 0;
  const interval = 1000 / rate;
  const start = performance.now();
  const windowStart = start + WARMUP_MS;
  const windowEnd = windowStart + MEASURE_MS;
  let cpuBefore: number[] | undefined;
  let next = 0;

  const launch = (scheduled: number, index: number): void => {
    const measured = scheduled >= windowStart;
    if (measured) arrivals++;
    const slot = free.pop();
    if (slot === undefined) {
      if (measured) overCapacity++;
      return;
    }
    const cycle = runCycle(endpoints[index % endpoints.length]!, bench, slot.card, slot.muk).then(
      () => {
        const ended = performance.now();
        if (measured) latencies.push(ended - scheduled);
        if (ended >= windowStart && ended <= windowEnd) endedInWindow++;
        free.push(slot);
      },
      (error: unknown) => {
        // The card's state is unknown after a failure: it stays out of the pool.
        failures++;
        failureKinds.add(describeFailure(error));
      },
    );
    inFlight.add(cycle);
    void cycle.finally(() => inFlight.delete(cycle));
  };

  try {
    for (;;) {
      const now = performance.now();
      if (cpuBefore === undefined && now >= windowStart) cpuBefore = servers.map((server) => server.cpuSeconds());
      if (now >= windowEnd) break;
      for (let due = start + next * interval; due <= now && due < windowEnd; due = start + next * interval) launch(due, next++);
      await sleep(start + next * interval - performance.now());
    }
    const serverCpuSeconds = servers.reduce((sum, server, i) => sum + server.cpuSeconds() - (cpuBefore?.[i] ?? 0), 0);
    const seconds = (performance.now() - windowStart) / 1000;
    await Promise.allSettled([...inFlight]);
    const completed = latencies.length;
    return {
      label, servers: servers.length, targetRate: rate, arrivals, achievedRate: endedInWindow / seconds, overCapacity, failures, failureKinds: [...failureKinds],
      p50Ms: completed === 0 ? NaN : percentile(latencies, 50), p99Ms: completed === 0 ? NaN : percentile(latencies, 99),
      completed, serverCpuSeconds, cycles: endedInWindow, seconds,
    };
  } finally {
    await Promise.allSettled([...inFlight]);
    connections.close();
  }
}
