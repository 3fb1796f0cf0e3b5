// Polling the MUK, the process id and the wall clock while a card is in use (patent [0031]-[0033]).
import { describe, expect, it, vi } from 'vitest';
import { parseProcStat, readProcessIdentity, startPolling, type PollingOptions, type ProcessIdentity } from '../../src/vsc-client/polling.js';

const MUK = Uint8Array.of(1, 2, 3, 4);
const INTERVAL = 1000;

/** A hand-driven timer queue and wall clock. */
function harness(overrides: Partial<PollingOptions> = {}) {
  let clock = 1_000_000;
  const timers = new Map<number, () => void>();
  let nextHandle = 1;
  let muk: Uint8Array = MUK;
  let identity: ProcessIdentity = { pid: 42, startTime: 1000n };
  const onTamper = vi.fn();
  const onClockJump = vi.fn();
  const readMuk = vi.fn(() => muk);
  const polling = startPolling({
    intervalMs: INTERVAL,
    readMuk,
    expectedMuk: MUK,
    readProcess: () => identity,
    now: () => clock,
    onTamper,
    onClockJump,
    setTimer: (fn) => {
      const handle = nextHandle++;
      timers.set(handle, fn);
      return handle;
    },
    clearTimer: (handle) => timers.delete(handle as number),
    ...overrides,
  });
  /** Moves the clock by `ms` and fires the pending timer, then lets the poll's awaits settle. */
  const tick = async (ms = INTERVAL): Promise<void> => {
    clock += ms;
    const pending = [...timers.entries()];
    timers.clear();
    for (const [, fn] of pending) fn();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return {
    polling,
    tick,
    timers,
    onTamper,
    onClockJump,
    readMuk,
    setMuk: (value: Uint8Array) => (muk = value),
    setProcess: (value: ProcessIdentity) => (identity = value),
  };
}

describe('startPolling', () => {
  it('polls quietly while nothing changes', async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) await h.tick(i % 2 === 0 ? INTERVAL : INTERVAL * 1.5);
    expect(h.readMuk).toHaveBeenCalledTimes(10);
    expect(h.onTamper).not.toHaveBeenCalled();
    expect(h.onClockJump).not.toHaveBeenCalled();
    expect(h.timers.size).toBe(1);
    h.polling.stop();
    expect(h.timers.size).toBe(0);
  });

  it('reports a changed MUK once and stops', async () => {
    const h = harness();
    await h.tick();
    h.setMuk(Uint8Array.of(1, 2, 3, 5));
    await h.tick();
    await h.tick();
    expect(h.onTamper).toHaveBeenCalledTimes(1);
    expect(h.onTamper).toHaveBeenCalledWith('muk-changed');
    expect(h.timers.size).toBe(0);
  });

  it('treats a MUK of another length as changed', async () => {
    const h = harness();
    h.setMuk(Uint8Array.of(1, 2, 3));
    await h.tick();
    expect(h.onTamper).toHaveBeenCalledWith('muk-changed');
  });

  it.each([
    ['another pid', { pid: 43, startTime: 1000n }],
    ['the same pid started at another time (a recycled pid, a restored snapshot)', { pid: 42, startTime: 1001n }],
  ])('reports %s once as pid-changed and stops', async (_, changed) => {
    const h = harness();
    await h.tick();
    h.setProcess(changed);
    await h.tick();
    await h.tick();
    expect(h.onTamper).toHaveBeenCalledTimes(1);
    expect(h.onTamper).toHaveBeenCalledWith('pid-changed');
    expect(h.timers.size).toBe(0);
  });

  it('goes on polling when the process cannot be read, reporting the failure', async () => {
    const onError = vi.fn();
    let fail = false;
    const h = harness({
      onError,
      readProcess: () => {
        if (fail) throw new Error('EMFILE');
        return { pid: 42, startTime: 1000n };
      },
    });
    fail = true;
    await h.tick();
    expect(onError).toHaveBeenCalledTimes(1);
    fail = false;
    await h.tick();
    expect(h.onTamper).not.toHaveBeenCalled();
    expect(h.timers.size).toBe(1);
    h.polling.stop();
  });

  it('reports a forward clock jump beyond 1.5 intervals once and stops', async () => {
    const h = harness();
    await h.tick();
    await h.tick(INTERVAL * 1.5 + 1);
    await h.tick();
    expect(h.onClockJump).toHaveBeenCalledTimes(1);
    expect(h.onClockJump).toHaveBeenCalledWith('forward', INTERVAL * 1.5 + 1);
    expect(h.onTamper).not.toHaveBeenCalled();
    expect(h.timers.size).toBe(0);
  });

  it('reports a backward clock jump once and stops', async () => {
    const h = harness();
    await h.tick(-5000);
    expect(h.onClockJump).toHaveBeenCalledTimes(1);
    expect(h.onClockJump).toHaveBeenCalledWith('backward', -5000);
    expect(h.timers.size).toBe(0);
  });

  it('awaits an async MUK reader', async () => {
    let muk = MUK;
    const h = harness({ readMuk: () => Promise.resolve(muk) });
    await h.tick();
    expect(h.onTamper).not.toHaveBeenCalled();
    muk = Uint8Array.of(9);
    await h.tick();
    expect(h.onTamper).toHaveBeenCalledWith('muk-changed');
  });

  it('goes on polling when the MUK cannot be read, reporting the failure', async () => {
    const onError = vi.fn();
    let fail = true;
    const h = harness({
      onError,
      readMuk: () => {
        if (fail) throw new Error('no machine id');
        return MUK;
      },
    });
    await h.tick();
    expect(onError).toHaveBeenCalledTimes(1);
    fail = false;
    await h.tick();
    expect(h.onTamper).not.toHaveBeenCalled();
    expect(h.timers.size).toBe(1);
    h.polling.stop();
  });

  it('stops: no poll runs after stop, and stop twice is harmless', async () => {
    const h = harness();
    h.polling.stop();
    h.polling.stop();
    h.setProcess({ pid: 1, startTime: 1n });
    await h.tick(10 * INTERVAL);
    expect(h.readMuk).not.toHaveBeenCalled();
    expect(h.onTamper).not.toHaveBeenCalled();
    expect(h.onClockJump).not.toHaveBeenCalled();
  });

  it('uses real timers and Date.now by default', async () => {
    vi.useFakeTimers();
    try {
      const onTamper = vi.fn();
      const onClockJump = vi.fn();
      const polling = startPolling({ intervalMs: 100, readMuk: () => MUK, expectedMuk: MUK, onTamper, onClockJump });
      await vi.advanceTimersByTimeAsync(1000);
      expect(onTamper).not.toHaveBeenCalled();
      expect(onClockJump).not.toHaveBeenCalled();
      vi.setSystemTime(Date.now() + 60_000);
      await vi.advanceTimersByTimeAsync(100);
      expect(onClockJump).toHaveBeenCalledTimes(1);
      expect(onClockJump.mock.calls[0]![0]).toBe('forward');
      polling.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a bad interval', () => {
    const base = { readMuk: () => MUK, expectedMuk: MUK, onTamper: () => undefined, onClockJump: () => undefined };
    for (const intervalMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => startPolling({ ...base, intervalMs })).toThrow(/positive polling interval/);
    }
  });
});

