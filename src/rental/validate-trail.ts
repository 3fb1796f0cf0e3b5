// ValidateTrail of patent 003 [0060]-[0061] with the offset of [0095]: write a record first ([0060] step [2]; a
// read-only check proves nothing about currency), then check the trail from the offset up to that record: counters
// consecutive, every signature valid against the trust root, the record just written last ([0050]: no holes, no
// modification, current). Stops at the first failure in trail order with a RentalError whose reason names it.
import { availableParallelism } from 'node:os';
import { COUNTER_MAX, signedDigest } from '../apdu/index.js';
import { bytesEqual } from '../bytes/index.js';
import { ed25519Verifier } from '../crypto/index.js';
import { assertTrustRoot, recordHash, type AuditRecord, type TrustRoot } from './audit-record.js';
import { RentalError, type RentalReason } from './rental-error.js';
import { SignatureVerifierPool } from './verify-pool.js';
import { writeRecord, type AppendRecord, type RentalCard } from './write.js';

/** A bridge record's text (usage-text.ts: `skipped FROM TO`, the counters it names inclusive). */
const BRIDGE = /^skipped (0|[1-9][0-9]{0,38}) (0|[1-9][0-9]{0,38})$/;

export interface BridgedRange {
  readonly from: bigint;
  readonly to: bigint;
}

/** A trail as ValidateTrail needs it: TrailFile, or a rental server's view of one. */
export interface Trail {
  readonly append: AppendRecord;
  /** The records in trail order; a bad line throws its RentalError after the good records before it. */
  recordBatches(): AsyncIterable<readonly AuditRecord[]>;
}

export interface ValidateTrailOptions {
  readonly card: RentalCard;
  /** The keyfile's card: public key, serial, key mode ([0060] steps [4], [6.2]). */
  readonly trustRoot: TrustRoot;
  /**
   * The counter the trail starts at ([0095]): the keyfile's offset, or the counter after the last validator record
   * ([0094]); never read from the trail, so deleting its oldest records cannot move it. Records below it (other
   * programs' older records) are passed over unchecked.
   */
  readonly offset: bigint;
  readonly trail: Trail;
  /** Text of the record validation writes; [0060] step [2] writes the counter itself, Write(c). */
  readonly text?: (counter: bigint) => string;
  readonly nonce?: () => Uint8Array;
  /** Signatures verified per call of verifyRecords, or per batch sent to a worker thread. */
  readonly batchSize?: number;
  /** Worker threads that verify full batches (default: the shared pool on a machine with more than one core). */
  readonly verifiers?: SignatureVerifierPool | null;
}

export interface TrailValidation {
  readonly valid: true;
  /** Records checked: from the offset up to and including the one just written. */
  readonly records: number;
  /** The counter of the record just written: the card's counter was lastCounter + 1 when validation ended. */
  readonly lastCounter: bigint;
  /** The record validation wrote. */
  readonly record: AuditRecord;
  /** Records below the offset that were passed over. */
  readonly skipped: number;
  /** Counter ranges the card skipped, each named by a card-signed bridge record: charged as worst-case usage. */
  readonly bridged: readonly BridgedRange[];
}

export const DEFAULT_VERIFY_BATCH = 1024;

/** [0060] step [2]: Write(c). */
export function validationText(counter: bigint): string {
  return counter.toString();
}

/**
 * [0060] step [6.2]: the index of the first record whose signature does not verify against `root`, or -1. Pure (no
 * I/O, no shared state), so batches can go to worker threads unchanged.
 */
export function verifyRecords(records: readonly AuditRecord[], root: TrustRoot): number {
  const verify = ed25519Verifier(root.publicKey); // one key import for the whole batch
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    if (record.counter < 0n || record.counter >= COUNTER_MAX) return i;
    if (!verify(signedDigest(recordHash(record.nonce, record.text), record.counter, root.keyMode, root.serial), record.signature)) return i;
  }
  return -1;
}

interface Placed {
  readonly record: AuditRecord;
  readonly line: number;
}

