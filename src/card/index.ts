// Public surface of the card as a whole, beside the applets: the protected-information codec and the personalisation of a new card.
export * from './piv-personalisation.js';
export * from './protected-information-codec.js';
export * from './protected-information.js';
