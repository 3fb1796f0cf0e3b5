// The one error of the rental audit trail (patent 003 [0050], [0059]-[0061]): a machine-readable reason, the Write
// step or trail line it concerns, and a one-line message; the CLI exits 3 for a refusal, 2 for bad input.
import { ExitCode, VscError } from '../errors/index.js';

/**
 * Why a Write or a ValidateTrail failed. Trail content ([0050]: holes, modification, currency):
 * - `malformed`: a line is not a record in the trail format;
 * - `truncated`: the last line was cut (no newline at the end of the file);
 * - `lost`: the trail held no record before the one validation just wrote, though the card signed since the offset;
 * - `offset`: the oldest records, from the offset on, were deleted;
 * - `hole`: a counter value is missing between two records;
 * - `repeat`: a counter value appears twice;
 * - `order`: the records are out of order;
 * - `signature`: a record's signature does not verify (modified, or signed by another card);
 * - `stale`: the trail ends before the card's counter (an old trail restored, or its newest records deleted);
 * - `rollback`: the card signed a counter value the trail already holds, or one below the offset;
 * - `not-last`: the record validation just wrote is not the trail's last.
 * Write ([0059]): `card` (the card failed a command), `counter` (the card's counters disagree), `wrong-card` (the
 * card's signature does not verify against the trust root), `storage` (the append failed). `input`: bad arguments.
 * Rental server (rental-protocol.ts): `counter-moved` (a Write asked to sign at a counter the card has left: nothing
 * was signed, read the counter and try again), `busy` (the card stayed held by another application, or the server is
 * stopping: nothing was signed).
 */
export type RentalReason =
  | 'malformed' | 'truncated' | 'lost' | 'offset' | 'hole' | 'repeat' | 'order' | 'signature' | 'stale' | 'rollback'
  | 'not-last' | 'card' | 'counter' | 'wrong-card' | 'storage' | 'input' | 'counter-moved' | 'busy';

export const RENTAL_REASONS: readonly RentalReason[] = [
  'malformed', 'truncated', 'lost', 'offset', 'hole', 'repeat', 'order', 'signature', 'stale', 'rollback',
  'not-last', 'card', 'counter', 'wrong-card', 'storage', 'input', 'counter-moved', 'busy',
];

export interface RentalErrorOptions {
  /** The step of Write ([0059], 1..10) that failed. */
  readonly step?: number;
  /** The 1-based line of the trail the failure concerns. */
  readonly line?: number;
  readonly cause?: unknown;
}

/** A refused Write or ValidateTrail, or an invalid trail: code `rental.<reason>`. */
export class RentalError extends VscError {
  override readonly name = 'RentalError';
  readonly step: number | undefined;
  readonly line: number | undefined;

  constructor(readonly reason: RentalReason, message: string, options: RentalErrorOptions = {}) {
    super(`rental.${reason}`, message, { cause: options.cause, exitCode: reason === 'input' ? ExitCode.usage : ExitCode.refusedByState });
    this.step = options.step;
    this.line = options.line;
  }
}
