// Public surface of the error base classes.
export * from './vsc-error.js';
export * from './boundary-assert.js';
