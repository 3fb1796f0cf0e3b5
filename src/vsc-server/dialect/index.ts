// Public surface of the per-dialect card locking (a folder per dialect, as kysely keeps them).
import type { Dialect } from '../database.js';
import type { CardLock } from './card-lock.js';
import { POSTGRES_CARD_LOCK } from './postgres/index.js';
import { SQLITE_CARD_LOCK } from './sqlite/index.js';

export type { CardLock } from './card-lock.js';
export { POSTGRES_CARD_LOCK, PG_LOCK_NOT_AVAILABLE } from './postgres/index.js';
export { SQLITE_CARD_LOCK } from './sqlite/index.js';

/** The card locking of `dialect`. */
export function cardLockFor(dialect: Dialect): CardLock {
  return dialect === 'postgres' ? POSTGRES_CARD_LOCK : SQLITE_CARD_LOCK;
}
