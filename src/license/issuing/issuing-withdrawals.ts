// Licenses withdrawn from a container after their reactivation on another device (001 "Using Blacklists": "the old
// license is withdrawn", and with the global setting "a 'Honey Pot' license is created automatically — activated like
// an automatic container update"). The withdrawal waits for the old container's next contact with this licensor: its
// next activation, time certificate or checkpoint renewal answer carries it as "withdrawal", a signed update at the
// counter the container has, and the answer's own update is signed for the counter after it — so the container gets
// nothing new from this licensor without applying the withdrawal first. The card's receipt of it (POST /v1/receipts,
// no ticket) ends it.
import { toHex, utf8 } from '../../bytes/index.js';
import type { UpdateOperation } from '../license-update.js';
import type { IssuingBackend, LicensorRecord } from './issuing-backend.js';
import { whole, type IssuingTransaction } from './issuing-database.js';
import { issuedCounter, issueLostUpdate, lostUpdate, updateAnswer } from './issuing-updates.js';

/** The protected data that marks a honey-pot item: the licensor's program sees it and knows the copy is a withdrawn one. */
export const HONEY_POT_MARKER = utf8('honey-pot');

export interface Withdrawal {
  /** The signed update, to apply before the answer's own update. */
  readonly update: string;
  readonly digest: string;
  /** Its firm update counter: the answer's own update is signed for the one after. */
  readonly counter: number;
}

export interface WithdrawalEntry {
  readonly licensorId: number;
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  /** The container's firm update counter by this service's updates, worked out before its activation moved away. */
  readonly counter: number;
  readonly productCode: number;
  readonly mode: 'delete' | 'honey-pot';
  readonly ticketId: number;
}

/** Queues the withdrawal of a product from a container. */
export async function queueWithdrawal(backend: IssuingBackend, tx: IssuingTransaction, entry: WithdrawalEntry): Promise<void> {
  const now = backend.now();
  await tx.insertInto('issuing_withdrawals').values({
    licensor_id: entry.licensorId, serial: entry.serial, card_public_key: entry.cardPublicKey, product_code: entry.productCode, mode: entry.mode, counter: entry.counter, ticket_id: entry.ticketId, update_id: null, state: 'waiting',
    created_at: now, updated_at: now,
  }).execute();
}

async function operationsFor(tx: IssuingTransaction, licensorId: number, rows: ReadonlyArray<{ product_code: number | string; mode: 'delete' | 'honey-pot' }>): Promise<UpdateOperation[]> {
  const operations: UpdateOperation[] = [];
  for (const row of rows) {
    const productCode = whole(row.product_code);
    if (row.mode === 'delete') {
      operations.push({ op: 'delete-product', productCode });
      continue;
    }
    const product = await tx.selectFrom('issuing_products').select('text').where('licensor_id', '=', licensorId).where('product_code', '=', productCode).executeTakeFirst();
    operations.push({
      op: 'put-product',
      product: {
        productCode, text: product?.text ?? `Product ${productCode}`, featureMap: 0, payment: 'prepaid', licenseQuantity: 1,
        protectedData: HONEY_POT_MARKER.slice(), hiddenData: new Uint8Array(0), secretData: new Uint8Array(0),
      },
    });
  }
  return operations;
}

/**
 * The withdrawal the container `serial` gets at this contact, or undefined. `counter`: the firm update counter the
 * request reports (null: no firm item of this licensor — nothing to sign for, the withdrawal waits; undefined: not
 * reported, as for a time certificate — the counter by this service's updates is used). Only the card-signed receipt
 * of a withdrawal ends it (withdrawalsApplied): a counter the request merely claims never does, so a container that
 * lies about its counter keeps getting the withdrawal, and nothing new from this licensor.
 */
export async function deliverWithdrawal(backend: IssuingBackend, tx: IssuingTransaction, licensor: LicensorRecord, serial: string, counter: number | null | undefined): Promise<Withdrawal | undefined> {
  if (counter === null) return undefined;
  const rows = await tx.selectFrom('issuing_withdrawals').selectAll().where('licensor_id', '=', licensor.id).where('serial', '=', serial).where('state', '<>', 'done').orderBy('id').execute();
  if (rows.length === 0) return undefined;
  const issuedIds = new Set(rows.map((row) => (row.update_id === null ? null : whole(row.update_id))));
  const single = issuedIds.size === 1 ? [...issuedIds][0] : null;
  if (single !== null && single !== undefined) {
    const issued = await lostUpdate(tx, single);
    // Asked again before its receipt: the same update, unless the container reports another counter.
    if (counter === undefined || issued.counter === counter) return { ...updateAnswer(issued), counter: issued.counter };
  }
  const at = counter ?? Math.max(await issuedCounter(tx, licensor.id, serial), ...rows.map((row) => whole(row.counter)));
  const update = await issueLostUpdate(backend, tx, licensor, {
    kind: 'withdrawal', serial, cardPublicKey: Uint8Array.from(rows[0]!.card_public_key), updateCounter: at,
    operations: await operationsFor(tx, licensor.id, rows), ticketId: whole(rows[0]!.ticket_id),
  });
  await tx.updateTable('issuing_withdrawals').set({ state: 'issued', update_id: update.id, updated_at: backend.now() }).where('id', 'in', rows.map((row) => whole(row.id))).execute();
  return { ...updateAnswer(update), counter: update.counter };
}

/**
 * The withdrawal an earlier answer carried, for answering a repeated request the same: an update signed for one past
 * the counter asked for was signed after a withdrawal at that counter.
 */
export async function withdrawalBefore(tx: IssuingTransaction, licensorId: number, serial: string, asked: number | null, updateCounter: number): Promise<{ update: string; digest: string } | undefined> {
  if (asked === null || updateCounter === asked) return undefined;
  const row = await tx.selectFrom('issuing_updates').select(['update_text', 'update_digest']).where('licensor_id', '=', licensorId).where('serial', '=', serial)
    .where('kind', '=', 'withdrawal').where('update_counter', '=', asked).orderBy('id', 'desc').executeTakeFirst();
  return row === undefined ? undefined : { update: row.update_text, digest: toHex(Uint8Array.from(row.update_digest)) };
}

/**
 * A receipt of a withdrawal's update: the withdrawals it carried are done — those it was issued for, and (an update
 * re-signed since under another counter) those of its container queued before it was issued.
 */
export async function withdrawalsApplied(backend: IssuingBackend, tx: IssuingTransaction, update: { readonly id: number; readonly licensorId: number; readonly serial: string; readonly createdAt: number }): Promise<void> {
  await tx.updateTable('issuing_withdrawals').set({ state: 'done', updated_at: backend.now() }).where('licensor_id', '=', update.licensorId).where('serial', '=', update.serial)
    .where('state', '<>', 'done').where((eb) => eb.or([eb('update_id', '=', update.id), eb('created_at', '<=', update.createdAt)])).execute();
}
