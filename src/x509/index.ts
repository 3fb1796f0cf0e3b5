// Public surface of the X.509 part: DER encoding and the self-signed certificates of a card's PIV keys.
export * from './der.js';
export * from './self-signed-certificate.js';
