// The audit trail on disk (patent 003 [0046], [0058]; DESIGN.md "Software rental"): DIR/trail.jsonl, one record a
// line, the file 0600 in a 0700 directory; each append is fsynced before it returns. Reading streams the file in
// chunks, so a trail of a million records is never one string, and tells a torn last line from a malformed one.
import { closeSync, constants, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { concatBytes, fromUtf8, utf8 } from '../bytes/index.js';
import { ensurePrivateDirectory, ExposedFileError } from '../files/index.js';
import { encodeRecordLine, MAX_LINE_LENGTH, parseRecordLine, type AuditRecord } from './audit-record.js';
import { RentalError } from './rental-error.js';

export const TRAIL_FILE_NAME = 'trail.jsonl';
const NEWLINE = 0x0a;
const CHUNK_BYTES = 256 * 1024;

function ioCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

interface ParsedLines {
  /** Bytes up to and including the last newline parsed. */
  readonly consumed: number;
  /** Lines parsed (good or not). */
  readonly lines: number;
  /** The first line that is not a record; the records before it are in `out`. */
  readonly error?: RentalError;
}

/** Parses every complete line of data[0..]; line numbers start at firstLine. */
function parseLines(data: Uint8Array, firstLine: number, out: AuditRecord[]): ParsedLines {
  let start = 0;
  let lines = 0;
  for (let end = data.indexOf(NEWLINE); end !== -1; end = data.indexOf(NEWLINE, start)) {
    const line = firstLine + lines;
    lines += 1;
    let text: string;
    try {
      text = fromUtf8(data.subarray(start, end));
    } catch {
      return { consumed: end + 1, lines, error: new RentalError('malformed', `trail line ${line}: expected UTF-8, got invalid bytes`, { line }) };
    }
    try {
      out.push(parseRecordLine(text, line));
    } catch (error) {
      return { consumed: end + 1, lines, error: error as RentalError };
    }
    start = end + 1;
  }
  return { consumed: start, lines };
}

/** What is left at the end of the file after the last newline. */
function leftover(bytes: number, line: number): RentalError | undefined {
  if (bytes === 0) return undefined;
  return new RentalError('truncated', `trail line ${line} is cut: the file ends without a newline (a torn or truncated last record)`, { line });
}

function tooLong(line: number): RentalError {
  return new RentalError('malformed', `trail line ${line}: expected at most ${MAX_LINE_LENGTH} bytes, got more`, { line });
}

export interface TrailFileOptions {
  /** The directory holding the file, fsynced once after the first append so a new file's name is durable. */
  readonly directory?: string;
  /** Bytes per read when streaming (tests make it tiny to cut lines at every place). */
  readonly readChunkBytes?: number;
}

/** One trail file. Appends are not serialised across processes: the rental server is the one writer ([0058]). */
export class TrailFile {
  #directorySynced = false;

  private readonly directory: string | undefined;
  private readonly chunkBytes: number;

  /** `path` is the trail file itself (a copy to check, say); inDirectory() is the way to the one a server writes. */
  constructor(readonly path: string, options: TrailFileOptions = {}) {
    this.directory = options.directory;
    this.chunkBytes = options.readChunkBytes ?? CHUNK_BYTES;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1) throw new RentalError('input', `expected a read chunk of at least 1 byte, got ${this.chunkBytes}`);
  }

  /** DIR/trail.jsonl, DIR created 0700 (or checked to be 0700 and ours). */
  static inDirectory(directory: string, options: Omit<TrailFileOptions, 'directory'> = {}): TrailFile {
    ensurePrivateDirectory(directory);
    return new TrailFile(join(directory, TRAIL_FILE_NAME), { ...options, directory });
  }

  /**
   * [0058]: appends `record` as one line and fsyncs before returning. Refuses (`truncated`) a trail whose last line
   * was cut, rather than glue a record to it; refuses a file others can read or write (ExposedFileError).
   */
  append(record: AuditRecord): void {
    const line = utf8(`${encodeRecordLine(record)}\n`);
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (error) {
      throw new RentalError('storage', `cannot open the trail ${this.path}: ${ioCode(error)}`, { cause: error });
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new RentalError('storage', `the trail ${this.path} is not a regular file`);
      if ((stat.mode & 0o077) !== 0) throw new ExposedFileError(this.path, stat.mode);
      if (stat.size > 0) {
        const last = new Uint8Array(1);
        readSync(fd, last, 0, 1, stat.size - 1);
        if (last[0] !== NEWLINE) {
          throw new RentalError('truncated', `the trail ${this.path} ends in a cut line (no newline at its end): a record was torn, and nothing is appended after it`);
        }
      }
      try {
        let written = 0;
        while (written < line.length) written += writeSync(fd, line, written, line.length - written);
        fsyncSync(fd);
      } catch (error) {
        throw new RentalError('storage', `cannot write the trail ${this.path}: ${ioCode(error)}`, { cause: error });
      }
    } finally {
      closeSync(fd);
    }
    this.syncDirectory();
  }

  /** A new file's name is durable only once its directory is fsynced; once per TrailFile is enough. */
  private syncDirectory(): void {
    if (this.#directorySynced || this.directory === undefined) return;
    const fd = openSync(this.directory, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#directorySynced = true;
  }

  /** Every record, for small trails; a missing file is an empty trail. Throws at the first bad line. */
  readAll(): AuditRecord[] {
    let data: Uint8Array;
    try {
      data = new Uint8Array(readFileSync(this.path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new RentalError('storage', `cannot read the trail ${this.path}: ${ioCode(error)}`, { cause: error });
    }
    const records: AuditRecord[] = [];
    const parsed = parseLines(data, 1, records);
    if (parsed.error !== undefined) throw parsed.error;
    const torn = leftover(data.length - parsed.consumed, parsed.lines + 1);
    if (torn !== undefined) throw torn;
    return records;
  }

  /**
   * The records in trail order, in batches of what one read of the file held (never more than the file's lines).
   * A bad line ends the iteration by throwing its RentalError, after a batch with the good records before it, so
   * a validator can still report an earlier failure first. A missing file is an empty trail.
   */
  async *recordBatches(): AsyncGenerator<AuditRecord[], void, undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new RentalError('storage', `cannot read the trail ${this.path}: ${ioCode(error)}`, { cause: error });
    }
    try {
      const buffer = new Uint8Array(this.chunkBytes);
      let carry = new Uint8Array(0);
      let line = 1;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const data = carry.length === 0 ? buffer.subarray(0, bytesRead) : concatBytes(carry, buffer.subarray(0, bytesRead));
        const batch: AuditRecord[] = [];
        const parsed = parseLines(data, line, batch);
        if (batch.length > 0) yield batch;
        if (parsed.error !== undefined) throw parsed.error;
        line += parsed.lines;
        // The buffer is read into again: keep a copy of the unfinished line.
        carry = data.slice(parsed.consumed);
        if (carry.length > MAX_LINE_LENGTH) throw tooLong(line);
      }
      const torn = leftover(carry.length, line);
      if (torn !== undefined) throw torn;
    } finally {
      await handle.close();
    }
  }

  /** The records one by one (see recordBatches). */
  async *records(): AsyncGenerator<AuditRecord, void, undefined> {
    for await (const batch of this.recordBatches()) yield* batch;
  }
}
