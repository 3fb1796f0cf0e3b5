// License transfer over real HTTP with real cards (Wibu 000 "CM-Box Backup" §2.12: the licensor deletes the firm item on
// the source — no locking — and restores it on the target once the deletion is proven; the proof can be resent; secret
// data is not transferred, §2.8). Offline the request and proof bodies are the files.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  backupItemFileJson, IssuingRefusal, parseProofRequest, parseRestoreRequest, parseSignedBody, proofRequestJson, restoreRequestJson, type UpdateBody,
} from '../../../src/license/index.js';
import { startIssuingHarness, START, template, type IssuingHarness } from './issuing-fixture.js';
import { activated, policy, RealCard, requestId } from './lost-fixture.js';

let h: IssuingHarness;
beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template({ hiddenData: 'c0ffee', secretData: '5ec4e7' }) });
  await h.a.client.defineProduct({ code: 20, text: 'Credits', template: template({ unitLimit: 1000 }) });
  // A policy that would reduce units by age and restore secret data: a transfer does neither.
  await h.a.client.setRestorePolicy(policy({
    units: { maxTimeSeconds: 86_400, maxDegreePercent: 80, minTimeSeconds: 9 * 86_400, minDegreePercent: 10 }, secretData: { mode: 'fixed', fixed: 'aa55' },
  }));
}, 30_000);
afterAll(() => h.close());

async function refusal(promise: Promise<unknown>): Promise<{ status: number; reason: string }> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(IssuingRefusal);
  return { status: (error as IssuingRefusal).status, reason: (error as IssuingRefusal).reason };
}

async function sourceCard(): Promise<RealCard> {
  const card = await RealCard.open();
  await activated(h, card, 10);
  await activated(h, card, 20);
  await card.client.use(Uint8Array.from(randomBytes(16)), { licensorKey: h.a.publicKey, productCode: 20, features: 0, units: 300, hostTime: START });
  return card;
}

