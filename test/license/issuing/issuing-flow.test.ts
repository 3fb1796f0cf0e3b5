// The issuing back end end to end over real HTTP (Wibu 002: order in an ERP or shop -> ticket -> activation online or
// offline -> the card's receipt; renewals for subscriptions and instalments; deactivation returns a seat; 000 §2.6
// firm update counter): every update verifies under the licensor's key, parses, and is applied by a card that checks
// serial and counter.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  parseCardBinding, verifyCardBinding,
  encodeActivationRequest, encodeReceiptRequest, IssuingRefusal, parseActivationRequest, parseReceiptRequest, parseSignedBody, verifyLicenseBody, type TimeBody, type UpdateBody,
} from '../../../src/license/index.js';
import { startIssuingHarness, START, template, TestCard, type IssuingHarness } from './issuing-fixture.js';

let h: IssuingHarness;
beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template() });
  await h.a.client.defineProduct({ code: 20, text: 'Editor Subscription', template: template({ durationSeconds: 30 * 86_400 }) });
  await h.a.client.defineProduct({ code: 30, text: 'Render Credits', template: template({ unitLimit: 1000 }) });
  await h.a.client.defineProduct({ code: 40, text: 'Site License', template: template({ maxActivations: 3, maxDeactivations: 2, cyclePeriodSeconds: 86_400 }) });
}, 30_000);
afterAll(() => h.close());

async function ticketFor(productCode: number, quantity = 1, renewalOf?: string): Promise<string[]> {
  const orderId = `SO-${randomBytes(6).toString('hex')}`;
  return (await h.a.client.placeOrder({ orderId, items: [{ productCode, quantity, ...(renewalOf === undefined ? {} : { renewalOf }) }] })).tickets;
}

/** Activation online, the card applies the update, the receipt confirms: the update's body. */
async function activateOn(card: TestCard, ticket: string): Promise<UpdateBody> {
  const answer = await h.customer.activate(card.activation(ticket, h.a));
  const receipt = await h.customer.receipt({ ticket, serial: card.serial, record: card.apply(answer.update) });
  expect(receipt.state).toBe('confirmed');
  return parseSignedBody(answer.update).body as UpdateBody;
}

