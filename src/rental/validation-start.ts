// Where a program starts validating and counting (patent 003 [0094], [0095]), and how it gets a new start from a
// validation service. The start is the last validator record of the program whose attest verifies against one of the
// keyfile's validator keys, found reading the trail backwards (trail-tail.ts), so the time it takes does not grow with
// the records that record vouches for; else the keyfile's offset. Deleting the records before it changes nothing;
// the record itself must be there and card-signed: the walk from its counter checks it like every other record.
//
// certifyTrail is the customer's side of [0094]: it sends the records from the start up to c - 1 to the service,
// checks the answer against the keyfile's validator keys, and writes the validator record at exactly counter c.
import { bytesEqual } from '../bytes/index.js';
import { ExitCode } from '../errors/index.js';
import type { AuditRecord, TrustRoot } from './audit-record.js';
import { writeThroughServer, type RentalServerLink } from './program-trail.js';
import { RentalError } from './rental-error.js';
import type { Keyfile } from './rental-keyfile.js';
import { summariseUsage } from './thresholds.js';
import { TrailTail, trailBatchesFrom } from './trail-tail.js';
import { usageBinding, type UsageSummary } from './usage-text.js';
import {
  checkValidatorRecord, claimFor, encodeValidationRequest, parseValidationAnswer, RecordsDigest, ValidationServiceError, validatorRecordText,
  verifyValidatorClaim, type ValidationAnswer,
} from './validator-record.js';

export interface ValidationStartPoint {
  /** The counter validation starts at: the validator record's own, or the keyfile's offset. */
  readonly offset: bigint;
  /** The attested usage below `offset`; all zero from the keyfile's offset. */
  readonly summary: UsageSummary;
  /** Byte offset of the line to read from: the validator record's, or a line at or before the offset's record. */
  readonly position: number;
  /** The service key that vouches for the start; undefined at the keyfile's offset. */
  readonly validatorKey: Uint8Array | undefined;
  /** How much of the file the search read. */
  readonly bytesRead: number;
  /** The trail's records from `position` on, in order. */
  records(): AsyncIterable<readonly AuditRecord[]>;
}

/**
 * Reads `trailPath` backwards to the program's last attested validator record at or above the keyfile's offset. The
 * search stops at the first record below the offset (records before it are older still), and passes over lines that
 * are not records and validator records whose attest does not verify: what they mean is the walk's to say.
 */
export async function findValidationStart(keyfile: Keyfile, trailPath: string, options: { chunkBytes?: number } = {}): Promise<ValidationStartPoint> {
  const binding = usageBinding(keyfile.program, keyfile.card.publicKey);
  const tail = new TrailTail(trailPath, options);
  const point = (offset: bigint, summary: UsageSummary, position: number, validatorKey: Uint8Array | undefined): ValidationStartPoint => ({
    offset, summary, position, validatorKey, bytesRead: tail.bytesRead, records: () => trailBatchesFrom(trailPath, position, options),
  });
  for await (const line of tail.lines()) {
    const record = line.record;
    if (record === undefined) continue;
    if (record.counter < keyfile.offset) return point(keyfile.offset, summariseUsage([], binding, { from: keyfile.offset }), line.position + line.length + 1, undefined);
    const check = checkValidatorRecord(record, keyfile, binding);
    if (check.status === 'attested') return point(check.counter, check.summary, line.position, check.validatorKey);
  }
  return point(keyfile.offset, summariseUsage([], binding, { from: keyfile.offset }), 0, undefined);
}

/** What certifyTrail needs of the card's writer: the rental server's client, or a card and trail in process. */
export interface CertifyClient {
  counter(): Promise<bigint>;
  /** Writes `text` signed at exactly `expectCounter`; fails with RentalError `counter-moved` when the card has left it. */
  write(text: string, expectCounter: bigint): Promise<AuditRecord>;
}

/**
 * The rental server's client as certifyTrail's writer ([0058]: the program does not trust the server): every record
 * comes back checked by writeThroughServer against the keyfile's card, signed at exactly the counter asked.
 */
export function certifyClientOf(link: RentalServerLink, trustRoot: TrustRoot): CertifyClient {
  return { counter: () => link.counter(), write: (text, expectCounter) => writeThroughServer(link, text, trustRoot, { expectCounter }) };
}

