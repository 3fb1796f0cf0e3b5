// Public surface of the file helpers: durable replacement and process-owned locks.
export * from './atomic-write.js';
export * from './process-lock.js';
