// The audit trail on disk (patent 003 [0046], [0058]; DESIGN.md "Software rental"): DIR/trail.jsonl, one record a
// line, the file 0600 in a 0700 directory; each append is fsynced before it returns. Reading streams the file in
// chunks, so a trail of a million records is never one string, and tells a torn last line from a malformed one.
// The rental server appends through a TrailAppender (one descriptor kept open), and after a crash cuts a torn last
// line off (cutTail, truncate) once its journal shows which record it was ([0062]).
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
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
    const appender = this.openAppender();
    try {
      appender.append(record);
    } finally {
      appender.close();
    }
  }

  /**
   * Opens the trail for appends by the one writer, keeping the descriptor: what the rental server does for its life.
   * Refused like append(): a torn last line (`truncated`), a file others can reach, something not a regular file.
   */
  openAppender(): TrailAppender {
    const fd = openTrail(this.path);
    try {
      const size = fstatSync(fd).size;
      if (size > 0 && lastByte(fd, size) !== NEWLINE) {
        throw new RentalError('truncated', `the trail ${this.path} ends in a cut line (no newline at its end): a record was torn, and nothing is appended after it`);
      }
      return new TrailAppender(this.path, fd, size, () => this.syncDirectory());
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /**
   * The bytes after the trail's last newline (a line cut by a crash), and where they start; undefined when the
   * file is missing or ends with a newline. A cut longer than a record line is not a torn append: `malformed`.
   */
  cutTail(): { readonly offset: number; readonly bytes: Uint8Array } | undefined {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RentalError('storage', `cannot read the trail ${this.path}: ${ioCode(error)}`, { cause: error });
    }
    try {
      const size = fstatSync(fd).size;
      if (size === 0 || lastByte(fd, size) === NEWLINE) return undefined;
      const window = Math.min(size, MAX_LINE_LENGTH + 1);
      const bytes = new Uint8Array(window);
      readFully(fd, bytes, size - window);
      const newline = bytes.lastIndexOf(NEWLINE);
      if (newline === -1 && window < size) throw new RentalError('malformed', `the trail ${this.path} ends in more than ${MAX_LINE_LENGTH} bytes without a newline: not a record cut by a crash`);
      return { offset: size - window + newline + 1, bytes: bytes.slice(newline + 1) };
    } finally {
      closeSync(fd);
    }
  }

  /** Cuts the file to `size` bytes and fsyncs (a torn last line, once the journal holds its record). */
  truncate(size: number): void {
    const fd = openTrail(this.path);
    try {
      if (fstatSync(fd).size < size) throw new RentalError('storage', `cannot cut the trail ${this.path} to ${size} bytes: it is shorter`);
      ftruncateSync(fd, size);
      fsyncSync(fd);
    } catch (error) {
      if (error instanceof RentalError) throw error;
      throw new RentalError('storage', `cannot cut the trail ${this.path}: ${ioCode(error)}`, { cause: error });
    } finally {
      closeSync(fd);
    }
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

/** Opens the trail read-write for appends (created 0600), refusing what append() refuses. */
function openTrail(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    throw new RentalError('storage', `cannot open the trail ${path}: ${ioCode(error)}`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new RentalError('storage', `the trail ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) throw new ExposedFileError(path, stat.mode);
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function lastByte(fd: number, size: number): number | undefined {
  const last = new Uint8Array(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0];
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let read = 0;
  while (read < into.length) {
    const n = readSync(fd, into, read, into.length - read, position + read);
    if (n === 0) throw new RentalError('storage', 'the trail got shorter while it was read');
    read += n;
  }
}

/**
 * A trail open for appends by its one writer (the rental server, [0058]). Each append is one write of whole lines,
 * fsynced before it returns; a failed or short write is `storage`, and the appender then refuses everything after
 * it, since the file's end is no longer known to be a line's end.
 */
export class TrailAppender {
  #fd: number | undefined;
  #size: number;
  #broken: RentalError | undefined;

  constructor(readonly path: string, fd: number, size: number, private readonly afterFirstWrite: () => void) {
    this.#fd = fd;
    this.#size = size;
  }

  /** Bytes in the file: the offset the next line starts at. */
  get size(): number {
    return this.#size;
  }

  /** [0058]: one record, fsynced. */
  append(record: AuditRecord): void {
    this.appendLines(utf8(`${encodeRecordLine(record)}\n`));
  }

  /** Whole record lines already encoded (each ending in a newline), in one write and one fsync. */
  appendLines(lines: Uint8Array): void {
    if (this.#broken !== undefined) throw this.#broken;
    if (this.#fd === undefined) throw new RentalError('storage', `the trail ${this.path} is closed`);
    if (lines.length === 0) return;
    if (lines[lines.length - 1] !== NEWLINE) throw new RentalError('input', 'expected whole lines, each ending in a newline');
    try {
      let written = 0;
      while (written < lines.length) written += writeSync(this.#fd, lines, written, lines.length - written);
      fsyncSync(this.#fd);
      // A trail deleted while the server runs takes every later record with it: stop rather than write into nothing.
      if (fstatSync(this.#fd).nlink === 0) throw Object.assign(new Error('the file was deleted while open'), { code: 'deleted' });
    } catch (error) {
      this.#broken = new RentalError('storage', `cannot write the trail ${this.path}: ${ioCode(error)}`, { cause: error });
      throw this.#broken;
    }
    const first = this.#size === 0;
    this.#size += lines.length;
    if (first) this.afterFirstWrite();
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}
