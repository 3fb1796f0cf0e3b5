// Reactivation over real HTTP with real cards (001 "Reactivation on the Same Device", "Reactivating a License": the ISV
// defines how often, how often per time, manual approval; "Using Blacklists": the old license is withdrawn — deleted,
// or a honey-pot license "activated like an automatic container update" — or the whole container blacklisted).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromUtf8 } from '../../../src/bytes/index.js';
import { generateEd25519Seed } from '../../../src/crypto/index.js';
import { HONEY_POT_MARKER, IssuingRefusal, parseSignedBody, type ReactivationRequest, type UpdateBody } from '../../../src/license/index.js';
import { startIssuingHarness, START, template, type IssuingHarness } from './issuing-fixture.js';
import { activated, policy, RealCard, requestId } from './lost-fixture.js';

let h: IssuingHarness;
const rules = (fields: Record<string, unknown> = {}) => policy({ reactivation: { maxPerPeriod: 2, periodSeconds: 86_400, approval: 'auto', blacklist: 'license', ...fields } });

beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template({ featureMap: 7, protectedData: '0102' }) });
  await h.a.client.defineProduct({ code: 30, text: 'Plugin', template: template() });
  await h.a.client.setRestorePolicy(rules());
}, 30_000);
afterAll(() => h.close());

async function refusal(promise: Promise<unknown>): Promise<IssuingRefusal> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(IssuingRefusal);
  return error as IssuingRefusal;
}

const reactivation = (ticket: string, card: RealCard, reason: ReactivationRequest['reason']): ReactivationRequest => ({ ticket, ...card.target(h.a), requestId: requestId(), reason });
const placeTicket = async (code: number): Promise<string> => (await h.a.client.placeOrder({ orderId: `SO-${randomBytes(6).toString('hex')}`, items: [{ productCode: code, quantity: 1 }] })).tickets[0]!;

describe('reactivation on the same device (a reset container)', () => {
  it('answers the ticket\'s product again for the reset container, and refuses a container that was not reset', async () => {
    const seed = generateEd25519Seed();
    const card = await RealCard.open(undefined, seed);
    const ticket = await activated(h, card, 10);
    expect((await refusal(h.customer.reactivate(reactivation(ticket, card, 'same-device'))))).toMatchObject({ status: 409, reason: 'ticket' });
    const reset = await RealCard.open(card.serial, seed);
    const request = reactivation(ticket, reset, 'same-device');
    const answer = await h.customer.reactivate(request);
    expect(await h.customer.reactivate(request)).toEqual(answer);
    expect((parseSignedBody(answer.update).body as UpdateBody).operations.map((op) => op.op)).toEqual(['create-firm', 'put-product']);
    const record = await reset.apply(answer.update);
    expect(reset.product(h.a, 10)).toMatchObject({ featureMap: 7 });
    expect(await h.customer.receipt({ ticket, serial: reset.serial, record })).toMatchObject({ state: 'confirmed', ticket: expect.any(String) });
    expect((await h.customer.ticket(ticket)).activations).toEqual([expect.objectContaining({ serial: card.serial, state: 'confirmed' })]);
  });
});

