// Public surface of the file helpers: durable replacement, locks, and private files and directories.
export * from './atomic-write.js';
export * from './file-lock.js';
export * from './private-directory.js';
export * from './private-file.js';
