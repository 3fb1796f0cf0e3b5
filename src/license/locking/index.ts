// Locking of lost, broken or stolen containers (Wibu 000 §2.10): the central authority's signed lock and unlock sequences
// and how the card applies them.
export * from './lock-sequence.js';
export * from './lock-apply.js';
