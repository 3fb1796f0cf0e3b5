// The test helpers' public surface: fixtures for the card applets and the PC/SC API, the one way to spawn `vsc`,
// and the real components the end-to-end tests and benchmarks drive (pcscd, OpenSC, PKCS#11, PostgreSQL, servers).
// hold-emulated-card.ts and hold-file-lock.ts are programs a test spawns, not modules: they are not exported.
export * from './card-fixture.js';
export * from './piv-fixture.js';
export * from './echo-card.js';
export * from './vsc-spawn.js';
export * from './compiled-cli.js';
export * from './emulator-process.js';
export * from './opensc.js';
export * from './pkcs11.js';
export * from './pcscd-service.js';
export * from './postgres-cluster.js';
export * from './proof-barrier.js';
export * from './vsc-server-harness.js';
export * from './vsc-deployments.js';
export * from './in-process-server.js';
export * from './spawned-vsc-server.js';
export * from './shared-address-limits.js';
export * from './dongle-fixture.js';
export * from './softhsm-token.js';
export * from './swtpm-service.js';
export * from './dongle-process.js';
export * from './vsc-rental-card.js';
export * from './thrown.js';
export * from './rental-server-fixture.js';
export * from './server-held-server.js';
export * from './server-held-memory.js';
export * from './license-fixture.js';
export * from './free-port.js';
