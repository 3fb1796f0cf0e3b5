// Public surface of the code shared by VSC client and server: owner verifier and implementation authentication.
export * from './owner-verifier.js';
export * from './implementation-auth.js';
