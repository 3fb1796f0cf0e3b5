// Public surface of the VSC applet.
export * from './vsc-applet.js';
export * from './vsc-card.js';
export * from './vsc-digest.js';
