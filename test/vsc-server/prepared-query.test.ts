// Prepared queries (issue 18; src/vsc-server/prepared-query.ts, hot-statements.ts) on real SQLite and
// PostgreSQL: built and compiled once, each call's values bound into the same SQL, the same rows as the
// kysely query they stand for; on PostgreSQL they run as named statements on the caller's connection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { openDatabase, prepare, type VscDatabase } from '../../src/vsc-server/index.js';
import { freshPostgresDatabase } from '../support/index.js';

let dir: string;
let database: VscDatabase;

describe.each(['sqlite', 'postgres'] as const)('prepared queries on %s', (dialect) => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-prepared-test-'));
    database = await openDatabase(dialect === 'postgres' ? await freshPostgresDatabase(inject('postgresUrl')) : join(dir, 'vsc.db'));
    const { db } = database;
    for (const serial of ['P-1', 'P-2', 'P-3']) {
      await db.insertInto('card_machines').values({ serial, machine: Uint8Array.of(serial.charCodeAt(2)), since: 1000 + Number(serial.slice(2)) }).execute();
    }
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds each call\'s values into one compiled text and reads what the kysely query reads', async () => {
    const { db } = database;
    const bySerial = prepare((slot) => db.selectFrom('card_machines').select(['serial', 'since']).where('serial', '=', slot<string>(0)).where('since', '>', slot<number>(1)));
    for (const [serial, after] of [['P-1', 0], ['P-2', 1001], ['P-3', 5000], ['nobody', 0]] as const) {
      const expected = await db.selectFrom('card_machines').select(['serial', 'since']).where('serial', '=', serial).where('since', '>', after).execute();
      const rows = (await bySerial.run(db, serial, after)).rows;
      expect(rows.map((row) => [row.serial, Number(row.since)]), `${serial} after ${after}`).toEqual(expected.map((row) => [row.serial, Number(row.since)]));
    }
    expect(bySerial.bind(['P-1', 0]).sql).toBe(bySerial.bind(['P-2', 7]).sql);
    expect(() => bySerial.bind(['P-1'])).toThrow(/expected 2 values for a prepared query, got 1/);
  });

  it('reports the rows a statement changed, inside the caller\'s transaction', async () => {
    const { db } = database;
    const touch = prepare((slot) => db.updateTable('card_machines').set({ since: slot<number>(0) }).where('serial', '=', slot<string>(1)));
    await db.transaction().execute(async (tx) => {
      expect(await touch.changed(tx, 42, 'P-2')).toBe(1n);
      expect(await touch.changed(tx, 42, 'nobody')).toBe(0n);
    });
    const row = await db.selectFrom('card_machines').select('since').where('serial', '=', 'P-2').executeTakeFirstOrThrow();
    expect(Number(row.since)).toBe(42);
  });
});

describe('prepared queries on postgres, named', () => {
  it('runs as a named statement, prepared on the connection that ran it', async () => {
    const opened = await openDatabase(await freshPostgresDatabase(inject('postgresUrl')));
    const { db } = opened;
    const query = prepare((slot) => db.selectFrom('card_machines').select('serial').where('serial', '=', slot<string>(0)).where('since', '<', slot<number>(1)));
    const names = await db.connection().execute(async (connection) => {
      await query.run(connection, 'P-1', 99_999);
      const { rows } = await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`.execute(connection);
      return rows;
    });
    await opened.close();
    const named = names.find((row) => row.statement === query.sql);
    expect(named?.name).toMatch(/^vsc_prepared_\d+$/);
  });
});
