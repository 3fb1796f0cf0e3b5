// The Write routine of patent 003 [0059], steps [1]-[10], over an abstract card: sign a new record with the card's
// SignAndIncrement, check the signature against the trust root (the keyfile's card, never the card's own word), and
// append it through the caller's append function. Every failure is a RentalError naming its step.
import { randomBytes } from 'node:crypto';
import { signedDigest } from '../apdu/index.js';
import { ed25519Verify } from '../crypto/index.js';
import { assertTrustRoot, NONCE_LENGTH, recordHash, recordTextProblem, type AuditRecord, type TrustRoot } from './audit-record.js';
import { RentalError, type RentalReason } from './rental-error.js';

/**
 * The card as Write and ValidateTrail see it ([0053]): SignAndIncrement of a 32-byte hash, answering the counter it
 * signed with and the signature (with P1 matching the card's key mode), and GetCounter.
 */
export interface RentalCard {
  signAndIncrement(h1: Uint8Array): Promise<{ counter: bigint; signature: Uint8Array }>;
  getCounter(): Promise<bigint>;
}

/** [0059] step [9]: where the record goes (TrailFile.append, or a rental server's). Resolves once it is durable. */
export type AppendRecord = (record: AuditRecord) => void | Promise<void>;

export interface WriteOptions {
  readonly card: RentalCard;
  readonly trustRoot: TrustRoot;
  readonly append: AppendRecord;
  /** Step [1]'s nonce source: 16 random bytes unless given (the tests replay the patent's nonces). */
  readonly nonce?: () => Uint8Array;
}

function failure(step: number, reason: RentalReason, message: string, cause?: unknown): RentalError {
  return new RentalError(reason, `Write step [${step}]: ${message}`, { step, cause });
}

function causeText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one step that talks to the card or the trail; its failure becomes a RentalError naming the step. */
async function attempt<T>(step: number, reason: RentalReason, what: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    // A RentalError from below (a torn trail refusing the append) keeps its reason.
    const kept = error instanceof RentalError ? error.reason : reason;
    throw failure(step, kept, `${what} failed: ${causeText(error)}`, error);
  }
}

/** [0059]: Boolean Write(String str); returns the record appended, or throws instead of returning failure. */
export async function writeRecord(text: string, options: WriteOptions): Promise<AuditRecord> {
  const { card, trustRoot, append } = options;
  assertTrustRoot(trustRoot);
  const problem = recordTextProblem(text);
  if (problem !== undefined) throw new RentalError('input', problem);

  // [1] n ← generate a new nonce
  const nonce = options.nonce === undefined ? Uint8Array.from(randomBytes(NONCE_LENGTH)) : options.nonce();
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) throw failure(1, 'input', `expected a ${NONCE_LENGTH}-byte nonce`);
  // [2] h1 ← hash(n, str)
  const h1 = recordHash(nonce, text);
  // [3] s ← SignAndIncrement(h1)
  const answer = await attempt(3, 'card', 'SignAndIncrement', () => card.signAndIncrement(h1));
  // [4] c ← GetCounter(), a local copy of the card's value
  const after = await attempt(4, 'card', 'GetCounter', () => card.getCounter());
  // [5] decrement c by 1 (the card is not touched). A counter that did not move means the signature was not new.
  if (after <= 0n) throw failure(5, 'counter', `the card's counter is ${after} after SignAndIncrement: it did not move on`);
  const counter = after - 1n;
  // The applet also names the counter it signed with: it must be the one GetCounter implies, or another signature
  // came in between (the rental server serialises Write, [0058]) or the card misreports.
  if (answer.counter !== counter) {
    throw failure(5, 'counter', `the card says it signed with counter ${answer.counter}, but GetCounter() - 1 is ${counter}`);
  }
  // [6] h2 ← hash(h1, c), with the serial in between on a universal-key card ([0101])
  const h2 = signedDigest(h1, counter, trustRoot.keyMode, trustRoot.serial);
  // [7] validate that s is the signature of h2 against the public key found in the keyfile
  if (!ed25519Verify(trustRoot.publicKey, h2, answer.signature)) {
    throw failure(7, 'wrong-card', `the card's signature does not verify against the keyfile's public key of card ${trustRoot.serial} (${trustRoot.keyMode} key): this is not the keyfile's card`);
  }
  // [8] create the audit record r ← <n, str, c, s>
  const record: AuditRecord = { nonce, text, counter, signature: answer.signature.slice() };
  // [9] append r to the audit trail
  await attempt(9, 'storage', 'appending the record to the trail', () => append(record));
  // [10] all steps succeeded
  return record;
}
