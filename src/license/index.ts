// Public surface of license containers (Wibu 000, 001, 002; DESIGN.md "License containers and lost licenses").
export * from './license-model.js';
export * from './license-error.js';
export * from './license-update.js';
export * from './card-binding.js';
export * from './license-card-link.js';
