// Watching the dongle (patent 004 [0106] in-use: the dongle answers; [0107] remove: it fails to; Fig. 14 step 1211
// "periodically repeats"), with real emulated dongles pulled out, swapped and answering wrong.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { emulatedDongles } from '../support/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLL_INTERVAL_MS, DongleAbsentError, DongleAuthenticationError, createChallengeTable, watchDongle,
  type ChallengeTable, type Dongle, type DongleIdentity, type DongleWatch,
} from '../../src/dongle-backend/index.js';
import { BoundaryError } from '../../src/errors/index.js';

const INTERVAL = 100;
/** Time for one challenge of the emulated dongle (a file read, a signature) and a loaded test machine. */
const MARGIN = 400;

const dongles = emulatedDongles('vsc-presence-');
const { root } = dongles;
const open = (dir: string) => dongles.open(dir);

let a: Dongle;
let b: Dongle;
let idA: DongleIdentity;
let tableA: ChallengeTable;
let copies = 0;

beforeAll(async () => {
  a = await open(join(root, 'a'));
  b = await open(join(root, 'b'));
  [idA] = await Promise.all([a.ensureKey(), b.ensureKey()]);
  tableA = await createChallengeTable(a, idA, 20);
});
afterAll(() => dongles.cleanup());

/** A stick of its own to pull out: a copy of dongle a's directory (the same dongle, [0002]), opened. */
async function copyOfA(): Promise<{ dir: string; dongle: Dongle }> {
  const dir = join(root, `copy-${++copies}`);
  cpSync(join(root, 'a'), dir, { recursive: true });
  const dongle = await open(dir);
  await dongle.identify();
  return { dir, dongle };
}

/** A dongle whose signatures go through `sign`, counted: how many challenges were asked, how many at once. */
function instrumented(sign: (message: Uint8Array) => Promise<Uint8Array>) {
  const stats = { asked: 0, inFlight: 0, maxInFlight: 0 };
  const unused = () => Promise.reject(new Error('not used by the test'));
  const dongle: Dongle = {
    uri: 'instrumented:', identify: unused, ensureKey: unused, read: unused, write: unused, close: async () => undefined,
    sign: async (message) => {
      stats.asked += 1;
      stats.inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        return await sign(message);
      } finally {
        stats.inFlight -= 1;
      }
    },
  };
  return { dongle, stats };
}

/** Starts a watch and records every onGone call with the time it came. */
function watch(dongle: Dongle, options: { table?: ChallengeTable; intervalMs?: number; identity?: DongleIdentity } = {}) {
  const gone: { reason: string; at: number }[] = [];
  const watcher: DongleWatch = watchDongle({
    dongle,
    identity: options.identity ?? idA,
    intervalMs: options.intervalMs ?? INTERVAL,
    ...(options.table === undefined ? {} : { challenge: options.table }),
    onGone: (reason) => gone.push({ reason, at: Date.now() }),
  });
  return { watcher, gone };
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(10);
}

it('the default interval is one second (DESIGN.md)', () => {
  expect(DEFAULT_POLL_INTERVAL_MS).toBe(1000);
});

describe.each([
  ['signed nonces', undefined],
  ['the vendor\'s table', () => tableA],
])('challenging with %s', (_, table) => {
  it('[0106]: keeps quiet while the dongle answers, one challenge an interval', async () => {
    const { dongle, stats } = instrumented((message) => a.sign(message));
    const { watcher, gone } = watch(dongle, { ...(table === undefined ? {} : { table: table() }) });
    await sleep(INTERVAL * 5 + 50);
    watcher.stop();
    expect(gone).toEqual([]);
    // About 5 (one every 100 ms, plus the time each takes); a loaded machine delays timers, never hurries them.
    expect(stats.asked).toBeGreaterThanOrEqual(2);
    expect(stats.asked).toBeLessThanOrEqual(5);
  });

  it('[0107] remove: the stick pulled out (rm -rf) calls onGone once, within an interval and a margin', async () => {
    const { dir, dongle } = await copyOfA();
    const { watcher, gone } = watch(dongle, { ...(table === undefined ? {} : { table: table() }) });
    await sleep(INTERVAL * 2 + 50);
    expect(gone).toEqual([]);
    const pulled = Date.now();
    rmSync(dir, { recursive: true, force: true });
    await until(() => gone.length > 0, INTERVAL + MARGIN + 500);
    expect(gone).toHaveLength(1);
    expect(gone[0]!.at - pulled).toBeLessThanOrEqual(INTERVAL + MARGIN);
    expect(gone[0]!.reason).toMatch(/^the dongle no longer answers: the emulated dongle .* is not attached/);
    await sleep(INTERVAL * 3);
    expect(gone).toHaveLength(1);
    watcher.stop();
  });

  it('[0107] remove: another dongle put in its place (the same path) is not the dongle that was attached', async () => {
    const { dir, dongle } = await copyOfA();
    const { gone } = watch(dongle, { ...(table === undefined ? {} : { table: table() }) });
    await sleep(INTERVAL + 50);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(root, 'b'), dir, { recursive: true });
    await until(() => gone.length > 0, INTERVAL + MARGIN + 500);
    expect(gone).toHaveLength(1);
    expect(gone[0]!.reason).toMatch(/^the dongle no longer answers: the emulated dongle at .* is no longer the one that was attached$/);
  });

  it('1209 → 1210: a dongle with another key (answering, but wrong) is a wrong answer to challenge 1', async () => {
    const { dongle, stats } = instrumented((message) => b.sign(message));
    const { gone } = watch(dongle, { ...(table === undefined ? {} : { table: table() }) });
    await until(() => gone.length > 0, INTERVAL + MARGIN);
    expect(gone.map((g) => g.reason)).toEqual(['the dongle gave a wrong answer to challenge 1']);
    await sleep(INTERVAL * 3);
    expect(stats.asked).toBe(1);
    expect(gone).toHaveLength(1);
  });
});

