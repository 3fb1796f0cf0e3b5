// Public surface of the protected channel: Noise NK primitives and the WebSocket session.
export * from './channel-error.js';
export * from './noise-nk.js';
export * from './session.js';
export * from './channel-connections.js';
export * from './channel-socket.js';
