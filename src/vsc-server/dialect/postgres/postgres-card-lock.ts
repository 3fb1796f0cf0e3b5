// Card locking on PostgreSQL: SELECT ... FOR UPDATE NOWAIT, so a second server process is refused at
// once instead of queueing behind a lock; a server that dies mid-operation loses its connection and
// with it the lock, and its transaction rolls back.
import { driverErrorCode, type CardLock } from '../card-lock.js';

/** PostgreSQL's lock_not_available: the row is locked by another operation (FOR UPDATE NOWAIT). */
export const PG_LOCK_NOT_AVAILABLE = '55P03';

export const POSTGRES_CARD_LOCK: CardLock = Object.freeze({
  lockCardQuery: (db, serial) => db.selectFrom('cards').selectAll().where('serial', '=', serial).forUpdate().noWait(),
  lockCounterRangeQuery: (db, cardId) => db.selectFrom('counter_ranges').select('next_unallocated').where('card_id', '=', cardId).forUpdate().noWait(),
  isLockConflict: (error) => driverErrorCode(error) === PG_LOCK_NOT_AVAILABLE,
} satisfies CardLock);
