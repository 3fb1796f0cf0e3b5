// The issuing back end's database (Wibu 002 back-end license issuing): license-schema.sql at the repository root,
// opened through the VSC server's kysely connection code (SQLite file by default, PostgreSQL for postgres://...).
// Every operation of the service runs in one transaction (issuingTransaction): a refusal changes nothing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ColumnType, Kysely, Transaction } from 'kysely';
import { VscError } from '../../errors/index.js';

export const ISSUING_SCHEMA_VERSION = 1;
const SCHEMA_PATH = fileURLToPath(new URL('../../../license-schema.sql', import.meta.url));

/** A whole number column: PostgreSQL's BIGINT comes back as a string, SQLite's INTEGER as a number. */
type Whole = ColumnType<number | string, number, number>;
type NullableWhole = ColumnType<number | string | null, number | null, number | null>;
/** A generated id: read only. */
type Id = ColumnType<number | string, never, never>;

export interface LicensorsTable {
  id: Id;
  name: string;
  firm_code: Whole;
  public_key: Uint8Array;
  sealed_seed: Uint8Array;
  api_key_hash: Uint8Array;
  created_at: Whole;
}

export interface ProductsTable {
  licensor_id: Whole;
  product_code: Whole;
  text: string;
  template: string;
  created_at: Whole;
  updated_at: Whole;
}

export interface OrdersTable {
  licensor_id: Whole;
  order_id: string;
  items_digest: Uint8Array;
  created_at: Whole;
}

export type TicketState = 'open' | 'used' | 'revoked';

export interface TicketsTable {
  id: Id;
  code_hash: Uint8Array;
  sealed_code: Uint8Array;
  licensor_id: Whole;
  order_id: string;
  position: number;
  product_code: Whole;
  quantity: number;
  renewal_of: NullableWhole;
  state: TicketState;
  created_at: Whole;
  updated_at: Whole;
}

export type ActivationState = 'pending' | 'confirmed' | 'deactivating' | 'deactivated';

export interface ActivationsTable {
  id: Id;
  ticket_id: Whole;
  licensor_id: Whole;
  serial: string;
  card_public_key: Uint8Array;
  request_id: string;
  requested_counter: NullableWhole;
  update_counter: Whole;
  update_text: string;
  update_digest: Uint8Array;
  expiration: NullableWhole;
  state: ActivationState;
  receipt: string | null;
  deactivation_request_id: string | null;
  deactivation_counter: NullableWhole;
  deactivation_update: string | null;
  deactivation_digest: Uint8Array | null;
  deactivation_receipt: string | null;
  deactivation_requested_at: NullableWhole;
  created_at: Whole;
  updated_at: Whole;
}

export interface AuditTable {
  id: Id;
  at: Whole;
  licensor_id: NullableWhole;
  actor: string;
  client: string | null;
  action: string;
  subject: string;
  outcome: string;
  detail: string | null;
}

// ---- lost licenses (license-schema.sql, second part) ----

export interface RestorePoliciesTable {
  licensor_id: Whole;
  policy: string;
  updated_at: Whole;
}

export type LostUpdateKind = 'restore' | 'transfer-delete' | 'transfer' | 'reactivation' | 'checkpoint' | 'withdrawal';

export interface UpdatesTable {
  id: Id;
  licensor_id: Whole;
  kind: LostUpdateKind;
  ticket_id: NullableWhole;
  request_id: string | null;
  request_digest: Uint8Array | null;
  serial: string;
  card_public_key: Uint8Array;
  requested_counter: NullableWhole;
  update_counter: Whole;
  update_text: string;
  update_digest: Uint8Array;
  expiration: NullableWhole;
  state: 'issued' | 'confirmed';
  receipt: string | null;
  created_at: Whole;
  updated_at: Whole;
}

export interface RestoresTable {
  id: Id;
  licensor_id: Whole;
  kind: 'restore' | 'transfer';
  request_id: string;
  request_digest: Uint8Array;
  source_serial: string;
  source_card_key: Uint8Array;
  backup_time: Whole;
  target_serial: string;
  target_card_key: Uint8Array;
  target_counter: NullableWhole;
  item: string;
  state: 'restored' | 'deleting' | 'transferred';
  delete_update_id: NullableWhole;
  update_id: NullableWhole;
  restored: string | null;
  skipped: string | null;
  degree_hundredths: number | null;
  created_at: Whole;
  updated_at: Whole;
}

