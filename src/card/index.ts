// Public surface of the card as a whole, beside the applets: the protected-information codec, the
// personalisation of a new card, encrypted memory, what backs a running card, and the running card.
export * from './piv-personalisation.js';
export * from './protected-information-codec.js';
export * from './protected-information.js';
export * from './legacy-piv-json.js';
export * from './encrypted-memory.js';
export * from './card-backing.js';
export * from './granted-vsc-card.js';
export * from './server-held-vsc-card.js';
export * from './running-card.js';
