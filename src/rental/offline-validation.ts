// A trail checked without the card (patent 003 [0094] the validation service, [0104] the vendor's remote audit):
// the records from the program's start on, as [0060] step [6] checks them (consecutive counters from the start, every
// signature against the keyfile's card key and serial, bridges over skipped counter values as validate-trail.ts
// accepts them), ending with the trail's last record; then the program's usage up to it. The start is the keyfile's
// offset, or a validator record at the head of the records whose attest verifies against one of the keyfile's
// validator keys ([0094]: the records before it need not be checked again); it is itself checked like every record.
import type { AuditRecord, TrustRoot } from './audit-record.js';
import type { Keyfile } from './rental-keyfile.js';
import { RentalError } from './rental-error.js';
import { mergeUsageSummaries, summariseUsage } from './thresholds.js';
import { usageBinding, type UsageEntry, type UsageSummary } from './usage-text.js';
import { checkTrail, type BridgedRange } from './validate-trail.js';
import { checkValidatorRecord, RecordsDigest } from './validator-record.js';
import type { SignatureVerifierPool } from './verify-pool.js';

export interface OfflineValidationOptions {
  readonly keyfile: Keyfile;
  /**
   * The trail's records from the program's start on, in trail order: an array, or batches read from a file (then
   * `last` is required). Records below the keyfile's offset before the start are passed over, as ValidateTrail does.
   */
  readonly records: readonly AuditRecord[] | AsyncIterable<readonly AuditRecord[]>;
  /** The trail's last record: the walk must end with it. */
  readonly last?: AuditRecord;
  /** Sees every record from the start on, in order, as the walk takes it (an audit looks for its nonce). */
  readonly onRecord?: (record: AuditRecord) => void;
  readonly verifiers?: SignatureVerifierPool | null;
}

export interface OfflineValidation {
  /** The counter checking started at. */
  readonly start: bigint;
  /** Where that counter came from; with `validator-record`, the key that signed that record's attest. */
  readonly from: 'offset' | 'validator-record';
  readonly validatorKey: Uint8Array | undefined;
  /** The attested usage below the start, when a validator record starts the check. */
  readonly base: UsageSummary | undefined;
  /** The program's usage below `summary.next`: the last record's counter + 1 (the start with no record). */
  readonly summary: UsageSummary;
  /** SHA-256 over the card-signed digests of the records checked, in order (validator-record.ts). */
  readonly recordsDigest: Uint8Array;
  /** Records checked, from the start to the last. */
  readonly records: number;
  readonly last: AuditRecord | undefined;
  readonly bridged: readonly BridgedRange[];
}

const refuse = (reason: 'offset' | 'input', message: string) => new RentalError(reason, `trail refused: ${message}`);

async function* batchesOf(records: readonly AuditRecord[] | AsyncIterable<readonly AuditRecord[]>): AsyncGenerator<readonly AuditRecord[], void, undefined> {
  if (Array.isArray(records)) {
    if (records.length > 0) yield records;
    return;
  }
  yield* records as AsyncIterable<readonly AuditRecord[]>;
}

/** [0060] step [6] over records without a card, from the keyfile's offset or an attested validator record. */
export async function validateOffline(options: OfflineValidationOptions): Promise<OfflineValidation> {
  const { keyfile } = options;
  const trustRoot: TrustRoot = { publicKey: keyfile.card.publicKey, serial: keyfile.card.serial, keyMode: keyfile.card.keyMode };
  const binding = usageBinding(keyfile.program, keyfile.card.publicKey);
  const source = batchesOf(options.records)[Symbol.asyncIterator]();
  const head = await source.next();
  const first = head.done === true ? undefined : head.value[0];
  const last = options.last ?? (Array.isArray(options.records) ? (options.records as readonly AuditRecord[]).at(-1) : undefined);
  if (first !== undefined && last === undefined) throw new RentalError('input', 'expected the trail\'s last record beside records read in batches');

  // Where the program starts: an attested validator record at the head, or the keyfile's offset.
  let start = keyfile.offset;
  let base: UsageSummary | undefined;
  let validatorKey: Uint8Array | undefined;
  if (first !== undefined && first.counter >= keyfile.offset) {
    const check = checkValidatorRecord(first, keyfile, binding);
    if (check.status === 'attested') {
      ({ counter: start, summary: base, validatorKey } = check);
    } else if (check.status === 'forged' && first.counter > keyfile.offset) {
      throw refuse('offset', `the records start at counter ${first.counter}, after the keyfile's offset ${keyfile.offset}, with a validator record that vouches for nothing: ${check.why}`);
    }
  }
  const digest = new RecordsDigest(trustRoot);
  if (first === undefined || last === undefined) {
    return { start, from: 'offset', validatorKey, base, summary: summariseUsage([], binding, { from: start }), recordsDigest: digest.digest(), records: 0, last: undefined, bridged: [] };
  }

  // The walk takes the batches as they come; the digest and the usage follow the records it accepts.
  let started = false;
  let usage: UsageSummary | undefined;
  const own = `${binding.program} `;
  const follow = (batch: readonly AuditRecord[]): void => {
    const entries: UsageEntry[] = [];
    for (const record of batch) {
      if (!started && record.counter < start) continue;
      started = true;
      digest.add(record);
      options.onRecord?.(record);
      if (record.text.startsWith(own) || record.text.startsWith('skipped ')) entries.push({ text: record.text, counter: record.counter });
    }
    // Batch by batch, so a long trail is never held: each batch's entries continue the usage so far.
    if (started) usage = summariseUsage(entries, binding, usage === undefined ? { from: start } : { base: usage });
  };
  async function* walked(): AsyncGenerator<readonly AuditRecord[], void, undefined> {
    for (let step = head; step.done !== true; step = await source.next()) {
      yield step.value;
      // After the walk took the batch: its sequence failures come first, a malformed usage record after them.
      follow(step.value);
    }
  }
  const validation = await checkTrail({
    trustRoot, offset: start, records: walked(), ours: last, oursJustSigned: false, ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }),
  });
  const since = { ...(usage ?? summariseUsage([], binding, { from: start })), next: last.counter + 1n };
  return {
    start, from: base === undefined ? 'offset' : 'validator-record', validatorKey, base,
    summary: base === undefined ? since : mergeUsageSummaries(base, since),
    recordsDigest: digest.digest(), records: validation.records, last, bridged: validation.bridged,
  };
}
