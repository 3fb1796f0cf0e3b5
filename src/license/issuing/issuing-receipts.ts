// Receipts (DESIGN.md "License containers": the card signs a record into the rental trail for every update it applies,
// patent 003 [0056]; Wibu 000 §2.6): POST /v1/receipts takes that record, checks it is signed by the activation's card
// key over the record digest and names the update the back end issued (licensor, firm, counter after, digest), and
// moves the activation on: pending → confirmed (an activation's update), deactivating → deactivated (a deactivation's
// delete-product: the seat is back). A receipt sent again answers the same state and changes nothing.
import { bytesEqual, fromHex, toHex } from '../../bytes/index.js';
import { encodeRecordLine, verifyRecord, type AuditRecord } from '../../rental/index.js';
import { licensorDigest, parseLicenseRecordText, type UpdateRecordText } from '../license-record-text.js';
import { appendAudit, licensorById, lockLicensor, ticketByCode, type Caller, type IssuingBackend } from './issuing-backend.js';
import { issuingTransaction, whole } from './issuing-database.js';
import { refuse } from './issuing-refusal.js';
import type { ReceiptRequest } from './issuing-requests.js';
import { ticketRef } from './ticket-code.js';

export interface ReceiptAnswer {
  readonly state: 'confirmed' | 'deactivated';
  readonly serial: string;
  /** The ticket's reference. */
  readonly ticket: string;
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

/** POST /v1/receipts. */
export async function acceptReceipt(backend: IssuingBackend, request: ReceiptRequest, caller: Caller): Promise<ReceiptAnswer> {
  const text = updateText(request.record.text);
  return issuingTransaction(backend.database, async (tx) => {
    const first = await ticketByCode(tx, request.ticket);
    await lockLicensor(backend, tx, whole(first.licensor_id));
    const ticket = await ticketByCode(tx, request.ticket);
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    const licensor = await licensorById(tx, whole(ticket.licensor_id));
    if (text.licensor !== licensorDigest(licensor.publicKey) || text.firmCode !== licensor.firmCode) {
      throw refuse.conflict('foreign', `the record names another licensor or firm than ticket ${ref}'s (firm ${licensor.firmCode})`);
    }
    const digest = fromHex(text.digest);
    const activation = await tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', whole(ticket.id)).where('serial', '=', request.serial)
      .where((eb) => eb.or([eb('update_digest', '=', digest), eb('deactivation_digest', '=', digest)])).executeTakeFirst();
    if (activation === undefined) throw refuse.ticket(`no update with digest ${text.digest} was issued for ticket ${ref} on container ${request.serial}`);
    const deactivation = activation.deactivation_digest !== null && bytesEqual(Uint8Array.from(activation.deactivation_digest), digest);
    const counter = whole(deactivation ? activation.deactivation_counter! : activation.update_counter) + 1;
    if (text.counter !== counter) throw refuse.input(`the record names firm update counter ${text.counter}, the update leads to ${counter}`);
    if (!receiptSigned(request.record, request.serial, Uint8Array.from(activation.card_public_key))) {
      throw refuse.signature(`the record is not signed by the card key of container ${request.serial}`);
    }
    const subject = `ticket ${ref} serial ${request.serial}`;
    const now = backend.now();
    const line = encodeRecordLine(request.record);
    const state = deactivation ? 'deactivated' : 'confirmed';
    const moves = deactivation ? activation.state === 'deactivating' : activation.state === 'pending';
    if (moves) {
      const receipt = deactivation ? { deactivation_receipt: line } : { receipt: line };
      await tx.updateTable('issuing_activations').set({ ...receipt, state, updated_at: now }).where('id', '=', whole(activation.id)).execute();
      if (deactivation && ticket.state === 'used') await tx.updateTable('issuing_tickets').set({ state: 'open', updated_at: now }).where('id', '=', whole(ticket.id)).execute();
    }
    await appendAudit(backend, tx, caller, {
      licensorId: licensor.id, action: deactivation ? 'deactivation.receipt' : 'activation.receipt', subject, outcome: moves ? 'ok' : 'repeated',
      detail: `${state}: update digest ${toHex(digest)}, card counter ${request.record.counter}`,
    });
    return { state, serial: request.serial, ticket: ref };
  });
}
