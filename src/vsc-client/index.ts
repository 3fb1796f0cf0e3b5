// Public surface of the VSC client: owner keys, sealing, MUK, encrypted memory and polling.
// Owner keys are derived by vsc-protocol's owner-keys.ts (shared with the dongle backing); re-exported for callers.
export { DEFAULT_KDF, KDF_BOUNDS, KDF_SALT_LENGTH, checkKdfParams, newKdfParams, deriveOwnerKeys, KDF_OUTPUT_LENGTH, OWNER_KEY_LENGTH, type KdfParams, type OwnerKeys } from '../vsc-protocol/index.js';
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
export * from './dongle-card-process.js';
export { ChannelConnections, type ChannelConnectionsOptions } from '../channel/index.js';
