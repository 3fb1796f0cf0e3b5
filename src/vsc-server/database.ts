// The VSC server's database through kysely: SQLite (better-sqlite3, WAL, durable commits) by
// default, PostgreSQL for `--db postgres://...`, both from the one schema.sql.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type SQLite from 'better-sqlite3';
import type { Generated, Kysely, PostgresPool, PostgresPoolClient, SqliteDatabase, Transaction } from 'kysely';
import type { Pool as PgPool } from 'pg';
import { VscError } from '../errors/index.js';
import { preparedStatementName } from './prepared-query.js';

export const SCHEMA_VERSION = 4;
const SCHEMA_PATH = fileURLToPath(new URL('../../schema.sql', import.meta.url));

export type Dialect = 'sqlite' | 'postgres';

/** Whose key signs a card's SIGN AND INCREMENT: its owner's machine's, or this server's (patent 003 [0096]). */
export type CardKind = 'software' | 'server-held';

export interface CardsTable {
  serial: string;
  card_id: Uint8Array;
  state: 'idle' | 'in-use' | 'destroyed';
  enrollment_token: Uint8Array | null;
  enrolled: number;
  kdf_salt: Uint8Array | null;
  kdf_memory_kib: number | null;
  kdf_iterations: number | null;
  kdf_parallelism: number | null;
  auth_verifier: Uint8Array | null;
  recovery_hash: Uint8Array | null;
  sealed: Uint8Array | null;
  sealed_version: number | string | bigint;
  public_key: Uint8Array | null;
  /** Always in rows read from the database (its default is 'software'); optional only for inserts that predate it. */
  kind?: CardKind;
  /** A server-held card's sealed seed (server-held-seed.ts); optional like `kind`. */
  held_seed?: Uint8Array | null;
  muk: Uint8Array | null;
  holder_hash: Uint8Array | null;
  window_start: string | null;
  window_end: string | null;
  last_holder_hash: Uint8Array | null;
  created_at: number | string | bigint;
  updated_at: number | string | bigint;
}

export interface CounterRangesTable {
  card_id: Uint8Array;
  next_unallocated: string;
}

export interface EventsTable {
  id: Generated<number>;
  serial: string;
  at: number | string | bigint;
  operation: string;
  outcome: string;
  from_state: string | null;
  to_state: string | null;
  detail: string | null;
  count: Generated<number>;
}

export interface AuthFailuresTable {
  serial: string;
  bucket: Uint8Array;
  failures: number;
  last_failure_at: number | string | bigint;
}

export interface CardMachinesTable {
  serial: string;
  machine: Uint8Array;
  since: number | string | bigint;
}

export interface VscDatabaseSchema {
  schema_version: { version: number };
  cards: CardsTable;
  auth_failures: AuthFailuresTable;
  card_machines: CardMachinesTable;
  counter_ranges: CounterRangesTable;
  events: EventsTable;
}

export interface VscDatabase {
  readonly db: Kysely<VscDatabaseSchema>;
  readonly dialect: Dialect;
  close(): Promise<void>;
}

export class DatabaseError extends VscError {
  override readonly name = 'DatabaseError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('server.database', message, options);
  }
}

/**
 * What brings a database of schema version N to N+1, beyond what schema.sql creates anew. Version 2:
 * the per-serial lease columns give way to row locks, and removes remember their holder. Version 3:
 * password failures move to per-machine buckets (their tables come from schema.sql), the recovery
 * code's hash is kept, and refusal events are counted. Version 4: server-held cards (their kind, and
 * their seed sealed to the server); every card already there keeps its own key ('software').
 */
const MIGRATIONS: Record<number, string> = {
  1: 'ALTER TABLE cards ADD COLUMN last_holder_hash {BYTES}; ALTER TABLE cards DROP COLUMN busy_operation; ALTER TABLE cards DROP COLUMN busy_until;',
  2: 'ALTER TABLE cards ADD COLUMN recovery_hash {BYTES}; ALTER TABLE cards DROP COLUMN auth_failures; ALTER TABLE cards DROP COLUMN blocked; ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;',
};

/**
 * Columns a migration adds only where they are missing, so that it also brings a database whose table already
 * has them (made by a newer schema.sql, then marked older) to the current version instead of failing.
 */
const ADDED_COLUMNS: Record<number, readonly { table: keyof VscDatabaseSchema; column: string; definition: string }[]> = {
  3: [
    { table: 'cards', column: 'kind', definition: "TEXT NOT NULL DEFAULT 'software' CHECK (kind IN ('software', 'server-held'))" },
    { table: 'cards', column: 'held_seed', definition: '{BYTES}' },
  ],
};

