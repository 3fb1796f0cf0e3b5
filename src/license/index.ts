// Public surface of license containers (Wibu 000, 001, 002; DESIGN.md "License containers and lost licenses").
export * from './license-model.js';
export * from './license-error.js';
export * from './license-update.js';
export * from './card-binding.js';
export * from './license-card-link.js';
export * from './license-record-text.js';
export * from './license-container-limits.js';
export * from './license-container-codec.js';
export * from './license-apply.js';
export * from './use-request-codec.js';
export * from './license-hidden-data.js';
export * from './license-decision.js';
export * from './license-models.js';
export * from './issuing/index.js';
export * from './use-request-json.js';
export * from './license-agent.js';
export * from './license-backups.js';
export * from './license-agent-link.js';
export * from './license-sdk.js';
export * from './license-usage-report.js';
export * from './card/index.js';
export * from './network/index.js';
export * from './backup/index.js';
export * from './locking/index.js';
export {
  openHubBackend, startHubService, buildHubService, unlockSerial, authorizeLicensor, revokeLicensor, checkSerial, HUB_ROUTES, RESTORE_ANSWER_FORMAT,
  type HubBackend, type HubBackendOptions, type RunningHubService, type RestoreAnswerFile,
} from './hub/index.js';
