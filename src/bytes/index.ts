// Public surface of the bytes module.
export * from './bytes.js';
