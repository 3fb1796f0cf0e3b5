// Periodic checks while a card is in use (patent [0031]-[0033]): the machine-unique key and the
// process id must not change, and the wall clock must not jump (a suspended or copied VM image).
import { readFileSync, readlinkSync } from 'node:fs';
import { constantTimeEqual } from '../bytes/index.js';
import { VscError } from '../errors/index.js';

export type TamperReason = 'muk-changed' | 'pid-changed';
export type ClockJump = 'forward' | 'backward';

export interface PollingOptions {
  intervalMs: number;
  readMuk: () => Uint8Array | Promise<Uint8Array>;
  expectedMuk: Uint8Array;
  /**
   * What the OS says this process is, read at start and at every poll ([0032]); defaults to
   * readProcessIdentity(). Not process.pid: that is a number Node read once, it never changes.
   */
  readProcess?: () => ProcessIdentity;
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
  const { intervalMs, readMuk, expectedMuk, onTamper, onClockJump } = options;
  if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`expected a positive polling interval in ms, got ${String(intervalMs)}`);
  }
  if (!(expectedMuk instanceof Uint8Array)) throw new TypeError(`expected the MUK as bytes, got ${typeof expectedMuk}`);
  const readProcess = options.readProcess ?? (() => readProcessIdentity());
  const expectedProcess = readProcess();
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
    let identity: ProcessIdentity;
    try {
      identity = readProcess();
    } catch (error) {
      // Unreadable is not proof of a change (e.g. out of descriptors); the next poll reads again.
      onError(error);
      schedule();
      return;
    }
    if (identity.pid !== expectedProcess.pid || identity.startTime !== expectedProcess.startTime) {
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

/** A process as the kernel names it: its pid and its start time (clock ticks after boot), which together never repeat. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: bigint;
}

export interface ProcessReaders {
  readonly readLink: (path: string) => string;
  readonly readText: (path: string) => string;
}

const PROC_READERS: ProcessReaders = { readLink: (path) => readlinkSync(path), readText: (path) => readFileSync(path, 'utf8') };

/** The pid /proc/self names and its start time from /proc/self/stat (field 22, proc(5)). */
export function readProcessIdentity(readers: ProcessReaders = PROC_READERS): ProcessIdentity {
  const link = readers.readLink('/proc/self');
  if (!/^[1-9][0-9]{0,9}$/.test(link)) throw new VscError('process.identity', `/proc/self: expected a pid, got ${JSON.stringify(link.slice(0, 32))}`);
  const stat = parseProcStat(readers.readText('/proc/self/stat'));
  const pid = Number(link);
  if (stat.pid !== pid) throw new VscError('process.identity', `/proc/self/stat: expected pid ${pid}, got ${stat.pid}`);
  return stat;
}

/**
 * Parses a /proc/PID/stat line: "pid (comm) state ppid ... starttime ...". comm is the executable's
 * name and may hold spaces and parentheses, so the fields are counted after the last ")".
 */
export function parseProcStat(text: string): ProcessIdentity {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  const pidText = text.slice(0, open);
  if (open < 0 || close < open || !/^[1-9][0-9]{0,9}$/.test(pidText)) {
    throw new VscError('process.identity', `/proc stat: expected "pid (comm) ...", got ${JSON.stringify(text.slice(0, 32))}`);
  }
  // Field 3 (state) is the first after the ")": field 22 (starttime) is the 20th.
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const startTime = fields[22 - 3];
  if (startTime === undefined || !/^[0-9]{1,20}$/.test(startTime)) {
    throw new VscError('process.identity', `/proc stat: expected a start time in field 22, got ${JSON.stringify(startTime ?? 'none')}`);
  }
  return { pid: Number(pidText), startTime: BigInt(startTime) };
}
