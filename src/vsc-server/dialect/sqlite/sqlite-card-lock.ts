// Card locking on SQLite: its one server process serialises the transactions, so a plain read
// inside the transaction is the lock; a database locked by another process reports SQLITE_BUSY.
import { driverErrorCode, type CardLock } from '../card-lock.js';

export const SQLITE_CARD_LOCK: CardLock = Object.freeze({
  lockCardQuery: (db, serial) => db.selectFrom('cards').selectAll().where('serial', '=', serial),
  lockCounterRangeQuery: (db, cardId) => db.selectFrom('counter_ranges').select('next_unallocated').where('card_id', '=', cardId),
  isLockConflict: (error) => driverErrorCode(error) === 'SQLITE_BUSY',
} satisfies CardLock);
