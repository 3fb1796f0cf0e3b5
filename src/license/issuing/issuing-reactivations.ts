// Reactivation (001 "Reactivation on the Same Device": training computers, a reset or repaired computer, invalid
// licenses; "Reactivating a License": possible for all container types; "The ISV defines the rules: how often, how often
// per time, manual approval"; "Automatic blacklisting: the old license is withdrawn or the complete CmContainer is
// blacklisted"). POST /v1/reactivations: on the same device (the same serial, whose container was reset: no firm item
// of this licensor, or a lower counter than the service issued) the ticket's product again; on another device the
// activation moves to the new container, and the old one is blacklisted as the licensor's rules say — its whole
// container locked (local list and the hub's central list), or the license withdrawn at its next contact (a
// delete-product, or with the honey-pot setting a honey-pot item).
import type { Selectable } from 'kysely';
import { bytesEqual, toHex } from '../../bytes/index.js';
import type { UpdateOperation } from '../license-update.js';
import { passAlertGate, withDeferredRefusal } from './issuing-alerts.js';
import type { SignedAnswer } from './issuing-activations.js';
import { appendAudit, bindCardForLicensor, licensorById, lockLicensor, ticketByCode, type Caller, type IssuingBackend } from './issuing-backend.js';
import { whole, type ActivationsTable, type IssuingTransaction } from './issuing-database.js';
import { reactivationRequestJson, requestDigest, type ReactivationRequest } from './issuing-lost-requests.js';
import { addLocalLock, refuseLocked } from './issuing-locks.js';
import { productTemplate } from './issuing-orders.js';
import { licensorPolicy } from './issuing-policies.js';
import { refuse } from './issuing-refusal.js';
import { issuedCounter, issueLostUpdate } from './issuing-updates.js';
import { deliverWithdrawal, queueWithdrawal, withdrawalBefore } from './issuing-withdrawals.js';
import { activationSpec } from './product-template.js';
import { ticketRef } from './ticket-code.js';

export interface ReactivationOutcome {
  readonly answer: SignedAnswer;
  /** A container this reactivation put onto the local locking list (to report to the hub). */
  readonly locked?: { readonly licensorId: number; readonly serial: string };
}

/** The activation that moves or is renewed: refused when there is none, or when the request does not fit it. */
async function activationFor(tx: IssuingTransaction, ticketId: number, ref: string, request: ReactivationRequest, licensorId: number): Promise<Selectable<ActivationsTable>> {
  const live = await tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', ticketId).where('state', 'in', ['pending', 'confirmed']).orderBy('id').execute();
  const here = live.find((row) => row.serial === request.serial);
  if (request.reason === 'same-device') {
    if (here === undefined) throw refuse.ticket(`ticket ${ref} is not active on container ${request.serial}: a reactivation on another device says so`);
    const issued = await issuedCounter(tx, licensorId, request.serial);
    if (request.firmUpdateCounter !== null && request.firmUpdateCounter >= issued) throw refuse.ticket(`container ${request.serial} was not reset: it has firm update counter ${request.firmUpdateCounter}, every update issued to it`);
    return here;
  }
  if (here !== undefined) throw refuse.ticket(`ticket ${ref} is active on container ${request.serial} already`);
  if (live.length !== 1) throw refuse.ticket(`ticket ${ref} is active on ${live.length} containers: a reactivation moves a license from exactly one`);
  const otherKey = await tx.selectFrom('issuing_activations').select('id').where('licensor_id', '=', licensorId).where('serial', '=', request.serial)
    .where('state', '<>', 'deactivated').where('card_public_key', '<>', request.cardPublicKey).executeTakeFirst();
  if (otherKey !== undefined) throw refuse.conflict('foreign', `container ${request.serial} is known to this licensor with another card key`);
  return live[0]!;
}

/** Refuses beyond the licensor's rule (429 limit, with when to ask again). */
async function checkLimit(tx: IssuingTransaction, ticketId: number, rule: { maxPerPeriod: number; periodSeconds: number }, now: number): Promise<void> {
  const rows = await tx.selectFrom('issuing_updates').select('created_at').where('ticket_id', '=', ticketId).where('kind', '=', 'reactivation').where('created_at', '>', now - rule.periodSeconds).execute();
  if (rows.length < rule.maxPerPeriod) return;
  const wait = rows.length === 0 ? rule.periodSeconds : Math.max(1, Math.min(...rows.map((row) => whole(row.created_at))) + rule.periodSeconds - now + 1);
  throw refuse.limit(`at most ${rule.maxPerPeriod} reactivation${rule.maxPerPeriod === 1 ? '' : 's'} of this ticket per ${rule.periodSeconds} seconds`, wait);
}

