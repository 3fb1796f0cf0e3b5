// What the licensor is told and what waits for it (Wibu 000 §2.11 "Cheating Using Backup/Restore Mechanism is Limited":
// the Repeated Restoring Alert List — restores along a chain of containers within a time interval; at one count the
// licensor is alerted, at another "the automatic repeated Restore-Process" stops "until evidences are available";
// 001 reactivation rules: "manual approval"). A stopped request is refused 409 'approval' naming its alert; once the
// licensor approves it (POST /v1/alerts/:id/approve) the same request goes ahead, once.
import { appendAudit, lockLicensor, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, whole, type AlertsTable, type IssuingTransaction } from './issuing-database.js';
import { IssuingRefusal, refuse } from './issuing-refusal.js';
import type { Selectable } from 'kysely';

export type AlertKind = 'restore-chain' | 'reactivation';

export interface AlertView {
  readonly id: number;
  readonly kind: AlertKind;
  readonly subject: string;
  readonly detail: string;
  readonly chain?: number;
  readonly state: 'notice' | 'pending' | 'approved' | 'used';
  readonly createdAt: number;
  readonly updatedAt: number;
}

const view = (row: Selectable<AlertsTable>): AlertView => ({
  id: whole(row.id), kind: row.kind, subject: row.subject, detail: row.detail, ...(row.chain === null ? {} : { chain: row.chain }), state: row.state,
  createdAt: whole(row.created_at), updatedAt: whole(row.updated_at),
});

/** The longest chain of restores the chain walk follows (a guard: restore sources are locked, so chains do not loop). */
const MAX_CHAIN = 10_000;

/**
 * 000 §2.11: the restores along the chain of containers that ends at `source`, within `intervalSeconds` before now,
 * counting the restore asked for now: A→B then B→C asks for the second restore of a chain.
 */
export async function restoreChainLength(tx: IssuingTransaction, licensorId: number, source: string, now: number, intervalSeconds: number): Promise<number> {
  const seen = new Set<string>([source]);
  let length = 1;
  for (let serial = source; length < MAX_CHAIN;) {
    const before = await tx.selectFrom('issuing_restores').select('source_serial').where('licensor_id', '=', licensorId).where('kind', '=', 'restore')
      .where('target_serial', '=', serial).where('created_at', '>=', now - intervalSeconds).orderBy('created_at', 'desc').orderBy('id', 'desc').executeTakeFirst();
    if (before === undefined || seen.has(before.source_serial)) break;
    seen.add(before.source_serial);
    serial = before.source_serial;
    length += 1;
  }
  return length;
}

export interface AlertGate {
  readonly kind: AlertKind;
  /** What an approval applies to: the same request has the same subject. */
  readonly subject: string;
  readonly detail: string;
  readonly chain?: number;
  /** Tell the licensor (a notice), the request goes ahead. */
  readonly alert: boolean;
  /** Stop until approved. */
  readonly stop: boolean;
}

/**
 * Applies a gate inside the request's transaction: a stop without an approval answers the refusal to throw once the
 * transaction has committed (the alert must outlive the refused request); an approval is used up; a notice is written.
 */
export async function passAlertGate(backend: IssuingBackend, tx: IssuingTransaction, licensorId: number, gate: AlertGate, caller: Caller): Promise<IssuingRefusal | undefined> {
  if (!gate.alert && !gate.stop) return undefined;
  const now = backend.now();
  const chain = gate.chain ?? null;
  if (gate.stop) {
    const rows = await tx.selectFrom('issuing_alerts').selectAll().where('licensor_id', '=', licensorId).where('kind', '=', gate.kind).where('subject', '=', gate.subject)
      .where('state', 'in', ['pending', 'approved']).orderBy('id').execute();
    const approved = rows.find((row) => row.state === 'approved');
    if (approved !== undefined) {
      await tx.updateTable('issuing_alerts').set({ state: 'used', updated_at: now }).where('id', '=', whole(approved.id)).execute();
      await appendAudit(backend, tx, caller, { licensorId, action: 'alert.use', subject: `alert ${whole(approved.id)}`, outcome: 'ok', detail: gate.subject });
      return undefined;
    }
    let id = rows[0] === undefined ? undefined : whole(rows[0].id);
    if (id === undefined) {
      const made = await tx.insertInto('issuing_alerts').values({ licensor_id: licensorId, kind: gate.kind, subject: gate.subject, detail: gate.detail, chain, state: 'pending', created_at: now, updated_at: now })
        .returning('id').executeTakeFirstOrThrow();
      id = whole(made.id);
    }
    await appendAudit(backend, tx, caller, { licensorId, action: `${gate.kind}.stop`, subject: gate.subject, outcome: 'approval', detail: `alert ${id}: ${gate.detail}` });
    return refuse.approval(`${gate.detail}: waits for the licensor's approval (alert ${id})`, id);
  }
  await tx.insertInto('issuing_alerts').values({ licensor_id: licensorId, kind: gate.kind, subject: gate.subject, detail: gate.detail, chain, state: 'notice', created_at: now, updated_at: now }).execute();
  return undefined;
}

/** GET /v1/alerts: the licensor's alerts, newest first. */
export async function listAlerts(backend: IssuingBackend, licensor: LicensorRecord, caller: Caller): Promise<{ alerts: AlertView[] }> {
  return issuingTransaction(backend.database, async (tx) => {
    const rows = await tx.selectFrom('issuing_alerts').selectAll().where('licensor_id', '=', licensor.id).orderBy('id', 'desc').limit(1000).execute();
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'alerts.read', subject: `licensor ${licensor.name}`, outcome: 'ok', detail: `${rows.length} alerts` });
    return { alerts: rows.map(view) };
  });
}

/** POST /v1/alerts/:id/approve: a pending alert becomes approved (approving again answers the same). */
export async function approveAlert(backend: IssuingBackend, licensor: LicensorRecord, id: number, caller: Caller): Promise<{ alert: AlertView }> {
  return issuingTransaction(backend.database, async (tx) => {
    await lockLicensor(backend, tx, licensor.id);
    const row = await tx.selectFrom('issuing_alerts').selectAll().where('id', '=', id).where('licensor_id', '=', licensor.id).executeTakeFirst();
    if (row === undefined) throw refuse.noLicense(`no alert ${id} of this licensor`);
    if (row.state === 'notice') throw refuse.conflict('input', `alert ${id} is a notice: nothing waits for an approval`);
    const now = backend.now();
    if (row.state === 'pending') await tx.updateTable('issuing_alerts').set({ state: 'approved', updated_at: now }).where('id', '=', id).execute();
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'alert.approve', subject: `alert ${id}`, outcome: row.state === 'pending' ? 'ok' : 'repeated', detail: row.subject });
    return { alert: view(row.state === 'pending' ? { ...row, state: 'approved', updated_at: now } : row) };
  });
}

/**
 * Runs `work` in one transaction; a refusal it returns (an alert gate's stop) is thrown after the commit, so that the
 * alert and its audit record stay while the request is refused.
 */
export async function withDeferredRefusal<T>(backend: IssuingBackend, work: (tx: IssuingTransaction) => Promise<T | IssuingRefusal>): Promise<T> {
  const outcome = await issuingTransaction(backend.database, work);
  if (outcome instanceof IssuingRefusal) throw outcome;
  return outcome;
}
