// Public surface of the VSC client: owner keys, sealing, MUK, encrypted memory and polling.
export * from './key-derivation.js';
export * from './sealing.js';
export * from './muk.js';
export * from './server-backing.js';
export * from './card-process.js';
export * from './client-config.js';
export * from './server-operations.js';
export * from './polling.js';
export * from './control-socket.js';
export * from './known-cards.js';
export * from './pending-upload.js';
export * from './pending-delivery.js';
