// Public surface of the standalone software card behind `vsc card emulate`.
export * from './emulated-card.js';
export * from './emulated-card-state.js';
