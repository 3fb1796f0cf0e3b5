// How one database dialect locks a card's rows inside an operation's transaction ([0081]: while an
// operation on a serial runs, every other operation on it is refused, not queued).
import type { Compilable, Kysely } from 'kysely';
import type { CardsTable, VscDatabaseSchema } from '../database.js';

/**
 * The locking reads as queries, built once and prepared (hot-statements.ts): run inside a transaction,
 * each locks what it reads for the rest of it.
 */
export interface CardLock {
  /** The card row of `serial`, locked for the rest of the transaction. */
  lockCardQuery(db: Kysely<VscDatabaseSchema>, serial: string): Compilable<CardsTable>;
  /** The card id's counter range (shared by copies), locked like the card row. */
  lockCounterRangeQuery(db: Kysely<VscDatabaseSchema>, cardId: Uint8Array): Compilable<{ next_unallocated: string }>;
  /** Whether `error` means another operation holds the lock: the serial is busy. */
  isLockConflict(error: unknown): boolean;
}

/** The driver's error code, when there is one. */
export function driverErrorCode(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined;
}
