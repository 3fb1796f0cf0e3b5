// Public surface of software rental (patent 003; DESIGN.md "Software rental").
export * from './vendor.js';
export * from './rental-keyfile.js';
export * from './rental-error.js';
export * from './audit-record.js';
export * from './trail-file.js';
export * from './write.js';
export * from './validate-trail.js';
export * from './usage-text.js';
export * from './threshold-spec.js';
export * from './thresholds.js';
export * from './verify-pool.js';
export * from './program-trail.js';
