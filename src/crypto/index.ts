// The project's crypto facade: the only place that picks an implementation for a primitive.
export * from './ed25519.js';
export * from './ed25519-montgomery.js';
export * from './sha256.js';
export * from './hmac.js';
export * from './chacha20-poly1305.js';
export * from './x25519.js';
export * from './block-cipher.js';
export * from './p256.js';
export * from './sealed-box.js';
