// The network license server and its clients (Wibu 002 Table 1: network, overflow, borrowable, high availability,
// hot and cold standby).
export * from './seat-table.js';
export * from './borrow-certificate.js';
export * from './license-server.js';
export * from './network-client.js';
