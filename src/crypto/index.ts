// The project's crypto facade: the only place that picks an implementation for a primitive.
export * from './ed25519.js';
export * from './sha256.js';
export * from './block-cipher.js';
export * from './p256.js';
