// Public surface of the card as a whole, beside the applets: the personalisation of a new card.
export * from './piv-personalisation.js';
