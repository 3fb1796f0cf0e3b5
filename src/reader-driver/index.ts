// Public surface of the reader driver: the PC/SC-style API, reader slots and the vpcd bridge.
/** What a reader slot holds: the card's own contract (src/apdu). */
export type { CardSource } from '../apdu/index.js';
export * from './pcsc-constants.js';
export * from './pcsc-errors.js';
export * from './reader-slot.js';
export * from './reader-system.js';
export * from './pcsc-context.js';
export * from './card-handle.js';
export * from './vpcd-bridge.js';
export * from './pcscd-client.js';
