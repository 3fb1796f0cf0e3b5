// Events retention (src/vsc-server/event-retention.ts) on SQLite and PostgreSQL: old events are
// deleted in batches, recent ones and the cards stay; a running server prunes at start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  CardStore, DAY_MS, initServerData, loadServerKeys, openDatabase, pruneEventsBefore, startEventRetention, startVscServer,
  type VscDatabase,
} from '../../src/vsc-server/index.js';
import { freshPostgresDatabase } from '../support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-retention-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.UTC(2026, 10, 28);

async function open(dialect: 'sqlite' | 'postgres'): Promise<VscDatabase> {
  return openDatabase(dialect === 'sqlite' ? join(dir, `${Math.random().toString(36).slice(2)}.db`) : await freshPostgresDatabase(inject('postgresUrl')));
}

/** `count` events, one per day going back from NOW (day 0 is NOW itself). */
async function addEvents(database: VscDatabase, count: number, serial = 'RET-1'): Promise<void> {
  const rows = Array.from({ length: count }, (_, day) => ({ serial, at: NOW - day * DAY_MS, operation: 'insert', outcome: 'authentication', from_state: null, to_state: null, detail: null }));
  for (let i = 0; i < rows.length; i += 500) await database.db.insertInto('events').values(rows.slice(i, i + 500)).execute();
}

const ages = async (database: VscDatabase, serial?: string): Promise<number[]> =>
  (await database.db.selectFrom('events').select('at').$if(serial !== undefined, (query) => query.where('serial', '=', serial!)).orderBy('at', 'desc').execute()).map((row) => Math.round((NOW - Number(row.at)) / DAY_MS));

describe.each(['sqlite', 'postgres'] as const)('events retention on %s', (dialect) => {
  it('deletes the events older than the cut-off, in batches, and nothing else', async () => {
    const database = await open(dialect);
    try {
      await addEvents(database, 1200);
      await addEvents(database, 3, 'RET-2');
      // 1200 + 3 events; those of days 100..1199 go (1100), in batches of 250.
      expect(await pruneEventsBefore(database, NOW - 99.5 * DAY_MS, 250)).toBe(1100);
      const left = await ages(database);
      expect(left).toHaveLength(103);
      expect(Math.max(...left)).toBe(99);
      expect(await pruneEventsBefore(database, NOW - 99.5 * DAY_MS)).toBe(0);
      // Exactly at the cut-off stays: "older than".
      expect(await pruneEventsBefore(database, NOW - 99 * DAY_MS)).toBe(0);
    } finally {
      await database.close();
    }
  });

  it('prunes at start and on its interval; 0 days keeps everything', async () => {
    const database = await open(dialect);
    try {
      await addEvents(database, 30);
      const pruned: number[] = [];
      let now = NOW;
      const retention = startEventRetention(database, { retentionDays: 10, now: () => now, intervalMs: 50, onPruned: (count) => pruned.push(count) });
      await retention.started;
      expect(pruned).toEqual([19]); // days 11..29; day 10 is exactly at the cut-off
      now = NOW + 5 * DAY_MS;
      await expect.poll(() => pruned.includes(5), { timeout: 2000 }).toBe(true);
      await retention.stop();
      expect(await ages(database)).toEqual([0, 1, 2, 3, 4, 5]);
      const keepAll = startEventRetention(database, { retentionDays: 0 });
      await keepAll.started;
      await keepAll.stop();
      expect(await ages(database)).toHaveLength(6);
    } finally {
      await database.close();
    }
  });

  it('reports a failed prune and keeps going', async () => {
    const database = await open(dialect);
    const errors: unknown[] = [];
    const retention = startEventRetention(database, { retentionDays: 1, intervalMs: 20, onError: (error) => errors.push(error) });
    await retention.started;
    await database.close(); // every later prune fails
    await expect.poll(() => errors.length, { timeout: 2000 }).toBeGreaterThanOrEqual(2);
    await retention.stop();
  });
});

describe('a running server', () => {
  it('prunes events past --events-retention-days at start, and leaves the cards alone', async () => {
    await initServerData(join(dir, 'server'));
    const database = await openDatabase(join(dir, 'server', 'vsc.db'));
    const store = new CardStore(database);
    await store.create('RET-CARD');
    await addEvents(database, 50);
    const server = await startVscServer({ keys: loadServerKeys(join(dir, 'server')), database, eventsRetentionDays: 30, now: () => NOW });
    try {
      // Days 0..30 stay (30 is exactly at the cut-off), and the card's own 'create' event of today.
      await expect.poll(async () => (await ages(database, 'RET-1')).length, { timeout: 2000 }).toBe(31);
      expect(await ages(database, 'RET-CARD')).toHaveLength(1);
      expect((await store.show('RET-CARD')).state).toBe('idle');
    } finally {
      await server.close();
      await database.close();
    }
  });
});
