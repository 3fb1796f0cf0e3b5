// The issuing back end's store on a real PostgreSQL (`vsc license serve --db postgres://...`; Wibu 002 back-end issuing):
// license-schema.sql applies there too, and the whole story holds (order, activation, receipt, renewal, deactivation,
// idempotent order ids, a refused request leaves every table as it was). Concurrent activations of a ticket's last seat
// from many clients hand it out once: the licensor's row lock serialises them. Runs in the `db` project.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseSignedBody, type UpdateBody } from '../../../src/license/index.js';
import { freshPostgresDatabase } from '../../support/index.js';
import { startIssuingHarness, START, template, TestCard, type IssuingHarness } from './issuing-fixture.js';

let h: IssuingHarness;
beforeAll(async () => {
  h = await startIssuingHarness({ databaseUrl: await freshPostgresDatabase(inject('postgresUrl')) });
  await h.a.client.defineProduct({ code: 20, text: 'Subscription', template: template({ durationSeconds: 1000, maxActivations: 2 }) });
}, 60_000);
afterAll(() => h.close());

describe('the issuing store on PostgreSQL', () => {
  it('runs order -> activation -> receipt -> renewal -> deactivation -> seat back', async () => {
    expect(h.backend.database.dialect).toBe('postgres');
    const { tickets: [ticket] } = await h.a.client.placeOrder({ orderId: 'PG-1', items: [{ productCode: 20, quantity: 1 }] });
    expect((await h.a.client.placeOrder({ orderId: 'PG-1', items: [{ productCode: 20, quantity: 1 }] })).tickets).toEqual([ticket]);
    const card = new TestCard();
    const answer = await h.customer.activate(card.activation(ticket!, h.a));
    await expect(h.customer.activate(card.activation(ticket!, h.a))).rejects.toMatchObject({ status: 409, reason: 'ticket' });
    expect((await h.customer.receipt({ ticket: ticket!, serial: card.serial, record: card.apply(answer.update) })).state).toBe('confirmed');
    expect(card.product(h.a, 20)?.expiration).toBe(START + 1000);

    const { tickets: [renewal] } = await h.a.client.placeOrder({ orderId: 'PG-2', items: [{ productCode: 20, quantity: 1, renewalOf: ticket! }] });
    const renewed = await h.customer.activate(card.activation(renewal!, h.a));
    expect((parseSignedBody(renewed.update).body as UpdateBody).operations).toEqual([{ op: 'extend', productCode: 20, expiration: START + 2000 }]);
    await h.customer.receipt({ ticket: renewal!, serial: card.serial, record: card.apply(renewed.update) });

    const deactivation = await h.customer.deactivate({ ticket: ticket!, serial: card.serial, requestId: Uint8Array.from(randomBytes(16)) });
    expect((await h.customer.receipt({ ticket: ticket!, serial: card.serial, record: card.apply(deactivation.update) })).state).toBe('deactivated');
    expect((await h.customer.ticket(ticket!)).state).toBe('open');
    const records = await h.a.client.audit({ limit: 1000 });
    expect(records.map((record) => record.action)).toEqual(expect.arrayContaining(['order.create', 'activation', 'activation.receipt', 'deactivation', 'deactivation.receipt']));
  });

  it('refuses bad requests without changing a table', async () => {
    const before = await h.counts();
    await expect(h.a.client.placeOrder({ orderId: 'PG-1', items: [{ productCode: 20, quantity: 2 }] })).rejects.toMatchObject({ status: 409, reason: 'input' });
    await expect(h.b.client.placeOrder({ orderId: 'PG-X', items: [{ productCode: 20, quantity: 1 }] })).rejects.toMatchObject({ status: 404 });
    await expect(h.customer.activate(new TestCard().activation('AAAAA-AAAAA-AAAAA-AAAAA-AAAAA', h.a))).rejects.toMatchObject({ status: 404, reason: 'ticket' });
    expect(await h.counts()).toEqual(before);
  });

  it('hands a ticket\'s seats out once when many clients ask at the same time', async () => {
    const { tickets: [ticket] } = await h.a.client.placeOrder({ orderId: 'PG-RACE', items: [{ productCode: 20, quantity: 2 }] });
    const cards = Array.from({ length: 12 }, () => new TestCard());
    const outcomes = await Promise.allSettled(cards.map((card) => h.customer.activate(card.activation(ticket!, h.a))));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(2);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ status: 409, reason: 'ticket' });
    expect((await h.customer.ticket(ticket!)).activations).toHaveLength(2);
  });

  it('answers the same update to a request and its retry racing it', async () => {
    const { tickets: [ticket] } = await h.a.client.placeOrder({ orderId: 'PG-RETRY', items: [{ productCode: 20, quantity: 1 }] });
    const request = new TestCard().activation(ticket!, h.a);
    const [one, two] = await Promise.all([h.customer.activate(request), h.customer.activate(request)]);
    expect(two).toEqual(one);
  });

  it('answers one set of tickets to the same order placed twice at once', async () => {
    const order = { orderId: 'PG-TWICE', items: [{ productCode: 20, quantity: 3 }] };
    const [one, two] = await Promise.all([h.a.client.placeOrder(order), h.a.client.placeOrder(order)]);
    expect(one.tickets).toHaveLength(2);
    expect(two.tickets).toEqual(one.tickets);
  });
});
