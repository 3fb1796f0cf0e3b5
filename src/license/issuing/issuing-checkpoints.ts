// Checkpoint licenses (001 "Checkpoint Licenses": "Business view: the license is perpetual. Technical view: the license
// has an Expiration Time. The license is renewed automatically in the background"; "Validity: days from activation;
// Threshold: remaining days before the next renewal starts"; "Licenses can be used offline"; "Time-bombed Checkpoint
// Licenses expire automatically offline. Automatic lock or renewal"). POST /v1/checkpoints answers an extend to now +
// validity once fewer than thresholdDays remain (earlier: 409 limit with the due time); a container on a locking list
// gets 423 locked with the central lock sequence instead: the automatic lock.
import { bytesEqual, toHex } from '../../bytes/index.js';
import { appendAudit, licensorById, lockLicensor, ticketByCode, type Caller, type IssuingBackend } from './issuing-backend.js';
import { issuingTransaction, whole, type IssuingTransaction } from './issuing-database.js';
import { checkpointRequestJson, requestDigest, type CheckpointRequest } from './issuing-lost-requests.js';
import { refuseLocked } from './issuing-locks.js';
import { productTemplate } from './issuing-orders.js';
import { refuse } from './issuing-refusal.js';
import { issueLostUpdate, updateAnswer } from './issuing-updates.js';
import { deliverWithdrawal, withdrawalBefore } from './issuing-withdrawals.js';
import { checkpointDue, checkpointExpiration } from './product-template.js';
import { ticketRef } from './ticket-code.js';

export interface CheckpointAnswer {
  /** The signed extend update. */
  readonly update: string;
  readonly digest: string;
  /** The product's new expiration. */
  readonly expiration: number;
  /** A license withdrawn from this container (001): apply it first. */
  readonly withdrawal?: { readonly update: string; readonly digest: string };
}

/** A request id seen before: the same answer (with the withdrawal it carried), or 409 input for another request. */
async function repeated(tx: IssuingTransaction, licensorId: number, requestId: string, digest: Uint8Array): Promise<CheckpointAnswer | undefined> {
  const row = await tx.selectFrom('issuing_updates').selectAll().where('request_id', '=', requestId).executeTakeFirst();
  if (row === undefined) return undefined;
  if (row.kind !== 'checkpoint' || row.request_digest === null || !bytesEqual(Uint8Array.from(row.request_digest), digest)) throw refuse.conflict('input', 'this requestId was used for another request: make a new one');
  const withdrawal = await withdrawalBefore(tx, licensorId, row.serial, whole(row.requested_counter!), whole(row.update_counter));
  return { update: row.update_text, digest: toHex(Uint8Array.from(row.update_digest)), expiration: whole(row.expiration!), ...(withdrawal === undefined ? {} : { withdrawal }) };
}

/** POST /v1/checkpoints. */
export async function renewCheckpoint(backend: IssuingBackend, request: CheckpointRequest, caller: Caller): Promise<CheckpointAnswer> {
  const requestId = toHex(request.requestId);
  const digest = requestDigest(checkpointRequestJson(request));
  return issuingTransaction(backend.database, async (tx) => {
    const first = await ticketByCode(tx, request.ticket);
    const licensorId = whole(first.licensor_id);
    await lockLicensor(backend, tx, licensorId);
    await refuseLocked(tx, licensorId, request.serial, 'a checkpoint renewal');
    const ticket = await ticketByCode(tx, request.ticket);
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    const subject = `ticket ${ref} serial ${request.serial}`;
    const seen = await repeated(tx, licensorId, requestId, digest);
    if (seen !== undefined) {
      await appendAudit(backend, tx, caller, { licensorId, action: 'checkpoint', subject, outcome: 'repeated' });
      return seen;
    }
    if (ticket.state === 'revoked') throw refuse.ticket(`ticket ${ref} is revoked`);
    const productCode = whole(ticket.product_code);
    const rule = (await productTemplate(tx, licensorId, productCode)).checkpoint;
    if (rule === undefined || ticket.renewal_of !== null) throw refuse.conflict('input', `ticket ${ref} is not a checkpoint license (product ${productCode} has no checkpoint)`);
    const activation = await tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', whole(ticket.id)).where('serial', '=', request.serial)
      .where('state', 'in', ['pending', 'confirmed']).executeTakeFirst();
    if (activation === undefined) throw refuse.ticket(`ticket ${ref} is not active on container ${request.serial}`);
    const renewed = await tx.selectFrom('issuing_updates').select((eb) => eb.fn.max('expiration').as('top')).where('ticket_id', '=', whole(ticket.id)).where('kind', '=', 'checkpoint').executeTakeFirst();
    const current = Math.max(activation.expiration === null ? 0 : whole(activation.expiration), renewed?.top === null || renewed?.top === undefined ? 0 : whole(renewed.top));
    const now = backend.now();
    const due = checkpointDue(rule, current);
    if (now < due) throw refuse.notDue(`the checkpoint renewal of ticket ${ref} is not due: ${rule.thresholdDays} days before its expiration ${current}, from ${due}`, due);
    const licensor = await licensorById(tx, licensorId);
    const withdrawal = await deliverWithdrawal(backend, tx, licensor, request.serial, request.firmUpdateCounter);
    const expiration = checkpointExpiration(rule, now);
    const update = await issueLostUpdate(backend, tx, licensor, {
      kind: 'checkpoint', serial: request.serial, cardPublicKey: Uint8Array.from(activation.card_public_key), updateCounter: withdrawal === undefined ? request.firmUpdateCounter : withdrawal.counter + 1,
      operations: [{ op: 'extend', productCode, expiration }], ticketId: whole(ticket.id), requestId, requestDigest: digest, requestedCounter: request.firmUpdateCounter, expiration,
    });
    await tx.updateTable('issuing_activations').set({ expiration, updated_at: now }).where('id', '=', whole(activation.id)).execute();
    await appendAudit(backend, tx, caller, { licensorId, action: 'checkpoint', subject, outcome: 'ok', detail: `extend product ${productCode} to ${expiration}, digest ${toHex(update.digest)}` });
    return { ...updateAnswer(update), expiration, ...(withdrawal === undefined ? {} : { withdrawal: { update: withdrawal.update, digest: withdrawal.digest } }) };
  });
}
