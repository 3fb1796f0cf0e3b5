// Receipts (DESIGN.md "License containers": the card signs a record into the rental trail for every update it applies,
// patent 003 [0056]; Wibu 000 §2.6): POST /v1/receipts takes that record, checks it is signed by the activation's card
// key over the record digest and names the update the back end issued (licensor, firm, counter after, digest), and
// moves the activation on: pending → confirmed (an activation's update), deactivating → deactivated (a deactivation's
// delete-product: the seat is back). A receipt sent again answers the same state and changes nothing. Without a ticket
// it confirms an update of the lost-license flows (a restore, transfer, reactivation, checkpoint renewal or withdrawal),
// found by the record's firm code and digest; an update that carried several tickets' products confirms them all.
import { bytesEqual, fromHex, toHex } from '../../bytes/index.js';
import { encodeRecordLine, verifyRecord, type AuditRecord } from '../../rental/index.js';
import { licensorDigest, parseLicenseRecordText, type UpdateRecordText } from '../license-record-text.js';
import type { Selectable } from 'kysely';
import { appendAudit, licensorById, licensorRecord, lockLicensor, ticketByCode, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, whole, type IssuingTransaction, type TicketsTable } from './issuing-database.js';
import { withdrawalsApplied } from './issuing-withdrawals.js';
import { refuse } from './issuing-refusal.js';
import type { ReceiptRequest } from './issuing-requests.js';
import { ticketRef } from './ticket-code.js';

export interface ReceiptAnswer {
  readonly state: 'confirmed' | 'deactivated';
  readonly serial: string;
  /** The ticket's reference (when the update served one ticket). */
  readonly ticket?: string;
}

/**
 * Whether `record` is signed by `cardPublicKey` for `serial`. The request does not say the card's key mode; a card
 * signs in one mode only (DESIGN.md "The VSC applet": the other P1 gets 6A86), and the universal digest binds the serial,
 * so accepting either mode accepts nothing the card did not sign for this serial.
 */
export function receiptSigned(record: AuditRecord, serial: string, cardPublicKey: Uint8Array): boolean {
  return verifyRecord(record, { publicKey: cardPublicKey, serial, keyMode: 'individual' }) || verifyRecord(record, { publicKey: cardPublicKey, serial, keyMode: 'universal' });
}

/** The fields of an update record's text (license-record-text.ts), or 400 'input'. */
function updateText(text: string): UpdateRecordText {
  let parsed;
  try {
    parsed = parseLicenseRecordText(text);
  } catch (error) {
    throw refuse.input(`expected the record of an update ("license update LD FIRM counter N digest D"): ${(error as Error).message}`);
  }
  if (parsed.kind !== 'update') throw refuse.input(`expected the record of an update, got a ${parsed.kind} record`);
  return parsed;
}

/** The licensor a receipt is for: the ticket's, or (no ticket) the one of the firm code the record names. */
async function receiptLicensor(backend: IssuingBackend, tx: IssuingTransaction, request: ReceiptRequest, text: UpdateRecordText): Promise<{ licensor: LicensorRecord; ticket?: Selectable<TicketsTable> }> {
  if (request.ticket === undefined) {
    const row = await tx.selectFrom('issuing_licensors').selectAll().where('firm_code', '=', text.firmCode).executeTakeFirst();
    if (row === undefined || licensorDigest(Uint8Array.from(row.public_key)) !== text.licensor) throw refuse.noLicense(`no licensor of firm code ${text.firmCode} with the record's key here`);
    await lockLicensor(backend, tx, whole(row.id));
    return { licensor: licensorRecord(row) };
  }
  const first = await ticketByCode(tx, request.ticket);
  await lockLicensor(backend, tx, whole(first.licensor_id));
  const ticket = await ticketByCode(tx, request.ticket);
  const licensor = await licensorById(tx, whole(ticket.licensor_id));
  if (text.licensor !== licensorDigest(licensor.publicKey) || text.firmCode !== licensor.firmCode) {
    throw refuse.conflict('foreign', `the record names another licensor or firm than ticket ${ticketRef(Uint8Array.from(ticket.code_hash))}'s (firm ${licensor.firmCode})`);
  }
  return { licensor, ticket };
}

