// Public surface of the PIV applet (NIST SP 800-73-4 subset).
export * from './piv-applet.js';
export { PivIns } from './piv-commands.js';
export * from './piv-state.js';
export * from './piv-data-objects.js';