function sameRecord(a: AuditRecord, b: AuditRecord): boolean {
  return a.counter === b.counter && a.text === b.text && bytesEqual(a.nonce, b.nonce) && bytesEqual(a.signature, b.signature);
}

/** "counter 3" or "counters 3..5". */
function counters(from: bigint, to: bigint): string {
  return from === to ? `counter ${from}` : `counters ${from}..${to}`;
}

/** "counter 3 is missing" or "counters 3..5 are missing". */
function missing(from: bigint, to: bigint): string {
  return `${counters(from, to)} ${from === to ? 'is' : 'are'} missing`;
}

function refuse(reason: RentalReason, message: string, line?: number): RentalError {
  return new RentalError(reason, `trail refused: ${message}`, { line });
}

/** The walk over the trail's records: sequence checks as they come, signatures in batches. */
class TrailWalk {
  private expected: bigint;
  private started = false;
  private pending: Placed[] = [];
  private seen = 0;
  private skipped = 0;
  private chain = 0;
  /** Counter ranges bridged by card-signed `skipped FROM TO` records. */
  private readonly bridged: BridgedRange[] = [];
  private last: Placed | undefined;
  /** The first record out of sequence, and what the records after it say about it. */
  private suspect: { placed: Placed; expected: bigint; started: boolean; expectedLater: boolean; followed: boolean } | undefined;

  /** Batches out at the workers, oldest first. */
  private inFlight: Array<{ batch: Placed[]; bad: Promise<number> }> = [];

  constructor(
    private readonly root: TrustRoot,
    private readonly offset: bigint,
    private readonly ours: AuditRecord,
    private readonly batchSize: number,
    private readonly verifiers: SignatureVerifierPool | null,
    private readonly oursJustSigned: boolean,
  ) {
    this.expected = offset;
  }

  /** Takes the next record in trail order. */
  take(record: AuditRecord): void {
    this.seen += 1;
    const placed = { record, line: this.seen };
    this.last = placed;
    if (this.suspect !== undefined) {
      // After the first failure: only look for the missing counter and whether anything follows.
      this.suspect.followed = true;
      if (record.counter === this.suspect.expected) this.suspect.expectedLater = true;
      return;
    }
    if (!this.started && record.counter < this.offset) {
      this.skipped += 1;
      return;
    }
    if (record.counter !== this.expected) {
      if (this.bridges(record)) {
        // DESIGN.md "Counters that never roll back": a card-signed record at the floor names the values the card
        // skipped (a recover, a dongle epoch); its signature is checked with the others, and usage evaluation
        // charges the range as worst-case (thresholds.ts).
        this.bridged.push({ from: this.expected, to: record.counter - 1n });
        this.accept(placed);
        return;
      }
      this.suspect = { placed, expected: this.expected, started: this.started, expectedLater: false, followed: false };
      return;
    }
    this.accept(placed);
  }

  /** Whether `record` is a bridge naming exactly the values between the expected counter and its own. */
  private bridges(record: AuditRecord): boolean {
    if (record.counter <= this.expected) return false;
    const match = BRIDGE.exec(record.text);
    return match !== null && BigInt(match[1]!) === this.expected && BigInt(match[2]!) === record.counter - 1n;
  }

  private accept(placed: Placed): void {
    this.started = true;
    this.expected = placed.record.counter + 1n;
    this.chain += 1;
    this.pending.push(placed);
  }

  get failed(): boolean {
    return this.suspect !== undefined;
  }

  /**
   * Verifies the pending signatures once a batch is full (or always, with `all`): at the workers when there are
   * some, else here. Throws the first bad signature in trail order among the batches finished so far.
   */
  async flush(all: boolean): Promise<void> {
    while (this.pending.length >= this.batchSize || (all && this.pending.length > 0)) {
      const batch = this.pending.splice(0, this.batchSize);
      // A trail of one batch is checked here: starting workers would cost more than it saves.
      if (this.verifiers === null || (all && this.inFlight.length === 0 && batch.length < this.batchSize)) this.check(batch, verifyRecords(batch.map((placed) => placed.record), this.root));
      else this.inFlight.push({ batch, bad: this.dispatch(this.verifiers, batch) });
    }
    // Keep a few batches per worker out; more would only hold memory.
    const limit = all ? 0 : 4 * (this.verifiers?.size ?? 1);
    while (this.inFlight.length > limit) {
      const { batch, bad } = this.inFlight.shift()!;
      this.check(batch, await bad);
    }
  }

