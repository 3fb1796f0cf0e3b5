// The issuing back end's state (Wibu 002 back-end license issuing): its database, the data directory's sealer and a
// clock; and what every operation shares: licensor rows, their signing keys (opened for one signature, then gone),
// ticket lookup by hash, the per-licensor lock, and the audit record each action appends in its own transaction.
import { closeSync } from 'node:fs';
import type { Selectable } from 'kysely';
import { bytesEqual, concatBytes, uintToBytes, utf8, wipe } from '../../bytes/index.js';
import { createExclusiveFile } from '../../files/index.js';
import { ed25519KeyFromSeed, type Ed25519SigningKey } from '../../crypto/index.js';
import { encodeCardBinding, signCardBinding } from '../card-binding.js';
import type { UnixSeconds } from '../license-model.js';
import { encodeSignedBody, licenseBodyDigest, signLicenseBody, type LicenseBody } from '../license-update.js';
import { bytesOf, openIssuingDatabase, whole, type IssuingDatabase, type IssuingTransaction, type LicensorsTable, type TicketsTable } from './issuing-database.js';
import { defaultIssuingDatabaseUrl, ensureIssuingDirectory, IssuingDataError, loadIssuingSealer, type IssuingSealer } from './issuing-data.js';
import { refuse } from './issuing-refusal.js';
import { ticketHash } from './ticket-code.js';

export interface IssuingBackend {
  readonly database: IssuingDatabase;
  readonly sealer: IssuingSealer;
  /** Unix seconds; tests move it. */
  readonly now: () => UnixSeconds;
  close(): Promise<void>;
}

export interface IssuingBackendOptions {
  /** The data directory (created 0700 when missing): the sealing key, and the SQLite database by default. */
  readonly dataDir: string;
  /** `postgres://...` or a SQLite path (default DIR/issuing.db). */
  readonly databaseUrl?: string;
  readonly now?: () => UnixSeconds;
}

