// The licensor's locking lists (Wibu 000 §2.10 "Broken or Lost CM-Boxes can be Locked"; 001 "Using Blacklists"): the
// local list of containers this licensor restored elsewhere or blacklisted at a reactivation, and the central list
// downloaded from the hub with the authority's lock sequence of each. "When the User specifies a CM-Box with the same
// Serial Number again for Remote Activation, the Licensor detects this CM-Box as broken or lost and rejects" it: a
// locked serial asking for an activation, a time certificate, a renewal, a reactivation or to be a restore target is
// answered 423 locked, with the central lock sequence when there is one ("sends the created Locking Sequence").
import { parseLockSequence, verifyLockSequence } from '../locking/index.js';
import { bytesEqual } from '../../bytes/index.js';
import { appendAudit, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, whole, type IssuingTransaction } from './issuing-database.js';
import { refuse } from './issuing-refusal.js';

/** Throws 423 'locked' (with the central lock sequence when the hub made one) when `serial` is on either list. */
export async function refuseLocked(tx: IssuingTransaction, licensorId: number | null, serial: string, asking: string): Promise<void> {
  const central = await tx.selectFrom('issuing_central_locks').select('lock_sequence').where('serial', '=', serial).executeTakeFirst();
  const local = licensorId === null ? undefined : await tx.selectFrom('issuing_locks').select('reason').where('licensor_id', '=', licensorId).where('serial', '=', serial).executeTakeFirst();
  if (central === undefined && local === undefined) return;
  const why = local === undefined ? 'on the central locking list' : `on the licensor's locking list (${local.reason === 'restore' ? 'restored elsewhere as lost, broken or stolen' : 'blacklisted at a reactivation elsewhere'})`;
  throw refuse.locked(`container ${serial} is ${why}: ${asking} refused${central === undefined ? '' : '; apply the lock sequence'}`, central?.lock_sequence);
}

/** Puts `serial` onto the licensor's local list (kept as it is when it is there already). */
export async function addLocalLock(backend: IssuingBackend, tx: IssuingTransaction, licensorId: number, serial: string, reason: 'restore' | 'reactivation', subject: string): Promise<void> {
  const there = await tx.selectFrom('issuing_locks').select('serial').where('licensor_id', '=', licensorId).where('serial', '=', serial).executeTakeFirst();
  if (there === undefined) await tx.insertInto('issuing_locks').values({ licensor_id: licensorId, serial, reason, subject, created_at: backend.now(), reported_at: null }).execute();
}

export interface LockView {
  readonly serial: string;
  readonly reason: 'restore' | 'reactivation';
  readonly subject: string;
  readonly createdAt: number;
  readonly reportedAt?: number;
  readonly lockSequence?: string;
}

/** GET /v1/locks: the licensor's local list, with the central sequence of each serial the hub locked. */
export async function listLocks(backend: IssuingBackend, licensor: LicensorRecord, caller: Caller): Promise<{ locks: LockView[] }> {
  return issuingTransaction(backend.database, async (tx) => {
    const rows = await tx.selectFrom('issuing_locks').leftJoin('issuing_central_locks', 'issuing_central_locks.serial', 'issuing_locks.serial')
      .select(['issuing_locks.serial', 'reason', 'subject', 'created_at', 'reported_at', 'lock_sequence']).where('licensor_id', '=', licensor.id).orderBy('created_at').orderBy('issuing_locks.serial').execute();
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'locks.read', subject: `licensor ${licensor.name}`, outcome: 'ok', detail: `${rows.length} locks` });
    return {
      locks: rows.map((row) => ({
        serial: row.serial, reason: row.reason, subject: row.subject, createdAt: whole(row.created_at),
        ...(row.reported_at === null ? {} : { reportedAt: whole(row.reported_at) }), ...(row.lock_sequence === null ? {} : { lockSequence: row.lock_sequence }),
      })),
    };
  });
}

/**
 * A central lock sequence as the hub hands it out, checked: a lock (not an unlock) of `serial`, signed by the
 * authority key this service was given (--hub-key). Throws LicenseError 'input' or 'signature' otherwise.
 */
export function checkCentralSequence(text: string, serial: string, authorityKey: Uint8Array): string {
  const signed = parseLockSequence(text);
  if (signed.body.kind !== 'lock') throw refuse.input(`the hub's sequence for ${serial} is not a lock`);
  if (signed.body.serial !== serial) throw refuse.input(`the hub's sequence for ${serial} names container ${signed.body.serial}`);
  if (!bytesEqual(signed.body.authorityKey, authorityKey) || !verifyLockSequence(signed)) throw refuse.signature(`the hub's sequence for ${serial} is not signed by the central authority's key`);
  return text;
}

/** Replaces the central list by the hub's (a serial the hub no longer lists was unlocked centrally). */
export async function replaceCentralLocks(backend: IssuingBackend, locks: ReadonlyArray<{ serial: string; lockSequence: string }>): Promise<void> {
  await issuingTransaction(backend.database, async (tx) => {
    const now = backend.now();
    await tx.deleteFrom('issuing_central_locks').execute();
    for (const lock of locks) await tx.insertInto('issuing_central_locks').values({ serial: lock.serial, lock_sequence: lock.lockSequence, fetched_at: now }).execute();
  });
}

/** Records the hub's answer to one lock report: its sequence on the central list, the report taken. */
export async function centralLockReported(backend: IssuingBackend, licensorId: number, serial: string, lockSequence: string): Promise<void> {
  await issuingTransaction(backend.database, async (tx) => {
    const now = backend.now();
    await tx.deleteFrom('issuing_central_locks').where('serial', '=', serial).execute();
    await tx.insertInto('issuing_central_locks').values({ serial, lock_sequence: lockSequence, fetched_at: now }).execute();
    await tx.updateTable('issuing_locks').set({ reported_at: now }).where('licensor_id', '=', licensorId).where('serial', '=', serial).execute();
  });
}

/** The local locks not reported to the hub yet. */
export async function unreportedLocks(backend: IssuingBackend): Promise<Array<{ licensorId: number; serial: string }>> {
  const rows = await backend.database.db.selectFrom('issuing_locks').select(['licensor_id', 'serial']).where('reported_at', 'is', null).orderBy('created_at').execute();
  return rows.map((row) => ({ licensorId: whole(row.licensor_id), serial: row.serial }));
}
