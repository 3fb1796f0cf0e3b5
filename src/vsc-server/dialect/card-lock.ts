// How one database dialect locks a card's rows inside an operation's transaction ([0081]: while an
// operation on a serial runs, every other operation on it is refused, not queued).
import type { Transaction } from 'kysely';
import type { CardsTable, VscDatabaseSchema } from '../database.js';

export interface CardLock {
  /** The card row, locked for the rest of the transaction; undefined when there is no such serial. */
  lockCard(tx: Transaction<VscDatabaseSchema>, serial: string): Promise<CardsTable | undefined>;
  /** The card id's counter range (shared by copies), locked like the card row. */
  lockCounterRange(tx: Transaction<VscDatabaseSchema>, cardId: Uint8Array): Promise<{ next_unallocated: string }>;
  /** Whether `error` means another operation holds the lock: the serial is busy. */
  isLockConflict(error: unknown): boolean;
}

/** The driver's error code, when there is one. */
export function driverErrorCode(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined;
}
