// Public surface of the host-side card client: typed clients of the VSC and PIV applets over any
// PC/SC-style handle, their command builders, and status words as typed errors.
export * from './card-transport.js';
export * from './card-status-errors.js';
export * from './vsc-applet-commands.js';
export * from './vsc-applet-client.js';
export * from './piv-applet-client.js';
