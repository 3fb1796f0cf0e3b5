// The software rental figures of BENCHMARKS.md (patent 003; issue "Software rental", Show): durable Writes/s through
// the rental server against the card's bare SIGN AND INCREMENT rate, full validation against the machine's Ed25519
// verification bound, and incremental validation after a validator record at two trail lengths.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePcscd, startEmulator, stopPcscd, waitForCard } from '../test/support/index.js';
import { measureFullValidation, measureIncrementalValidation, type FullValidationFigures, type IncrementalRun } from './rental-validation.js';
import { measureRentalWrites, type RentalWriteFigures, type RentalWriteRate } from './rental-writes.js';

const VPCD_PORT = 35964;
const VPCD_READER = 'Virtual PCD 00 01';
/** A loopback address of its own with a quickack route (run.ts explains the 40 ms delayed-ACK stall of stock vpcd). */
const QUICKACK_ADDRESS = '127.0.0.3';

function sh(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(file, args, (error) => (error === null ? resolve() : reject(error))));
}

/** The pcscd figure: an emulated card process behind vpcd, on a quickack address when the route can be added. */
async function pcscdWrites(notes: string[]): Promise<RentalWriteFigures['pcscd']> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-rental-card-'));
  let host = '127.0.0.1';
  const route = ['route', 'add', 'local', `${QUICKACK_ADDRESS}/32`, 'dev', 'lo', 'table', 'local', 'quickack', '1'];
  try {
    await sh('ip', route);
    host = QUICKACK_ADDRESS;
  } catch (error) {
    notes.push(`pcscd Writes measured on stock loopback (no quickack route: ${(error as Error).message.split('\n')[0]}); every APDU then waits ~40 ms for a delayed ACK`);
  }
  try {
    await ensurePcscd();
    const emulator = await startEmulator({ port: VPCD_PORT, host, stateFile: join(dir, 'card.state') });
    try {
      await waitForCard(VPCD_READER, true);
      return (await measureRentalWrites({ pcscdReader: VPCD_READER, durationMs: 3_000 })).pcscd;
    } finally {
      await emulator.stop();
      await waitForCard(VPCD_READER, false).catch(() => undefined);
    }
  } finally {
    await stopPcscd().catch(() => undefined);
    if (host === QUICKACK_ADDRESS) await sh('ip', ['route', 'del', 'local', `${QUICKACK_ADDRESS}/32`, 'dev', 'lo', 'table', 'local']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface IncrementalFigures {
  readonly small: IncrementalRun;
  readonly large: IncrementalRun;
}

export interface RentalFigures {
  readonly writes: RentalWriteFigures;
  readonly full: FullValidationFigures;
  readonly incremental?: IncrementalFigures;
  readonly notes: readonly string[];
}

export async function measureRental(options: { incremental?: () => Promise<IncrementalFigures> } = { incremental: measureIncrementalValidation }): Promise<RentalFigures> {
  const notes: string[] = [];
  const inProcess = await measureRentalWrites({ durationMs: 3_000 });
  let pcscd: RentalWriteRate | undefined;
  try {
    pcscd = await pcscdWrites(notes);
  } catch (error) {
    notes.push(`Writes through pcscd not measured: ${(error as Error).message.split('\n')[0]}`);
  }
  const full = await measureFullValidation(200_000);
  let incremental: IncrementalFigures | undefined;
  if (options.incremental !== undefined) {
    try {
      incremental = await options.incremental();
    } catch (error) {
      notes.push(`incremental validation not measured: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return { writes: { ...inProcess, ...(pcscd === undefined ? {} : { pcscd }) }, full, ...(incremental === undefined ? {} : { incremental }), notes };
}

const perSecond = (value: number): string => `${Math.round(value).toLocaleString('en-US')}/s`;

export function rentalSection(figures: RentalFigures): string[] {
  const { writes, full, incremental } = figures;
  const writeRow = (where: string, rate: RentalWriteRate) =>
    `| durable Writes through the rental server, ${where} (${rate.clients} programs, primary + backup trail fsynced) | ${perSecond(rate.writesPerSecond)} | – (ratio reported) | ${(rate.ratio * 100).toFixed(1)} % of the card's ${perSecond(rate.signsPerSecond)} SIGN AND INCREMENT |`;
  const rows = [
    '## Software rental (patent 003)',
    '',
    '| figure | measured | goal | ratio to the goal |',
    '|---|---|---|---|',
    writeRow('in-process reader', writes.inProcess),
    ...(writes.pcscd === undefined ? [] : [writeRow('through pcscd + vpcd', writes.pcscd)]),
    `| full validation of a ${full.records.toLocaleString('en-US')}-record trail | ${perSecond(full.recordsPerSecond)} | ≥ 80 % of the Ed25519 bound (${perSecond(full.verifyPerCore)} × ${full.cores} cores = ${perSecond(full.verifyPerCore * full.cores)}) | ${(full.ratio * 100).toFixed(1)} % of the bound (${full.ratio >= 0.8 ? 'met' : 'not met'}) |`,
  ];
  if (incremental !== undefined) {
    const ratio = incremental.large.ms / incremental.small.ms;
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
    rows.push(`| incremental validation after a validator record: ${incremental.small.records.toLocaleString('en-US')} vs ${incremental.large.records.toLocaleString('en-US')} records before it (trails of ${mb(incremental.small.fileBytes)} and ${mb(incremental.large.fileBytes)}; ${(incremental.large.bytesRead / 1e3).toFixed(0)} KB read to find the start) | ${incremental.small.ms.toFixed(1)} ms vs ${incremental.large.ms.toFixed(1)} ms | within 1.5x of each other | ${ratio.toFixed(2)}x (${ratio <= 1.5 ? 'met' : 'not met'}) |`);
  }
  rows.push(
    '',
    '- Writes: each is one exclusive card transaction (SELECT, GET COUNTER, SIGN AND INCREMENT, GET COUNTER) with the journal entry fsynced before SIGN AND INCREMENT, the answer fsynced after it, and the record fsynced to the primary and the backup trail before the acknowledgement ([0058], [0062]): four fsyncs per Write bound the rate, not the card. The bare rate signs back to back on one connection with the applet selected once and nothing written.',
    '- Full validation: the walk of ValidateTrail (parse each line, check the counters, SHA-256 twice, one Ed25519 verification) over a trail file in the page cache, signatures verified by one worker thread per core in batches of 1,024 while the main thread parses; best of two runs after a warm-up. The bound is node:crypto\'s single-core verification rate with the key imported once, times the cores.',
    '- Incremental validation: the program finds its last validator record reading the trail backwards (validation-start.ts), then walks the 1,000 records after it and the record it wrote; best of three after a warm-up. The records before the validator record are never read by the program, so the benchmark writes them with placeholder signatures, in the role of the validation service that checked them.',
    ...figures.notes.map((note) => `- ${note}`),
    '',
  );
  return rows;
}