const TYPES: Record<Dialect, Record<string, string>> = {
  sqlite: { BYTES: 'BLOB', BIGINT: 'INTEGER', SERIAL: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
  postgres: { BYTES: 'BYTEA', BIGINT: 'BIGINT', SERIAL: 'BIGSERIAL PRIMARY KEY' },
};

/** schema.sql (or a migration in its notation) with its type placeholders spelled for `dialect`, split into statements. */
export function schemaStatements(dialect: Dialect, text = readFileSync(SCHEMA_PATH, 'utf8')): string[] {
  const spelled = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .replace(/\{([A-Z]+)\}/g, (_, name: string) => {
      const type = TYPES[dialect][name];
      if (type === undefined) throw new DatabaseError(`schema.sql names an unknown type {${name}}`);
      return type;
    });
  return spelled
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

/**
 * Opens `url` (`postgres://...` or `postgresql://...`, else a SQLite file path) and applies the
 * schema. SQLite runs in WAL mode with synchronous=FULL, so a commit survives a power cut.
 */
export async function openDatabase(url: string): Promise<VscDatabase> {
  const { db, dialect } = await openKysely<VscDatabaseSchema>(url);
  try {
    await applySchema(db, dialect);
  } catch (error) {
    await db.destroy();
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError(`cannot open ${dialect === 'postgres' ? `the PostgreSQL database ${withoutCredentials(url)}` : url} and apply schema.sql: ${(error as Error).message}`, { cause: error });
  }
  return { db, dialect, close: () => db.destroy() };
}

/**
 * A kysely connection to `url` with no schema applied: PostgreSQL for `postgres://...` (a pool of 10), else SQLite
 * (WAL, synchronous=FULL, foreign keys, busy timeout, prepared statements kept). The VSC server's database and the
 * license issuing store (src/license/issuing) open theirs through it, each applying its own schema.
 */
export async function openKysely<S>(url: string): Promise<{ readonly db: Kysely<S>; readonly dialect: Dialect }> {
  const dialect: Dialect = /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
  // The drivers load when a database opens, not with this module: every `vsc` command loads the
  // server's surface, and only the server and admin commands open a database.
  const { Kysely, PostgresDialect, SqliteDialect } = await import('kysely');
  if (dialect === 'postgres') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle connection the database closed (restart, failover): the pool drops it and connects
    // anew when needed. Without a listener, Node would end the whole server on it.
    pool.on('error', () => undefined);
    return { db: new Kysely<S>({ dialect: new PostgresDialect({ pool: withNamedStatements(pool) }) }), dialect };
  }
  const { default: SQLite } = await import('better-sqlite3');
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(url);
  } catch (error) {
    throw new DatabaseError(`cannot open the SQLite database ${url}: ${(error as Error).message}`, { cause: error });
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  return { db: new Kysely<S>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) }), dialect };
}

/**
 * The pool as kysely sees it, with the prepared queries' texts (prepared-query.ts) run as named
 * statements: PostgreSQL parses and plans each once per connection instead of at every call. Other
 * texts run unnamed, as kysely runs them.
 */
function withNamedStatements(pool: PgPool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      const query = (text: string | object, values?: readonly unknown[]) => {
        // A cursor (kysely's streaming, unused here) passes through as it came.
        if (typeof text !== 'string') return client.query(text as unknown as string);
        const name = preparedStatementName(text);
        return name === undefined ? client.query(text, [...(values ?? [])]) : client.query({ name, text, values: [...(values ?? [])] });
      };
      return { query, release: () => client.release() } as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}

/** Prepared statements kept per SQL text, a bounded number of them. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * better-sqlite3 as kysely sees it, with its prepared statements kept: kysely prepares every query
 * anew, and the server runs the same few dozen texts (values are bound parameters).
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = sqlite.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/** A database URL fit for messages and logs: no user name or password. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

async function applySchema(db: Kysely<VscDatabaseSchema>, dialect: Dialect): Promise<void> {
  const { sql } = await import('kysely');
  await db.transaction().execute(async (tx) => {
    for (const statement of schemaStatements(dialect)) await sql.raw(statement).execute(tx);
    const rows = await tx.selectFrom('schema_version').select('version').execute();
    if (rows.length === 0) {
      await tx.insertInto('schema_version').values({ version: SCHEMA_VERSION }).execute();
      return;
    }
    if (rows.length === 1 && rows[0]!.version < SCHEMA_VERSION) {
      for (let version = rows[0]!.version; version < SCHEMA_VERSION; version++) {
        for (const statement of schemaStatements(dialect, MIGRATIONS[version] ?? '')) await sql.raw(statement).execute(tx);
        for (const { table, column, definition } of ADDED_COLUMNS[version] ?? []) {
          if (await hasColumn(tx, dialect, table, column)) continue;
          for (const statement of schemaStatements(dialect, `ALTER TABLE ${table} ADD COLUMN ${column} ${definition};`)) await sql.raw(statement).execute(tx);
        }
      }
      await tx.updateTable('schema_version').set({ version: SCHEMA_VERSION }).execute();
      return;
    }
    if (rows.length !== 1 || rows[0]!.version !== SCHEMA_VERSION) {
      throw new DatabaseError(`expected schema version ${SCHEMA_VERSION}, the database has ${rows.map((row) => row.version).join(', ')}`);
    }
  });
}

/** Whether `table` has `column` (names are this file's constants, never input). */
async function hasColumn(tx: Transaction<VscDatabaseSchema>, dialect: Dialect, table: string, column: string): Promise<boolean> {
  const { sql } = await import('kysely');
  if (dialect === 'sqlite') {
    const rows = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`.execute(tx);
    return rows.rows.some((row) => row.name === column);
  }
  const rows = await sql<{ column_name: string }>`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table} AND column_name = ${column}`.execute(tx);
  return rows.rows.length > 0;
}