export interface CertifyOptions {
  readonly keyfile: Keyfile;
  readonly trailPath: string;
  readonly client: CertifyClient;
  /** The service's base URL, e.g. http://127.0.0.1:8700 (POST {url}/v1/validate). */
  readonly validatorUrl: string;
  /** Tries when another program wrote between reading the counter and writing (default 5). */
  readonly attempts?: number;
  /** Per request (default 60 s). */
  readonly timeoutMs?: number;
}

export interface Certification {
  /** The validator record written at the validated counter. */
  readonly record: AuditRecord;
  readonly summary: UsageSummary;
  readonly validatorKey: Uint8Array;
  /** The start the records sent began at. */
  readonly from: bigint;
  readonly records: number;
}

async function askService(url: string, body: string, timeoutMs: number): Promise<ValidationAnswer> {
  let response: Response;
  try {
    response = await fetch(new URL('v1/validate', url.endsWith('/') ? url : `${url}/`), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new ValidationServiceError('unreachable', `the validation service at ${url} cannot be reached: ${(error as Error).message}`, { exitCode: ExitCode.other, cause: error });
  }
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    throw new ValidationServiceError('answer', `the validation service at ${url} answered HTTP ${response.status} without JSON`);
  }
  if (!response.ok) {
    const { error, message } = (typeof json === 'object' && json !== null ? json : {}) as { error?: unknown; message?: unknown };
    // The service's words reach a terminal: printable ASCII only, bounded.
    const reason = typeof message === 'string' ? message.slice(0, 500).replace(/[^\x20-\x7e]/g, '?') : 'no reason given';
    throw new ValidationServiceError(typeof error === 'string' && /^[a-z-]{1,40}$/.test(error) ? error : 'refused', `the validation service refused (HTTP ${response.status}): ${reason}`);
  }
  return parseValidationAnswer(json);
}

/**
 * [0094]: has the validation service at `validatorUrl` vouch for the trail up to the card's counter c, and writes its
 * validator record at exactly c. The answer is checked here: for counter c, over the records sent (their digest),
 * signed by a validation service the keyfile names.
 */
export async function certifyTrail(options: CertifyOptions): Promise<Certification> {
  const { keyfile, trailPath, client, validatorUrl } = options;
  const attempts = options.attempts ?? 5;
  const binding = usageBinding(keyfile.program, keyfile.card.publicKey);
  const root = { publicKey: keyfile.card.publicKey, serial: keyfile.card.serial, keyMode: keyfile.card.keyMode };
  for (let attempt = 1; ; attempt++) {
    const start = await findValidationStart(keyfile, trailPath);
    const counter = await client.counter();
    if (counter < start.offset) throw new RentalError('rollback', `the card's counter ${counter} is below the program's start ${start.offset}: the card's counter was rolled back`);
    const records: AuditRecord[] = [];
    const digest = new RecordsDigest(root);
    reading: for await (const batch of start.records()) {
      for (const record of batch) {
        if (record.counter < start.offset && records.length === 0) continue;
        if (record.counter >= counter) break reading;
        records.push(record);
        digest.add(record);
      }
    }
    const answer = await askService(validatorUrl, encodeValidationRequest({ keyfile: keyfile.bytes, counter, records }), options.timeoutMs ?? 60_000);
    if (answer.counter !== counter || !bytesEqual(answer.recordsDigest, digest.digest())) {
      throw new ValidationServiceError('answer', `the validation service vouched for counter ${answer.counter} and other records than the ${records.length} sent for counter ${counter}`);
    }
    const claim = claimFor(keyfile, counter, answer.recordsDigest, answer.summary);
    const validatorKey = verifyValidatorClaim(claim, answer.attest, keyfile.validatorKeys);
    if (validatorKey === undefined) throw new ValidationServiceError('untrusted', 'the validation service\'s attest does not verify against any validator key the keyfile names');
    try {
      const record = await client.write(validatorRecordText(binding, claim, answer.attest), counter);
      return { record, summary: answer.summary, validatorKey, from: start.offset, records: records.length };
    } catch (error) {
      // Another program signed first: the records up to the new counter need vouching for again.
      if (!(error instanceof RentalError && (error.reason as string) === 'counter-moved') || attempt >= attempts) throw error;
    }
  }
}
