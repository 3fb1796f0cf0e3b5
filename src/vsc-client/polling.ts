// Periodic checks while a card is in use (patent [0031]-[0033]): the machine-unique key and the
// process id must not change, and the wall clock must not jump (a suspended or copied VM image).
import { constantTimeEqual } from '../bytes/index.js';

export type TamperReason = 'muk-changed' | 'pid-changed';
export type ClockJump = 'forward' | 'backward';

export interface PollingOptions {
  intervalMs: number;
  readMuk: () => Uint8Array | Promise<Uint8Array>;
  expectedMuk: Uint8Array;
  expectedPid: number;
  /** Defaults to process.pid. */
  readPid?: () => number;
  /** Wall clock in ms; defaults to Date.now (not a monotonic clock: jumps are what we look for). */
  now?: () => number;
  onTamper: (reason: TamperReason) => void;
  onClockJump: (reason: ClockJump, elapsedMs: number) => void;
  /**
   * Called when readMuk throws or rejects (polling goes on) or when a callback throws. Defaults to
   * ignoring the failure.
   */
  onError?: (error: unknown) => void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface Polling {
  stop(): void;
}

/** A poll later than this multiple of the interval counts as a forward clock jump. */
export const LATE_FACTOR = 1.5;

export function startPolling(options: PollingOptions): Polling {
  const { intervalMs, readMuk, expectedMuk, expectedPid, onTamper, onClockJump } = options;
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`expected a positive polling interval in ms, got ${String(intervalMs)}`);
  }
  if (!(expectedMuk instanceof Uint8Array)) throw new TypeError(`expected the MUK as bytes, got ${typeof expectedMuk}`);
  const readPid = options.readPid ?? (() => process.pid);
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => undefined);
  const setTimer = options.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));

  let stopped = false;
  let handle: unknown;
  let previous = now();

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (handle !== undefined) clearTimer(handle);
    handle = undefined;
  };

  const schedule = (): void => {
    // A throwing callback must not become an unhandled rejection; it goes to onError.
    if (!stopped) handle = setTimer(() => void poll().catch(onError), intervalMs);
  };

  const poll = async (): Promise<void> => {
    handle = undefined;
    if (stopped) return;
    const current = now();
    const elapsed = current - previous;
    previous = current;
    if (elapsed < 0 || elapsed > LATE_FACTOR * intervalMs) {
      stop();
      onClockJump(elapsed < 0 ? 'backward' : 'forward', elapsed);
      return;
    }
    if (readPid() !== expectedPid) {
      stop();
      onTamper('pid-changed');
      return;
    }
    let muk: Uint8Array;
    try {
      muk = await readMuk();
    } catch (error) {
      onError(error);
      // Reading the MUK took wall-clock time; do not count it as a jump at the next poll.
      previous = now();
      schedule();
      return;
    }
    if (stopped) return;
    if (!(muk instanceof Uint8Array) || !constantTimeEqual(muk, expectedMuk)) {
      stop();
      onTamper('muk-changed');
      return;
    }
    previous = now();
    schedule();
  };

  schedule();
  return { stop };
}
