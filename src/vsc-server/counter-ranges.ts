// Counter ranges (DESIGN.md "Counters that never roll back"): each card id owns one range of its
// 128-bit SignAndIncrement counter, shared by its copies; inserts and extensions draw windows from it,
// and a remove gives back what its window did not use when no copy drew after it.
import type { Transaction } from 'kysely';
import { OperationRefused } from '../vsc-protocol/index.js';
import type { VscDatabaseSchema } from './database.js';
import type { HotStatements } from './hot-statements.js';

/** Counter values granted to an insert or an extension. */
export const DEFAULT_COUNTER_WINDOW = 1n << 20n;

/**
 * The next window of the card id's counter range. Copies (other serials, same card id) draw from
 * the same row: it is locked like the card row, so a concurrent draw is refused, never doubled.
 */
export async function allocateWindow(tx: Transaction<VscDatabaseSchema>, hot: HotStatements, cardId: Uint8Array, size: bigint): Promise<readonly [bigint, bigint]> {
  const range = await hot.lockCounterRange(tx, cardId);
  const start = BigInt(range.next_unallocated);
  const end = start + size;
  if (!(await hot.moveRange(tx, cardId, range.next_unallocated, end.toString()))) throw new OperationRefused('busy', 'a copy of this card drew counter values at the same moment; try again');
  return [start, end] as const;
}

/** Gives back the values from `nextCounter` to the window's `end`, when the window is still the range's last draw. */
export async function returnUnusedValues(tx: Transaction<VscDatabaseSchema>, hot: HotStatements, cardId: Uint8Array, end: bigint, nextCounter: bigint): Promise<void> {
  await hot.moveRange(tx, cardId, end.toString(), nextCounter.toString());
}

/** A new card id's range, starting at 0; a copy's card id already has one. */
export async function openCounterRange(tx: Transaction<VscDatabaseSchema>, cardId: Uint8Array): Promise<void> {
  await tx.insertInto('counter_ranges').values({ card_id: cardId, next_unallocated: '0' }).onConflict((conflict) => conflict.column('card_id').doNothing()).execute();
}
