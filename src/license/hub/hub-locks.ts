// The central locking list (Wibu 000 "CM-Box Backup" §2.10 "Broken or Lost CM-Boxes can be Locked"; P002 §2.2 the
// "black list" of the Box Validation Service): "This Locking instance checks whether the Request for Locking came from
// an authorized Licensor. If so, it is checked if the CM-Box with this Serial Number is already locked. If the CM-Box is
// not locked, a Locking Sequence is created and set into a database which can be read by authorized Licensors and
// Certified Time Server Partners." Unlocking "is an operation which is handled exclusively by" the central authority.
import { randomBytes } from 'node:crypto';
import { sha256 } from '../../crypto/index.js';
import { toHex, utf8 } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import { HUB_REQUEST_MAX_SKEW_SECONDS, IssuingRefusal, verifyHubLockRequest, type HubLockRequest } from '../issuing/index.js';
import { encodeLockSequence, lockSequenceDigest, MAX_LOCK_SERIAL_BYTES, signLockSequence, type LockKind } from '../locking/index.js';
import { appendHubAudit, hubTransaction, hubWhole, type HubCaller, type HubTransaction } from './hub-database.js';
import type { HubBackend } from './hub-backend.js';
import { auditRefusal, findRegisteredLicensor } from './hub-registry.js';

export const LOCK_REASON = 'restored elsewhere';
export const UNLOCK_REASON = 'unlocked by the central authority';

export interface CentralLock {
  readonly serial: string;
  readonly lockSequence: string;
}

function sequence(hub: HubBackend, kind: LockKind, serial: string, time: number, reason: string): { text: string; digest: string } {
  const signed = signLockSequence({ kind, serial, authorityKey: hub.authority.publicKey, time, reason, nonce: Uint8Array.from(randomBytes(16)) }, hub.authority);
  return { text: encodeLockSequence(signed), digest: toHex(lockSequenceDigest(signed)) };
}

/** A later lock must be newer than the serial's last unlock: the card takes an unlock only after its lock's time. */
async function lockTime(tx: HubTransaction, serial: string, now: number): Promise<number> {
  const unlock = await tx.selectFrom('hub_unlocks').select('unlock_time').where('serial', '=', serial).executeTakeFirst();
  return unlock === undefined ? now : Math.max(now, hubWhole(unlock.unlock_time) + 1);
}

/**
 * POST /v1/locks: a registered licensor reports a serial it restored elsewhere (signed, fresh within ±5 minutes). A serial
 * locked already answers its lock sequence as it is (no double locking); otherwise the authority signs a new one.
 * Refusals: 'input', 'signature', 'replayed' (stale, or a report taken before), 403 'unauthenticated' (not authorized
 * by the hub's operator, or not registered).
 */
