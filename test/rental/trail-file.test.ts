// The trail file (patent 003 [0046], [0058]; DESIGN.md "Software rental"): DIR/trail.jsonl, 0600 in a 0700
// directory, one fsynced line per append; read whole or streamed in chunks cut at every place; a torn last line is
// `truncated`, a bad line in the middle `malformed`, and nothing is appended after a torn line.
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { uintToBytes } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { ExposedFileError } from '../../src/files/index.js';
import { encodeRecordLine, type AuditRecord } from '../../src/rental/audit-record.js';
import { RentalError } from '../../src/rental/rental-error.js';
import { TRAIL_FILE_NAME, TrailFile } from '../../src/rental/trail-file.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-trail-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `trail-${dirs++}`);

/** Records whose signatures are not checked here: the file layer neither knows nor cares. */
function record(counter: bigint, text = `WP 15 minutes #${counter}`): AuditRecord {
  return { nonce: uintToBytes(counter + 1000n, 16), text, counter, signature: new Uint8Array(64).fill(Number(counter % 251n)) };
}

async function collect(trail: TrailFile): Promise<{ records: AuditRecord[]; batches: number; error?: RentalError }> {
  const records: AuditRecord[] = [];
  let batches = 0;
  try {
    for await (const batch of trail.recordBatches()) {
      batches += 1;
      records.push(...batch);
    }
  } catch (error) {
    if (!(error instanceof RentalError)) throw error;
    return { records, batches, error };
  }
  return { records, batches };
}

describe('appending ([0058]: a stable image of the trail)', () => {
  it('creates DIR 0700 and DIR/trail.jsonl 0600, one line per record with a newline, in order', () => {
    const dir = freshDir();
    const trail = TrailFile.inDirectory(dir);
    expect(trail.path).toBe(join(dir, TRAIL_FILE_NAME));
    for (let c = 0n; c < 3n; c++) trail.append(record(c));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(trail.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(trail.path, 'utf8')).toBe([0n, 1n, 2n].map((c) => encodeRecordLine(record(c)) + '\n').join(''));
    expect(trail.readAll()).toEqual([record(0n), record(1n), record(2n)]);
  });

  it('refuses a directory others can enter, and a trail file others can read (ExposedFileError, exit 2)', () => {
    const dir = freshDir();
    TrailFile.inDirectory(dir).append(record(0n));
    chmodSync(join(dir, TRAIL_FILE_NAME), 0o644);
    expect(() => TrailFile.inDirectory(dir).append(record(1n))).toThrow(ExposedFileError);
    chmodSync(dir, 0o755);
    expect(() => TrailFile.inDirectory(dir)).toThrow('expected 0700');
  });

  it('appends nothing after a torn last line (reason truncated) and leaves the file as it was', () => {
    const dir = freshDir();
    const trail = TrailFile.inDirectory(dir);
    trail.append(record(0n));
    appendFileSync(trail.path, encodeRecordLine(record(1n)).slice(0, 40));
    const before = readFileSync(trail.path);
    let caught: unknown;
    try {
      trail.append(record(2n));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RentalError);
    expect(caught).toMatchObject({ reason: 'truncated', exitCode: ExitCode.refusedByState });
    expect(readFileSync(trail.path)).toEqual(before);
  });

  it('reports an unwritable place as reason storage', () => {
    const trail = new TrailFile(join(root, 'no-such-dir', TRAIL_FILE_NAME));
    expect(() => trail.append(record(0n))).toThrow(expect.objectContaining({ reason: 'storage' }) as unknown as Error);
  });
});

