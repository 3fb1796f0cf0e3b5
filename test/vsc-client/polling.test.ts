// Polling the MUK, the process id and the wall clock while a card is in use (patent [0031]-[0033]).
import { describe, expect, it, vi } from 'vitest';
import { startPolling, type PollingOptions } from '../../src/vsc-client/polling.js';

const MUK = Uint8Array.of(1, 2, 3, 4);
const INTERVAL = 1000;

/** A hand-driven timer queue and wall clock. */
function harness(overrides: Partial<PollingOptions> = {}) {
  let clock = 1_000_000;
  const timers = new Map<number, () => void>();
  let nextHandle = 1;
  let muk: Uint8Array = MUK;
  let pid = 42;
  const onTamper = vi.fn();
  const onClockJump = vi.fn();
  const readMuk = vi.fn(() => muk);
  const polling = startPolling({
    intervalMs: INTERVAL,
    readMuk,
    expectedMuk: MUK,
    expectedPid: 42,
    readPid: () => pid,
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
    setPid: (value: number) => (pid = value),
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

  it('reports a changed process id once and stops', async () => {
    const h = harness();
    h.setPid(43);
    await h.tick();
    await h.tick();
    expect(h.onTamper).toHaveBeenCalledTimes(1);
    expect(h.onTamper).toHaveBeenCalledWith('pid-changed');
    expect(h.timers.size).toBe(0);
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
    h.setPid(1);
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
      const polling = startPolling({ intervalMs: 100, readMuk: () => MUK, expectedMuk: MUK, expectedPid: process.pid, onTamper, onClockJump });
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
    const base = { readMuk: () => MUK, expectedMuk: MUK, expectedPid: 1, onTamper: () => undefined, onClockJump: () => undefined };
    for (const intervalMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => startPolling({ ...base, intervalMs })).toThrow(/positive polling interval/);
    }
  });
});