export async function reportLock(hub: HubBackend, body: unknown, caller: HubCaller): Promise<CentralLock & { created: boolean }> {
  let request: HubLockRequest;
  const bodyKey = typeof body === 'object' && body !== null ? String((body as Record<string, unknown>)['licensorKey']).slice(0, 64) : '?';
  try {
    request = verifyHubLockRequest(body, { now: hub.now() });
    if (utf8(request.serial).length > MAX_LOCK_SERIAL_BYTES) throw new LicenseError('input', `expected a serial of at most ${MAX_LOCK_SERIAL_BYTES} UTF-8 bytes`);
  } catch (error) {
    await auditRefusal(hub, { ...caller, actor: `licensor ${bodyKey}` }, 'lock.report', 'serial ?', error);
    throw error;
  }
  const licensor = await findRegisteredLicensor(hub, request.licensorKey);
  const who = { ...caller, actor: `licensor ${licensor?.name ?? toHex(request.licensorKey)}` };
  const subject = `serial ${request.serial}`;
  try {
    // 000 §2.10: "checks whether the Request for Locking came from an authorized Licensor" — authorized by the hub's
    // operator and registered; checked again in the transaction, so a revoke that lands meanwhile wins.
    const refused = new IssuingRefusal(403, 'unauthenticated', `licensor ${toHex(request.licensorKey).slice(0, 16)}… is not authorized and registered at this hub: its operator runs vsc license hub authorize, then its restoring service registers (POST /v1/licensors)`);
    if (licensor === undefined) throw refused;
    const report = sha256(request.signature);
    return await hubTransaction(hub.database, async (tx) => {
      const now = hub.now();
      if (await tx.selectFrom('hub_authorized_licensors').select('name').where('licensor_key', '=', request.licensorKey).executeTakeFirst() === undefined) throw refused;
      const existing = await tx.selectFrom('hub_locks').select(['lock_sequence']).where('serial', '=', request.serial).executeTakeFirst();
      if (existing !== undefined) {
        await appendHubAudit(tx, now, who, { action: 'lock.report', subject, outcome: 'locked already', detail: 'answered the existing lock sequence' });
        return { serial: request.serial, lockSequence: existing.lock_sequence, created: false };
      }
      await tx.deleteFrom('hub_seen_reports').where('seen_at', '<', now - 2 * HUB_REQUEST_MAX_SKEW_SECONDS).execute();
      const seen = await tx.selectFrom('hub_seen_reports').select('seen_at').where('digest', '=', report).executeTakeFirst();
      if (seen !== undefined) throw new LicenseError('replayed', 'this lock report was taken before (the serial was unlocked since): sign a new one');
      const time = await lockTime(tx, request.serial, now);
      const made = sequence(hub, 'lock', request.serial, time, LOCK_REASON);
      await tx.insertInto('hub_seen_reports').values({ digest: report, seen_at: now }).execute();
      await tx.insertInto('hub_locks').values({ serial: request.serial, lock_sequence: made.text, lock_time: time, licensor_key: request.licensorKey, created_at: now }).execute();
      await appendHubAudit(tx, now, who, { action: 'lock', subject, outcome: 'ok', detail: `lock sequence digest ${made.digest} at ${time}` });
      return { serial: request.serial, lockSequence: made.text, created: true };
    });
  } catch (error) {
    await auditRefusal(hub, who, 'lock.report', subject, error);
    throw error;
  }
}

/** GET /v1/locks: the central list, for licensors and time services to download. */
export async function listCentralLocks(hub: HubBackend): Promise<{ locks: CentralLock[] }> {
  const rows = await hub.database.db.selectFrom('hub_locks').select(['serial', 'lock_sequence']).orderBy('created_at').orderBy('serial').execute();
  return { locks: rows.map((row) => ({ serial: row.serial, lockSequence: row.lock_sequence })) };
}

/**
 * POST /v1/unlocks (administrator) and `vsc license hub unlock`: the authority's unlock sequence for a locked serial,
 * which leaves the list. 409 'input' when the serial is not locked.
 */
export async function unlockSerial(hub: HubBackend, serial: string, caller: HubCaller): Promise<{ serial: string; unlockSequence: string }> {
  const subject = `serial ${serial}`;
  try {
    return await hubTransaction(hub.database, async (tx) => {
      const now = hub.now();
      const lock = await tx.selectFrom('hub_locks').select(['lock_time']).where('serial', '=', serial).executeTakeFirst();
      if (lock === undefined) throw new IssuingRefusal(409, 'input', `serial ${serial} is not on the central locking list`);
      const time = Math.max(now, hubWhole(lock.lock_time) + 1);
      const made = sequence(hub, 'unlock', serial, time, UNLOCK_REASON);
      await tx.deleteFrom('hub_locks').where('serial', '=', serial).execute();
      await tx.deleteFrom('hub_unlocks').where('serial', '=', serial).execute();
      await tx.insertInto('hub_unlocks').values({ serial, unlock_time: time }).execute();
      await appendHubAudit(tx, now, caller, { action: 'unlock', subject, outcome: 'ok', detail: `unlock sequence digest ${made.digest} at ${time}` });
      return { serial, unlockSequence: made.text };
    });
  } catch (error) {
    await auditRefusal(hub, caller, 'unlock', subject, error);
    throw error;
  }
}

/** The audit, newest last (administrator). */
export async function hubAudit(hub: HubBackend, options: { after?: number; limit?: number } = {}): Promise<Array<{ id: number; at: number; actor: string; client?: string; action: string; subject: string; outcome: string; detail?: string }>> {
  const rows = await hub.database.db.selectFrom('hub_audit').selectAll().where('id', '>', options.after ?? 0).orderBy('id').limit(options.limit ?? 100).execute();
  return rows.map((row) => ({
    id: hubWhole(row.id), at: hubWhole(row.at), actor: row.actor, ...(row.client === null ? {} : { client: row.client }), action: row.action, subject: row.subject, outcome: row.outcome,
    ...(row.detail === null ? {} : { detail: row.detail }),
  }));
}
