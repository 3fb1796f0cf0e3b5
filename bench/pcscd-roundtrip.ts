// Round-trip time of one APDU through the real pcscd (libpcsclite → pcscd → vpcd → card), measured by
// bench/pcsc-roundtrip.c so that the client side adds no Node overhead. DESIGN.md "Reader".
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../src/bytes/index.js';
import { VscError } from '../src/errors/index.js';

const SOURCE = fileURLToPath(new URL('./pcsc-roundtrip.c', import.meta.url));
const INSTALL_HEADERS = 'apt-get install -y libpcsclite-dev';

export interface PcscdRoundTripOptions {
  /** PC/SC reader name, e.g. "Virtual PCD 00 00". */
  reader: string;
  /** Sent once before timing (hex, spaces allowed), e.g. the SELECT of the applet. */
  selectApdu: string;
  /** Sent `iterations` times, each SCardTransmit timed on its own. */
  apdu: string;
  iterations: number;
}

export interface PcscdRoundTrip {
  n: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

export class PcscRoundTripError extends VscError {
  override readonly name = 'PcscRoundTripError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('bench.pcsc-roundtrip', message, options);
  }
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error === null) resolve({ stdout, stderr });
      else reject(Object.assign(error, { stdout, stderr }));
    });
  });
}

function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  return typeof stderr === 'string' && stderr.trim().length > 0 ? stderr.trim() : error instanceof Error ? error.message : String(error);
}

async function compile(dir: string): Promise<string> {
  let flags: string[];
  try {
    const { stdout } = await run('pkg-config', ['--cflags', '--libs', 'libpcsclite'], 10_000);
    flags = stdout.trim().split(/\s+/).filter((flag) => flag.length > 0);
  } catch (error) {
    throw new PcscRoundTripError(`expected pkg-config to know libpcsclite, got: ${stderrOf(error)}. Install the headers with: ${INSTALL_HEADERS}`, { cause: error });
  }
  const binary = join(dir, 'pcsc-roundtrip');
  try {
    await run('cc', ['-O2', '-o', binary, SOURCE, ...flags], 60_000);
  } catch (error) {
    const message = stderrOf(error);
    const hint = /winscard\.h|pcsclite/i.test(message) ? ` Install the headers with: ${INSTALL_HEADERS}` : '';
    throw new PcscRoundTripError(`could not compile ${SOURCE}: ${message}.${hint}`, { cause: error });
  }
  return binary;
}

function checkOptions(opts: PcscdRoundTripOptions): void {
  if (typeof opts.reader !== 'string' || opts.reader.length === 0) {
    throw new PcscRoundTripError(`expected a reader name, got ${JSON.stringify(opts.reader)}`);
  }
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1 || opts.iterations > 10_000_000) {
    throw new PcscRoundTripError(`expected iterations in 1..10000000, got ${opts.iterations}`);
  }
  for (const [name, hex] of [['selectApdu', opts.selectApdu], ['apdu', opts.apdu]] as const) {
    const length = fromHex(hex).length;
    if (length < 4) throw new PcscRoundTripError(`expected ${name} to be a hex APDU of at least 4 bytes, got ${length} byte(s)`);
  }
}

/** Compiles bench/pcsc-roundtrip.c into a temporary folder, runs it once, and returns its timings. */
export async function measurePcscdRoundTrip(opts: PcscdRoundTripOptions): Promise<PcscdRoundTrip> {
  checkOptions(opts);
  const dir = await mkdtemp(join(tmpdir(), 'vsc-pcsc-roundtrip-'));
  try {
    const binary = await compile(dir);
    const args = ['-r', opts.reader, '-n', String(opts.iterations), '-s', opts.selectApdu, '-a', opts.apdu];
    let stdout: string;
    try {
      ({ stdout } = await run(binary, args, 60_000 + opts.iterations * 100));
    } catch (error) {
      throw new PcscRoundTripError(`pcsc-roundtrip on reader "${opts.reader}" failed: ${stderrOf(error)}`, { cause: error });
    }
    const result = JSON.parse(stdout) as Record<string, unknown>;
    const { n, p50_us: p50Us, p99_us: p99Us, mean_us: meanUs, setup_sw: setupSw } = result;
    if (typeof n !== 'number' || typeof p50Us !== 'number' || typeof p99Us !== 'number' || typeof meanUs !== 'number') {
      throw new PcscRoundTripError(`expected {"n","p50_us","p99_us","mean_us"} numbers from pcsc-roundtrip, got ${stdout.trim()}`);
    }
    if (setupSw !== '9000') {
      throw new PcscRoundTripError(`expected the select APDU to answer 9000, got ${String(setupSw)}`);
    }
    return { n, p50Us, p99Us, meanUs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