export interface LocksTable {
  licensor_id: Whole;
  serial: string;
  reason: 'restore' | 'reactivation';
  subject: string;
  created_at: Whole;
  reported_at: NullableWhole;
}

export interface CentralLocksTable {
  serial: string;
  lock_sequence: string;
  fetched_at: Whole;
}

export type AlertState = 'notice' | 'pending' | 'approved' | 'used';

export interface AlertsTable {
  id: Id;
  licensor_id: Whole;
  kind: 'restore-chain' | 'reactivation';
  subject: string;
  detail: string;
  chain: number | null;
  state: AlertState;
  created_at: Whole;
  updated_at: Whole;
}

export interface WithdrawalsTable {
  id: Id;
  licensor_id: Whole;
  serial: string;
  card_public_key: Uint8Array;
  product_code: Whole;
  mode: 'delete' | 'honey-pot';
  counter: Whole;
  ticket_id: Whole;
  update_id: NullableWhole;
  state: 'waiting' | 'issued' | 'done';
  created_at: Whole;
  updated_at: Whole;
}

export interface IssuingSchema {
  issuing_schema_version: { version: number };
  issuing_licensors: LicensorsTable;
  issuing_products: ProductsTable;
  issuing_orders: OrdersTable;
  issuing_tickets: TicketsTable;
  issuing_activations: ActivationsTable;
  issuing_audit: AuditTable;
  issuing_restore_policies: RestorePoliciesTable;
  issuing_updates: UpdatesTable;
  issuing_restores: RestoresTable;
  issuing_locks: LocksTable;
  issuing_central_locks: CentralLocksTable;
  issuing_alerts: AlertsTable;
  issuing_withdrawals: WithdrawalsTable;
}

export type IssuingTransaction = Transaction<IssuingSchema>;

export interface IssuingDatabase {
  readonly db: Kysely<IssuingSchema>;
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

export class IssuingDatabaseError extends VscError {
  override readonly name = 'IssuingDatabaseError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('license.issuing-database', message, options);
  }
}

/** A number read from a whole-number column (BIGINT arrives as a string from PostgreSQL). */
export function whole(value: number | string | bigint): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new IssuingDatabaseError(`expected a whole number in the database, got ${String(value).slice(0, 30)}`);
  return number;
}

/** Bytes read from a BLOB / BYTEA column, as a Uint8Array of their own (the drivers answer Buffers). */
export const bytesOf = (value: Uint8Array): Uint8Array => Uint8Array.from(value);

/**
 * Opens the issuing database at `url` and applies license-schema.sql. The drivers load only here, through the VSC
 * server's connection code (one way to open a database in the project).
 */
export async function openIssuingDatabase(url: string): Promise<IssuingDatabase> {
  const { openKysely, schemaStatements, withoutCredentials } = await import('../../vsc-server/index.js');
  const { db, dialect } = await openKysely<IssuingSchema>(url);
  try {
    const { sql } = await import('kysely');
    await db.transaction().execute(async (tx) => {
      for (const statement of schemaStatements(dialect, readFileSync(SCHEMA_PATH, 'utf8'))) await sql.raw(statement).execute(tx);
      const rows = await tx.selectFrom('issuing_schema_version').select('version').execute();
      if (rows.length === 0) await tx.insertInto('issuing_schema_version').values({ version: ISSUING_SCHEMA_VERSION }).execute();
      else if (rows.length !== 1 || rows[0]!.version !== ISSUING_SCHEMA_VERSION) {
        throw new IssuingDatabaseError(`expected issuing schema version ${ISSUING_SCHEMA_VERSION}, the database has ${rows.map((row) => row.version).join(', ')}`);
      }
    });
  } catch (error) {
    await db.destroy();
    if (error instanceof IssuingDatabaseError) throw error;
    const where = dialect === 'postgres' ? `the PostgreSQL database ${withoutCredentials(url)}` : url;
    throw new IssuingDatabaseError(`cannot open ${where} and apply license-schema.sql: ${(error as Error).message}`, { cause: error });
  }
  return { db, dialect, close: () => db.destroy() };
}

/** Whether `error` is a unique-constraint violation (two requests racing for one order id or request id). */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * Runs `work` in one transaction. A unique-constraint violation (a concurrent request inserted the same order or
 * request id first) runs it once more, where it finds that row and answers as for a repeated request.
 */
export async function issuingTransaction<T>(database: IssuingDatabase, work: (tx: IssuingTransaction) => Promise<T>): Promise<T> {
  try {
    return await database.db.transaction().execute(work);
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    return database.db.transaction().execute(work);
  }
}
