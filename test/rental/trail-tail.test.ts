// Reading a trail from its end (patent 003 [0094]: a program reads only the records after the validator record, so
// finding it must not read the file from the start) and forward from a line's byte position: every line found with
// its position whatever the chunk size, torn and malformed lines named by position, memory bounded for long lines.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { uintToBytes } from '../../src/bytes/index.js';
import { encodeRecordLine, MAX_LINE_LENGTH, type AuditRecord } from '../../src/rental/audit-record.js';
import { RentalError } from '../../src/rental/rental-error.js';
import { lastTrailRecord, TrailTail, trailBatchesFrom, type TailLine } from '../../src/rental/trail-tail.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-trail-tail-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let files = 0;

/** Records whose signatures are not checked here: reading lines neither knows nor cares. */
function record(counter: bigint, text = `WP 15 minutes #${counter}`): AuditRecord {
  return { nonce: uintToBytes(counter + 1000n, 16), text, counter, signature: new Uint8Array(64).fill(Number(counter % 251n)) };
}

function trailOf(content: string): string {
  const path = join(root, `trail-${files++}.jsonl`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

const lineOf = (r: AuditRecord) => `${encodeRecordLine(r)}\n`;

async function backwards(path: string, chunkBytes?: number): Promise<TailLine[]> {
  const lines: TailLine[] = [];
  for await (const line of new TrailTail(path, chunkBytes === undefined ? {} : { chunkBytes }).lines()) lines.push(line);
  return lines;
}

async function forward(path: string, position: number, chunkBytes?: number): Promise<{ records: AuditRecord[]; error?: RentalError }> {
  const records: AuditRecord[] = [];
  try {
    for await (const batch of trailBatchesFrom(path, position, chunkBytes === undefined ? {} : { chunkBytes })) records.push(...batch);
  } catch (error) {
    if (!(error instanceof RentalError)) throw error;
    return { records, error };
  }
  return { records };
}

describe('reading backwards', () => {
  it('gives every line from the last to the first with its byte position, at every chunk size', async () => {
    const records = Array.from({ length: 7 }, (_, i) => record(BigInt(i), i === 3 ? 'text with \u00e9 and "quotes"' : undefined));
    const content = records.map(lineOf).join('');
    const path = trailOf(content);
    const positions = records.map((_, i) => Buffer.byteLength(records.slice(0, i).map(lineOf).join('')));
    for (const chunk of [1, 2, 3, 17, 100, 4096]) {
      const lines = await backwards(path, chunk);
      expect(lines.map((line) => line.record?.counter), `chunk ${chunk}`).toEqual([6n, 5n, 4n, 3n, 2n, 1n, 0n]);
      expect(lines.map((line) => line.position)).toEqual([...positions].reverse());
      expect(lines.every((line) => line.error === undefined)).toBe(true);
      expect(lines[3]!.record).toEqual(records[3]);
    }
  });

  it('a torn last line is `truncated`, a bad line in the middle `malformed`, both named by byte position', async () => {
    const good = [record(0n), record(1n)].map(lineOf).join('');
    const path = trailOf(`${good}not a record\n${lineOf(record(2n))}{"nonce":"00`);
    const lines = await backwards(path, 5);
    expect(lines.map((line) => line.error?.reason)).toEqual(['truncated', undefined, 'malformed', undefined, undefined]);
    expect(lines[0]!.error!.message).toMatch(/trail line at byte \d+ is cut/);
    expect(lines[2]!.position).toBe(Buffer.byteLength(good));
    expect(lines[2]!.error!.message).toMatch(new RegExp(`^trail line at byte ${Buffer.byteLength(good)}: expected a JSON object`));
    await expect(lastTrailRecord(path)).rejects.toMatchObject({ reason: 'truncated' });
  });

  it('an empty or missing file has no lines; an empty line is malformed; lastTrailRecord gives the last record', async () => {
    expect(await backwards(trailOf(''))).toEqual([]);
    expect(await backwards(join(root, 'missing.jsonl'))).toEqual([]);
    expect(await lastTrailRecord(join(root, 'missing.jsonl'))).toBeUndefined();
    const lines = await backwards(trailOf(`\n${lineOf(record(4n))}`), 3);
    expect(lines.map((line) => [line.position, line.record?.counter, line.error?.reason])).toEqual([[1, 4n, undefined], [0, undefined, 'malformed']]);
    expect((await lastTrailRecord(trailOf(lineOf(record(9n)))))?.counter).toBe(9n);
  });

  it('a line longer than any record is malformed and kept by length only; the lines before it are still found', async () => {
    const long = 'x'.repeat(MAX_LINE_LENGTH + 10);
    const path = trailOf(`${lineOf(record(0n))}${long}\n${lineOf(record(1n))}`);
    const tail = new TrailTail(path, { chunkBytes: 4096 });
    const lines: TailLine[] = [];
    for await (const line of tail.lines()) lines.push(line);
    expect(lines.map((line) => line.record?.counter ?? line.error?.reason)).toEqual([1n, 'malformed', 0n]);
    expect(lines[1]!.length).toBe(long.length);
    expect(lines[1]!.error!.message).toMatch(/expected at most \d+ bytes, got \d+/);
  });

  it('stops reading where the caller stops: the bytes read are those of the lines taken', async () => {
    const path = trailOf(Array.from({ length: 1000 }, (_, i) => lineOf(record(BigInt(i)))).join(''));
    const tail = new TrailTail(path, { chunkBytes: 1024 });
    for await (const line of tail.lines()) if (line.record!.counter === 995n) break;
    // Five lines of about 250 bytes: two chunks, and the one byte that says whether the last line is whole.
    expect(tail.bytesRead).toBe(2 * 1024 + 1);
    expect(readFileSync(path).length).toBeGreaterThan(100 * tail.bytesRead);
  });

  it('any bytes give lines or their errors, never a throw (fuzz)', async () => {
    const base = [record(0n), record(1n)].map(lineOf).join('');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.nat(base.length), fc.integer({ min: 1, max: 64 }), async (noise, cut, chunk) => {
        const path = trailOf('');
        writeFileSync(path, Buffer.concat([Buffer.from(base.slice(0, cut)), noise]));
        const size = readFileSync(path).length;
        const lines = await backwards(path, chunk);
        // Positions fall, each line ends where the next begins (less its newline), the first starts at 0.
        for (let i = 0; i < lines.length; i++) {
          const end = i === 0 ? size : lines[i - 1]!.position - 1;
          expect(lines[i]!.position + lines[i]!.length).toBeLessThanOrEqual(end);
          expect(lines[i]!.record !== undefined || lines[i]!.error instanceof RentalError).toBe(true);
        }
        if (size > 0) expect(lines.at(-1)!.position).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('reading forward from a position', () => {
  it('gives the records from a line on, in order, at every chunk size', async () => {
    const records = Array.from({ length: 5 }, (_, i) => record(BigInt(i)));
    const path = trailOf(records.map(lineOf).join(''));
    const at = Buffer.byteLength(records.slice(0, 2).map(lineOf).join(''));
    for (const chunk of [1, 7, 65536]) expect((await forward(path, at, chunk)).records).toEqual(records.slice(2));
    expect((await forward(path, 0)).records).toEqual(records);
    expect((await forward(path, readFileSync(path).length)).records).toEqual([]);
  });

  it('refuses a position inside a line or past the end; a bad line throws after the good records before it', async () => {
    const path = trailOf(`${lineOf(record(0n))}${lineOf(record(1n))}garbage\n${lineOf(record(3n))}`);
    expect((await forward(path, 5)).error).toMatchObject({ reason: 'input', message: expect.stringMatching(/does not start a line/) });
    expect((await forward(path, 10 ** 9)).error).toMatchObject({ reason: 'storage' });
    expect((await forward(path, -1)).error).toMatchObject({ reason: 'input' });
    const { records, error } = await forward(path, 0, 9);
    expect(records.map((r) => r.counter)).toEqual([0n, 1n]);
    expect(error).toMatchObject({ reason: 'malformed', message: expect.stringMatching(/^trail line at byte \d+: expected a JSON object/) });
    appendFileSync(path, '{"nonce"');
    expect((await forward(path, Buffer.byteLength(`${lineOf(record(0n))}${lineOf(record(1n))}garbage\n`))).error).toMatchObject({ reason: 'truncated' });
  });
});
