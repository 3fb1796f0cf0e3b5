// What a restore and a transfer share (Wibu 000 "CM-Box Backup"): the backed-up firm item checked as its licensor
// checks it (§2.6 "Backup File Cannot Be Manipulated": against the card key this licensor activated for the serial,
// never a key the file brings), its age (§2.3), its hidden data opened with the licensor's key (§2.7), the target
// container checked (§2.10: not on a locking list; not known with another card key), and the plan's operations
// signed for the target and followed by the activations they carry.
import { bytesEqual } from '../../bytes/index.js';
import { parseBackupItemFile, planRestore, verifyBackupItem, type BackupItemFile, type RestorePlan, type RestorePolicy, type VerifiedBackupItem } from '../backup/index.js';
import { openHiddenData } from '../license-hidden-data.js';
import { CLOCK_TOLERANCE_SECONDS } from '../license-model.js';
import type { UpdateOperation } from '../license-update.js';
import { licensorRecord, withLicensorSeed, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { whole, type IssuingTransaction } from './issuing-database.js';
import type { TargetContainer } from './issuing-lost-requests.js';
import { refuseLocked } from './issuing-locks.js';
import { refuse } from './issuing-refusal.js';
import type { IssuedUpdate } from './issuing-updates.js';

export interface CheckedItem {
  readonly file: BackupItemFile;
  readonly verified: VerifiedBackupItem;
  /** now − backup time, 0 for a backup up to CLOCK_TOLERANCE_SECONDS ahead of the service's clock. */
  readonly ageSeconds: number;
  readonly hidden: ReadonlyMap<number, Uint8Array>;
}

/** The item file strictly parsed, and the licensor of its firm item: 404 'no-license' when it is not one of this service's. */
export async function itemLicensor(tx: IssuingTransaction, item: unknown): Promise<{ file: BackupItemFile; licensor: LicensorRecord }> {
  const file = parseBackupItemFile(item);
  const row = await tx.selectFrom('issuing_licensors').selectAll().where('public_key', '=', file.item.licensorKey).executeTakeFirst();
  if (row === undefined) throw refuse.noLicense(`firm item ${file.item.firmCode} is not of a licensor of this restoring service`);
  return { file, licensor: licensorRecord(row) };
}

/**
 * 409 'replayed' when the item's container was the source of a restore or transfer already — unless it received a
 * restore or transfer itself afterwards and the backup is younger than that (a license transferred back).
 */
export async function refuseReplayed(tx: IssuingTransaction, licensorId: number, serial: string, backupTime: number): Promise<void> {
  const prior = await tx.selectFrom('issuing_restores').select(['kind', 'created_at', 'target_serial']).where('licensor_id', '=', licensorId).where('source_serial', '=', serial)
    .orderBy('created_at', 'desc').executeTakeFirst();
  if (prior === undefined) return;
  const back = await tx.selectFrom('issuing_restores').select('created_at').where('licensor_id', '=', licensorId).where('target_serial', '=', serial)
    .where('created_at', '>=', whole(prior.created_at)).orderBy('created_at', 'desc').executeTakeFirst();
  if (back !== undefined && backupTime > whole(back.created_at)) return;
  throw refuse.conflict('replayed', `the licenses of container ${serial} were ${prior.kind === 'restore' ? 'restored' : 'transferred'} to container ${prior.target_serial} already`);
}

/** The card key this licensor activated for `serial` (where its licenses are now, restored or reactivated there included). */
async function activatedCardKey(tx: IssuingTransaction, licensorId: number, serial: string): Promise<Uint8Array> {
  const activation = await tx.selectFrom('issuing_activations').select('card_public_key').where('licensor_id', '=', licensorId).where('serial', '=', serial).orderBy('id', 'desc').executeTakeFirst();
  const restored = activation ?? await tx.selectFrom('issuing_restores').select('target_card_key as card_public_key').where('licensor_id', '=', licensorId).where('target_serial', '=', serial).orderBy('id', 'desc').executeTakeFirst();
  if (restored === undefined) throw refuse.noLicense(`this licensor activated nothing on container ${serial}: it has no card key to check the backup against`);
  return Uint8Array.from(restored.card_public_key);
}

/** Verifies the item, its age and its hidden data (refusals: foreign 409, signature 422, input 400). */
export async function checkItem(backend: IssuingBackend, tx: IssuingTransaction, licensor: LicensorRecord, file: BackupItemFile): Promise<CheckedItem> {
  const cardPublicKey = await activatedCardKey(tx, licensor.id, file.box.serial);
  const verified = verifyBackupItem(file, { licensorKey: licensor.publicKey, cardPublicKey });
  const age = backend.now() - verified.time;
  if (age < -CLOCK_TOLERANCE_SECONDS) throw refuse.input(`the backup's time ${verified.time} lies ${-age} s after the restoring service's clock`);
  const hidden = withLicensorSeed(backend, licensor, (seed) => new Map(verified.hiddenBoxes.map((entry) => [
    entry.productCode,
    openHiddenData(seed, { serial: verified.serial, firmCode: verified.firm.firmCode, productCode: entry.productCode, updateCounter: verified.firm.updateCounter }, entry.box),
  ])));
  return { file, verified, ageSeconds: Math.max(0, age), hidden };
}

/** The target may receive the licenses: not locked (423), not the source, not known with another card key (409 foreign). */
export async function checkTarget(tx: IssuingTransaction, licensorId: number, source: string, target: TargetContainer): Promise<void> {
  await refuseLocked(tx, licensorId, target.serial, 'a restore onto it');
  if (target.serial === source) throw refuse.conflict('input', `the target is the backed-up container ${source} itself`);
  const other = await tx.selectFrom('issuing_activations').select('card_public_key').where('licensor_id', '=', licensorId).where('serial', '=', target.serial)
    .where('state', '<>', 'deactivated').executeTakeFirst();
  if (other !== undefined && !bytesEqual(Uint8Array.from(other.card_public_key), target.cardPublicKey)) throw refuse.conflict('foreign', `container ${target.serial} is known to this licensor with another card key`);
}

/** The plan for the target (000 §2.3), with the hub's lock authority set on the container when the service has one (000 §2.10). */
export function planFor(checked: CheckedItem, policy: RestorePolicy, target: TargetContainer, lockAuthority: Uint8Array | undefined): RestorePlan {
  const plan = planRestore({ firm: checked.verified.firm, hidden: checked.hidden }, policy, checked.ageSeconds, target.firmUpdateCounter !== null);
  if (lockAuthority === undefined) return plan;
  const operations: UpdateOperation[] = [...plan.operations, { op: 'set-lock-authority', key: lockAuthority.slice() }];
  return { ...plan, operations };
}

/** The activations of the restored products move to the target: renewals, deactivations and receipts follow them. */
export async function moveActivations(backend: IssuingBackend, tx: IssuingTransaction, licensorId: number, source: string, target: TargetContainer, products: readonly number[], update: IssuedUpdate): Promise<number> {
  if (products.length === 0) return 0;
  const rows = await tx.selectFrom('issuing_activations').innerJoin('issuing_tickets', 'issuing_tickets.id', 'issuing_activations.ticket_id').select('issuing_activations.id')
    .where('issuing_activations.licensor_id', '=', licensorId).where('issuing_activations.serial', '=', source).where('issuing_activations.state', '<>', 'deactivated')
    .where('issuing_tickets.product_code', 'in', [...products]).execute();
  if (rows.length === 0) return 0;
  await tx.updateTable('issuing_activations').set({
    serial: target.serial, card_public_key: target.cardPublicKey, requested_counter: target.firmUpdateCounter, update_counter: update.counter, update_text: update.text,
    update_digest: update.digest, state: 'pending', receipt: null, updated_at: backend.now(),
  }).where('id', 'in', rows.map((row) => whole(row.id))).execute();
  return rows.length;
}
