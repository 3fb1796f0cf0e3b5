// Public surface of the PostgreSQL dialect's card locking.
export * from './postgres-card-lock.js';