export async function openIssuingBackend(options: IssuingBackendOptions): Promise<IssuingBackend> {
  const dir = ensureIssuingDirectory(options.dataDir);
  const sealer = loadIssuingSealer(dir);
  const url = options.databaseUrl ?? defaultIssuingDatabaseUrl(dir);
  if (!/^postgres(ql)?:\/\//.test(url)) createPrivateDatabaseFile(url);
  const database = await openIssuingDatabase(url);
  return { database, sealer, now: options.now ?? (() => Math.floor(Date.now() / 1000)), close: () => database.close() };
}

/** Creates a missing SQLite file 0600 before SQLite opens it (its -wal and -shm files take the database file's mode). */
function createPrivateDatabaseFile(path: string): void {
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  try {
    closeSync(createExclusiveFile(path, 0o600));
  } catch (error) {
    // EEXIST: there already; ENOENT (no such directory): SQLite's open says so next.
    if (!['EEXIST', 'ENOENT'].includes((error as NodeJS.ErrnoException).code ?? '')) throw new IssuingDataError(`cannot create the SQLite database ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
}

/** Who did an action, for the audit: never a secret. */
export interface Caller {
  readonly actor: string;
  /** The client's address (HTTP), absent on the command line. */
  readonly client?: string;
}

export interface LicensorRecord {
  readonly id: number;
  readonly name: string;
  readonly firmCode: number;
  readonly publicKey: Uint8Array;
  readonly sealedSeed: Uint8Array;
  readonly apiKeyHash: Uint8Array;
}

export const licensorRecord = (row: Selectable<LicensorsTable>): LicensorRecord => ({
  id: whole(row.id), name: row.name, firmCode: whole(row.firm_code), publicKey: bytesOf(row.public_key), sealedSeed: bytesOf(row.sealed_seed), apiKeyHash: bytesOf(row.api_key_hash),
});

/** What a sealed seed is bound to: its firm code and public key. */
export const seedBinding = (firmCode: number, publicKey: Uint8Array): Uint8Array => concatBytes(uintToBytes(BigInt(firmCode), 4), publicKey);

export async function licensorById(tx: IssuingTransaction, id: number): Promise<LicensorRecord> {
  const row = await tx.selectFrom('issuing_licensors').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return licensorRecord(row);
}

/**
 * Serialises the writes of one licensor on PostgreSQL (row lock until commit), so two requests cannot both take a
 * ticket's last seat. SQLite runs one transaction at a time through its single connection already.
 */
export async function lockLicensor(backend: IssuingBackend, tx: IssuingTransaction, id: number): Promise<void> {
  if (backend.database.dialect !== 'postgres') return;
  await tx.selectFrom('issuing_licensors').select('id').where('id', '=', id).forUpdate().execute();
}

/** The ticket of `code`, or 404 'ticket'. */
export async function ticketByCode(tx: IssuingTransaction, code: string): Promise<Selectable<TicketsTable>> {
  const row = await tx.selectFrom('issuing_tickets').selectAll().where('code_hash', '=', ticketHash(code)).executeTakeFirst();
  if (row === undefined) throw refuse.unknownTicket();
  return row;
}

/**
 * Runs `use` with the licensor's seed, opened from its sealed form for that call only and wiped after: what opens
 * hidden data sealed to the licensor (license-hidden-data.ts, Wibu 000 §2.7) and signs for it.
 */
export function withLicensorSeed<T>(backend: IssuingBackend, licensor: LicensorRecord, use: (seed: Uint8Array, key: Ed25519SigningKey) => T): T {
  const seed = backend.sealer.open('licensor-seed', seedBinding(licensor.firmCode, licensor.publicKey), licensor.sealedSeed);
  try {
    const key = ed25519KeyFromSeed(seed);
    if (!bytesEqual(key.publicKey, licensor.publicKey)) throw new IssuingDataError(`the sealed seed of licensor ${licensor.name} is not the key of its row`);
    return use(seed, key);
  } finally {
    wipe(seed);
  }
}

/** Runs `use` with the licensor's signing key, opened from its sealed seed for that call only. */
export function withLicensorKey<T>(backend: IssuingBackend, licensor: LicensorRecord, use: (key: Ed25519SigningKey) => T): T {
  return withLicensorSeed(backend, licensor, (_seed, key) => use(key));
}

/** Signs `body` (its licensorKey is the licensor's) with the licensor's key: the file text and its digest. */

export function signForLicensor(backend: IssuingBackend, licensor: LicensorRecord, body: LicenseBody): { readonly text: string; readonly digest: Uint8Array } {
  return withLicensorKey(backend, licensor, (key) => {
    const signed = signLicenseBody(body, key);
    return { text: encodeSignedBody(signed), digest: licenseBodyDigest(signed) };
  });
}

/** The licensor's card binding (card-binding.ts) for the card an activation names: what the customer's programs trust. */
export function bindCardForLicensor(backend: IssuingBackend, licensor: LicensorRecord, serial: string, cardPublicKey: Uint8Array): string {
  return withLicensorKey(backend, licensor, (key) => encodeCardBinding(signCardBinding(key, { serial, cardPublicKey, keyMode: 'individual' })));
}

export interface AuditEntry {
  readonly licensorId: number | null;
  readonly action: string;
  readonly subject: string;
  readonly outcome: string;
  readonly detail?: string;
}

/** Appends one audit record in the action's transaction (so a refused action leaves none). */
export async function appendAudit(backend: IssuingBackend, tx: IssuingTransaction, caller: Caller, entry: AuditEntry): Promise<void> {
  await tx.insertInto('issuing_audit').values({
    at: backend.now(), licensor_id: entry.licensorId, actor: caller.actor, client: caller.client ?? null, action: entry.action,
    subject: entry.subject, outcome: entry.outcome, detail: entry.detail ?? null,
  }).execute();
}

/** A name fit for texts on the card and in the audit (firm text, licensor name): 1..128 UTF-8 bytes, no controls. */
export function checkName(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || utf8(value).length > 128 || [...value].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) {
    throw refuse.input(`expected ${what} of 1..128 UTF-8 bytes without control characters`);
  }
  return value;
}
