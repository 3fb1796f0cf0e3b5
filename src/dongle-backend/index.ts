// Public surface of the dongle backing (patent 004 claim 10, Fig. 14/15; DESIGN.md "Dongle-backed card"):
// the Dongle interface and its kinds, the card record and its sealing, the card backing, presence
// challenges, and the issuing authority's escrow, replacement and revocation list.
export * from './dongle.js';
export * from './open-dongle.js';
export * from './pkcs11-uri.js';
export { SIGN_DEADLINE_MS } from './pkcs11-token.js';
export { cardKeyLabel } from './pkcs11-card-keys.js';
export * from './emulated-dongle.js';
export * from './two-slot-store.js';
export * from './card-record.js';
export * from './card-sealing.js';
export * from './dongle-card-init.js';
export * from './dongle-backing.js';
export * from './revocation-check.js';
export * from './revocation-list.js';
export * from './escrow.js';
export * from './issuing-authority.js';
export * from './challenge-response.js';
export * from './dongle-presence.js';
export * from './dongle-status.js';
export * from './token-key-check.js';
export * from './token-attestation.js';
export * from './universal-key-file.js';