  private dispatch(verifiers: SignatureVerifierPool, batch: readonly Placed[]): Promise<number> {
    const digests = new Uint8Array(batch.length * 32);
    const signatures = new Uint8Array(batch.length * 64);
    for (let i = 0; i < batch.length; i++) {
      const { record } = batch[i]!;
      if (record.counter < 0n || record.counter >= COUNTER_MAX || record.signature.length !== 64) return Promise.resolve(i);
      digests.set(signedDigest(recordHash(record.nonce, record.text), record.counter, this.root.keyMode, this.root.serial), i * 32);
      signatures.set(record.signature, i * 64);
    }
    return verifiers.verify(this.root.publicKey, digests, signatures, batch.length);
  }

  private check(batch: readonly Placed[], bad: number): void {
    if (bad === -1) return;
    const { record, line } = batch[bad]!;
    throw refuse('signature', `trail line ${line} (counter ${record.counter}) has a signature that does not verify against card ${this.root.serial}'s key: the record was modified or signed by another card`, line);
  }

  /** After the last record (or a read error): the first failure, or the result. */
  async finish(readError: RentalError | undefined): Promise<TrailValidation> {
    // Earlier lines first: a bad signature before the failure point is the first failure.
    await this.flush(true);
    // A bad line after the suspect means the suspect was not the trail's last record.
    if (readError !== undefined && this.suspect !== undefined) this.suspect.followed = true;
    if (this.suspect !== undefined) throw this.sequenceFailure(this.suspect);
    if (readError !== undefined) throw readError;
    const ours = this.ours;
    if (this.last === undefined) throw refuse('lost', `the trail is empty even after the record for counter ${ours.counter} was appended`);
    const { record, line } = this.last;
    if (!sameRecord(record, ours)) {
      if (record.counter < ours.counter) {
        throw refuse('stale', `the trail ends at counter ${record.counter} (line ${line}), before the record just written for counter ${ours.counter}`, line);
      }
      throw refuse('not-last', `the trail's last record (line ${line}, counter ${record.counter}) is not the record just written for counter ${ours.counter}`, line);
    }
    return { valid: true, records: this.chain, lastCounter: ours.counter, record: ours, skipped: this.skipped, bridged: this.bridged };
  }

  private sequenceFailure(suspect: NonNullable<TrailWalk['suspect']>): RentalError {
    const { placed: { record, line }, expected, started } = suspect;
    const counter = record.counter;
    const isOurs = this.oursJustSigned && !suspect.followed && sameRecord(record, this.ours);
    if (counter < expected) {
      if (counter < this.offset) return refuse('order', `trail line ${line} has counter ${counter}, below the offset ${this.offset}, after counter ${expected - 1n}: the records are out of order`, line);
      if (isOurs) return refuse('rollback', `the card signed counter ${counter} again, which the trail already holds up to ${expected - 1n}: the card's counter was rolled back`, line);
      return refuse('repeat', `trail line ${line} repeats counter ${counter} (expected ${expected})`, line);
    }
    if (suspect.expectedLater) return refuse('order', `trail line ${line} has counter ${counter} where counter ${expected} was expected, and ${expected} comes later: the records are out of order`, line);
    if (isOurs) {
      if (!started && this.skipped === 0) {
        return refuse('lost', `the trail held no records, but the card signed ${counters(expected, counter - 1n)} since the offset: the trail was lost or emptied`, line);
      }
      return refuse('stale', `the trail ends before counter ${expected} but the card is at ${counter}: ${missing(expected, counter - 1n)} (an old trail restored from a backup, or its newest records deleted)`, line);
    }
    if (!started) return refuse('offset', `the trail's first record from the offset on has counter ${counter}, not the offset ${expected}: its oldest records were deleted`, line);
    return refuse('hole', `trail line ${line} has counter ${counter} after ${expected - 1n}: ${missing(expected, counter - 1n)}`, line);
  }
}

