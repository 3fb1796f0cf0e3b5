// Activation (Wibu 002: the end user activates the ticket online, or offline through a request file and an update
// file; 000 §2.2 remote activation, §2.6 firm update counter): a ticket's seat becomes a signed update for one
// container. First update of a firm: create-firm + put-product; a new product: put-product; a renewal ticket: extend
// and / or add-units onto the container where the ticket it renews is active. The same request id answers the same
// update; one ticket activates one container once, and no more containers than its quantity.
import type { Selectable } from 'kysely';
import { bytesEqual, toHex } from '../../bytes/index.js';
import type { UnixSeconds } from '../license-model.js';
import { parseSignedBody, type UpdateBody, type UpdateOperation } from '../license-update.js';
import { appendAudit, bindCardForLicensor, licensorById, lockLicensor, signForLicensor, ticketByCode, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, whole, type ActivationsTable, type IssuingTransaction, type TicketsTable } from './issuing-database.js';
import { productTemplate } from './issuing-orders.js';
import { refuse } from './issuing-refusal.js';
import type { ActivationRequest } from './issuing-requests.js';
import { activationSpec, renewalOperations, type ProductTemplate } from './product-template.js';
import { ticketHash, ticketRef } from './ticket-code.js';
import { refuseLocked } from './issuing-locks.js';
import { deliverWithdrawal, withdrawalBefore } from './issuing-withdrawals.js';

export interface SignedAnswer {
  /** The signed update file (license-update.ts). */
  readonly update: string;
  /** Its licenseBodyDigest, lowercase hex: the receipt names it. */
  readonly digest: string;
  /** An activation's answer: the licensor's card binding of the card it names (card-binding.ts), for its programs. */
  readonly binding?: string;
  /** A license withdrawn from this container (001 blacklisting): apply it before `update`, which is signed for the counter after it. */
  readonly withdrawal?: { readonly update: string; readonly digest: string };
}

type Activation = Selectable<ActivationsTable>;
type Ticket = Selectable<TicketsTable>;

const answerOf = (row: Activation): SignedAnswer => ({ update: row.update_text, digest: toHex(Uint8Array.from(row.update_digest)) });
const nullableWhole = (value: number | string | null): number | null => (value === null ? null : whole(value));

/** The activations of `ticketId` on `serial` that hold a seat (not deactivated). */
async function liveActivation(tx: IssuingTransaction, ticketId: number, serial: string): Promise<Activation | undefined> {
  return tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', ticketId).where('serial', '=', serial).where('state', '<>', 'deactivated').executeTakeFirst();
}

/** A request id seen before: the same request gets the same answer, another one is refused. */
async function repeated(backend: IssuingBackend, tx: IssuingTransaction, request: ActivationRequest, caller: Caller): Promise<SignedAnswer | undefined> {
  const row = await tx.selectFrom('issuing_activations').innerJoin('issuing_tickets', 'issuing_tickets.id', 'issuing_activations.ticket_id')
    .selectAll('issuing_activations').select('issuing_tickets.code_hash').where('request_id', '=', toHex(request.requestId)).executeTakeFirst();
  if (row === undefined) return undefined;
  const same = bytesEqual(Uint8Array.from(row.code_hash), ticketHash(request.ticket)) && row.serial === request.serial
    && bytesEqual(Uint8Array.from(row.card_public_key), request.cardPublicKey) && nullableWhole(row.requested_counter) === request.firmUpdateCounter;
  if (!same) throw refuse.conflict('input', 'this requestId was used for another request: make a new one');
  await appendAudit(backend, tx, caller, { licensorId: whole(row.licensor_id), action: 'activation', subject: `ticket ${ticketRef(Uint8Array.from(row.code_hash))} serial ${row.serial}`, outcome: 'repeated' });
  // Signed after a withdrawal (its counter one past the one asked for): the withdrawal is part of the same answer.
  const withdrawal = await withdrawalBefore(tx, whole(row.licensor_id), row.serial, nullableWhole(row.requested_counter), whole(row.update_counter));
  return { ...answerOf(row), ...(withdrawal === undefined ? {} : { withdrawal }) };
}

/** The expiration the renewed product has on `serial` now: the latest any live update of its chain set. */
async function currentExpiration(tx: IssuingTransaction, rootId: number, serial: string): Promise<UnixSeconds | undefined> {
  const rows = await tx.selectFrom('issuing_activations').innerJoin('issuing_tickets', 'issuing_tickets.id', 'issuing_activations.ticket_id')
    .select('issuing_activations.expiration').where('issuing_activations.serial', '=', serial).where('issuing_activations.state', '<>', 'deactivated')
    .where((eb) => eb.or([eb('issuing_tickets.id', '=', rootId), eb('issuing_tickets.renewal_of', '=', rootId)])).execute();
  const times = rows.map((row) => nullableWhole(row.expiration)).filter((time): time is number => time !== null);
  return times.length === 0 ? undefined : Math.max(...times);
}

