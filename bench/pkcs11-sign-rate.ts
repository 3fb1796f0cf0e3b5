// ECDSA signatures per second through PKCS#11 as users get them from the command line: one
// `pkcs11-tool --sign` process per signature (module load, token binding, login, C_Sign, exit).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { VscError } from '../src/errors/index.js';
import { pkcs11Tool, type Pkcs11Token } from '../test/support/index.js';
import { median, percentile } from './stats.js';

export interface Pkcs11SignRateOptions {
  /** Path of the PKCS#11 module. */
  readonly module: string;
  /** pkcs11-tool arguments that pick the token: ['--slot-description', 'Virtual PCD 00 01'] or ['--token-label', 'bench']. */
  readonly tokenArgs: readonly string[];
  readonly pin: string;
  /** CKA_ID of the EC private key, hex. */
  readonly id: string;
  /** Timed pkcs11-tool processes (after `warmup` untimed ones). */
  readonly iterations: number;
  readonly warmup?: number;
  /** Environment the module needs (SOFTHSM2_CONF). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface Pkcs11SignRate {
  /** Signatures per second, one process each: iterations / total wall time. */
  readonly perSecond: number;
  readonly n: number;
  /** Wall time of one signing process. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /**
   * Median wall time of a pkcs11-tool process that loads the module and opens the token without
   * logging in or signing (--list-mechanisms): the part of p50Ms that is process and token start-up.
   */
  readonly startupP50Ms: number;
  /** How to read the figures: pkcs11-tool signs once per process, so no in-process rate is measured. */
  readonly note: string;
}

const NOTE =
  'one pkcs11-tool process per signature, as users run it; pkcs11-tool has no option to sign repeatedly in one ' +
  'process, so every figure includes module load, token binding and login, and no in-process rate is measured';

export class Pkcs11SignRateError extends VscError {
  override readonly name = 'Pkcs11SignRateError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('bench.pkcs11-sign-rate', message, options);
  }
}

function checkOptions(options: Pkcs11SignRateOptions): void {
  if (typeof options.module !== 'string' || options.module.length === 0) throw new Pkcs11SignRateError(`expected a module path, got ${JSON.stringify(options.module)}`);
  if (options.tokenArgs.length === 0) throw new Pkcs11SignRateError('expected tokenArgs that pick the token (--slot-description, --token-label, --slot), got none');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(options.id)) throw new Pkcs11SignRateError(`expected the key id as hex, got ${JSON.stringify(options.id)}`);
  if (!Number.isInteger(options.iterations) || options.iterations < 1 || options.iterations > 100_000) {
    throw new Pkcs11SignRateError(`expected iterations in 1..100000, got ${options.iterations}`);
  }
}

async function timeMs(call: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await call();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Runs `iterations` signing processes one after another and returns their rate and latency. */
export async function measurePkcs11SignRate(options: Pkcs11SignRateOptions): Promise<Pkcs11SignRate> {
  checkOptions(options);
  const { iterations, warmup = 3 } = options;
  const token: Pkcs11Token = { module: options.module, select: options.tokenArgs, ...(options.env === undefined ? {} : { env: options.env }) };
  const dir = await mkdtemp(join(tmpdir(), 'vsc-bench-pkcs11-'));
  try {
    const input = join(dir, 'digest');
    const output = join(dir, 'signature.der');
    await writeFile(input, createHash('sha256').update('vsc pkcs11 sign-rate benchmark').digest());
    const args = ['--login', '--pin', options.pin, '--sign', '--mechanism', 'ECDSA', '--id', options.id, '--input-file', input, '--output-file', output, '--signature-format', 'openssl'];
    const sign = () => pkcs11Tool(token, args, { timeoutMs: 60_000 });

    for (let i = 0; i < warmup; i++) await sign();
    // A DER ECDSA-Sig-Value starts with SEQUENCE (30): a failing token must not be timed as a fast one.
    const first = await readFile(output);
    if (first[0] !== 0x30) throw new Pkcs11SignRateError(`expected a DER ECDSA signature from pkcs11-tool, got ${first.subarray(0, 8).toString('hex')}…`);

    const samples: number[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) samples.push(await timeMs(sign));
    const totalSeconds = Number(process.hrtime.bigint() - start) / 1e9;

    const startup: number[] = [];
    for (let i = 0; i < Math.min(iterations, 20); i++) startup.push(await timeMs(() => pkcs11Tool(token, ['--list-mechanisms'], { timeoutMs: 60_000 })));

    return Object.freeze({
      perSecond: iterations / totalSeconds,
      n: iterations,
      p50Ms: median(samples),
      p99Ms: percentile(samples, 99),
      startupP50Ms: median(startup),
      note: NOTE,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
