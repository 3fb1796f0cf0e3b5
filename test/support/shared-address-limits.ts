// Tests (and the benchmarks' load generators) simulate many machines on one host: every simulated machine reaches the server from the one
// loopback address, which the server's per-address limits (src/vsc-server/server-limits.ts) would
// rightly take for one client guessing and flooding. Servers of tests that are not about those
// limits raise them with these flags; test/e2e/vsc-server-rate-limit.test.ts and
// vsc-server-load.test.ts prove the limits with their defaults.
export const SHARED_ADDRESS_SERVER_ARGS: readonly string[] = Object.freeze([
  '--sessions-per-peer-per-second', '100000',
  '--proofs-per-peer-per-minute', '100000000',
  '--failed-proofs-per-peer-per-minute', '1000000',
  '--max-sessions-per-peer', '1024',
  '--max-connections-per-peer', '4096',
]);
