// The signed updates of the lost-license flows (Wibu 000 §2.2 restore as "Adding Firm Items" and "Adding Product Items
// Remote Activation" operations, §2.12 a transfer's "Delete Firm Item"; 001 reactivation, checkpoint renewal,
// withdrawal): signed for one container at its firm update counter (000 §2.6), kept until the card's receipt confirms
// them (POST /v1/receipts), and counted when the service works out which counter a container has.
import { toHex } from '../../bytes/index.js';
import type { UpdateOperation } from '../license-update.js';
import { signForLicensor, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { whole, type IssuingTransaction, type LostUpdateKind } from './issuing-database.js';

export interface LostUpdateSpec {
  readonly kind: LostUpdateKind;
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  readonly updateCounter: number;
  readonly operations: readonly UpdateOperation[];
  readonly ticketId?: number;
  readonly requestId?: string;
  readonly requestDigest?: Uint8Array;
  readonly requestedCounter?: number | null;
  readonly expiration?: number;
}

export interface IssuedUpdate {
  readonly id: number;
  /** The signed update file. */
  readonly text: string;
  readonly digest: Uint8Array;
  readonly counter: number;
}

/** Signs `spec`'s operations for its container with the licensor's key and keeps the update ('issued'). */
export async function issueLostUpdate(backend: IssuingBackend, tx: IssuingTransaction, licensor: LicensorRecord, spec: LostUpdateSpec): Promise<IssuedUpdate> {
  const now = backend.now();
  const signed = signForLicensor(backend, licensor, {
    kind: 'update', serial: spec.serial, licensorKey: licensor.publicKey, firmCode: licensor.firmCode, time: now, updateCounter: spec.updateCounter, operations: spec.operations,
  });
  const row = await tx.insertInto('issuing_updates').values({
    licensor_id: licensor.id, kind: spec.kind, ticket_id: spec.ticketId ?? null, request_id: spec.requestId ?? null, request_digest: spec.requestDigest ?? null,
    serial: spec.serial, card_public_key: spec.cardPublicKey, requested_counter: spec.requestedCounter ?? null, update_counter: spec.updateCounter,
    update_text: signed.text, update_digest: signed.digest, expiration: spec.expiration ?? null, state: 'issued', receipt: null, created_at: now, updated_at: now,
  }).returning('id').executeTakeFirstOrThrow();
  return { id: whole(row.id), text: signed.text, digest: signed.digest, counter: spec.updateCounter };
}

/** A kept update by id. */
export async function lostUpdate(tx: IssuingTransaction, id: number): Promise<IssuedUpdate> {
  const row = await tx.selectFrom('issuing_updates').select(['id', 'update_text', 'update_digest', 'update_counter']).where('id', '=', id).executeTakeFirstOrThrow();
  return { id: whole(row.id), text: row.update_text, digest: Uint8Array.from(row.update_digest), counter: whole(row.update_counter) };
}

export const updateAnswer = (update: IssuedUpdate): { update: string; digest: string } => ({ update: update.text, digest: toHex(update.digest) });

/**
 * The firm update counter the container of `serial` has once it applied every update this licensor issued to it
 * (activations, deactivations, and the updates above): what a request that does not report it is signed for.
 */
export async function issuedCounter(tx: IssuingTransaction, licensorId: number, serial: string): Promise<number> {
  let next = 0;
  const activations = await tx.selectFrom('issuing_activations').select(['update_counter', 'deactivation_counter']).where('licensor_id', '=', licensorId).where('serial', '=', serial).execute();
  for (const row of activations) {
    next = Math.max(next, whole(row.update_counter) + 1);
    if (row.deactivation_counter !== null) next = Math.max(next, whole(row.deactivation_counter) + 1);
  }
  const updates = await tx.selectFrom('issuing_updates').select((eb) => eb.fn.max('update_counter').as('top')).where('licensor_id', '=', licensorId).where('serial', '=', serial).executeTakeFirst();
  if (updates?.top !== null && updates?.top !== undefined) next = Math.max(next, whole(updates.top) + 1);
  return next;
}
