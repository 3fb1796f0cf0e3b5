// POST /v1/restores: the licensor's restoring service (Wibu 000 §2.2 "Restore Fully Controlled by Licensor": the
// License Generator answers a Restore request with the "Adding Firm Items" and "Adding Product Items" operations only
// its key can sign; §2.3 restore policy; §2.4 it sees only its own item; §2.10 the source goes onto the local locking
// list and is reported for the central one; §2.11 restores along a chain alert the licensor, then stop until it
// approves). The same requestId answers the same; the same source again is refused 409 replayed.
import type { Selectable } from 'kysely';
import { bytesEqual, toHex } from '../../bytes/index.js';
import { restoreDegreePercent } from '../backup/index.js';
import { passAlertGate, restoreChainLength, withDeferredRefusal } from './issuing-alerts.js';
import { appendAudit, bindCardForLicensor, lockLicensor, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { whole, type IssuingTransaction, type RestoresTable } from './issuing-database.js';
import { addLocalLock } from './issuing-locks.js';
import { requestDigest, restoreRequestJson, type RestoreRequest } from './issuing-lost-requests.js';
import { licensorPolicy } from './issuing-policies.js';
import { refuse } from './issuing-refusal.js';
import { checkItem, checkTarget, itemLicensor, moveActivations, planFor, refuseReplayed } from './issuing-restore-item.js';
import { issueLostUpdate, lostUpdate } from './issuing-updates.js';

export interface RestoreAnswer {
  readonly status: 'restored';
  /** The signed update for the target container. */
  readonly update: string;
  readonly digest: string;
  /** The licensor's card binding of the target card (card-binding.ts), for its programs. */
  readonly binding: string;
  readonly restored: number[];
  readonly skipped: number[];
  /** Unit counters restored, percent to two decimals (000 §2.3). */
  readonly degreePercent: number;
}

export interface RestoreOutcome {
  readonly answer: RestoreAnswer;
  /** The source container put onto the local locking list, to report to the hub. */
  readonly locked: { readonly licensorId: number; readonly serial: string };
}

/** What the service knows of the hub (`vsc license serve --hub-key`): set as the container's lock authority (spec §1). */
export interface RestoreOptions {
  readonly lockAuthority?: Uint8Array;
}

const codes = (text: string | null): number[] => (text === null ? [] : (JSON.parse(text) as number[]));

/** The answer a restore row gave (the same requestId answers the same). */
async function answerOf(backend: IssuingBackend, tx: IssuingTransaction, licensor: LicensorRecord, row: Selectable<RestoresTable>): Promise<RestoreAnswer> {
  const update = await lostUpdate(tx, whole(row.update_id!));
  return {
    status: 'restored', update: update.text, digest: toHex(update.digest), binding: bindCardForLicensor(backend, licensor, row.target_serial, Uint8Array.from(row.target_card_key)),
    restored: codes(row.restored), skipped: codes(row.skipped), degreePercent: (row.degree_hundredths ?? 10_000) / 100,
  };
}

/** A request id seen before: its row when it is the same request, 409 input when it is another. */
export async function seenRestoreRequest(tx: IssuingTransaction, requestId: string, digest: Uint8Array, kind: 'restore' | 'transfer'): Promise<Selectable<RestoresTable> | undefined> {
  const row = await tx.selectFrom('issuing_restores').selectAll().where('request_id', '=', requestId).executeTakeFirst();
  if (row === undefined) return undefined;
  if (row.kind !== kind || !bytesEqual(Uint8Array.from(row.request_digest), digest)) throw refuse.conflict('input', 'this requestId was used for another request: make a new one');
  return row;
}

/** POST /v1/restores. */
export async function restoreItem(backend: IssuingBackend, request: RestoreRequest, caller: Caller, options: RestoreOptions = {}): Promise<RestoreOutcome> {
  const requestId = toHex(request.requestId);
  const digest = requestDigest(restoreRequestJson(request));
  const { target } = request;
  return withDeferredRefusal(backend, async (tx) => {
    const { file, licensor } = await itemLicensor(tx, request.item);
    await lockLicensor(backend, tx, licensor.id);
    const source = file.box.serial;
    const subject = `restore ${source} -> ${target.serial}`;
    const seen = await seenRestoreRequest(tx, requestId, digest, 'restore');
    if (seen !== undefined) {
      await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'restore', subject, outcome: 'repeated' });
      return { answer: await answerOf(backend, tx, licensor, seen), locked: { licensorId: licensor.id, serial: source } };
    }
    const policy = await licensorPolicy(tx, licensor.id);
    if (policy.restore.mode === 'none') throw refuse.notRestorable(`${licensor.name} does not restore its licenses (restore policy none)`);
    await refuseReplayed(tx, licensor.id, source, file.time);
    const checked = await checkItem(backend, tx, licensor, file);
    await checkTarget(tx, licensor.id, source, target);
    const now = backend.now();
    const { alerts } = policy.restore;
    const chain = await restoreChainLength(tx, licensor.id, source, now, alerts.intervalSeconds);
    const gate = await passAlertGate(backend, tx, licensor.id, {
      kind: 'restore-chain', subject, chain, alert: chain >= alerts.alertAt, stop: chain >= alerts.stopAt,
      detail: `restore ${chain} of a chain of containers ending at ${source} within ${alerts.intervalSeconds} s (alert at ${alerts.alertAt}, stop at ${alerts.stopAt})`,
    }, caller);
    if (gate !== undefined) return gate;

    const plan = planFor(checked, policy.restore, target, options.lockAuthority);
    const update = await issueLostUpdate(backend, tx, licensor, {
      kind: 'restore', serial: target.serial, cardPublicKey: target.cardPublicKey, updateCounter: target.firmUpdateCounter ?? 0, operations: plan.operations,
      requestedCounter: target.firmUpdateCounter,
    });
    const degree = Math.round(restoreDegreePercent(policy.restore.units, checked.ageSeconds) * 100);
    await tx.insertInto('issuing_restores').values({
      licensor_id: licensor.id, kind: 'restore', request_id: requestId, request_digest: digest, source_serial: source, source_card_key: checked.verified.cardPublicKey,
      backup_time: checked.verified.time, target_serial: target.serial, target_card_key: target.cardPublicKey, target_counter: target.firmUpdateCounter,
      item: JSON.stringify(request.item), state: 'restored', delete_update_id: null, update_id: update.id, restored: JSON.stringify(plan.restored),
      skipped: JSON.stringify(plan.skipped), degree_hundredths: degree, created_at: now, updated_at: now,
    }).execute();
    const moved = await moveActivations(backend, tx, licensor.id, source, target, plan.restored, update);
    await addLocalLock(backend, tx, licensor.id, source, 'restore', `restored to ${target.serial}`);
    await appendAudit(backend, tx, caller, {
      licensorId: licensor.id, action: 'restore', subject, outcome: 'ok',
      detail: `backup of ${checked.verified.time} (age ${checked.ageSeconds} s), products ${plan.restored.join(' ') || 'none'}${plan.skipped.length === 0 ? '' : `, skipped ${plan.skipped.join(' ')}`}, units ${degree / 100} %, ${moved} activations moved, update digest ${toHex(update.digest)}; ${source} locked`,
    });
    return {
      answer: {
        status: 'restored', update: update.text, digest: toHex(update.digest), binding: bindCardForLicensor(backend, licensor, target.serial, target.cardPublicKey),
        restored: plan.restored, skipped: plan.skipped, degreePercent: degree / 100,
      },
      locked: { licensorId: licensor.id, serial: source },
    };
  });
}