/** [0060]: ValidateTrail. Returns the validation, or throws the RentalError of the first failure. */
export async function validateTrail(options: ValidateTrailOptions): Promise<TrailValidation> {
  const { card, trustRoot, offset, trail } = options;
  assertTrustRoot(trustRoot);
  if (typeof offset !== 'bigint' || offset < 0n || offset >= 1n << 128n) throw new RentalError('input', 'expected an offset in 0..2^128-1');
  const batchSize = options.batchSize ?? DEFAULT_VERIFY_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RentalError('input', `expected a batch size of at least 1, got ${batchSize}`);

  // [1] c ← GetCounter()
  let counter: bigint;
  try {
    counter = await card.getCounter();
  } catch (error) {
    throw new RentalError('card', `ValidateTrail step [1]: GetCounter failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // [2] Write(c): its step [7] already checks the new signature against the trust root ([4] for the fresh record).
  const ours = await writeRecord((options.text ?? validationText)(counter), { card, trustRoot, append: (record) => trail.append(record), nonce: options.nonce });
  // [5] c is the counter stored in the record just written: nothing signed between GetCounter and Write.
  if (ours.counter !== counter) {
    throw new RentalError('counter', `ValidateTrail step [5]: the card's counter was ${counter} but the record was signed with ${ours.counter}: another signature came in between`);
  }
  if (counter < offset) throw refuse('rollback', `the card's counter ${counter} is below the trail's offset ${offset}: the card's counter was rolled back`);

  // [3], [6]: the records from the offset, in order, ending with the one just written.
  return checkTrail({ trustRoot, offset, records: trail.recordBatches(), ours, batchSize, ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }) });
}

export interface CheckTrailOptions {
  readonly trustRoot: TrustRoot;
  /** As in ValidateTrailOptions: from the keyfile or the last validator record, never from the trail. */
  readonly offset: bigint;
  /** The trail's records in order from wherever the caller starts reading (at or before the offset). */
  readonly records: AsyncIterable<readonly AuditRecord[]>;
  /** The record ValidateTrail's step [2] just wrote: it must be the trail's last. */
  readonly ours: AuditRecord;
  /**
   * Whether `ours` was just signed by the card (ValidateTrail), so that a gap before it means the trail is behind the
   * card (stale, lost, rollback); false for a trail checked without the card, whose last record stands in for it and a
   * gap before it is a hole like any other. Default true.
   */
  readonly oursJustSigned?: boolean;
  readonly batchSize?: number;
  readonly verifiers?: SignatureVerifierPool | null;
}

/** The shared worker pool where more than one core can verify; none on one core. */
function defaultVerifiers(): SignatureVerifierPool | null {
  return availableParallelism() > 1 ? SignatureVerifierPool.shared() : null;
}

/**
 * [0060] steps [3] and [6] alone: the walk over the records once the caller has written its own record (directly
 * on the card, or through a rental server that signs and appends in one step, [0058]).
 */
export async function checkTrail(options: CheckTrailOptions): Promise<TrailValidation> {
  const { trustRoot, offset, ours } = options;
  assertTrustRoot(trustRoot);
  const batchSize = options.batchSize ?? DEFAULT_VERIFY_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RentalError('input', `expected a batch size of at least 1, got ${batchSize}`);
  const walk = new TrailWalk(trustRoot, offset, ours, batchSize, options.verifiers === undefined ? defaultVerifiers() : options.verifiers, options.oursJustSigned ?? true);
  let readError: RentalError | undefined;
  try {
    for await (const batch of options.records) {
      for (const record of batch) walk.take(record);
      if (!walk.failed) await walk.flush(false);
    }
  } catch (error) {
    if (!(error instanceof RentalError) || error.reason === 'signature') throw error;
    readError = error;
  }
  return walk.finish(readError);
}
