// The issuing back end's store on a real PostgreSQL (`vsc license serve --db postgres://...`; Wibu 002 back-end issuing):
// license-schema.sql applies there too, and the whole story holds (order, activation, receipt, renewal, deactivation,
// idempotent order ids, a refused request leaves every table as it was). Concurrent activations of a ticket's last seat
// from many clients hand it out once: the licensor's row lock serialises them. The lost-license tables too (restore
// with its alert chain and lock, transfer, reactivation with a withdrawal, checkpoint). Runs in the `db` project.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backupItemFileJson, parseSignedBody, type UpdateBody } from '../../../src/license/index.js';
import { freshPostgresDatabase } from '../../support/index.js';
import { startIssuingHarness, START, template, TestCard, type IssuingHarness } from './issuing-fixture.js';
import { activated, policy, RealCard, requestId } from './lost-fixture.js';

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

  it('restores, transfers, reactivates and renews checkpoints with the lost-license tables on PostgreSQL', async () => {
    await h.a.client.defineProduct({ code: 30, text: 'Editor', template: template({ hiddenData: 'c0ffee', unitLimit: 50 }) });
    await h.a.client.defineProduct({ code: 40, text: 'Checkpoint', template: template({ checkpoint: { validityDays: 30, thresholdDays: 7 } }) });
    await h.a.client.setRestorePolicy(policy({ alerts: { intervalSeconds: 86_400, alertAt: 2, stopAt: 2 }, reactivation: { maxPerPeriod: 1, periodSeconds: 86_400, approval: 'auto', blacklist: 'license' } }));
    // Restore A -> B: the source locked; B -> C stops for approval (stopAt 2), approved, then goes ahead.
    const a = await RealCard.open();
    await activated(h, a, 30);
    const b = await RealCard.open();
    const restored = await h.customer.restore({ item: backupItemFileJson(await a.backupItem(h.a)), target: b.target(h.a), requestId: requestId() });
    await h.customer.receipt({ serial: b.serial, record: await b.apply(restored.update) });
    expect(b.product(h.a, 30)).toMatchObject({ unitLimit: 50 });
    expect((await h.a.client.locks()).map((lock) => lock.serial)).toContain(a.serial);
    const c = await RealCard.open();
    const request = { item: backupItemFileJson(await b.backupItem(h.a)), target: c.target(h.a), requestId: requestId() };
    const stopped = await h.customer.restore(request).catch((error: unknown) => error);
    expect(stopped).toMatchObject({ status: 409, reason: 'approval' });
    await h.a.client.approveAlert((stopped as { details: { alert: number } }).details.alert);
    await c.apply((await h.customer.restore(request)).update);
    // Transfer C -> D with its proof resent.
    const d = await RealCard.open();
    const started = await h.customer.transfer({ item: backupItemFileJson(await c.backupItem(h.a)), target: d.target(h.a), requestId: requestId() });
    const proof = { record: await c.apply(started.deleteUpdate) };
    const done = await h.customer.proveTransfer(started.transfer, proof);
    expect(await h.customer.proveTransfer(started.transfer, proof)).toEqual(done);
    await d.apply(done.update);
    expect(d.product(h.a, 30)).toBeDefined();
    // Reactivation on another device: the old container's license withdrawn at its next contact.
    const e = await RealCard.open();
    const ticket = await activated(h, e, 40);
    const f = await RealCard.open();
    await f.apply((await h.customer.reactivate({ ticket, ...f.target(h.a), requestId: requestId(), reason: 'other-device' })).update);
    const time = await h.customer.time({ serial: e.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) });
    await e.apply(time.withdrawal!.update);
    expect(e.product(h.a, 40)).toBeUndefined();
    // Checkpoint renewal on the new container once due.
    h.clock.now = START + 24 * 86_400;
    try {
      const renewed = await h.customer.checkpoint({ ticket, serial: f.serial, firmUpdateCounter: f.counter(h.a)!, requestId: requestId() });
      await f.apply(renewed.update);
      expect(f.product(h.a, 40)!.expiration).toBe(START + 54 * 86_400);
    } finally {
      h.clock.now = START;
    }
    const counts = await h.counts();
    for (const table of ['issuing_restore_policies', 'issuing_updates', 'issuing_restores', 'issuing_locks', 'issuing_alerts', 'issuing_withdrawals']) expect(counts[table]).toBeGreaterThan(0);
  });
});
