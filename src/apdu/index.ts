// Public surface of the APDU layer: codecs, status words, BER-TLV, ATR, the card OS and applets.
export * from './command-apdu.js';
export * from './response-apdu.js';
export * from './status-words.js';
export * from './ber-tlv.js';
export * from './atr.js';
export * from './applet.js';
export * from './card-source.js';
export * from './card-os.js';
export * from './vsc/index.js';
export * from './piv/index.js';
