// Reading an audit trail file (trail-file.ts's format, patent 003 [0056]) from its end backwards, and forward from a
// byte position. [0094]: once a validator record vouches for the records before it, a program reads only what
// follows it, so finding that record must not read the file from its first line: the time it takes must not grow
// with the records the validator record already covers (validation-start.ts).
import { open, type FileHandle } from 'node:fs/promises';
import { concatBytes, fromUtf8 } from '../bytes/index.js';
import { MAX_LINE_LENGTH, parseRecordLine, type AuditRecord } from './audit-record.js';
import { RentalError } from './rental-error.js';

const NEWLINE = 0x0a;
const CHUNK_BYTES = 64 * 1024;
const EMPTY: Uint8Array = new Uint8Array(0);

/** One line of the trail, as found reading backwards. */
export interface TailLine {
  /** Byte offset of the line's first byte: where a forward read from this line starts. */
  readonly position: number;
  /** Bytes in the line, without its newline. */
  readonly length: number;
  /** The record, when the line is one; else `error` says why not. */
  readonly record: AuditRecord | undefined;
  readonly error: RentalError | undefined;
}

export interface TrailTailOptions {
  /** Bytes per read (tests make it tiny to cut lines at every place). */
  readonly chunkBytes?: number;
}

function ioError(path: string, error: unknown): RentalError {
  return new RentalError('storage', `cannot read the trail ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
}

async function openTrail(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(path, error);
  }
}

function chunkSize(options: TrailTailOptions): number {
  const bytes = options.chunkBytes ?? CHUNK_BYTES;
  if (!Number.isInteger(bytes) || bytes < 1) throw new RentalError('input', `expected a read chunk of at least 1 byte, got ${String(bytes)}`);
  return bytes;
}

/** The record on a line, or the RentalError of why it is none, naming the line by its byte position. */
function parseAt(bytes: Uint8Array, position: number): { record?: AuditRecord; error?: RentalError } {
  const where = `trail line at byte ${position}`;
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    return { error: new RentalError('malformed', `${where}: expected UTF-8, got invalid bytes`) };
  }
  try {
    return { record: parseRecordLine(text) };
  } catch (error) {
    const reason = error instanceof RentalError ? error.reason : 'malformed';
    return { error: new RentalError(reason, `${where}${(error as Error).message.replace(/^trail line/, '')}`) };
  }
}

/** A trail file read from its end. `bytesRead` tells how much of the file a search needed. */
export class TrailTail {
  #bytesRead = 0;
  private readonly chunkBytes: number;

  constructor(readonly path: string, options: TrailTailOptions = {}) {
    this.chunkBytes = chunkSize(options);
  }

  /** Bytes read from the file so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /**
   * The trail's lines from the last to the first. A last line without a newline (torn) is `truncated`; a line longer
   * than any record is `malformed`, and only its length is kept. A missing file has no lines.
   */
  async *lines(): AsyncGenerator<TailLine, void, undefined> {
    const handle = await openTrail(this.path);
    if (handle === undefined) return;
    try {
      const size = (await handle.stat()).size;
      if (size === 0) return;
      const last = await this.read(handle, size - 1, 1);
      const torn = last[0] !== NEWLINE;
      // The line being assembled: its bytes after the chunk in hand (`carry`), and its end (exclusive).
      let carry: Uint8Array = EMPTY;
      let carried = 0;
      let end = torn ? size : size - 1;
      let first = true;
      const line = (position: number, bytes: Uint8Array): TailLine => {
        const length = end - position;
        const isTorn = first && torn;
        first = false;
        if (isTorn) return { position, length, record: undefined, error: new RentalError('truncated', `trail line at byte ${position} is cut: the file ends without a newline (a torn or truncated last record)`) };
        if (length > MAX_LINE_LENGTH) return { position, length, record: undefined, error: new RentalError('malformed', `trail line at byte ${position}: expected at most ${MAX_LINE_LENGTH} bytes, got ${length}`) };
        const { record, error } = parseAt(bytes, position);
        return { position, length, record, error };
      };
      for (let to = end; to > 0;) {
        const from = Math.max(0, to - this.chunkBytes);
        const chunk = await this.read(handle, from, to - from);
        let i = chunk.length;
        while (i > 0) {
          const newline = chunk.lastIndexOf(NEWLINE, i - 1);
          if (newline === -1) break;
          const piece = chunk.subarray(newline + 1, i);
          yield line(from + newline + 1, carried > MAX_LINE_LENGTH ? EMPTY : carry.length === 0 ? piece.slice() : concatBytes(piece, carry));
          carry = EMPTY;
          carried = 0;
          end = from + newline;
          i = newline;
        }
        carried += i;
        // A line longer than any record is kept by length only: memory stays bounded whatever the file holds.
        carry = carried > MAX_LINE_LENGTH ? EMPTY : concatBytes(chunk.subarray(0, i), carry);
        to = from;
      }
      yield line(0, carry);
    } finally {
      await handle.close();
    }
  }

  private async read(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) throw new RentalError('storage', `the trail ${this.path} got shorter while it was read`);
      filled += bytesRead;
    }
    this.#bytesRead += length;
    return buffer;
  }
}

/** The trail's last record (undefined for an empty or missing file); a torn or malformed last line throws its error. */
export async function lastTrailRecord(path: string): Promise<AuditRecord | undefined> {
  for await (const line of new TrailTail(path).lines()) {
    if (line.error !== undefined) throw line.error;
    return line.record;
  }
  return undefined;
}

/**
 * The records from byte `position` (a line's first byte, as TailLine.position gives it) to the end, in trail order
 * and in batches, as TrailFile.recordBatches reads them from the start: a bad line ends the iteration by throwing its
 * RentalError after a batch with the good records before it; a torn last line is `truncated`.
 */
export async function* trailBatchesFrom(path: string, position: number, options: TrailTailOptions = {}): AsyncGenerator<AuditRecord[], void, undefined> {
  const chunkBytes = chunkSize(options);
  if (!Number.isSafeInteger(position) || position < 0) throw new RentalError('input', `expected a byte position of at least 0, got ${String(position)}`);
  const handle = await openTrail(path);
  if (handle === undefined) {
    if (position === 0) return;
    throw new RentalError('storage', `cannot read the trail ${path} from byte ${position}: it is missing`);
  }
  try {
    const size = (await handle.stat()).size;
    if (position > size) throw new RentalError('storage', `cannot read the trail ${path} from byte ${position}: it has ${size} bytes`);
    if (position > 0) {
      const before = new Uint8Array(1);
      await handle.read(before, 0, 1, position - 1);
      if (before[0] !== NEWLINE) throw new RentalError('input', `byte ${position} of the trail ${path} does not start a line`);
    }
    const buffer = new Uint8Array(chunkBytes);
    let carry: Uint8Array = EMPTY;
    let at = position;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at + carry.length);
      if (bytesRead === 0) break;
      const data = carry.length === 0 ? buffer.subarray(0, bytesRead) : concatBytes(carry, buffer.subarray(0, bytesRead));
      const batch: AuditRecord[] = [];
      let start = 0;
      for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
        const { record, error } = parseAt(data.subarray(start, newline), at + start);
        if (error !== undefined) {
          if (batch.length > 0) yield batch;
          throw error;
        }
        batch.push(record!);
        start = newline + 1;
      }
      if (batch.length > 0) yield batch;
      at += start;
      // The buffer is read into again: keep a copy of the unfinished line.
      carry = data.slice(start);
      if (carry.length > MAX_LINE_LENGTH) throw new RentalError('malformed', `trail line at byte ${at}: expected at most ${MAX_LINE_LENGTH} bytes, got more`);
    }
    if (carry.length > 0) throw new RentalError('truncated', `trail line at byte ${at} is cut: the file ends without a newline (a torn or truncated last record)`);
  } finally {
    await handle.close();
  }
}