/** The operations a ticket's activation on `request.serial` carries, and the product's expiration after them. */
async function operationsFor(tx: IssuingTransaction, licensor: LicensorRecord, ticket: Ticket, template: ProductTemplate, request: ActivationRequest, now: UnixSeconds): Promise<{ operations: UpdateOperation[]; expiration?: UnixSeconds }> {
  if (ticket.renewal_of === null) {
    const product = await tx.selectFrom('issuing_activations').innerJoin('issuing_tickets', 'issuing_tickets.id', 'issuing_activations.ticket_id').select('issuing_tickets.code_hash')
      .where('issuing_activations.licensor_id', '=', licensor.id).where('issuing_activations.serial', '=', request.serial).where('issuing_activations.state', '<>', 'deactivated')
      .where('issuing_tickets.product_code', '=', whole(ticket.product_code)).where('issuing_tickets.renewal_of', 'is', null).executeTakeFirst();
    if (product !== undefined) throw refuse.ticket(`product ${whole(ticket.product_code)} is active on container ${request.serial} already (ticket ${ticketRef(Uint8Array.from(product.code_hash))})`);
    const spec = activationSpec(template, now);
    const put: UpdateOperation = { op: 'put-product', product: spec };
    const operations: UpdateOperation[] = request.firmUpdateCounter === null ? [{ op: 'create-firm', text: licensor.name }, put] : [put];
    return spec.expiration === undefined ? { operations } : { operations, expiration: spec.expiration };
  }
  const rootId = whole(ticket.renewal_of);
  const base = await tx.selectFrom('issuing_activations').select('state').where('ticket_id', '=', rootId).where('serial', '=', request.serial).where('state', 'in', ['pending', 'confirmed']).executeTakeFirst();
  if (base === undefined) throw refuse.ticket(`the ticket this one renews is not active on container ${request.serial}`);
  if (request.firmUpdateCounter === null) throw refuse.conflict('no-license', `container ${request.serial} has no firm item of ${licensor.name} to renew`);
  return renewalOperations(template, await currentExpiration(tx, rootId, request.serial), now);
}

/**
 * A pending activation asked for again with another firm update counter (the card refused its update: another update
 * came first): the same operations under the new counter, replacing the old update. Never for add-units, which the
 * card would count twice if both updates were applied.
 */
function reissuable(pending: Activation, request: ActivationRequest, firmText: string): UpdateOperation[] | undefined {
  if (pending.state !== 'pending' || nullableWhole(pending.requested_counter) === request.firmUpdateCounter) return undefined;
  const body = parseSignedBody(pending.update_text).body as UpdateBody;
  if (body.operations.some((op) => op.op === 'add-units')) return undefined;
  const rest = body.operations.filter((op) => op.op !== 'create-firm');
  // A renewal (extend) needs the firm item: it cannot be the container's first update.
  if (request.firmUpdateCounter === null && !rest.some((op) => op.op === 'put-product')) return undefined;
  return request.firmUpdateCounter === null ? [{ op: 'create-firm', text: firmText }, ...rest] : rest;
}

/**
 * POST /v1/activations. `options.lockAuthority`: the hub's key (`vsc license serve --hub-key`), set as the container's
 * lock authority by its first update of this licensor (000 §2.10: so that a container reported lost can be locked).
 */
