// How many cards are in each state of DESIGN.md "Card states" (idle / in-use / destroyed): one
// GROUP BY over the cards table, for the operator's metrics.
import type { CardState } from './card-store.js';
import type { VscDatabase } from './database.js';

export const CARD_STATES: readonly CardState[] = Object.freeze(['idle', 'in-use', 'destroyed']);

/** Every state, zero included. One statement, so the counts are one consistent snapshot. */
export async function countCardsByState(database: VscDatabase): Promise<Record<CardState, number>> {
  const rows = await database.db
    .selectFrom('cards')
    .select((eb) => ['state', eb.fn.countAll<number | string | bigint>().as('count')])
    .groupBy('state')
    .execute();
  const counts: Record<CardState, number> = { idle: 0, 'in-use': 0, destroyed: 0 };
  // PostgreSQL's count(*) is a bigint, which pg hands over as a decimal string.
  for (const row of rows) counts[row.state] = Number(row.count);
  return counts;
}
