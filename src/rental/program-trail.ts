// Write and ValidateTrail as a rented program runs them through the rental server (patent 003 [0058]: "A rented
// application appends a record to the audit trail by executing the Write routine ... and then sends the audit
// record to the Rental Server"). The server signs and appends in one step, so it can journal the signature before
// it exists and never leave a hole; the program still does every check of [0059] and [0060] itself, because it does
// not trust the server: the nonce and text it chose come back signed, the counters agree, the signature verifies
// against the keyfile's card, and the trail, read by the program, ends with its record.
import { randomBytes } from 'node:crypto';
import { signedDigest } from '../apdu/index.js';
import { bytesEqual } from '../bytes/index.js';
import { ed25519Verify } from '../crypto/index.js';
import { assertTrustRoot, NONCE_LENGTH, recordHash, recordTextProblem, type AuditRecord, type TrustRoot } from './audit-record.js';
import { RentalError, type RentalReason } from './rental-error.js';
import { checkTrail, type TrailValidation } from './validate-trail.js';

/** What a program needs of the rental server for Write and ValidateTrail (RentalClient satisfies it). */
export interface RentalServerLink {
  /** GET COUNTER. */
  counter(): Promise<bigint>;
  /**
   * Signs `text` with `nonce` at the card's next counter and appends the record durably; with `expectCounter`, signs
   * only if the card's counter is that value and fails with reason `counter-moved` otherwise (nothing signed).
   */
  write(nonce: Uint8Array, text: string, expectCounter?: bigint): Promise<{ readonly record: AuditRecord; readonly counterAfter: bigint }>;
}

function failure(step: number, reason: RentalReason, message: string, cause?: unknown): RentalError {
  return new RentalError(reason, `Write step [${step}]: ${message}`, { step, cause });
}

function isCounterMoved(error: unknown): boolean {
  return error instanceof RentalError && (error.reason as string) === 'counter-moved';
}

/**
 * [0059] through the server: steps [1]-[2] here, [3]-[4] and [9] at the server (one card transaction, journaled),
 * [5]-[8] checked here. Returns the record the server appended.
 */
export async function writeThroughServer(link: RentalServerLink, text: string, trustRoot: TrustRoot, options: { expectCounter?: bigint; nonce?: Uint8Array } = {}): Promise<AuditRecord> {
  assertTrustRoot(trustRoot);
  const problem = recordTextProblem(text);
  if (problem !== undefined) throw new RentalError('input', problem);
  // [1] n ← a new nonce; [2] h1 ← hash(n, str) is the server's to send, and verified below through h2.
  const nonce = options.nonce ?? Uint8Array.from(randomBytes(NONCE_LENGTH));
  if (nonce.length !== NONCE_LENGTH) throw failure(1, 'input', `expected a ${NONCE_LENGTH}-byte nonce`);
  let answer: { readonly record: AuditRecord; readonly counterAfter: bigint };
  try {
    answer = await link.write(nonce, text, options.expectCounter);
  } catch (error) {
    if (error instanceof RentalError) throw error;
    throw failure(3, 'card', `the rental server did not sign: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  const { record, counterAfter } = answer;
  // The server signed what this program asked for, not something else.
  if (!bytesEqual(record.nonce, nonce) || record.text !== text) throw failure(8, 'wrong-card', 'the rental server answered a record with another nonce or text than the one sent');
  // [5] c ← GetCounter() - 1: the card's counter moved on by exactly this signature.
  if (counterAfter !== record.counter + 1n) throw failure(5, 'counter', `the card's counter is ${counterAfter} after signing counter ${record.counter}: it did not move on by one`);
  if (options.expectCounter !== undefined && record.counter !== options.expectCounter) {
    throw failure(5, 'counter', `the card signed counter ${record.counter}, not ${options.expectCounter} as asked`);
  }
  // [6]-[7] h2 ← hash(h1, c) (with the serial on a universal-key card); s must verify against the keyfile's card.
  const h2 = signedDigest(recordHash(record.nonce, record.text), record.counter, trustRoot.keyMode, trustRoot.serial);
  if (!ed25519Verify(trustRoot.publicKey, h2, record.signature)) {
    throw failure(7, 'wrong-card', `the signature does not verify against the keyfile's public key of card ${trustRoot.serial} (${trustRoot.keyMode} key): this is not the keyfile's card`);
  }
  return record;
}

export interface ValidateThroughServerOptions {
  readonly link: RentalServerLink;
  readonly trustRoot: TrustRoot;
  /** The keyfile's offset, or the counter of the last attested validator record ([0094], [0095]). */
  readonly offset: bigint;
  /** The record text validation writes at counter c ([0060] step [2]: Write(c)). */
  readonly text: (counter: bigint) => string;
  /** The trail's records in order, from at or before the offset; read after the record is written. */
  readonly records: () => AsyncIterable<readonly AuditRecord[]>;
  /** How often to try again when another program signed between GetCounter and Write (default 8). */
  readonly attempts?: number;
  readonly batchSize?: number;
}

/** [0060] through the server: GetCounter, Write(c) at exactly c, then the walk over the trail the program reads. */
export async function validateThroughServer(options: ValidateThroughServerOptions): Promise<TrailValidation> {
  const { link, trustRoot, offset } = options;
  assertTrustRoot(trustRoot);
  if (typeof offset !== 'bigint' || offset < 0n || offset >= 1n << 128n) throw new RentalError('input', 'expected an offset in 0..2^128-1');
  const attempts = options.attempts ?? 8;
  let ours: AuditRecord | undefined;
  for (let attempt = 1; ours === undefined; attempt++) {
    // [1] c ← GetCounter()
    let counter: bigint;
    try {
      counter = await link.counter();
    } catch (error) {
      if (error instanceof RentalError) throw error;
      throw new RentalError('card', `ValidateTrail step [1]: GetCounter failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (counter < offset) throw new RentalError('rollback', `trail refused: the card's counter ${counter} is below the trail's offset ${offset}: the card's counter was rolled back`);
    // [2] Write(c), signed at c or not at all; [5] then holds by construction and is checked in writeThroughServer.
    try {
      ours = await writeThroughServer(link, options.text(counter), trustRoot, { expectCounter: counter });
    } catch (error) {
      if (!isCounterMoved(error) || attempt >= attempts) throw error;
    }
  }
  // [3], [6]
  return checkTrail({ trustRoot, offset, records: options.records(), ours, ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }) });
}
