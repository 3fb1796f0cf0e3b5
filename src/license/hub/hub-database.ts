// The restore hub's database (Wibu 000 P002 §2.1 the licensor registry, "CM-Box Backup" §2.10 the central locking
// list): hub-schema.sql at the repository root, opened through the VSC server's kysely connection code as the issuing
// database is. Every change runs in one transaction with its audit row: a refusal changes nothing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ColumnType, Kysely, Transaction } from 'kysely';
import { VscError } from '../../errors/index.js';

export const HUB_SCHEMA_VERSION = 1;
const SCHEMA_PATH = fileURLToPath(new URL('../../../hub-schema.sql', import.meta.url));

/** A whole number column: PostgreSQL's BIGINT comes back as a string, SQLite's INTEGER as a number. */
type Whole = ColumnType<number | string, number, number>;
type Id = ColumnType<number | string, never, never>;

export interface HubLicensorsTable {
  licensor_key: Uint8Array;
  name: string;
  restore_url: string;
  signed_time: Whole;
  registered_at: Whole;
  updated_at: Whole;
}

export interface HubAuthorizedLicensorsTable {
  licensor_key: Uint8Array;
  name: string;
  authorized_at: Whole;
}

export interface HubLocksTable {
  serial: string;
  lock_sequence: string;
  lock_time: Whole;
  licensor_key: Uint8Array;
  created_at: Whole;
}

export interface HubUnlocksTable {
  serial: string;
  unlock_time: Whole;
}

export interface HubSeenReportsTable {
  digest: Uint8Array;
  seen_at: Whole;
}

export interface HubAuditTable {
  id: Id;
  at: Whole;
  actor: string;
  client: string | null;
  action: string;
  subject: string;
  outcome: string;
  detail: string | null;
}

export interface HubTables {
  hub_schema_version: { version: number };
  hub_licensors: HubLicensorsTable;
  hub_authorized_licensors: HubAuthorizedLicensorsTable;
  hub_locks: HubLocksTable;
  hub_unlocks: HubUnlocksTable;
  hub_seen_reports: HubSeenReportsTable;
  hub_audit: HubAuditTable;
}

export type HubTransaction = Transaction<HubTables>;

export interface HubDatabase {
  readonly db: Kysely<HubTables>;
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

export class HubDatabaseError extends VscError {
  override readonly name = 'HubDatabaseError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('license.hub-database', message, options);
  }
}

/** A number read from a whole-number column. */
export function hubWhole(value: number | string | bigint): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new HubDatabaseError(`expected a whole number in the database, got ${String(value).slice(0, 30)}`);
  return number;
}

/** Opens the hub database at `url` (a SQLite file, or postgres://...) and applies hub-schema.sql. */
export async function openHubDatabase(url: string): Promise<HubDatabase> {
  const { openKysely, schemaStatements, withoutCredentials } = await import('../../vsc-server/index.js');
  const { db, dialect } = await openKysely<HubTables>(url);
  try {
    const { sql } = await import('kysely');
    await db.transaction().execute(async (tx) => {
      for (const statement of schemaStatements(dialect, readFileSync(SCHEMA_PATH, 'utf8'))) await sql.raw(statement).execute(tx);
      const rows = await tx.selectFrom('hub_schema_version').select('version').execute();
      if (rows.length === 0) await tx.insertInto('hub_schema_version').values({ version: HUB_SCHEMA_VERSION }).execute();
      else if (rows.length !== 1 || rows[0]!.version !== HUB_SCHEMA_VERSION) {
        throw new HubDatabaseError(`expected hub schema version ${HUB_SCHEMA_VERSION}, the database has ${rows.map((row) => row.version).join(', ')}`);
      }
    });
  } catch (error) {
    await db.destroy();
    if (error instanceof HubDatabaseError) throw error;
    const where = dialect === 'postgres' ? `the PostgreSQL database ${withoutCredentials(url)}` : url;
    throw new HubDatabaseError(`cannot open ${where} and apply hub-schema.sql: ${(error as Error).message}`, { cause: error });
  }
  return { db, dialect, close: () => db.destroy() };
}

/** Who asked, for the audit: "licensor NAME", "administrator", "customer"; and from which address. */
export interface HubCaller {
  readonly actor: string;
  readonly client?: string;
}

export interface HubAuditEntry {
  readonly action: string;
  readonly subject: string;
  readonly outcome: string;
  readonly detail?: string;
}

export async function appendHubAudit(tx: HubTransaction, at: number, caller: HubCaller, entry: HubAuditEntry): Promise<void> {
  await tx.insertInto('hub_audit').values({
    at, actor: caller.actor, client: caller.client ?? null, action: entry.action, subject: entry.subject, outcome: entry.outcome, detail: entry.detail ?? null,
  }).execute();
}

/** Runs `work` in one transaction; a unique-constraint race (two reports of one serial at once) runs it once more. */
export async function hubTransaction<T>(database: HubDatabase, work: (tx: HubTransaction) => Promise<T>): Promise<T> {
  try {
    return await database.db.transaction().execute(work);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code !== '23505' && code !== 'SQLITE_CONSTRAINT_UNIQUE' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
    return database.db.transaction().execute(work);
  }
}