export async function activateTicket(backend: IssuingBackend, request: ActivationRequest, caller: Caller, options: { readonly lockAuthority?: Uint8Array } = {}): Promise<SignedAnswer> {
  return issuingTransaction(backend.database, async (tx) => {
    const first = await ticketByCode(tx, request.ticket);
    const licensorId = whole(first.licensor_id);
    await lockLicensor(backend, tx, licensorId);
    await refuseLocked(tx, licensorId, request.serial, 'an activation');
    // Under the lock: a retry racing its first attempt finds it done and gets its answer.
    const seen = await repeated(backend, tx, request, caller);
    if (seen !== undefined) return { ...seen, binding: bindCardForLicensor(backend, await licensorById(tx, licensorId), request.serial, request.cardPublicKey) };
    const ticket = await ticketByCode(tx, request.ticket); // read again under the lock
    const ticketId = whole(ticket.id);
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    if (ticket.state === 'revoked') throw refuse.ticket(`ticket ${ref} is revoked`);
    const licensor = await licensorById(tx, licensorId);
    const template = await productTemplate(tx, licensorId, whole(ticket.product_code));
    const otherKey = await tx.selectFrom('issuing_activations').select('id').where('licensor_id', '=', licensorId).where('serial', '=', request.serial)
      .where('state', '<>', 'deactivated').where('card_public_key', '<>', request.cardPublicKey).executeTakeFirst();
    if (otherKey !== undefined) throw refuse.conflict('foreign', `container ${request.serial} is known to this licensor with another card key`);
    const now = backend.now();
    const live = await liveActivation(tx, ticketId, request.serial);
    let operations: UpdateOperation[];
    let expiration: UnixSeconds | null;
    if (live !== undefined) {
      const again = reissuable(live, request, licensor.name);
      if (again === undefined) throw refuse.ticket(`ticket ${ref} is activated on container ${request.serial} already`);
      operations = again;
      expiration = nullableWhole(live.expiration);
    } else {
      const seats = await tx.selectFrom('issuing_activations').select((eb) => eb.fn.countAll<number | string>().as('n')).where('ticket_id', '=', ticketId).where('state', '<>', 'deactivated').executeTakeFirstOrThrow();
      if (whole(seats.n) >= ticket.quantity) throw refuse.ticket(`ticket ${ref} is used up: all ${ticket.quantity} activations are taken`);
      const planned = await operationsFor(tx, licensor, ticket, template, request, now);
      operations = request.firmUpdateCounter === null && options.lockAuthority !== undefined ? [...planned.operations, { op: 'set-lock-authority', key: options.lockAuthority.slice() }] : planned.operations;
      expiration = planned.expiration ?? null;
    }
    // A license withdrawn from this container (001 blacklisting) comes first, at its counter; this update after it.
    const withdrawal = await deliverWithdrawal(backend, tx, licensor, request.serial, request.firmUpdateCounter);
    const updateCounter = withdrawal === undefined ? request.firmUpdateCounter ?? 0 : withdrawal.counter + 1;
    const signed = signForLicensor(backend, licensor, {
      kind: 'update', serial: request.serial, licensorKey: licensor.publicKey, firmCode: licensor.firmCode, time: now, updateCounter, operations,
    });
    const fields = {
      request_id: toHex(request.requestId), requested_counter: request.firmUpdateCounter, update_counter: updateCounter, update_text: signed.text,
      update_digest: signed.digest, expiration, updated_at: now,
    };
    if (live !== undefined) {
      await tx.updateTable('issuing_activations').set(fields).where('id', '=', whole(live.id)).execute();
    } else {
      await tx.insertInto('issuing_activations').values({
        ...fields, ticket_id: ticketId, licensor_id: licensorId, serial: request.serial, card_public_key: request.cardPublicKey, state: 'pending', created_at: now,
      }).execute();
      const seats = await tx.selectFrom('issuing_activations').select((eb) => eb.fn.countAll<number | string>().as('n')).where('ticket_id', '=', ticketId).where('state', '<>', 'deactivated').executeTakeFirstOrThrow();
      if (whole(seats.n) >= ticket.quantity) await tx.updateTable('issuing_tickets').set({ state: 'used', updated_at: now }).where('id', '=', ticketId).execute();
    }
    await appendAudit(backend, tx, caller, {
      licensorId, action: 'activation', subject: `ticket ${ref} serial ${request.serial}`, outcome: live === undefined ? 'ok' : 'reissued',
      detail: `update counter ${updateCounter}, ${operations.map((op) => op.op).join(' + ')}, digest ${toHex(signed.digest)}`,
    });
    return {
      update: signed.text, digest: toHex(signed.digest), binding: bindCardForLicensor(backend, licensor, request.serial, request.cardPublicKey),
      ...(withdrawal === undefined ? {} : { withdrawal: { update: withdrawal.update, digest: withdrawal.digest } }),
    };
  });
}

export interface TicketView {
  readonly ticket: string;
  readonly state: 'open' | 'used' | 'revoked';
  readonly quantity: number;
  readonly renewalOf?: string;
  readonly product: { readonly code: number; readonly text: string };
  readonly licensor: { readonly name: string; readonly firmCode: number; readonly publicKey: string };
  readonly activations: ReadonlyArray<{ serial: string; state: string; digest: string; createdAt: number; expiration?: number }>;
}

/** GET /v1/tickets/:ticket: what the ticket's holder may see of it. */
export async function viewTicket(backend: IssuingBackend, code: string, caller: Caller): Promise<TicketView> {
  return issuingTransaction(backend.database, async (tx) => {
    const ticket = await ticketByCode(tx, code);
    const licensor = await licensorById(tx, whole(ticket.licensor_id));
    const product = await tx.selectFrom('issuing_products').select('text').where('licensor_id', '=', licensor.id).where('product_code', '=', whole(ticket.product_code)).executeTakeFirstOrThrow();
    const rows = await tx.selectFrom('issuing_activations').selectAll().where('ticket_id', '=', whole(ticket.id)).orderBy('id').execute();
    const root = ticket.renewal_of === null ? undefined : await tx.selectFrom('issuing_tickets').select('code_hash').where('id', '=', whole(ticket.renewal_of)).executeTakeFirstOrThrow();
    const ref = ticketRef(Uint8Array.from(ticket.code_hash));
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'ticket.view', subject: `ticket ${ref}`, outcome: 'ok' });
    return {
      ticket: ref, state: ticket.state, quantity: ticket.quantity, ...(root === undefined ? {} : { renewalOf: ticketRef(Uint8Array.from(root.code_hash)) }),
      product: { code: whole(ticket.product_code), text: product.text },
      licensor: { name: licensor.name, firmCode: licensor.firmCode, publicKey: toHex(licensor.publicKey) },
      activations: rows.map((row) => ({
        serial: row.serial, state: row.state, digest: toHex(Uint8Array.from(row.update_digest)), createdAt: whole(row.created_at),
        ...(row.expiration === null ? {} : { expiration: whole(row.expiration) }),
      })),
    };
  });
}
