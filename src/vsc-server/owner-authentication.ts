// Owner authentication without a lock-out by strangers (DESIGN.md "Keys and secrets"). Anyone with
// the deployment's master key can send proofs, so a wrong password must not cost the owner: failures
// are counted per card in buckets, one for each machine that has held the card and one shared by all
// other machines. Each bucket imposes an exponential back-off (1 s, 2 s, 4 s, ... capped at 1 h)
// before its next try is even looked at, and blocks after MAX_BUCKET_FAILURES until the owner's
// recovery code or an administrator lifts it. A stranger's failures therefore slow only strangers,
// and the holder's own operations (extend, remove) prove the holder, not the password, so no bucket
// ever stands in their way. A serial that names no card, or a card not yet enrolled, has buckets too
// and answers exactly like an enrolled card with a wrong password: nothing is learned before the
// owner is proven.
import type { Kysely, Transaction } from 'kysely';
import { concatBytes, constantTimeEqual, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import type { CardsTable, VscDatabaseSchema } from './database.js';
import type { HotStatements } from './hot-statements.js';

/** A bucket blocks after this many failures (the patent's card would have blocked after 10). */
export const MAX_BUCKET_FAILURES = 100;
export const BACKOFF_FIRST_MS = 1000;
export const BACKOFF_MAX_MS = 60 * 60 * 1000;
/** The bucket shared by every machine that has never held the card. */
export const STRANGERS_BUCKET: Uint8Array = new Uint8Array(32);

const MACHINE_DOMAIN = utf8('vsc-machine/1\0');
/** Compared against when there is no verifier, so a missing card costs what a wrong password costs. */
const NO_VERIFIER = new Uint8Array(32);

/** How long a bucket with `failures` failures makes the next try wait. */
export function backoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(failures - 1, 32), BACKOFF_MAX_MS);
}

/** What the database keeps of a machine: a domain-separated hash of its MUK. */
export function machineMark(muk: Uint8Array): Uint8Array {
  return sha256(concatBytes(MACHINE_DOMAIN, muk));
}

/** The one answer to a wrong password, whether or not the serial names an enrolled card. */
export const wrongPassword = (serial: string): OperationRefused => new OperationRefused('authentication', `wrong password, or no card ${serial} enrolled on this server`);

/** What an operation that authenticates the owner presents: the verifier of its auth key, and its machine. */
export interface OwnerProof {
  readonly verifier: Uint8Array;
  /** The MUK the proof names; undefined counts in the strangers' bucket. */
  readonly muk: Uint8Array | undefined;
}

type Tx = Transaction<VscDatabaseSchema>;

export class OwnerAuthentication {
  constructor(
    private readonly now: () => number,
    private readonly hot: HotStatements,
  ) {}

  /** The bucket a proof from `muk` counts in: its own if that machine has held the card. */
  async bucketOf(tx: Tx, serial: string, muk: Uint8Array | undefined): Promise<Uint8Array> {
    if (muk === undefined) return STRANGERS_BUCKET;
    const machine = machineMark(muk);
    return (await this.hot.knownMachine(tx, serial, machine)) ? machine : STRANGERS_BUCKET;
  }

  /**
   * Inside the operation's transaction, with the card row locked (or absent). Throws `retry-later`
   * or `blocked` before the proof is looked at when its bucket says so (nothing to commit). Returns a
   * refusal to throw once the transaction commits when the password is wrong (its failure is counted),
   * and undefined when the owner is proven (its bucket is emptied).
   */
  async check(tx: Tx, serial: string, row: CardsTable | undefined, proof: OwnerProof): Promise<OperationRefused | undefined> {
    const bucket = await this.bucketOf(tx, serial, proof.muk);
    const counted = await this.hot.failures(tx, serial, bucket);
    const failures = counted?.failures ?? 0;
    const now = this.now();
    if (failures >= MAX_BUCKET_FAILURES) throw blockedRefusal(serial);
    if (counted !== undefined) {
      const waitMs = Number(counted.last_failure_at) + backoffMs(failures) - now;
      if (waitMs > 0) throw new OperationRefused('retry-later', `too many wrong passwords for card ${serial} from this machine; retry in ${Math.ceil(waitMs / 1000)} s`);
    }
    const enrolled = row !== undefined && row.enrolled === 1 && row.auth_verifier !== null;
    const stored = enrolled ? row.auth_verifier! : NO_VERIFIER;
    const matches = constantTimeEqual(proof.verifier, stored) && enrolled;
    if (matches) {
      if (counted !== undefined) await tx.deleteFrom('auth_failures').where('serial', '=', serial).where('bucket', '=', bucket).execute();
      return undefined;
    }
    // An upsert: tries on a serial with no card row have no row lock to queue them, and two at once
    // must both count, not fail on the key.
    await tx
      .insertInto('auth_failures')
      .values({ serial, bucket, failures: 1, last_failure_at: now })
      .onConflict((conflict) => conflict.columns(['serial', 'bucket']).doUpdateSet((eb) => ({ failures: eb('auth_failures.failures', '+', 1), last_failure_at: now })))
      .execute();
    return failures + 1 >= MAX_BUCKET_FAILURES ? blockedRefusal(serial) : wrongPassword(serial);
  }

  /** Records that `muk`'s machine holds (or enrolled) the card: its failures count apart from now on. */
  async rememberMachine(tx: Tx, serial: string, muk: Uint8Array): Promise<void> {
    await this.hot.rememberMachine(tx, serial, machineMark(muk), this.now());
  }

  /** Empties every bucket of the card (the owner's recovery code, an administrator's unblock). */
  async clear(tx: Tx, serial: string): Promise<void> {
    await tx.deleteFrom('auth_failures').where('serial', '=', serial).execute();
  }
}

/**
 * Forgets failure buckets whose last failure is older than `before` (a day: past the longest back-off)
 * and that block nothing that matters: below MAX_BUCKET_FAILURES, or kept for a serial that names no
 * card (enumeration leaves such rows). A blocked bucket of a real card stays until it is unblocked.
 * Returns how many were deleted.
 */
export async function pruneStaleFailureBuckets(db: Kysely<VscDatabaseSchema>, before: number): Promise<number> {
  const result = await db
    .deleteFrom('auth_failures')
    .where('last_failure_at', '<', before)
    .where((eb) => eb.or([eb('failures', '<', MAX_BUCKET_FAILURES), eb.not(eb.exists(eb.selectFrom('cards').select('serial').whereRef('cards.serial', '=', 'auth_failures.serial')))]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

function blockedRefusal(serial: string): OperationRefused {
  return new OperationRefused(
    'blocked',
    `card ${serial} is blocked after ${MAX_BUCKET_FAILURES} wrong passwords from this machine: unblock it with its recovery code ("vsc card unblock") or ask an administrator`,
  );
}