describe('order -> ticket -> activation -> receipt', () => {
  it('makes a ticket whose activation is a signed update the card applies and whose receipt confirms it', async () => {
    const [ticket] = await ticketFor(10);
    expect(ticket).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){4}$/);
    const card = new TestCard();
    const answer = await h.customer.activate(card.activation(ticket!, h.a));
    const signed = parseSignedBody(answer.update);
    expect(verifyLicenseBody(signed)).toBe(true);
    const body = signed.body as UpdateBody;
    expect(toHex(body.licensorKey)).toBe(toHex(h.a.publicKey));
    expect(body).toMatchObject({ kind: 'update', serial: card.serial, firmCode: 1001, updateCounter: 0, time: START });
    expect(body.operations.map((op) => op.op)).toEqual(['create-firm', 'put-product']);
    expect(body.operations[0]).toEqual({ op: 'create-firm', text: 'Example Software' });
    expect((await h.customer.ticket(ticket!)).activations).toEqual([expect.objectContaining({ serial: card.serial, state: 'pending', digest: answer.digest })]);
    // With it the licensor's card binding, the trust root of the customer's programs: this card's key, this licensor.
    const binding = parseCardBinding(answer.binding!);
    expect(() => verifyCardBinding(binding, h.a.publicKey)).not.toThrow();
    expect(binding).toMatchObject({ serial: card.serial, cardPublicKey: card.key.publicKey, keyMode: 'individual' });
    expect(() => verifyCardBinding(binding, h.b.publicKey)).toThrow();

    const record = card.apply(answer.update);
    expect(await h.customer.receipt({ ticket: ticket!, serial: card.serial, record })).toEqual({ state: 'confirmed', serial: card.serial, ticket: expect.stringMatching(/^[0-9a-f]{16}$/) });
    const view = await h.customer.ticket(ticket!);
    expect(view).toMatchObject({ state: 'used', quantity: 1, product: { code: 10, text: 'Editor' }, licensor: { name: 'Example Software', firmCode: 1001, publicKey: toHex(h.a.publicKey) } });
    expect(view.activations[0]!.state).toBe('confirmed');
    // The same receipt again: the same answer, nothing moves.
    expect((await h.customer.receipt({ ticket: ticket!, serial: card.serial, record })).state).toBe('confirmed');
  });

  it('puts a second product of the same licensor with put-product alone, under the card\'s firm update counter', async () => {
    const card = new TestCard();
    await activateOn(card, (await ticketFor(10))[0]!);
    const body = await activateOn(card, (await ticketFor(30))[0]!);
    expect(body.updateCounter).toBe(1);
    expect(body.operations.map((op) => op.op)).toEqual(['put-product']);
    expect(card.product(h.a, 30)?.unitLimit).toBe(1000);
  });

  it('works offline through files: the request file is the activation body, the receipt file the receipt body', async () => {
    const [ticket] = await ticketFor(10);
    const card = new TestCard();
    const requestFile = encodeActivationRequest(card.activation(ticket!, h.a));
    // ... carried to a machine online ...
    const answer = await h.customer.activate(parseActivationRequest(requestFile));
    // ... the update file carried back, applied, the receipt file carried out again ...
    const receiptFile = encodeReceiptRequest({ ticket: ticket!, serial: card.serial, record: card.apply(answer.update) });
    expect((await h.customer.receipt(parseReceiptRequest(receiptFile))).state).toBe('confirmed');
  });

  it('answers the same update to the same requestId, and refuses the used-up ticket to a new one', async () => {
    const [ticket] = await ticketFor(10);
    const card = new TestCard();
    const request = card.activation(ticket!, h.a);
    const first = await h.customer.activate(request);
    expect(await h.customer.activate(request)).toEqual(first);
    const replay = await h.customer.activate({ ...request, requestId: Uint8Array.from(randomBytes(16)) }).catch((error: unknown) => error);
    expect(replay).toBeInstanceOf(IssuingRefusal);
    expect(replay).toMatchObject({ status: 409, reason: 'ticket' });
    const elsewhere = await h.customer.activate(new TestCard().activation(ticket!, h.a)).catch((error: unknown) => error);
    expect(elsewhere).toMatchObject({ status: 409, reason: 'ticket', message: expect.stringContaining('used up') });
    // The same requestId with another request is refused, not answered.
    const other = await h.customer.activate({ ...request, serial: 'OTHER' }).catch((error: unknown) => error);
    expect(other).toMatchObject({ status: 409, reason: 'input' });
  });

  it('reissues a pending update under the counter the card reports when the card refused the first', async () => {
    const card = new TestCard();
    const [t1] = await ticketFor(10);
    const [t2] = await ticketFor(30);
    // Both requests written offline at once: both say "no firm item yet".
    const first = await h.customer.activate(card.activation(t1!, h.a));
    const second = await h.customer.activate(card.activation(t2!, h.a));
    card.apply(first.update);
    expect(() => card.apply(second.update)).toThrow(expect.objectContaining({ reason: 'replayed' }));
    const again = await h.customer.activate(card.activation(t2!, h.a));
    expect(again.digest).not.toBe(second.digest);
    expect((parseSignedBody(again.update).body as UpdateBody).operations.map((op) => op.op)).toEqual(['put-product']);
    expect((await h.customer.receipt({ ticket: t2!, serial: card.serial, record: card.apply(again.update) })).state).toBe('confirmed');
  });

  it('refuses a receipt that the activation\'s card did not sign, or that names another digest', async () => {
    const [ticket] = await ticketFor(10);
    const card = new TestCard();
    const answer = await h.customer.activate(card.activation(ticket!, h.a));
    const record = card.apply(answer.update);
    const forged = new TestCard(card.serial).sign(record.text);
    await expect(h.customer.receipt({ ticket: ticket!, serial: card.serial, record: forged })).rejects.toMatchObject({ status: 422, reason: 'signature' });
    const wrongDigest = card.sign(record.text.replace(/digest [0-9a-f]{64}$/, `digest ${'0'.repeat(64)}`));
    await expect(h.customer.receipt({ ticket: ticket!, serial: card.serial, record: wrongDigest })).rejects.toMatchObject({ status: 409, reason: 'ticket' });
    expect((await h.customer.ticket(ticket!)).activations[0]!.state).toBe('pending');
  });
});

