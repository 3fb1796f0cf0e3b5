// Watching the dongle while its card runs (patent 004 [0105]-[0107], Fig. 14 step 1211 "periodically repeats";
// DESIGN.md "Dongle-backed card"): [0106] in-use is the dongle answering fresh challenges; [0107] remove is
// its failing to: absent, a wrong answer, or any other failure, the first of which ends the watch.
import { assertInteger, BoundaryError } from '../errors/index.js';
import { answersSignatureChallenge, checkTableChallenge, dongleTableResponder, requireTableForDongle, type ChallengeTable } from './challenge-response.js';
import type { Dongle, DongleIdentity } from './dongle.js';

/** How often the dongle is challenged unless told otherwise (DESIGN.md: every second). */
export const DEFAULT_POLL_INTERVAL_MS = 1000;
/** setTimeout's longest delay. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

export interface WatchDongleOptions {
  readonly dongle: Dongle;
  /** Who the dongle was at insert: its public key checks the signature form's answers. */
  readonly identity: DongleIdentity;
  /** Milliseconds from one answer to the next challenge (default DEFAULT_POLL_INTERVAL_MS). */
  readonly intervalMs?: number;
  /** Challenge from the vendor's table (Fig. 14 1206-1209) instead of signed nonces; must be this dongle's. */
  readonly challenge?: ChallengeTable;
  /** [0107] remove: called once, with a readable reason, at the first failure; the watch has stopped by then. */
  readonly onGone: (reason: string) => void;
}

export interface DongleWatch {
  /** Stops challenging; an answer still on its way is ignored. Idempotent. */
  stop(): void;
}

/** The first line of what a failure says, for the reason given to onGone. */
function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? '';
}

/**
 * Challenges the dongle every `intervalMs` (the first one an interval after the call: insert has just seen the
 * dongle answer), one at a time: the next timer starts only after an answer. Timers are unref'd, so a watch
 * alone keeps no process alive. A table made for another dongle throws here, before any challenge.
 */
export function watchDongle(options: WatchDongleOptions): DongleWatch {
  const { dongle, identity, challenge: table, onGone } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  assertInteger('the dongle challenge interval in ms', intervalMs, 1, MAX_INTERVAL_MS);
  if (typeof onGone !== 'function') throw new BoundaryError('expected onGone to be a function');
  if (!(identity?.publicKey instanceof Uint8Array)) throw new BoundaryError('expected the identity of the dongle, with its public key');
  if (table !== undefined) requireTableForDongle(table, identity);
  const ask = table === undefined ? () => answersSignatureChallenge(dongle, identity) : () => checkTableChallenge(table, dongleTableResponder(dongle));

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asked = 0;

  const stop = (): void => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const gone = (reason: string): void => {
    stop();
    onGone(reason);
  };

  const challengeOnce = async (): Promise<void> => {
    timer = undefined;
    if (stopped) return;
    const number = ++asked;
    let answered: boolean;
    try {
      answered = await ask();
    } catch (error) {
      if (!stopped) gone(`the dongle no longer answers: ${firstLine(error)}`);
      return;
    }
    if (stopped) return;
    if (!answered) gone(`the dongle gave a wrong answer to challenge ${number}`);
    else schedule();
  };

  const schedule = (): void => {
    timer = setTimeout(() => void challengeOnce(), intervalMs);
    timer.unref();
  };

  schedule();
  return { stop };
}
