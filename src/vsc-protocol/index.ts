// Public surface of the code shared by VSC client and server: KDF parameters, the operation
// messages and their codec (a server-held card's SIGN AND INCREMENT among them), the sealed
// information's sizes, the one refusal, owner verifier and implementation authentication and its keyfile.
export * from './kdf-params.js';
export * from './owner-keys.js';
export * from './enrollment-wrap.js';
export * from './recovery-code.js';
export * from './protocol-error.js';
export * from './operation-refusal.js';
export * from './message-codec.js';
export * from './operation-messages.js';
export * from './sign-messages.js';
export * from './sealed-format.js';
export * from './owner-verifier.js';
export * from './implementation-auth.js';
export * from './keyfile.js';
