// Small statistics for the benchmarks: percentiles of latency samples and rate measurement.

/** Percentile (0..100) of samples by nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('expected at least one sample');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export interface LatencySummary {
  n: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/** Times `iterations` awaited calls one by one, after `warmup` untimed ones. */
export async function measureLatency(call: () => Promise<unknown>, iterations: number, warmup = 1_000): Promise<LatencySummary> {
  for (let i = 0; i < warmup; i++) await call();
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await call();
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { n: iterations, p50Us: percentile(samples, 50), p99Us: percentile(samples, 99), meanUs: mean };
}

/** Operations per second of `call`, run back to back for about `durationMs`. */
export async function measureRate(call: () => unknown, durationMs: number): Promise<number> {
  const deadline = process.hrtime.bigint() + BigInt(durationMs) * 1_000_000n;
  let count = 0;
  const start = process.hrtime.bigint();
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 50; i++) await call();
    count += 50;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}
