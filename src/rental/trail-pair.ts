// The rental server's trails (patent 003 [0062]: "a primary audit trail on the local fixed disk and at least one
// backup audit trail on a separate medium"): every record appended and fsynced to the primary, then to the backup,
// before a Write is acknowledged. At startup the two are made one again: a torn last line is cut when the journal
// holds its record, a missing or shorter trail is extended from the other when that one extends it, and two trails
// that disagree are refused, naming the first line where they differ: which one is right is not the server's call.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { bytesEqual, utf8 } from '../bytes/index.js';
import { crashArmed, crashPoint } from '../fault-injection/index.js';
import { encodeRecordLine, type AuditRecord } from './audit-record.js';
import type { TrailState } from './rental-answers.js';
import { RentalError } from './rental-error.js';
import { TrailFile, type TrailAppender } from './trail-file.js';

/** Lines per write when one trail is extended from the other. */
const COPY_BATCH_BYTES = 1024 * 1024;

export interface TrailPairOptions {
  /** The primary trail's directory: DIR/trail.jsonl. */
  readonly directory: string;
  /** The backup's directory, on another medium ([0062]). */
  readonly backupDirectory?: string;
  /** The record the journal holds as answered: a torn last line may be cut only when it is a piece of this one. */
  readonly journaled?: AuditRecord;
  /** Where startup says what it repaired. */
  readonly log?: (line: string) => void;
  readonly readChunkBytes?: number;
}

function sameRecord(a: AuditRecord, b: AuditRecord): boolean {
  return a.counter === b.counter && a.text === b.text && bytesEqual(a.nonce, b.nonce) && bytesEqual(a.signature, b.signature);
}

function lineBytes(record: AuditRecord): Uint8Array {
  return utf8(`${encodeRecordLine(record)}\n`);
}

interface Reading {
  readonly records: AsyncIterator<AuditRecord>;
  done: boolean;
  /** The read failure that ended this trail, if one did. */
  error: RentalError | undefined;
}

async function next(reading: Reading): Promise<AuditRecord | undefined> {
  if (reading.done) return undefined;
  try {
    const step = await reading.records.next();
    if (step.done === true) reading.done = true;
    return step.done === true ? undefined : step.value;
  } catch (error) {
    if (!(error instanceof RentalError)) throw error;
    reading.done = true;
    reading.error = error;
    return undefined;
  }
}

/** A trail as the pair keeps it: the file, its appender, its last record and length. */
class OpenTrail {
  appender: TrailAppender | undefined;
  last: AuditRecord | undefined;
  records = 0;

  constructor(readonly file: TrailFile) {}

  state(): TrailState {
    return { path: this.file.path, lastCounter: this.last?.counter ?? null, records: this.records };
  }

  open(): void {
    this.appender = this.file.openAppender();
  }

  append(record: AuditRecord): void {
    this.appender!.append(record);
    this.last = record;
    this.records += 1;
  }

  /** Appends `records` in large writes (extending a trail from the other at startup). */
  appendAll(records: readonly AuditRecord[]): void {
    let batch: Uint8Array[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      const joined = new Uint8Array(bytes);
      let at = 0;
      for (const line of batch) {
        joined.set(line, at);
        at += line.length;
      }
      this.appender!.appendLines(joined);
      batch = [];
      bytes = 0;
    };
    for (const record of records) {
      const line = lineBytes(record);
      batch.push(line);
      bytes += line.length;
      if (bytes >= COPY_BATCH_BYTES) flush();
    }
    flush();
    if (records.length > 0) {
      this.last = records[records.length - 1];
      this.records += records.length;
    }
  }

  close(): void {
    this.appender?.close();
    this.appender = undefined;
  }
}

export class TrailPair {
  private constructor(
    private readonly primary: OpenTrail,
    private readonly backup: OpenTrail | undefined,
  ) {}

  /** Opens, repairs and reconciles the trails (see the file comment); refuses to go on when they disagree. */
  static async open(options: TrailPairOptions): Promise<TrailPair> {
    const log = options.log ?? (() => undefined);
    const chunk = options.readChunkBytes === undefined ? {} : { readChunkBytes: options.readChunkBytes };
    const primary = new OpenTrail(TrailFile.inDirectory(options.directory, chunk));
    const backup = options.backupDirectory === undefined ? undefined : new OpenTrail(TrailFile.inDirectory(options.backupDirectory, chunk));
    if (backup !== undefined && backup.file.path === primary.file.path) throw new RentalError('input', `the backup trail ${backup.file.path} is the primary trail itself: give a directory on another medium`);
    for (const trail of backup === undefined ? [primary] : [primary, backup]) cutTornLine(trail.file, options.journaled, log);
    const pair = new TrailPair(primary, backup);
    try {
      await pair.reconcile(log);
    } catch (error) {
      pair.close();
      throw error;
    }
    return pair;
  }

  /** Reads both trails side by side, then extends the shorter from the longer, or refuses. */
  private async reconcile(log: (line: string) => void): Promise<void> {
    const { primary, backup } = this;
    primary.open();
    backup?.open();
    if (backup === undefined) {
      await count(primary);
      return;
    }
    const p: Reading = { records: primary.file.records()[Symbol.asyncIterator](), done: false, error: undefined };
    const b: Reading = { records: backup.file.records()[Symbol.asyncIterator](), done: false, error: undefined };
    try {
      await this.compare(p, b, log);
    } finally {
      // Ends the readers' generators, which close their files, however the comparison ended.
      await Promise.all([p.records.return?.(), b.records.return?.()]);
    }
  }