describe('POST /v1/transfers and /v1/transfers/:id/proof', () => {
  it('deletes the firm item on the source, then restores it whole on the target: no reduction by age, no secret data, no lock', async () => {
    const source = await sourceCard();
    const item = await source.backupItem(h.a);
    const target = await RealCard.open();
    h.clock.now = START + 5 * 86_400;
    try {
      const request = { item: backupItemFileJson(item), target: target.target(h.a), requestId: requestId() };
      const started = await h.customer.transfer(request);
      expect(await h.customer.transfer(request)).toEqual(started);
      const deletion = parseSignedBody(started.deleteUpdate).body as UpdateBody;
      expect(deletion).toMatchObject({ serial: source.serial, updateCounter: source.counter(h.a)!, operations: [{ op: 'delete-firm' }] });
      // No update for the target before the deletion is proven.
      const proof = { record: await source.apply(started.deleteUpdate) };
      expect(source.firm(h.a)?.products).toEqual([]);

      const done = await h.customer.proveTransfer(started.transfer, proof);
      expect(done).toMatchObject({ status: 'transferred', restored: [10, 20], skipped: [] });
      expect(await h.customer.proveTransfer(started.transfer, proof)).toEqual(done);
      const body = parseSignedBody(done.update).body as UpdateBody;
      expect(body).toMatchObject({ serial: target.serial, updateCounter: 0 });
      expect(body.operations.map((op) => op.op)).toEqual(['create-firm', 'put-product', 'put-product']);
      const record = await target.apply(done.update);
      expect(target.product(h.a, 20)).toMatchObject({ unitLimit: 700, unitsUsed: 0 });
      expect(toHex(target.product(h.a, 10)!.hiddenData)).toBe('c0ffee');
      expect(target.product(h.a, 10)!.secretData).toHaveLength(0);
      expect(await h.customer.receipt({ serial: target.serial, record })).toMatchObject({ state: 'confirmed' });
      // The source is no candidate for locking (000 §2.12): it can take new activations.
      expect(await h.a.client.locks()).not.toContainEqual(expect.objectContaining({ serial: source.serial }));
      await activated(h, source, 10);
      expect(source.product(h.a, 10)).toBeDefined();
    } finally {
      h.clock.now = START;
    }
  });

  it('refuses a proof not signed by the source card, of another update, or for no transfer, and a second transfer of the source', async () => {
    const source = await sourceCard();
    const item = await source.backupItem(h.a);
    const started = await h.customer.transfer({ item: backupItemFileJson(item), target: (await RealCard.open()).target(h.a), requestId: requestId() });
    const stranger = await RealCard.open();
    const foreignRecord = { ...(await source.apply(started.deleteUpdate)) };
    const forged = { nonce: foreignRecord.nonce, text: foreignRecord.text, counter: foreignRecord.counter, signature: new Uint8Array(64).fill(1) };
    const before = await h.counts();
    expect(await refusal(h.customer.proveTransfer(started.transfer, { record: forged }))).toMatchObject({ status: 422, reason: 'signature' });
    const otherUpdate = await activated(h, stranger, 20).then(async () => (await h.backend.database.db.selectFrom('issuing_activations').select('receipt').where('serial', '=', stranger.serial).executeTakeFirstOrThrow()).receipt!);
    const after = await h.counts();
    expect(await refusal(h.customer.proveTransfer(started.transfer, parseProofRequest({ record: JSON.parse(otherUpdate) as unknown })))).toMatchObject({ status: 409, reason: 'input' });
    expect(await refusal(h.customer.proveTransfer(999_999, { record: foreignRecord }))).toMatchObject({ status: 404, reason: 'no-license' });
    expect(await h.counts()).toEqual(after);
    expect(before['issuing_restores']).toBe(after['issuing_restores']);
    expect(await refusal(h.customer.transfer({ item: backupItemFileJson(item), target: (await RealCard.open()).target(h.a), requestId: requestId() }))).toMatchObject({ status: 409, reason: 'replayed' });
    expect((await h.customer.proveTransfer(started.transfer, { record: foreignRecord })).status).toBe('transferred');
  });

  it('lets a license transferred away come back, and go on again with a backup made after its return', async () => {
    const a = await sourceCard();
    const b = await RealCard.open();
    const old = await a.backupItem(h.a);
    const there = await h.customer.transfer({ item: backupItemFileJson(old), target: b.target(h.a), requestId: requestId() });
    await b.apply((await h.customer.proveTransfer(there.transfer, { record: await a.apply(there.deleteUpdate) })).update);
    h.clock.now = START + 100;
    try {
      const back = await h.customer.transfer({ item: backupItemFileJson(await b.backupItem(h.a, h.clock.now)), target: a.target(h.a), requestId: requestId() });
      await a.apply((await h.customer.proveTransfer(back.transfer, { record: await b.apply(back.deleteUpdate) })).update);
      expect(a.product(h.a, 20)).toMatchObject({ unitLimit: 700 });
      h.clock.now = START + 200;
      const c = await RealCard.open();
      const again = await h.customer.transfer({ item: backupItemFileJson(await a.backupItem(h.a, h.clock.now)), target: c.target(h.a), requestId: requestId() });
      expect(again.transfer).toBeGreaterThan(back.transfer);
      // A backup of `a` from before it went away and came back is a replay.
      expect(await refusal(h.customer.transfer({ item: backupItemFileJson(old), target: (await RealCard.open()).target(h.a), requestId: requestId() }))).toMatchObject({ status: 409, reason: 'replayed' });
    } finally {
      h.clock.now = START;
    }
  });

  it('travels offline as files: the request file is the body, the proof file the proof body', async () => {
    const source = await sourceCard();
    const target = await RealCard.open();
    const requestFile = `${JSON.stringify(restoreRequestJson({ item: backupItemFileJson(await source.backupItem(h.a)), target: target.target(h.a), requestId: requestId() }))}\n`;
    const started = await h.customer.transfer(parseRestoreRequest(JSON.parse(requestFile)));
    const proofFile = JSON.stringify(proofRequestJson({ record: await source.apply(started.deleteUpdate) }));
    const done = await h.customer.proveTransfer(started.transfer, parseProofRequest(JSON.parse(proofFile)));
    await target.apply(done.update);
    expect(target.product(h.a, 10)).toBeDefined();
  });

  it('refuses a transfer when the licensor restores nothing (policy none)', async () => {
    const source = await RealCard.open();
    await h.b.client.defineProduct({ code: 10, text: 'Viewer', template: template() });
    await activated(h, source, 10, h.b);
    expect(await refusal(h.customer.transfer({ item: backupItemFileJson(await source.backupItem(h.b)), target: (await RealCard.open()).target(h.b), requestId: requestId() })))
      .toMatchObject({ status: 422, reason: 'not-restorable' });
  });
});
