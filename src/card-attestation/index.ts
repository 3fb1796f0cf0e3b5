// Card attestations: who vouches that a card's signing key is out of its owner's reach.
export * from './card-attestation.js';