describe('renewals (002: instalments and subscriptions)', () => {
  it('extends a subscription by its duration from its current expiration, and from now once it has run out', async () => {
    const [ticket] = await ticketFor(20);
    const card = new TestCard();
    await activateOn(card, ticket!);
    expect(card.product(h.a, 20)?.expiration).toBe(START + 30 * 86_400);
    const [renewal] = await ticketFor(20, 1, ticket);
    const body = await activateOn(card, renewal!);
    expect(body.operations).toEqual([{ op: 'extend', productCode: 20, expiration: START + 60 * 86_400 }]);
    expect(card.product(h.a, 20)?.expiration).toBe(START + 60 * 86_400);
    // Long after it ran out, a renewal (of the renewal: it renews the original) starts from now.
    h.clock.now = START + 100 * 86_400;
    try {
      const [late] = await ticketFor(20, 1, renewal);
      await activateOn(card, late!);
      expect(card.product(h.a, 20)?.expiration).toBe(START + 130 * 86_400);
    } finally {
      h.clock.now = START;
    }
  });

  it('adds one instalment of units for a pay-per-use renewal, only where the renewed ticket is active', async () => {
    const [ticket] = await ticketFor(30);
    const card = new TestCard();
    await activateOn(card, ticket!);
    const [renewal] = await ticketFor(30, 1, ticket);
    await expect(h.customer.activate(new TestCard().activation(renewal!, h.a))).rejects.toMatchObject({ status: 409, reason: 'ticket' });
    await expect(h.customer.activate({ ...card.activation(renewal!, h.a), firmUpdateCounter: null })).rejects.toMatchObject({ status: 409, reason: 'no-license' });
    const stranger = new TestCard();
    await activateOn(stranger, (await ticketFor(10))[0]!);
    await expect(h.customer.activate(stranger.activation(renewal!, h.a))).rejects.toMatchObject({ status: 409, reason: 'ticket' });
    const body = await activateOn(card, renewal!);
    expect(body.operations).toEqual([{ op: 'add-units', productCode: 30, units: 1000 }]);
    expect(card.product(h.a, 30)?.unitLimit).toBe(2000);
  });

  it('refuses to renew a product with nothing to renew, or a ticket of another product', async () => {
    const [ticket] = await ticketFor(10);
    await expect(ticketFor(10, 1, ticket)).rejects.toMatchObject({ status: 409, reason: 'input' });
    await expect(ticketFor(20, 1, ticket)).rejects.toMatchObject({ status: 409, reason: 'input' });
  });
});