  private async compare(p: Reading, b: Reading, log: (line: string) => void): Promise<void> {
    const { primary } = this;
    const backup = this.backup!;
    const tail: AuditRecord[] = [];
    let line = 0;
    for (;;) {
      const [x, y] = [await next(p), await next(b)];
      line += 1;
      const readError = p.error ?? b.error;
      if (readError !== undefined) {
        throw new RentalError('storage', `cannot reconcile the trail ${primary.file.path} and its backup ${backup.file.path}: ${p.error === undefined ? 'the backup' : 'the trail'}: ${readError.message}`, { line, cause: readError });
      }
      if (x === undefined && y === undefined) break;
      if (x !== undefined && y !== undefined) {
        if (!sameRecord(x, y)) {
          throw new RentalError('storage', `the trail ${primary.file.path} and its backup ${backup.file.path} differ at line ${line} (counters ${x.counter} and ${y.counter}): compare them and keep the right one; the server will not choose`, { line });
        }
        primary.last = x;
        backup.last = y;
        primary.records += 1;
        backup.records += 1;
        continue;
      }
      // One trail ended: the other extends it. Keep the rest of the longer one to copy.
      tail.push((x ?? y)!);
      const rest = x === undefined ? b : p;
      for (let record = await next(rest); record !== undefined; record = await next(rest)) tail.push(record);
      if (rest.error !== undefined) {
        throw new RentalError('storage', `cannot copy ${x === undefined ? 'the backup' : 'the trail'} over: ${rest.error.message}`, { cause: rest.error });
      }
      const shorter = x === undefined ? primary : backup;
      const longer = x === undefined ? backup : primary;
      const from = shorter.records;
      shorter.appendAll(tail);
      longer.last = tail[tail.length - 1];
      longer.records += tail.length;
      log(x === undefined
        ? `restored the trail ${primary.file.path} from its backup ${backup.file.path}: ${tail.length} records from line ${from + 1} ([0062])`
        : `brought the backup ${backup.file.path} up to date with the trail ${primary.file.path}: ${tail.length} records from line ${from + 1}`);
      break;
    }
  }

  /**
   * The journal's answered record, appended to each trail that lacks it ([0062]: the replay after a crash between
   * the card's answer and the appends). Returns whether any trail lacked it.
   */
  replay(record: AuditRecord): boolean {
    let appended = false;
    for (const trail of this.trails()) {
      const last = trail.last;
      if (last !== undefined && last.counter === record.counter && sameRecord(last, record)) continue;
      if (last !== undefined && last.counter >= record.counter) {
        throw new RentalError('storage', `the journal's record for counter ${record.counter} is not the end of the trail ${trail.file.path}, whose last record has counter ${last.counter}: the trail was changed behind the server`);
      }
      trail.append(record);
      appended = true;
    }
    return appended;
  }

  /**
   * Steps (4) and (5) of a Write: the primary, then the backup, each fsynced. The crash points let the fault tests
   * kill the server between them (and in the middle of a line).
   */
  append(record: AuditRecord): void {
    if (crashArmed('rental.write.torn')) tearForCrashTest(this.primary, record);
    this.primary.append(record);
    crashPoint('rental.write.appended');
    if (this.backup !== undefined) {
      this.backup.append(record);
      crashPoint('rental.write.backup-appended');
    }
  }

  get last(): AuditRecord | undefined {
    return this.primary.last;
  }

  get path(): string {
    return this.primary.file.path;
  }

  get backupPath(): string | undefined {
    return this.backup?.file.path;
  }

  state(): { readonly trail: TrailState; readonly backup: TrailState | null } {
    return { trail: this.primary.state(), backup: this.backup?.state() ?? null };
  }

  private trails(): OpenTrail[] {
    return this.backup === undefined ? [this.primary] : [this.primary, this.backup];
  }

  close(): void {
    for (const trail of this.trails()) trail.close();
  }
}

/** Counts a lone trail's records and keeps its last (a read failure refuses the start, naming the line). */
async function count(trail: OpenTrail): Promise<void> {
  for await (const batch of trail.file.recordBatches()) {
    trail.records += batch.length;
    trail.last = batch[batch.length - 1];
  }
}

/** A line torn by a crash is cut when it is a piece of the journaled record, which is then replayed; else refused. */
function cutTornLine(file: TrailFile, journaled: AuditRecord | undefined, log: (line: string) => void): void {
  const tail = file.cutTail();
  if (tail === undefined) return;
  const line = journaled === undefined ? undefined : lineBytes(journaled);
  if (line === undefined || tail.bytes.length >= line.length || !bytesEqual(line.subarray(0, tail.bytes.length), tail.bytes)) {
    throw new RentalError('truncated', `the trail ${file.path} ends in a cut line of ${tail.bytes.length} bytes that is no piece of the record the journal holds: it was not torn by this server; check the trail (and its backup) by hand`);
  }
  file.truncate(tail.offset);
  log(`cut the torn last line of ${file.path} (${tail.bytes.length} bytes of the record for counter ${journaled!.counter}, which the journal holds and replays)`);
}

/** The fault tests' torn append: half the record's line on the primary, fsynced, then death as under kill -9. */
function tearForCrashTest(primary: OpenTrail, record: AuditRecord): void {
  const line = lineBytes(record);
  // The appender writes whole lines only: the torn write goes around it on purpose.
  const fd = openSync(primary.file.path, 'a');
  writeSync(fd, line.subarray(0, line.length >> 1));
  fsyncSync(fd);
  closeSync(fd);
  crashPoint('rental.write.torn');
}
