// Crash injection for the fault tests: the environment variable VSC_CRASH_AT names one step of one
// operation, and the process that reaches it dies at once by SIGKILL, exactly as under kill -9 or a
// power cut: no handler runs, nothing is flushed, no socket is closed politely. Unset (always, in
// production), a crash point costs one comparison.
import { writeSync } from 'node:fs';

const OPERATIONS = ['insert', 'remove', 'recover', 'sign'] as const;
/** Server: proof checked, before the transaction; written but not committed; committed, not answered. */
const SERVER_STEPS = ['proof', 'in-transaction', 'committed'] as const;
/** Client: challenge received, before the proof; proof sent, no answer yet; answer received, not acted on. */
const CLIENT_STEPS = ['challenge', 'proof-sent', 'answered'] as const;

/**
 * Dongle-backed card (claim 10): the card record opened, nothing written yet; a counter value recorded on the
 * dongle, its signature not yet made; a change written, the card not yet answered; at remove, the record
 * written but not the counter; and a slot copy torn half-way through its write (two-slot-store.ts).
 */
const DONGLE_STEPS = ['dongle.insert.opened', 'dongle.grant.counter-written', 'dongle.save.written', 'dongle.remove.record-written', 'dongle.card.torn', 'dongle.counter.torn'] as const;

/**
 * Rental server, one Write ([0062]; rental-server.ts): the intent journaled, the card not yet asked; the card signed,
 * its answer not yet journaled; the answer journaled, no trail written; the primary trail written, not the backup;
 * both written, the Write not yet acknowledged; and half a line torn into the primary trail.
 */
const RENTAL_STEPS = ['rental.write.intent-journaled', 'rental.write.signed', 'rental.write.answer-journaled', 'rental.write.appended', 'rental.write.backup-appended', 'rental.write.torn'] as const;

/**
 * VSC server, group commit (commit-groups.ts): a group of two or more operations written, each in its
 * savepoint, and not yet committed; none of them answered.
 */
const GROUP_STEPS = ['commit-group.committing'] as const;

export type CrashPoint =
  | `server.${(typeof OPERATIONS)[number]}.${(typeof SERVER_STEPS)[number]}`
  | `client.${(typeof OPERATIONS)[number]}.${(typeof CLIENT_STEPS)[number]}`
  | (typeof DONGLE_STEPS)[number]
  | (typeof RENTAL_STEPS)[number]
  | (typeof GROUP_STEPS)[number];

/** Every step a test can name. */
export const CRASH_POINTS: readonly CrashPoint[] = Object.freeze([
  ...OPERATIONS.flatMap((operation) => SERVER_STEPS.map((step) => `server.${operation}.${step}` as const)),
  ...OPERATIONS.flatMap((operation) => CLIENT_STEPS.map((step) => `client.${operation}.${step}` as const)),
  ...DONGLE_STEPS,
  ...RENTAL_STEPS,
  ...GROUP_STEPS,
]);

/** Whether VSC_CRASH_AT names `step`: for a crash point that must do something before dying (a torn write). */
export function crashArmed(step: CrashPoint): boolean {
  return armed === step;
}

const armed = process.env['VSC_CRASH_AT'];
if (armed !== undefined && armed !== '' && !(CRASH_POINTS as readonly string[]).includes(armed)) {
  // A misspelt step would make a crash test pass without crashing anything.
  writeSync(2, `VSC_CRASH_AT=${armed} names no crash point; known: ${CRASH_POINTS.join(', ')}\n`);
  process.exit(2);
}

/** Dies here by SIGKILL when VSC_CRASH_AT names `step` (for an operation that is `step`'s). */
export function crashPoint(step: CrashPoint | `${'server' | 'client' | 'dongle' | 'rental'}.${string}.${string}`): void {
  if (armed !== step) return;
  writeSync(2, `crash point ${step}: killing this process\n`);
  process.kill(process.pid, 'SIGKILL');
}
