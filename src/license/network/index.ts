// The network license server and its clients (Wibu 002 Table 1: network / floating, overflow, borrowable, high
// availability "2 out of 3", hot and cold standby).
export * from './borrow-record-text.js';
export * from './seat-record-text.js';
export * from './borrow-certificate.js';
export * from './seat-table.js';
export * from './standby-meter.js';
export * from './seat-state-file.js';
export * from './seat-status.js';
export * from './seat-service.js';
export * from './license-server.js';
export * from './network-http.js';
export * from './server-lease.js';
export * from './held-seat.js';
export * from './network-client.js';
