// Public surface of fault injection: named crash points that kill the process for the fault tests.
export * from './crash-point.js';