/** POST /v1/receipts. */
export async function acceptReceipt(backend: IssuingBackend, request: ReceiptRequest, caller: Caller): Promise<ReceiptAnswer> {
  const text = updateText(request.record.text);
  return issuingTransaction(backend.database, async (tx) => {
    const { licensor, ticket } = await receiptLicensor(backend, tx, request, text);
    const ref = ticket === undefined ? undefined : ticketRef(Uint8Array.from(ticket.code_hash));
    const digest = fromHex(text.digest);
    let query = tx.selectFrom('issuing_activations').selectAll().where('licensor_id', '=', licensor.id).where('serial', '=', request.serial)
      .where((eb) => eb.or([eb('update_digest', '=', digest), eb('deactivation_digest', '=', digest)]));
    if (ticket !== undefined) query = query.where('ticket_id', '=', whole(ticket.id));
    const activation = await query.executeTakeFirst();
    if (activation === undefined) return lostUpdateReceipt(backend, tx, { licensor, request, digest, counter: text.counter, ...(ref === undefined ? {} : { ref }) }, caller);
    const deactivation = activation.deactivation_digest !== null && bytesEqual(Uint8Array.from(activation.deactivation_digest), digest);
    const counter = whole(deactivation ? activation.deactivation_counter! : activation.update_counter) + 1;
    if (text.counter !== counter) throw refuse.input(`the record names firm update counter ${text.counter}, the update leads to ${counter}`);
    if (!receiptSigned(request.record, request.serial, Uint8Array.from(activation.card_public_key))) {
      throw refuse.signature(`the record is not signed by the card key of container ${request.serial}`);
    }
    const owner = ticket ?? await tx.selectFrom('issuing_tickets').selectAll().where('id', '=', whole(activation.ticket_id)).executeTakeFirstOrThrow();
    const ownerRef = ticketRef(Uint8Array.from(owner.code_hash));
    const subject = `ticket ${ownerRef} serial ${request.serial}`;
    const now = backend.now();
    const line = encodeRecordLine(request.record);
    const state = deactivation ? 'deactivated' : 'confirmed';
    const moves = deactivation ? activation.state === 'deactivating' : activation.state === 'pending';
    if (moves) {
      const receipt = deactivation ? { deactivation_receipt: line } : { receipt: line };
      await tx.updateTable('issuing_activations').set({ ...receipt, state, updated_at: now }).where('id', '=', whole(activation.id)).execute();
      if (deactivation && owner.state === 'used') await tx.updateTable('issuing_tickets').set({ state: 'open', updated_at: now }).where('id', '=', whole(owner.id)).execute();
      // One update may carry several tickets' products (a restore, 000 §2.2): its receipt confirms them all.
      if (!deactivation) await confirmActivations(tx, licensor.id, request.serial, digest, line, now);
    }
    await appendAudit(backend, tx, caller, {
      licensorId: licensor.id, action: deactivation ? 'deactivation.receipt' : 'activation.receipt', subject, outcome: moves ? 'ok' : 'repeated',
      detail: `${state}: update digest ${toHex(digest)}, card counter ${request.record.counter}`,
    });
    return { state, serial: request.serial, ticket: ownerRef };
  });
}

async function confirmActivations(tx: IssuingTransaction, licensorId: number, serial: string, digest: Uint8Array, line: string, now: number): Promise<void> {
  await tx.updateTable('issuing_activations').set({ receipt: line, state: 'confirmed', updated_at: now })
    .where('licensor_id', '=', licensorId).where('serial', '=', serial).where('update_digest', '=', digest).where('state', '=', 'pending').execute();
}

/** The receipt of an update of the lost-license flows (issuing-updates.ts): confirms it, and what it carried. */
async function lostUpdateReceipt(backend: IssuingBackend, tx: IssuingTransaction, found: { licensor: LicensorRecord; request: ReceiptRequest; digest: Uint8Array; counter: number; ref?: string }, caller: Caller): Promise<ReceiptAnswer> {
  const { licensor, request, digest } = found;
  const update = await tx.selectFrom('issuing_updates').selectAll().where('licensor_id', '=', licensor.id).where('serial', '=', request.serial).where('update_digest', '=', digest).executeTakeFirst();
  if (update === undefined || (found.ref !== undefined && update.ticket_id === null)) {
    throw refuse.ticket(`no update with digest ${toHex(digest)} was issued${found.ref === undefined ? '' : ` for ticket ${found.ref}`} on container ${request.serial}`);
  }
  const counter = whole(update.update_counter) + 1;
  if (found.counter !== counter) throw refuse.input(`the record names firm update counter ${found.counter}, the update leads to ${counter}`);
  if (!receiptSigned(request.record, request.serial, Uint8Array.from(update.card_public_key))) throw refuse.signature(`the record is not signed by the card key of container ${request.serial}`);
  const now = backend.now();
  const line = encodeRecordLine(request.record);
  const moves = update.state === 'issued';
  if (moves) {
    await tx.updateTable('issuing_updates').set({ state: 'confirmed', receipt: line, updated_at: now }).where('id', '=', whole(update.id)).execute();
    await confirmActivations(tx, licensor.id, request.serial, digest, line, now);
    if (update.kind === 'withdrawal') await withdrawalsApplied(backend, tx, { id: whole(update.id), licensorId: licensor.id, serial: request.serial, createdAt: whole(update.created_at) });
  }
  const owner = update.ticket_id === null ? undefined : await tx.selectFrom('issuing_tickets').select('code_hash').where('id', '=', whole(update.ticket_id)).executeTakeFirst();
  const ref = owner === undefined ? undefined : ticketRef(Uint8Array.from(owner.code_hash));
  await appendAudit(backend, tx, caller, {
    licensorId: licensor.id, action: `${update.kind}.receipt`, subject: `serial ${request.serial}`, outcome: moves ? 'ok' : 'repeated',
    detail: `confirmed: update digest ${toHex(digest)}, card counter ${request.record.counter}`,
  });
  return { state: 'confirmed', serial: request.serial, ...(ref === undefined ? {} : { ticket: ref }) };
}
