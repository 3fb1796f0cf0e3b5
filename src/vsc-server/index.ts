// Public surface of the VSC server: the session server and its options, the card store and its
// administration and keyfiles, server-held cards (sealed seeds, attestations), the server's data directory
// and database, logs, metrics and the observer hook.
export { startVscServer, describeFailure, CHALLENGE_LIFETIME_MS, type RunningVscServer } from './vsc-server.js';
export { resolveServerOptions, SERVER_DEFAULTS, IMPLEMENTATION_PROOFS, type ImplementationProofs, type VscServerOptions, type ResolvedServerOptions } from './server-options.js';
export { OPERATION_HANDLERS, handleOperation, handleSign, type HandlerContext, type OperationHandler } from './operation-handlers.js';
export { checkImplementation } from './implementation-check.js';
export { enrolledCardKey, issueCardKeyfile, type CardKeyfileRequest } from './card-keyfile.js';
export * from './card-store.js';
export { CommitGroups, type CommitGroupsOptions, type GroupWork, type Undo } from './commit-groups.js';
export { prepare, PreparedQuery, type SlotOf, type QueryRunner } from './prepared-query.js';
export * from './card-counts.js';
export * from './database.js';
export * from './server-data.js';
export * from './server-log.js';
export * from './server-metrics.js';
export * from './server-observer.js';
export * from './server-limits.js';
export * from './peer-guard.js';
export * from './event-retention.js';
export * from './log-budget.js';
export { heldSeedSealer, HeldSeedError, SEALED_SEED_LENGTH, type HeldSeedSealer } from './server-held-seed.js';
export { ATTESTATION_KEY_FILE, loadOrCreateAttestationKey } from './attestation-key.js';
export { attestCard, attestServerHeld, serverAttester, type ServerAttester } from './server-attestation.js';
