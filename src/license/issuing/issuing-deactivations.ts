// Deactivation (Wibu 002 Table 1 transferable and volume licenses: a seat moves to another container): POST
// /v1/deactivations answers a signed delete-product for the container where the ticket is active; the seat returns once
// the card's receipt of it arrives (issuing-receipts.ts). Activation cycling is limited by the product's template
// (maxDeactivations per cyclePeriodSeconds, 429 'limit'). The same request id answers the same update.
import { bytesEqual, toHex } from '../../bytes/index.js';
import type { UnixSeconds } from '../license-model.js';
import { appendAudit, licensorById, lockLicensor, signForLicensor, ticketByCode, type Caller, type IssuingBackend } from './issuing-backend.js';
import { issuingTransaction, whole, type IssuingTransaction } from './issuing-database.js';
import { productTemplate } from './issuing-orders.js';
import { refuse } from './issuing-refusal.js';
import type { DeactivationRequest } from './issuing-requests.js';
import type { SignedAnswer } from './issuing-activations.js';
import { ticketHash, ticketRef } from './ticket-code.js';
import { issuedCounter } from './issuing-updates.js';

/** Refuses a deactivation beyond the template's cycling limit, saying when the next one is allowed. */
async function checkCycling(tx: IssuingTransaction, ticketId: number, limit: { max: number; period: number }, now: UnixSeconds): Promise<void> {
  const since = now - limit.period;
  const rows = await tx.selectFrom('issuing_activations').select('deactivation_requested_at').where('ticket_id', '=', ticketId).where('deactivation_requested_at', '>', since).execute();
  if (rows.length < limit.max) return;
  const oldest = Math.min(...rows.map((row) => whole(row.deactivation_requested_at!)));
  const wait = Math.max(1, oldest + limit.period - now + 1);
  throw refuse.limit(`at most ${limit.max} deactivation${limit.max === 1 ? '' : 's'} of this ticket per ${limit.period} seconds: the next one in ${wait} seconds`, wait);
}

/** POST /v1/deactivations. */
export async function deactivateTicket(backend: IssuingBackend, request: DeactivationRequest, caller: Caller): Promise<SignedAnswer> {
  const requestId = toHex(request.requestId);
  return issuingTransaction(backend.database, async (tx) => {
    const first = await ticketByCode(tx, request.ticket);
    const licensorId = whole(first.licensor_id);
    await lockLicensor(backend, tx, licensorId);
    const ticket = await ticketByCode(tx, request.ticket);
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    const subject = `ticket ${ref} serial ${request.serial}`;
    const seen = await tx.selectFrom('issuing_activations').innerJoin('issuing_tickets', 'issuing_tickets.id', 'issuing_activations.ticket_id')
      .selectAll('issuing_activations').select('issuing_tickets.code_hash').where('deactivation_request_id', '=', requestId).executeTakeFirst();
    if (seen !== undefined) {
      if (!bytesEqual(Uint8Array.from(seen.code_hash), ticketHash(request.ticket)) || seen.serial !== request.serial) throw refuse.conflict('input', 'this requestId was used for another request: make a new one');
      await appendAudit(backend, tx, caller, { licensorId, action: 'deactivation', subject, outcome: 'repeated' });
      return { update: seen.deactivation_update!, digest: toHex(Uint8Array.from(seen.deactivation_digest!)) };
    }
    if (ticket.renewal_of !== null) throw refuse.ticket(`ticket ${ref} is a renewal: it has no seat to return (deactivate the ticket it renews)`);
    const activation = await tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', whole(ticket.id)).where('serial', '=', request.serial).where('state', '<>', 'deactivated').executeTakeFirst();
    if (activation === undefined) throw refuse.ticket(`ticket ${ref} is not active on container ${request.serial}`);
    if (activation.state === 'pending') throw refuse.ticket(`the activation of ticket ${ref} on container ${request.serial} is not confirmed yet: send its receipt first`);
    if (activation.state === 'deactivating') throw refuse.ticket(`a deactivation of ticket ${ref} on container ${request.serial} was issued already: ask again with its requestId`);
    const productCode = whole(ticket.product_code);
    const template = await productTemplate(tx, licensorId, productCode);
    const now = backend.now();
    if (template.maxDeactivations !== undefined) await checkCycling(tx, whole(ticket.id), { max: template.maxDeactivations, period: template.cyclePeriodSeconds! }, now);
    const licensor = await licensorById(tx, licensorId);
    const updateCounter = request.firmUpdateCounter ?? await issuedCounter(tx, licensorId, request.serial);
    const signed = signForLicensor(backend, licensor, {
      kind: 'update', serial: request.serial, licensorKey: licensor.publicKey, firmCode: licensor.firmCode, time: now, updateCounter, operations: [{ op: 'delete-product', productCode }],
    });
    await tx.updateTable('issuing_activations').set({
      state: 'deactivating', deactivation_request_id: requestId, deactivation_counter: updateCounter, deactivation_update: signed.text, deactivation_digest: signed.digest,
      deactivation_requested_at: now, updated_at: now,
    }).where('id', '=', whole(activation.id)).execute();
    await appendAudit(backend, tx, caller, { licensorId, action: 'deactivation', subject, outcome: 'ok', detail: `update counter ${updateCounter}, delete-product ${productCode}, digest ${toHex(signed.digest)}` });
    return { update: signed.text, digest: toHex(signed.digest) };
  });
}