describe('reactivation on another device', () => {
  it('moves the activation, and withdraws the license from the old container at its next contact (a time certificate)', async () => {
    const old = await RealCard.open();
    const ticket = await activated(h, old, 10);
    const fresh = await RealCard.open();
    const answer = await h.customer.reactivate(reactivation(ticket, fresh, 'other-device'));
    await h.customer.receipt({ ticket, serial: fresh.serial, record: await fresh.apply(answer.update) });
    expect((await h.customer.ticket(ticket)).activations).toEqual([expect.objectContaining({ serial: fresh.serial, state: 'confirmed' })]);
    expect(fresh.product(h.a, 10)).toBeDefined();

    const time = await h.customer.time({ serial: old.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) });
    expect(time.withdrawal).toBeDefined();
    const withdrawal = parseSignedBody(time.withdrawal!.update).body as UpdateBody;
    expect(withdrawal).toMatchObject({ serial: old.serial, updateCounter: 1, operations: [{ op: 'delete-product', productCode: 10 }] });
    // Asked again before it was applied: the same withdrawal.
    expect((await h.customer.time({ serial: old.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) })).withdrawal).toEqual(time.withdrawal);
    const record = await old.apply(time.withdrawal!.update);
    expect(old.product(h.a, 10)).toBeUndefined();
    expect(await h.customer.receipt({ serial: old.serial, record })).toMatchObject({ state: 'confirmed' });
    expect((await h.customer.time({ serial: old.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) })).withdrawal).toBeUndefined();
  });

  it('hands the old container a honey-pot item with its next activation, which it must apply first', async () => {
    await h.a.client.setRestorePolicy({ ...rules(), honeyPot: true });
    try {
      const old = await RealCard.open();
      const ticket = await activated(h, old, 10);
      await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
      const next = await placeTicket(30);
      const answer = await h.customer.activate(old.activation(next, h.a));
      expect(answer.withdrawal).toBeDefined();
      expect(parseSignedBody(answer.withdrawal!.update).body).toMatchObject({ updateCounter: 1 });
      expect(parseSignedBody(answer.update).body).toMatchObject({ updateCounter: 2 });
      // The new license does not go on before the withdrawal.
      await expect(old.apply(answer.update)).rejects.toMatchObject({ reason: 'replayed' });
      await old.apply(answer.withdrawal!.update);
      await h.customer.receipt({ ticket: next, serial: old.serial, record: await old.apply(answer.update) });
      expect(old.product(h.a, 10)).toMatchObject({ featureMap: 0, text: 'Editor' });
      expect(fromUtf8(old.product(h.a, 10)!.protectedData)).toBe(fromUtf8(HONEY_POT_MARKER));
      expect(old.product(h.a, 30)).toBeDefined();
    } finally {
      await h.a.client.setRestorePolicy(rules());
    }
  });

  it('keeps the withdrawal until the card\'s receipt of it, whatever counter the old container claims', async () => {
    for (const code of [31, 32, 33]) await h.a.client.defineProduct({ code, text: `Plugin ${code}`, template: template() });
    const old = await RealCard.open();
    const ticket = await activated(h, old, 10);
    await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
    const lying = await h.customer.activate({ ...old.activation(await placeTicket(31), h.a), firmUpdateCounter: 7 });
    expect(parseSignedBody(lying.withdrawal!.update).body).toMatchObject({ updateCounter: 7 });
    expect(parseSignedBody(lying.update).body).toMatchObject({ updateCounter: 8 });
    // "No firm item": nothing to sign for, the withdrawal waits.
    const none = await h.customer.activate({ ...old.activation(await placeTicket(32), h.a), firmUpdateCounter: null });
    expect(none.withdrawal).toBeUndefined();
    const time = await h.customer.time({ serial: old.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) });
    expect(time.withdrawal).toEqual(lying.withdrawal);
    // The honest counter: a withdrawal signed for it, which the card applies and whose receipt ends it.
    const honest = await h.customer.activate(old.activation(await placeTicket(33), h.a));
    expect(parseSignedBody(honest.withdrawal!.update).body).toMatchObject({ updateCounter: 1 });
    await h.customer.receipt({ serial: old.serial, record: await old.apply(honest.withdrawal!.update) });
    expect((await h.customer.time({ serial: old.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) })).withdrawal).toBeUndefined();
  });

  it('locks the whole old container when the rules say container', async () => {
    await h.a.client.setRestorePolicy(rules({ blacklist: 'container' }));
    try {
      const old = await RealCard.open();
      const ticket = await activated(h, old, 10);
      await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
      expect(await h.a.client.locks()).toContainEqual(expect.objectContaining({ serial: old.serial, reason: 'reactivation' }));
      expect(await refusal(h.customer.activate(old.activation(await placeTicket(30), h.a)))).toMatchObject({ status: 423, reason: 'locked' });
      expect(await refusal(h.customer.reactivate(reactivation(ticket, old, 'other-device')))).toMatchObject({ status: 423, reason: 'locked' });
    } finally {
      await h.a.client.setRestorePolicy(rules());
    }
  });
});

describe('the licensor\'s rules', () => {
  it('allows maxPerPeriod reactivations of a ticket per period (429 with Retry-After beyond)', async () => {
    const ticket = await activated(h, await RealCard.open(), 10);
    await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
    await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
    const before = await h.counts();
    const refused = await refusal(h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device')));
    expect(refused).toMatchObject({ status: 429, reason: 'limit' });
    expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    expect(await h.counts()).toEqual(before);
    h.clock.now = START + 86_401;
    try {
      await h.customer.reactivate(reactivation(ticket, await RealCard.open(), 'other-device'));
    } finally {
      h.clock.now = START;
    }
  });

  it('waits for the licensor\'s approval with manual approval, then the same request goes ahead', async () => {
    await h.a.client.setRestorePolicy(rules({ approval: 'manual' }));
    try {
      const ticket = await activated(h, await RealCard.open(), 10);
      const request = reactivation(ticket, await RealCard.open(), 'other-device');
      const refused = await refusal(h.customer.reactivate(request));
      expect(refused).toMatchObject({ status: 409, reason: 'approval', details: { alert: expect.any(Number) } });
      const alert = (await h.a.client.alerts()).find((entry) => entry.id === refused.details.alert);
      expect(alert).toMatchObject({ kind: 'reactivation', state: 'pending' });
      await h.a.client.approveAlert(refused.details.alert!);
      const answer = await h.customer.reactivate(request);
      expect(parseSignedBody(answer.update).body).toMatchObject({ serial: request.serial });
      expect((await h.a.client.alerts()).find((entry) => entry.id === refused.details.alert)).toMatchObject({ state: 'used' });
    } finally {
      await h.a.client.setRestorePolicy(rules());
    }
  });

  it('refuses a reactivation of no activation, or onto the container that holds it already', async () => {
    const card = await RealCard.open();
    const ticket = await activated(h, card, 10);
    expect(await refusal(h.customer.reactivate(reactivation(ticket, card, 'other-device')))).toMatchObject({ status: 409, reason: 'ticket' });
    expect(await refusal(h.customer.reactivate(reactivation(await placeTicket(10), card, 'same-device')))).toMatchObject({ status: 409, reason: 'ticket' });
  });
});
