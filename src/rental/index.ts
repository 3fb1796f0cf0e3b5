// Public surface of software rental (patent 003; DESIGN.md "Software rental").
export * from './vendor.js';
export * from './rental-keyfile.js';
