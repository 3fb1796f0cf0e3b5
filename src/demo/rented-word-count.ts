// An example rented program (patent 003 claim 6, [0063]): "wc-rented" counts the words, lines and bytes of files,
// paid per run. It opens its keyfile with the vendor key built into it, charges one execution ([0047]) through the
// rental server, and:
//   - allowed: the full program; the access right `per-file` ([0072]) switches on one line per file;
//   - denied (no keyfile, no rental server, a refused trail, a used-up threshold): the vendor's limited mode, which
//     counts only the files' lines, and says why on stderr. It never crashes on a rental failure.
//
//   node bin/rented-word-count.js --keyfile K [--socket PATH] [--json] FILE...
//
// A real program compiles its vendor key in. So that one example serves any vendor in the tests and the demo, this
// one reads it from the environment variable WC_RENTED_VENDOR_KEY (64 hex digits) when it is set.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Rental, type RentalDecision } from '../rental/index.js';

/** The vendor key built into the program (replace with the vendor's; the environment variable overrides it). */
const BUILT_IN_VENDOR_KEY = '0000000000000000000000000000000000000000000000000000000000000000';

export const PROGRAM_NAME = 'wc-rented';

interface Counts {
  readonly file: string;
  readonly lines: number;
  readonly words?: number;
  readonly bytes?: number;
}

function count(file: string, content: Buffer, full: boolean): Counts {
  const text = content.toString('utf8');
  const lines = content.reduce((n, byte) => (byte === 0x0a ? n + 1 : n), 0);
  if (!full) return { file, lines };
  const words = text.split(/\s+/).filter((word) => word.length > 0).length;
  return { file, lines, words, bytes: content.length };
}

function describe(decision: RentalDecision): string {
  return decision.allowed ? 'licensed' : `limited mode (${decision.denial}): ${decision.reason}`;
}

/** Runs the program; returns its exit code (0, or 1 when a file cannot be read, or 2 for bad arguments). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { keyfile: { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } } });
  } catch (error) {
    console.error(`wc-rented: ${(error as Error).message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true || values.keyfile === undefined || positionals.length === 0) {
    (values.help === true ? console.log : console.error)('usage: wc-rented --keyfile K [--socket PATH] [--json] FILE...');
    return values.help === true ? 0 : 2;
  }
  const vendorKey = env['WC_RENTED_VENDOR_KEY'] ?? BUILT_IN_VENDOR_KEY;
  if (!/^[0-9a-f]{64}$/.test(vendorKey)) {
    console.error('wc-rented: WC_RENTED_VENDOR_KEY: expected 64 lowercase hex digits');
    return 2;
  }
  const rental = await Rental.open({ keyfile: values.keyfile, vendorKey, program: PROGRAM_NAME, ...(values.socket === undefined ? {} : { socket: values.socket }) });
  try {
    // Validates the trail, checks the thresholds and, when allowed, writes this run's record ([0049]).
    const decision = await rental.charge('execution');
    const full = decision.allowed;
    const perFile = rental.allows('per-file');
    const results: Counts[] = [];
    for (const file of positionals) {
      try {
        results.push(count(file, await readFile(file), full));
      } catch (error) {
        console.error(`wc-rented: ${file}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read'}`);
        return 1;
      }
    }
    const total = results.reduce<Counts>((sum, next) => ({
      file: 'total', lines: sum.lines + next.lines,
      ...(full ? { words: (sum.words ?? 0) + (next.words ?? 0), bytes: (sum.bytes ?? 0) + (next.bytes ?? 0) } : {}),
    }), { file: 'total', lines: 0 });
    if (values.json === true) {
      console.log(JSON.stringify({ program: PROGRAM_NAME, mode: full ? 'full' : 'limited', reason: decision.reason, files: perFile ? results : undefined, total }));
    } else {
      if (!full) console.error(`wc-rented: ${describe(decision)}`);
      const line = (counts: Counts) => (full ? `${counts.lines} ${counts.words} ${counts.bytes} ${counts.file}` : `${counts.lines} ${counts.file}`);
      if (perFile) for (const counts of results) console.log(line(counts));
      console.log(line(total));
    }
    return 0;
  } finally {
    await rental.close();
  }
}
