// Checkpoint licenses over real HTTP with real cards (001 "Checkpoint Licenses": perpetual in business terms, an
// expiration technically; "Validity: days from activation; Threshold: remaining days before the next renewal starts";
// renewed in the background; "Automatic lock or renewal"): not due → 409 limit with dueAt, due → an extend to
// now + validity, locked → 423 with the central sequence.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import {
  encodeLockSequence, IssuingRefusal, parseProductTemplate, parseSignedBody, replaceCentralLocks, signLockSequence, type CheckpointRequest, type UpdateBody,
} from '../../../src/license/index.js';
import { startIssuingHarness, START, template, type IssuingHarness } from './issuing-fixture.js';
import { activated, RealCard, requestId } from './lost-fixture.js';

const DAY = 86_400;
let h: IssuingHarness;
beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 40, text: 'Checkpoint', template: template({ checkpoint: { validityDays: 30, thresholdDays: 7 } }) });
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template() });
}, 30_000);
afterAll(() => h.close());

async function refusal(promise: Promise<unknown>): Promise<IssuingRefusal> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(IssuingRefusal);
  return error as IssuingRefusal;
}

const checkpoint = (ticket: string, card: RealCard): CheckpointRequest => ({ ticket, serial: card.serial, firmUpdateCounter: card.counter(h.a)!, requestId: requestId() });

describe('the checkpoint template option', () => {
  it('takes a threshold at or above the validity: every contact renews', async () => {
    h.clock.now = START;
    await h.a.client.defineProduct({ code: 42, text: 'Always', template: template({ checkpoint: { validityDays: 30, thresholdDays: 31 } }) });
    const card = await RealCard.open();
    const ticket = await activated(h, card, 42);
    expect((await h.customer.checkpoint(checkpoint(ticket, card))).expiration).toBe(START + 30 * DAY);
  });

  it('round-trips through the stored JSON and sets the activation\'s expiration', async () => {
    const { activationSpec, encodeProductTemplate } = await import('../../../src/license/index.js');
    const parsed = parseProductTemplate({ featureMap: 1, checkpoint: { validityDays: 30, thresholdDays: 7 } }, { code: 1, text: 'x' });
    expect(encodeProductTemplate(parsed)).toMatchObject({ checkpoint: { validityDays: 30, thresholdDays: 7 } });
    expect(parseProductTemplate(encodeProductTemplate(parsed), { code: 1, text: 'x' })).toEqual(parsed);
    expect(activationSpec(parsed, START).expiration).toBe(START + 30 * DAY);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ checkpoint: { validityDays: 0, thresholdDays: 0 } }, 'no validity'],
    [{ checkpoint: { validityDays: 30 } }, 'no threshold'],
    [{ checkpoint: { validityDays: 30, thresholdDays: 7 }, durationSeconds: 100 }, 'a duration as well'],
    [{ checkpoint: { validityDays: 30, thresholdDays: 7 }, expiration: START }, 'an expiration as well'],
  ])('refuses %j (%s)', async (fields, _why) => {
    expect(() => parseProductTemplate({ featureMap: 1, ...fields }, { code: 1, text: 'x' })).toThrow(expect.objectContaining({ reason: 'input' }));
    expect((await refusal(h.a.client.defineProduct({ code: 41, text: 'Bad', template: template(fields) }))).status).toBe(400);
  });
});

describe('POST /v1/checkpoints', () => {
  afterAll(() => {
    h.clock.now = START;
  });

  it('activates with expiration = now + validity, refuses a renewal before the threshold with its due time, renews once due', async () => {
    h.clock.now = START;
    const card = await RealCard.open();
    const ticket = await activated(h, card, 40);
    expect(card.product(h.a, 40)!.expiration).toBe(START + 30 * DAY);

    h.clock.now = START + 22 * DAY;
    const early = await refusal(h.customer.checkpoint(checkpoint(ticket, card)));
    expect(early).toMatchObject({ status: 409, reason: 'limit', details: { dueAt: START + 23 * DAY } });

    h.clock.now = START + 23 * DAY;
    const request = checkpoint(ticket, card);
    const answer = await h.customer.checkpoint(request);
    expect(await h.customer.checkpoint(request)).toEqual(answer);
    expect(answer.expiration).toBe(START + 53 * DAY);
    expect(parseSignedBody(answer.update).body as UpdateBody).toMatchObject({ serial: card.serial, updateCounter: 1, operations: [{ op: 'extend', productCode: 40, expiration: START + 53 * DAY }] });
    const record = await card.apply(answer.update);
    expect(card.product(h.a, 40)!.expiration).toBe(START + 53 * DAY);
    expect(await h.customer.receipt({ serial: card.serial, record })).toMatchObject({ state: 'confirmed', ticket: expect.any(String) });
    // The renewal counts: the next one is due 7 days before the new expiration.
    expect(await refusal(h.customer.checkpoint(checkpoint(ticket, card)))).toMatchObject({ details: { dueAt: START + 46 * DAY } });
    expect((await h.customer.ticket(ticket)).activations[0]).toMatchObject({ expiration: START + 53 * DAY });
  });

  it('refuses a product without a checkpoint, a container the ticket is not active on, and a reused requestId', async () => {
    h.clock.now = START;
    const card = await RealCard.open();
    const editor = await activated(h, card, 10);
    expect(await refusal(h.customer.checkpoint(checkpoint(editor, card)))).toMatchObject({ status: 409, reason: 'input' });
    const ticket = await activated(h, card, 40);
    expect(await refusal(h.customer.checkpoint({ ...checkpoint(ticket, card), serial: 'ELSEWHERE' }))).toMatchObject({ status: 409, reason: 'ticket' });
    h.clock.now = START + 25 * DAY;
    const request = checkpoint(ticket, card);
    await h.customer.checkpoint(request);
    expect(await refusal(h.customer.checkpoint({ ...request, firmUpdateCounter: request.firmUpdateCounter + 1 }))).toMatchObject({ status: 409, reason: 'input' });
  });

  it('answers a container on the central locking list 423 with its lock sequence (the automatic lock)', async () => {
    h.clock.now = START;
    const card = await RealCard.open();
    const ticket = await activated(h, card, 40);
    const authority = ed25519KeyFromSeed(generateEd25519Seed());
    const sequence = encodeLockSequence(signLockSequence({ kind: 'lock', serial: card.serial, authorityKey: authority.publicKey, time: START, reason: 'lost', nonce: Uint8Array.from(randomBytes(16)) }, authority));
    await replaceCentralLocks(h.backend, [{ serial: card.serial, lockSequence: sequence }]);
    try {
      h.clock.now = START + 29 * DAY;
      const before = await h.counts();
      expect(await refusal(h.customer.checkpoint(checkpoint(ticket, card)))).toMatchObject({ status: 423, reason: 'locked', details: { lockSequence: sequence } });
      expect(await h.counts()).toEqual(before);
    } finally {
      await replaceCentralLocks(h.backend, []);
    }
  });
});
