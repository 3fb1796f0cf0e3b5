// The license container on the card: the license applet (AID F0 56 53 43 00 02), where its container lives between
// commands, and the typed host-side client. Beside the rest of src/license rather than in src/apdu and src/card-client,
// because the applet needs the container's codec, decisions and record texts: the dependency runs one way.
export * from './license-status-words.js';
export * from './license-store.js';
export * from './license-applet.js';
export * from './license-applet-client.js';
