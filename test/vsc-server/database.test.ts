// The server database: schema.sql applied on SQLite (WAL, durable commits) and on a real PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { sql } from 'kysely';
import { DatabaseError, openDatabase, SCHEMA_VERSION, schemaStatements, type VscDatabase } from '../../src/vsc-server/index.js';
import { freshPostgresDatabase } from '../support/index.js';

const dirs: string[] = [];
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-db-test-'));
  dirs.push(dir);
  return join(dir, 'vsc.db');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A card row in a state the schema does not have. */
const LOST_CARD = {
  serial: 'S1', card_id: new Uint8Array(16), state: 'lost' as never, enrollment_token: null, enrolled: 0, kdf_salt: null, kdf_memory_kib: null,
  kdf_iterations: null, kdf_parallelism: null, auth_verifier: null, recovery_hash: null, sealed: null, sealed_version: 0,
  public_key: null, muk: null, holder_hash: null, window_start: null, window_end: null, last_holder_hash: null, created_at: 1, updated_at: 1,
};

describe('schema.sql', () => {
  it('is spelled per dialect: BLOB/INTEGER on SQLite, BYTEA/BIGINT/BIGSERIAL on PostgreSQL', () => {
    const sqlite = schemaStatements('sqlite').join('\n');
    const postgres = schemaStatements('postgres').join('\n');
    expect(sqlite).toContain('card_id           BLOB NOT NULL');
    expect(sqlite).toContain('id                INTEGER PRIMARY KEY AUTOINCREMENT');
    expect(postgres).toContain('card_id           BYTEA NOT NULL');
    expect(postgres).toContain('id                BIGSERIAL PRIMARY KEY');
    for (const text of [sqlite, postgres]) {
      expect(text).not.toMatch(/[{}]/);
      expect(text).not.toContain('--');
    }
  });

  it('refuses an unknown type placeholder', () => {
    expect(() => schemaStatements('sqlite', 'CREATE TABLE t (x {NOPE});')).toThrow(DatabaseError);
  });
});

describe('openDatabase on SQLite', () => {
  it('applies the schema once, in WAL mode with synchronous FULL, and reopens the same file', async () => {
    const path = tempDb();
    const first = await openDatabase(path);
    expect(first.dialect).toBe('sqlite');
    const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(first.db);
    expect(mode.rows[0]?.journal_mode).toBe('wal');
    const sync = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(first.db);
    expect(sync.rows[0]?.synchronous).toBe(2); // FULL
    await first.db.insertInto('events').values({ serial: 'S1', at: 1, operation: 'enroll', outcome: 'ok', from_state: null, to_state: 'idle', detail: null }).execute();
    await first.close();

    const second = await openDatabase(path);
    expect(await second.db.selectFrom('schema_version').select('version').execute()).toEqual([{ version: SCHEMA_VERSION }]);
    const events = await second.db.selectFrom('events').selectAll().execute();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: 1, serial: 'S1', operation: 'enroll' });
    await second.close();
  });

  it('refuses a state outside idle, in-use, destroyed', async () => {
    const database = await openDatabase(tempDb());
    await expect(database.db.insertInto('cards').values(LOST_CARD).execute()).rejects.toThrow(/CHECK constraint/);
    await database.close();
  });

  it('says which file it could not open', async () => {
    await expect(openDatabase('/nonexistent-dir/vsc.db')).rejects.toThrow(/cannot open the SQLite database \/nonexistent-dir\/vsc.db/);
  });
});

/**
 * Turns a fresh database back into schema version 1 (per-serial lease columns, no last holder; a
 * failure count and block flag per card, no recovery code, one event row per refusal), with one card.
 */
async function downgradeToVersion1(database: VscDatabase): Promise<void> {
  await sql.raw('ALTER TABLE cards DROP COLUMN last_holder_hash').execute(database.db);
  await sql.raw('ALTER TABLE cards DROP COLUMN recovery_hash').execute(database.db);
  await sql.raw('ALTER TABLE cards ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0').execute(database.db);
  await sql.raw('ALTER TABLE cards ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0').execute(database.db);
  await sql.raw('ALTER TABLE events DROP COLUMN count').execute(database.db);
  await sql.raw('ALTER TABLE cards ADD COLUMN busy_operation TEXT').execute(database.db);
  await sql.raw('ALTER TABLE cards ADD COLUMN busy_until BIGINT').execute(database.db);
  await database.db.updateTable('schema_version').set({ version: 1 }).execute();
  const v1Card: Record<string, unknown> = { ...LOST_CARD, state: 'idle', auth_failures: 3 };
  delete v1Card['last_holder_hash'];
  delete v1Card['recovery_hash'];
  await database.db.insertInto('cards').values(v1Card as never).execute();
}

describe.each(['sqlite', 'postgres'] as const)('schema version 1 on %s', (dialect) => {
  it('is brought to the current version on open, keeping its cards', async () => {
    const url = dialect === 'sqlite' ? tempDb() : await freshPostgresDatabase(inject('postgresUrl'));
    const old = await openDatabase(url);
    await downgradeToVersion1(old);
    await old.close();
    const migrated = await openDatabase(url);
    expect(await migrated.db.selectFrom('schema_version').select('version').execute()).toEqual([{ version: SCHEMA_VERSION }]);
    expect(await migrated.db.selectFrom('cards').select(['serial', 'state', 'last_holder_hash']).execute()).toEqual([{ serial: 'S1', state: 'idle', last_holder_hash: null }]);
    await expect(sql.raw('SELECT busy_operation FROM cards').execute(migrated.db)).rejects.toThrow(/busy_operation/);
    await expect(sql.raw('SELECT blocked FROM cards').execute(migrated.db)).rejects.toThrow(/blocked/);
    expect(await migrated.db.selectFrom('cards').select('recovery_hash').execute()).toEqual([{ recovery_hash: null }]);
    await migrated.db.insertInto('events').values({ serial: 'S1', at: 1, operation: 'insert', outcome: 'refused: busy', from_state: null, to_state: null, detail: null }).execute();
    expect(await migrated.db.selectFrom('events').select('count').execute()).toEqual([{ count: 1 }]);
    await migrated.close();
  });
});

describe('openDatabase on PostgreSQL', () => {
  it('applies the same schema.sql to a real PostgreSQL once, reopens it, and enforces the state check', async () => {
    const url = await freshPostgresDatabase(inject('postgresUrl'));
    const first = await openDatabase(url);
    expect(first.dialect).toBe('postgres');
    await first.db.insertInto('events').values({ serial: 'S1', at: 1, operation: 'enroll', outcome: 'ok', from_state: null, to_state: 'idle', detail: null }).execute();
    await expect(first.db.insertInto('cards').values(LOST_CARD).execute()).rejects.toThrow(/check constraint/);
    await first.close();

    const second = await openDatabase(url);
    expect(await second.db.selectFrom('schema_version').select('version').execute()).toEqual([{ version: SCHEMA_VERSION }]);
    const events = await second.db.selectFrom('events').selectAll().execute();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ serial: 'S1', operation: 'enroll' });
    await second.close();
  });

  it('says it could not reach the server, without the URL\'s password', async () => {
    await expect(openDatabase('postgres://vsc:hunter2@127.0.0.1:1/postgres')).rejects.toThrow(DatabaseError);
    await expect(openDatabase('postgres://vsc:hunter2@127.0.0.1:1/postgres')).rejects.not.toThrow(/hunter2/);
  });
});