/** POST /v1/reactivations. */
export async function reactivate(backend: IssuingBackend, request: ReactivationRequest, caller: Caller): Promise<ReactivationOutcome> {
  const requestId = toHex(request.requestId);
  const digest = requestDigest(reactivationRequestJson(request));
  return withDeferredRefusal(backend, async (tx) => {
    const first = await ticketByCode(tx, request.ticket);
    const licensorId = whole(first.licensor_id);
    await lockLicensor(backend, tx, licensorId);
    await refuseLocked(tx, licensorId, request.serial, 'a reactivation');
    const licensor = await licensorById(tx, licensorId);
    const ticket = await ticketByCode(tx, request.ticket);
    const ticketId = whole(ticket.id);
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    const subject = `ticket ${ref} serial ${request.serial} ${request.reason}`;
    const binding = bindCardForLicensor(backend, licensor, request.serial, request.cardPublicKey);
    const seen = await tx.selectFrom('issuing_updates').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    if (seen !== undefined) {
      if (seen.kind !== 'reactivation' || !bytesEqual(Uint8Array.from(seen.request_digest!), digest)) throw refuse.conflict('input', 'this requestId was used for another request: make a new one');
      await appendAudit(backend, tx, caller, { licensorId, action: 'reactivation', subject, outcome: 'repeated' });
      const withdrawal = await withdrawalBefore(tx, licensorId, seen.serial, seen.requested_counter === null ? null : whole(seen.requested_counter), whole(seen.update_counter));
      return { answer: { update: seen.update_text, digest: toHex(Uint8Array.from(seen.update_digest)), binding, ...(withdrawal === undefined ? {} : { withdrawal }) } };
    }
    if (ticket.state === 'revoked') throw refuse.ticket(`ticket ${ref} is revoked`);
    if (ticket.renewal_of !== null) throw refuse.ticket(`ticket ${ref} is a renewal: reactivate the ticket it renews`);
    const activation = await activationFor(tx, ticketId, ref, request, licensorId);
    const policy = await licensorPolicy(tx, licensorId);
    const now = backend.now();
    await checkLimit(tx, ticketId, policy.reactivation, now);
    const oldSerial = activation.serial;
    const gate = await passAlertGate(backend, tx, licensorId, {
      kind: 'reactivation', subject, detail: `reactivation of ticket ${ref} ${request.reason === 'same-device' ? `on reset container ${request.serial}` : `from container ${oldSerial} to ${request.serial}`}`,
      alert: false, stop: policy.reactivation.approval === 'manual',
    }, caller);
    if (gate !== undefined) return gate;

    const productCode = whole(ticket.product_code);
    const template = await productTemplate(tx, licensorId, productCode);
    const spec = activationSpec(template, whole(activation.created_at));
    const product = activation.expiration === null ? spec : { ...spec, expiration: whole(activation.expiration) };
    const oldCounter = await issuedCounter(tx, licensorId, oldSerial);
    const withdrawal = await deliverWithdrawal(backend, tx, licensor, request.serial, request.firmUpdateCounter);
    const operations: UpdateOperation[] = [...(request.firmUpdateCounter === null ? [{ op: 'create-firm', text: licensor.name } as const] : []), { op: 'put-product', product }];
    const update = await issueLostUpdate(backend, tx, licensor, {
      kind: 'reactivation', serial: request.serial, cardPublicKey: request.cardPublicKey, updateCounter: withdrawal === undefined ? request.firmUpdateCounter ?? 0 : withdrawal.counter + 1,
      operations, ticketId, requestId, requestDigest: digest, requestedCounter: request.firmUpdateCounter,
    });
    await tx.updateTable('issuing_activations').set({
      serial: request.serial, card_public_key: request.cardPublicKey, requested_counter: request.firmUpdateCounter, update_counter: update.counter, update_text: update.text,
      update_digest: update.digest, state: 'pending', receipt: null, updated_at: now,
    }).where('id', '=', whole(activation.id)).execute();
    let locked: ReactivationOutcome['locked'];
    let blacklist = '';
    if (request.reason === 'other-device') {
      if (policy.reactivation.blacklist === 'container') {
        await addLocalLock(backend, tx, licensorId, oldSerial, 'reactivation', `ticket ${ref} moved to ${request.serial}`);
        locked = { licensorId, serial: oldSerial };
        blacklist = `, container ${oldSerial} locked`;
      } else {
        const mode = policy.honeyPot ? 'honey-pot' : 'delete';
        await queueWithdrawal(backend, tx, { licensorId, serial: oldSerial, cardPublicKey: Uint8Array.from(activation.card_public_key), counter: oldCounter, productCode, mode, ticketId });
        blacklist = `, product ${productCode} withdrawn from ${oldSerial} (${mode})`;
      }
    }
    await appendAudit(backend, tx, caller, { licensorId, action: 'reactivation', subject, outcome: 'ok', detail: `update counter ${update.counter}, digest ${toHex(update.digest)}${blacklist}` });
    return {
      answer: { update: update.text, digest: toHex(update.digest), binding, ...(withdrawal === undefined ? {} : { withdrawal: { update: withdrawal.update, digest: withdrawal.digest } }) },
      ...(locked === undefined ? {} : { locked }),
    };
  });
}
