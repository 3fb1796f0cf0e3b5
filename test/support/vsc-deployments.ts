// The deployments the CLI scenario suite runs on (issue 6): one server on SQLite, one on PostgreSQL,
// and two server processes sharing one data directory (same keys) and one PostgreSQL database.
// Also reads the database behind a deployment, for the tests that look inside it.
import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { freshPostgresDatabase } from './postgres-cluster.js';
import { startServerHarness, type ServerHarness, type ServerHarnessOptions } from './vsc-server-harness.js';

export interface Deployment {
  readonly name: string;
  readonly database: 'sqlite' | 'postgres';
  /** `vsc server start` processes serving the same cards. */
  readonly servers: number;
}

export const SQLITE: Deployment = { name: 'sqlite', database: 'sqlite', servers: 1 };
export const POSTGRES: Deployment = { name: 'postgres', database: 'postgres', servers: 1 };
export const POSTGRES_TWO_SERVERS: Deployment = { name: 'postgres×2', database: 'postgres', servers: 2 };
export const DEPLOYMENTS: readonly Deployment[] = [SQLITE, POSTGRES, POSTGRES_TWO_SERVERS];

/** A harness on `deployment`: a fresh PostgreSQL database from the test cluster when it needs one. */
export async function startDeployment(deployment: Deployment, options: Omit<ServerHarnessOptions, 'db' | 'servers'>): Promise<ServerHarness> {
  // vitest is loaded only here, in a test: benchmarks import this module too, outside vitest.
  const db = deployment.database === 'postgres' ? await freshPostgresDatabase((await import('vitest')).inject('postgresUrl')) : undefined;
  return startServerHarness({ ...options, servers: deployment.servers, ...(db === undefined ? {} : { db }) });
}

export type Row = Record<string, unknown>;

const isPostgres = (database: string): boolean => /^postgres(ql)?:\/\//.test(database);

/** Every row of every table of the deployment's database, as its driver returns them (BLOB/BYTEA as Buffer). */
export async function readTables(harness: ServerHarness): Promise<Map<string, Row[]>> {
  const tables = new Map<string, Row[]>();
  if (isPostgres(harness.database)) {
    const client = new pg.Client({ connectionString: harness.database });
    await client.connect();
    try {
      const names = await client.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name");
      for (const { table_name: name } of names.rows) tables.set(name, (await client.query<Row>(`SELECT * FROM "${name}"`)).rows);
    } finally {
      await client.end();
    }
    return tables;
  }
  const database = new Database(harness.database, { readonly: true });
  try {
    const names = database.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    for (const { name } of names) tables.set(name, database.prepare(`SELECT * FROM "${name}"`).all() as Row[]);
  } finally {
    database.close();
  }
  return tables;
}

/**
 * Everything the database holds, as bytes to search for secrets: for SQLite the database file and
 * its write-ahead log (free pages included); for PostgreSQL every column of every row, BYTEA raw
 * and everything else as text.
 */
export async function databaseBytes(harness: ServerHarness): Promise<Buffer> {
  if (!isPostgres(harness.database)) {
    return Buffer.concat([harness.database, `${harness.database}-wal`].filter((path) => existsSync(path)).map((path) => readFileSync(path)));
  }
  const parts: Buffer[] = [];
  for (const rows of (await readTables(harness)).values()) {
    for (const row of rows) {
      for (const value of Object.values(row)) parts.push(Buffer.isBuffer(value) ? value : Buffer.from(String(value)), Buffer.from('\n'));
    }
  }
  return Buffer.concat(parts);
}

/** Whether `dump` holds `secret` raw, as hex or as base64 (the forms a careless column would use). */
export function holdsSecret(dump: Buffer, secret: Uint8Array | string): boolean {
  const bytes = Buffer.from(secret);
  return [bytes, Buffer.from(bytes.toString('hex')), Buffer.from(bytes.toString('base64'))].some((form) => dump.includes(form));
}
