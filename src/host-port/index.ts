// Public surface of the HOST:PORT parser.
export * from './host-port.js';