describe('watchDongle', () => {
  it('names the challenge that was answered wrong', async () => {
    let calls = 0;
    const { dongle } = instrumented(async (message) => (++calls <= 3 ? a.sign(message) : new Uint8Array(64)));
    const { gone } = watch(dongle);
    await until(() => gone.length > 0, INTERVAL * 4 + MARGIN);
    expect(gone.map((g) => g.reason)).toEqual(['the dongle gave a wrong answer to challenge 4']);
  });

  it('any failure is remove: an exception that is not DongleAbsentError, and a non-Error rejection', async () => {
    const thrown = watch(instrumented(() => Promise.reject(new Error('CKR_DEVICE_ERROR\nsecond line'))).dongle);
    const rejected = watch(instrumented(() => Promise.reject('a string' as unknown as Error)).dongle);
    await until(() => thrown.gone.length > 0 && rejected.gone.length > 0, INTERVAL + MARGIN);
    expect(thrown.gone.map((g) => g.reason)).toEqual(['the dongle no longer answers: CKR_DEVICE_ERROR']);
    expect(rejected.gone.map((g) => g.reason)).toEqual(['the dongle no longer answers: a string']);
  });

  it('never asks two challenges at once: the next timer starts after an answer', async () => {
    const { dongle, stats } = instrumented(async (message) => {
      await sleep(INTERVAL * 2);
      return a.sign(message);
    });
    const { watcher, gone } = watch(dongle, { intervalMs: 20 });
    await sleep(INTERVAL * 7);
    watcher.stop();
    expect(gone).toEqual([]);
    expect(stats.maxInFlight).toBe(1);
    expect(stats.asked).toBeGreaterThanOrEqual(2);
    expect(stats.asked).toBeLessThanOrEqual(4);
  });

  it('stop() stops: no challenge after it, no onGone, and stop twice is fine', async () => {
    const { dongle, stats } = instrumented((message) => a.sign(message));
    const { watcher, gone } = watch(dongle);
    await until(() => stats.asked >= 2, INTERVAL * 2 + MARGIN);
    watcher.stop();
    watcher.stop();
    const asked = stats.asked;
    await sleep(INTERVAL * 4);
    expect(stats.asked).toBe(asked);
    expect(gone).toEqual([]);
  });

  it('stop() while a challenge is on its way: its failure is ignored', async () => {
    let fail: (error: Error) => void = () => undefined;
    const { dongle, stats } = instrumented(() => new Promise((_, reject) => (fail = reject)));
    const { watcher, gone } = watch(dongle);
    await until(() => stats.asked === 1, INTERVAL + MARGIN);
    watcher.stop();
    fail(new DongleAbsentError('pulled out'));
    await sleep(INTERVAL * 2);
    expect(gone).toEqual([]);
    expect(stats.asked).toBe(1);
  });

  it('refuses a table made for another dongle before any challenge', async () => {
    const { dongle, stats } = instrumented((message) => a.sign(message));
    const tableB = { ...tableA, dongle: '0'.repeat(64) };
    expect(() => watchDongle({ dongle, identity: idA, challenge: tableB, onGone: () => undefined })).toThrow(DongleAuthenticationError);
    await sleep(INTERVAL * 2);
    expect(stats.asked).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN, 2 ** 31])('refuses an interval of %s ms', (intervalMs) => {
    expect(() => watchDongle({ dongle: a, identity: idA, intervalMs, onGone: () => undefined })).toThrow(BoundaryError);
  });

  it('does not keep the process alive (unref\'d timers) yet keeps challenging while it runs', async () => {
    // A watch alone must not hold a card process open after everything else ended: the timer handle is unref'd.
    const { dongle, stats } = instrumented((message) => a.sign(message));
    const before = process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const { watcher } = watch(dongle, { intervalMs: 60_000 });
    const after = process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    watcher.stop();
    expect(after).toBe(before);
    expect(stats.asked).toBe(0);
  });
});
