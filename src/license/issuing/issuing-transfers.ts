// License transfer (Wibu 000 §2.12 "Platform for License Transfer": the source is not lost and "no candidate for
// Locking"; "The Licensor sends a 'Delete Firm Item' command to the CM-Box 'A' and deletes the license there
// completely. The Licensor sends a Restore Sequence to the CM-Box 'B'. If any operation fails, the User can resend the
// information that the Firm Item is deleted in the CM-Box 'A'"; "A SecretData PIO cannot be transferred", §2.8).
// POST /v1/transfers answers the delete-firm for the source; POST /v1/transfers/:id/proof takes the source card's
// record of applying it and answers the restore for the target: everything, no reduction by age, no secret data.
// A resent proof answers the same. Offline the bodies and answers travel as files of the same JSON.
import { toHex } from '../../bytes/index.js';
import { FULL_UNIT_RESTORE, parseBackupItemFile, type RestorePolicy } from '../backup/index.js';
import { licensorDigest, parseLicenseRecordText } from '../license-record-text.js';
import { encodeRecordLine } from '../../rental/index.js';
import { appendAudit, bindCardForLicensor, licensorById, lockLicensor, type Caller, type IssuingBackend } from './issuing-backend.js';
import { issuingTransaction, whole } from './issuing-database.js';
import { requestDigest, restoreRequestJson, type ProofRequest, type RestoreRequest } from './issuing-lost-requests.js';
import { licensorPolicy } from './issuing-policies.js';
import { receiptSigned } from './issuing-receipts.js';
import { refuse } from './issuing-refusal.js';
import { checkItem, checkTarget, itemLicensor, moveActivations, planFor, refuseReplayed } from './issuing-restore-item.js';
import { seenRestoreRequest, type RestoreOptions } from './issuing-restores.js';
import { issueLostUpdate, lostUpdate } from './issuing-updates.js';

export interface TransferAnswer {
  readonly transfer: number;
  /** The signed delete-firm for the source container. */
  readonly deleteUpdate: string;
  readonly deleteDigest: string;
}

export interface TransferredAnswer {
  readonly status: 'transferred';
  readonly update: string;
  readonly digest: string;
  readonly binding: string;
  readonly restored: number[];
  readonly skipped: number[];
}

/** 000 §2.12: a transfer restores the whole item as it was (the user's own deletion proves the source holds nothing). */
const transferPolicy = (policy: RestorePolicy): RestorePolicy => ({ mode: 'full', units: FULL_UNIT_RESTORE, secretData: { mode: 'none' }, alerts: policy.alerts });

/** POST /v1/transfers. */
export async function startTransfer(backend: IssuingBackend, request: RestoreRequest, caller: Caller, options: RestoreOptions = {}): Promise<TransferAnswer> {
  const requestId = toHex(request.requestId);
  const digest = requestDigest(restoreRequestJson(request));
  const { target } = request;
  return issuingTransaction(backend.database, async (tx) => {
    const { file, licensor } = await itemLicensor(tx, request.item);
    await lockLicensor(backend, tx, licensor.id);
    const source = file.box.serial;
    const subject = `transfer ${source} -> ${target.serial}`;
    const seen = await seenRestoreRequest(tx, requestId, digest, 'transfer');
    if (seen !== undefined) {
      await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'transfer', subject, outcome: 'repeated' });
      const deletion = await lostUpdate(tx, whole(seen.delete_update_id!));
      return { transfer: whole(seen.id), deleteUpdate: deletion.text, deleteDigest: toHex(deletion.digest) };
    }
    const policy = await licensorPolicy(tx, licensor.id);
    if (policy.restore.mode === 'none') throw refuse.notRestorable(`${licensor.name} does not restore its licenses, nor transfer them (restore policy none)`);
    await refuseReplayed(tx, licensor.id, source, file.time);
    const checked = await checkItem(backend, tx, licensor, file);
    await checkTarget(tx, licensor.id, source, target);
    planFor(checked, transferPolicy(policy.restore), target, options.lockAuthority); // refuses now what the proof could not restore
    const deletion = await issueLostUpdate(backend, tx, licensor, {
      kind: 'transfer-delete', serial: source, cardPublicKey: checked.verified.cardPublicKey, updateCounter: checked.verified.firm.updateCounter, operations: [{ op: 'delete-firm' }],
    });
    const now = backend.now();
    const row = await tx.insertInto('issuing_restores').values({
      licensor_id: licensor.id, kind: 'transfer', request_id: requestId, request_digest: digest, source_serial: source, source_card_key: checked.verified.cardPublicKey,
      backup_time: checked.verified.time, target_serial: target.serial, target_card_key: target.cardPublicKey, target_counter: target.firmUpdateCounter,
      item: JSON.stringify(request.item), state: 'deleting', delete_update_id: deletion.id, update_id: null, restored: null, skipped: null, degree_hundredths: 10_000,
      created_at: now, updated_at: now,
    }).returning('id').executeTakeFirstOrThrow();
    const id = whole(row.id);
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'transfer', subject, outcome: 'ok', detail: `transfer ${id}: delete-firm at counter ${deletion.counter}, digest ${toHex(deletion.digest)}` });
    return { transfer: id, deleteUpdate: deletion.text, deleteDigest: toHex(deletion.digest) };
  });
}