describe('volume, deactivation and activation cycling', () => {
  it('activates a volume ticket on up to maxActivations containers, and splits larger orders into tickets', async () => {
    const tickets = await ticketFor(40, 7);
    expect(tickets).toHaveLength(3);
    expect((await h.customer.ticket(tickets[0]!)).quantity).toBe(3);
    expect((await h.customer.ticket(tickets[2]!)).quantity).toBe(1);
    const cards = [new TestCard(), new TestCard(), new TestCard()];
    for (const card of cards) await activateOn(card, tickets[0]!);
    await expect(h.customer.activate(new TestCard().activation(tickets[0]!, h.a))).rejects.toMatchObject({ status: 409, reason: 'ticket' });
    expect((await h.customer.ticket(tickets[0]!)).state).toBe('used');
  });

  it('returns a seat once the deactivation\'s receipt arrives, and limits the cycling', async () => {
    const [ticket] = await ticketFor(40, 1);
    const first = new TestCard();
    await activateOn(first, ticket!);
    await expect(h.customer.activate(new TestCard().activation(ticket!, h.a))).rejects.toMatchObject({ reason: 'ticket' });
    const requestId = Uint8Array.from(randomBytes(16));
    const deactivation = await h.customer.deactivate({ ticket: ticket!, serial: first.serial, requestId });
    expect(await h.customer.deactivate({ ticket: ticket!, serial: first.serial, requestId })).toEqual(deactivation);
    const body = parseSignedBody(deactivation.update).body as UpdateBody;
    expect(body.operations).toEqual([{ op: 'delete-product', productCode: 40 }]);
    expect(body.updateCounter).toBe(1);
    // No seat yet: the deletion is not proven.
    await expect(h.customer.activate(new TestCard().activation(ticket!, h.a))).rejects.toMatchObject({ reason: 'ticket' });
    expect((await h.customer.receipt({ ticket: ticket!, serial: first.serial, record: first.apply(deactivation.update) })).state).toBe('deactivated');
    expect(first.product(h.a, 40)).toBeUndefined();
    expect((await h.customer.ticket(ticket!)).state).toBe('open');

    const second = new TestCard();
    await activateOn(second, ticket!);
    const back = await h.customer.deactivate({ ticket: ticket!, serial: second.serial, requestId: Uint8Array.from(randomBytes(16)) });
    await h.customer.receipt({ ticket: ticket!, serial: second.serial, record: second.apply(back.update) });
    const third = new TestCard();
    await activateOn(third, ticket!);
    // Two deactivations a day: the third is refused with when to ask again.
    const refused = await h.customer.deactivate({ ticket: ticket!, serial: third.serial, requestId: Uint8Array.from(randomBytes(16)) }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 429, reason: 'limit' });
    expect((refused as IssuingRefusal).retryAfterSeconds).toBeGreaterThan(0);
    h.clock.now = START + 86_401;
    try {
      await h.customer.deactivate({ ticket: ticket!, serial: third.serial, requestId: Uint8Array.from(randomBytes(16)) });
    } finally {
      h.clock.now = START;
    }
  });

  it('refuses to deactivate an unconfirmed activation or a renewal ticket', async () => {
    const [ticket] = await ticketFor(20);
    const card = new TestCard();
    await h.customer.activate(card.activation(ticket!, h.a));
    await expect(h.customer.deactivate({ ticket: ticket!, serial: card.serial, requestId: Uint8Array.from(randomBytes(16)) })).rejects.toMatchObject({ status: 409, reason: 'ticket' });
  });
});

describe('certified time', () => {
  it('answers a time certificate of the firm code\'s licensor over the container\'s nonce', async () => {
    const nonce = Uint8Array.from(randomBytes(16));
    const answer = await h.customer.time({ serial: 'CARD-T', firmCode: 1002, nonce });
    const signed = parseSignedBody(answer.certificate);
    expect(verifyLicenseBody(signed)).toBe(true);
    expect(signed.body as TimeBody).toMatchObject({ kind: 'time', serial: 'CARD-T', firmCode: 1002, time: START, resetClock: false });
    expect(toHex((signed.body as TimeBody).licensorKey)).toBe(toHex(h.b.publicKey));
    expect(toHex((signed.body as TimeBody).nonce)).toBe(toHex(nonce));
    await expect(h.customer.time({ serial: 'CARD-T', firmCode: 4242, nonce })).rejects.toMatchObject({ status: 404, reason: 'no-license' });
  });
});
