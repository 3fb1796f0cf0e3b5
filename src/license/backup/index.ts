// Backup and restore of license containers (Wibu 000 "CM-Box Backup"): formats, checks, the restore policy and plan.
export * from './restore-degree.js';
export * from './restore-policy.js';
export * from './restore-plan.js';
export * from './backup-settings.js';
export * from './backup-tree.js';
export * from './backup-leaf.js';
export * from './backup-file.js';
export * from './backup-verify.js';
