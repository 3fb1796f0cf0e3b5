// Public surface of the restore hub (Wibu 000 P002 "Single Action License Restore Process", "CM-Box Backup" §2.4, §2.5,
// §2.10-2.12): the licensor registry, restore jobs, the central locking list, the pass-through to licensors, the page.
export * from './hub-backend.js';
export * from './hub-data.js';
export * from './hub-database.js';
export * from './hub-forward.js';
export * from './hub-job-store.js';
export * from './hub-target.js';
export * from './hub-registry.js';
export * from './hub-locks.js';
export * from './hub-restore-jobs.js';
export * from './hub-pass-through.js';
export * from './hub-schemas.js';
export * from './hub-routes.js';
export * from './hub-openapi.js';
export * from './hub-page.js';
export * from './hub-service.js';