/** POST /v1/transfers/:id/proof. */
export async function proveTransfer(backend: IssuingBackend, id: number, proof: ProofRequest, caller: Caller, options: RestoreOptions = {}): Promise<TransferredAnswer> {
  return issuingTransaction(backend.database, async (tx) => {
    const first = await tx.selectFrom('issuing_restores').select('licensor_id').where('id', '=', id).where('kind', '=', 'transfer').executeTakeFirst();
    if (first === undefined) throw refuse.noLicense(`no transfer ${id}`);
    const licensor = await licensorById(tx, whole(first.licensor_id));
    await lockLicensor(backend, tx, licensor.id);
    const row = await tx.selectFrom('issuing_restores').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const deletion = await tx.selectFrom('issuing_updates').selectAll().where('id', '=', whole(row.delete_update_id!)).executeTakeFirstOrThrow();
    let text;
    try {
      text = parseLicenseRecordText(proof.record.text);
    } catch (error) {
      throw refuse.input(`expected the record of the delete-firm ("license update LD FIRM counter N digest D"): ${(error as Error).message}`);
    }
    if (text.kind !== 'update') throw refuse.input(`expected the record of an update, got a ${text.kind} record`);
    if (text.licensor !== licensorDigest(licensor.publicKey) || text.firmCode !== licensor.firmCode) throw refuse.conflict('foreign', `the record names another licensor or firm than transfer ${id}'s`);
    if (text.digest !== toHex(Uint8Array.from(deletion.update_digest))) throw refuse.conflict('input', `the record is not of transfer ${id}'s delete-firm`);
    if (text.counter !== whole(deletion.update_counter) + 1) throw refuse.input(`the record names firm update counter ${text.counter}, the delete-firm leads to ${whole(deletion.update_counter) + 1}`);
    if (!receiptSigned(proof.record, row.source_serial, Uint8Array.from(row.source_card_key))) throw refuse.signature(`the record is not signed by the card key of container ${row.source_serial}`);
    const target = { serial: row.target_serial, cardPublicKey: Uint8Array.from(row.target_card_key), firmUpdateCounter: row.target_counter === null ? null : whole(row.target_counter) };
    const binding = bindCardForLicensor(backend, licensor, target.serial, target.cardPublicKey);
    const subject = `transfer ${row.source_serial} -> ${target.serial}`;
    if (row.state === 'transferred') {
      const update = await lostUpdate(tx, whole(row.update_id!));
      await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'transfer.proof', subject, outcome: 'repeated' });
      return { status: 'transferred', update: update.text, digest: toHex(update.digest), binding, restored: JSON.parse(row.restored!) as number[], skipped: JSON.parse(row.skipped!) as number[] };
    }
    const checked = await checkItem(backend, tx, licensor, parseBackupItemFile(JSON.parse(row.item)));
    await checkTarget(tx, licensor.id, row.source_serial, target);
    const policy = await licensorPolicy(tx, licensor.id);
    const plan = planFor(checked, transferPolicy(policy.restore), target, options.lockAuthority);
    const update = await issueLostUpdate(backend, tx, licensor, {
      kind: 'transfer', serial: target.serial, cardPublicKey: target.cardPublicKey, updateCounter: target.firmUpdateCounter ?? 0, operations: plan.operations, requestedCounter: target.firmUpdateCounter,
    });
    const now = backend.now();
    await tx.updateTable('issuing_updates').set({ state: 'confirmed', receipt: encodeRecordLine(proof.record), updated_at: now }).where('id', '=', whole(deletion.id)).execute();
    await tx.updateTable('issuing_restores').set({ state: 'transferred', update_id: update.id, restored: JSON.stringify(plan.restored), skipped: JSON.stringify(plan.skipped), updated_at: now })
      .where('id', '=', id).execute();
    const moved = await moveActivations(backend, tx, licensor.id, row.source_serial, target, plan.restored, update);
    await appendAudit(backend, tx, caller, {
      licensorId: licensor.id, action: 'transfer.proof', subject, outcome: 'ok',
      detail: `transfer ${id}: products ${plan.restored.join(' ') || 'none'}, ${moved} activations moved, update digest ${toHex(update.digest)}`,
    });
    return { status: 'transferred', update: update.text, digest: toHex(update.digest), binding, restored: plan.restored, skipped: plan.skipped };
  });
}