describe('readProcessIdentity', () => {
  // proc(5): "pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice num_threads itrealvalue starttime ..."; starttime is field 22.
  const stat = (comm: string, startTime = '1203367'): string =>
    `6766 (${comm}) R 6723 6723 2419 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 ${startTime} 3133440 414 18446744073709551615 0 0\n`;
  const readers = (link: string, text: string) => ({ readLink: vi.fn(() => link), readText: vi.fn(() => text) });

  it('reads the pid from the /proc/self link and the start time from field 22 of /proc/self/stat', () => {
    const injected = readers('6766', stat('node'));
    expect(readProcessIdentity(injected)).toEqual({ pid: 6766, startTime: 1203367n });
    expect(injected.readLink).toHaveBeenCalledWith('/proc/self');
    expect(injected.readText).toHaveBeenCalledWith('/proc/self/stat');
  });

  it.each(['vsc card', 'a) R 1 2 3 (b', ')))', '(', 'x 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99 99)'])(
    'counts fields after the last ")" whatever the command name holds: %j',
    (comm) => {
      expect(parseProcStat(stat(comm))).toEqual({ pid: 6766, startTime: 1203367n });
    },
  );

  it('reads this very process: the pid the OS gives, a start time that stays the same', () => {
    const first = readProcessIdentity();
    expect(first.pid).toBe(process.pid);
    expect(readProcessIdentity()).toEqual(first);
  });

  it.each([
    ['a link that is not a pid', readers('self', stat('node')), /expected a pid/],
    ['a stat line of another pid', readers('6767', stat('node')), /expected pid 6767, got 6766/],
    ['no "(comm)"', readers('6766', '6766 R 1 2 3'), /expected "pid \(comm\) \.\.\."/],
    ['a stat line cut short', readers('6766', '6766 (node) R 6723 6723'), /start time in field 22, got "none"/],
    ['a start time that is not a number', readers('6766', stat('node', '-1')), /start time in field 22, got "-1"/],
  ])('refuses %s', (_, injected, message) => {
    expect(() => readProcessIdentity(injected)).toThrow(message);
  });
});