describe('reading', () => {
  it('a missing file is an empty trail, and so is an empty one', async () => {
    const trail = new TrailFile(join(root, 'missing.jsonl'));
    expect(trail.readAll()).toEqual([]);
    expect(await collect(trail)).toEqual({ records: [], batches: 0 });
    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '');
    expect(await collect(new TrailFile(empty))).toEqual({ records: [], batches: 0 });
  });

  it('streams the same records whatever the chunk size: lines cut at every place, multi-byte characters split', async () => {
    const path = join(root, 'chunks.jsonl');
    const records = [record(0n, 'Grüße € 𝄞'), record(1n, 'a'), record(2n, '"quoted" \\ \u0001'), record(3n, 'x'.repeat(600))];
    writeFileSync(path, records.map((r) => encodeRecordLine(r) + '\n').join(''));
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2000 }), async (chunk) => {
      const read = await collect(new TrailFile(path, { readChunkBytes: chunk }));
      expect(read.error).toBeUndefined();
      expect(read.records).toEqual(records);
    }), { numRuns: 60 });
    expect(new TrailFile(path).readAll()).toEqual(records);
  });

  it('tells a torn last line (truncated) from a malformed middle line (malformed), with its line number', async () => {
    const lines = [0n, 1n, 2n].map((c) => encodeRecordLine(record(c)));
    const torn = join(root, 'torn.jsonl');
    writeFileSync(torn, `${lines[0]}\n${lines[1]}\n${lines[2]!.slice(0, 100)}`);
    const malformed = join(root, 'malformed.jsonl');
    writeFileSync(malformed, `${lines[0]}\n${lines[1]!.slice(0, 100)}\n${lines[2]}\n`);
    for (const chunk of [7, 1 << 18]) {
      const tornRead = await collect(new TrailFile(torn, { readChunkBytes: chunk }));
      expect(tornRead.records).toEqual([record(0n), record(1n)]);
      expect(tornRead.error).toMatchObject({ reason: 'truncated', line: 3 });
      expect(tornRead.error?.message).toBe('trail line 3 is cut: the file ends without a newline (a torn or truncated last record)');
      const badRead = await collect(new TrailFile(malformed, { readChunkBytes: chunk }));
      expect(badRead.records).toEqual([record(0n)]);
      expect(badRead.error).toMatchObject({ reason: 'malformed', line: 2 });
    }
    expect(() => new TrailFile(torn).readAll()).toThrow(expect.objectContaining({ reason: 'truncated', line: 3 }) as unknown as Error);
    expect(() => new TrailFile(malformed).readAll()).toThrow(expect.objectContaining({ reason: 'malformed', line: 2 }) as unknown as Error);
  });

  it('refuses invalid UTF-8, an empty line and an endless line as malformed', async () => {
    const good = encodeRecordLine(record(0n));
    const invalid = join(root, 'invalid-utf8.jsonl');
    writeFileSync(invalid, Buffer.concat([Buffer.from(`${good}\n`), Buffer.from(good.replace('WP', '\u00ff\u00ff'), 'latin1'), Buffer.from('\n')]));
    expect((await collect(new TrailFile(invalid))).error).toMatchObject({ reason: 'malformed', line: 2, message: 'trail line 2: expected UTF-8, got invalid bytes' });
    const blank = join(root, 'blank.jsonl');
    writeFileSync(blank, `${good}\n\n${good}\n`);
    expect((await collect(new TrailFile(blank))).error).toMatchObject({ reason: 'malformed', line: 2 });
    const endless = join(root, 'endless.jsonl');
    writeFileSync(endless, `${good}\n${'x'.repeat(200_000)}`);
    expect((await collect(new TrailFile(endless, { readChunkBytes: 4096 }))).error).toMatchObject({ reason: 'malformed', line: 2 });
  });

  it('streams a large trail in bounded batches, never as one string', async () => {
    const path = join(root, 'large.jsonl');
    const count = 20_000;
    const lines: string[] = [];
    for (let c = 0n; c < BigInt(count); c++) lines.push(encodeRecordLine(record(c)));
    writeFileSync(path, lines.join('\n') + '\n');
    const trail = new TrailFile(path, { readChunkBytes: 64 * 1024 });
    let seen = 0n;
    let batches = 0;
    let largest = 0;
    for await (const batch of trail.recordBatches()) {
      batches += 1;
      largest = Math.max(largest, batch.length);
      for (const r of batch) expect(r.counter).toBe(seen++);
    }
    expect(seen).toBe(BigInt(count));
    // One read's worth of lines at most: 64 KiB holds under 300 lines of ~290 bytes.
    expect(largest).toBeLessThan(300);
    expect(batches).toBeGreaterThan(count / 300);
  });

  it('fuzz: random bytes read as a trail only give records or a RentalError', async () => {
    const path = join(root, 'fuzz.jsonl');
    const good = Buffer.from(encodeRecordLine(record(5n)) + '\n');
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(good))), { maxLength: 6 }), async (parts) => {
      writeFileSync(path, Buffer.concat(parts));
      const read = await collect(new TrailFile(path, { readChunkBytes: 16 }));
      if (read.error === undefined) expect(() => new TrailFile(path).readAll()).not.toThrow();
      else expect(() => new TrailFile(path).readAll()).toThrow(RentalError);
    }), { numRuns: 200 });
  });
});
