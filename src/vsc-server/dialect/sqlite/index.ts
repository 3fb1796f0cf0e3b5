// Public surface of the SQLite dialect's card locking.
export * from './sqlite-card-lock.js';
