// Public surface of the VSC client: owner keys, sealing, MUK, encrypted memory and polling.
export * from './key-derivation.js';
export * from './sealing.js';
export * from './muk.js';
export * from './encrypted-memory.js';
export * from './polling.js';
export * from './control-socket.js';
