// The licensor's restoring service over real HTTP with real cards (Wibu 000 "CM-Box Backup" §2.2 restore by the
// licensor, §2.3 policy and unit degree by age, §2.6 a backup cannot be manipulated, §2.7 hidden data, §2.10 the
// source locked, §2.11 repeated restores along a chain): the card's own backup, restored onto another card that applies
// the update and whose receipt confirms it; every tampered item refused with its reason and nothing changed.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import {
  backupItemFileJson, FULL_UNIT_RESTORE, IssuingRefusal, parseSignedBody, restoredUnits, verifyLicenseBody, type BackupItemFile, type UpdateBody,
} from '../../../src/license/index.js';
import { startIssuingHarness, START, template, type IssuingHarness } from './issuing-fixture.js';
import { activated, policy, RealCard, requestId } from './lost-fixture.js';

let h: IssuingHarness;
beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template({ hiddenData: 'c0ffee' }) });
  await h.a.client.defineProduct({ code: 20, text: 'Credits', template: template({ unitLimit: 1000 }) });
  await h.b.client.defineProduct({ code: 10, text: 'Viewer', template: template() });
}, 30_000);
afterAll(() => h.close());

async function refusal(promise: Promise<unknown>): Promise<{ status: number; reason: string; alert?: number; lockSequence?: string }> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(IssuingRefusal);
  const refused = error as IssuingRefusal;
  return { status: refused.status, reason: refused.reason, ...refused.details };
}

/** A card holding products 10 (hidden data) and 20 (1000 units, 300 used) of licensor a. */
async function sourceCard(): Promise<RealCard> {
  const card = await RealCard.open();
  await activated(h, card, 10);
  await activated(h, card, 20);
  await card.client.use(Uint8Array.from(randomBytes(16)), { licensorKey: h.a.publicKey, productCode: 20, features: 0, units: 300, hostTime: START });
  return card;
}

/** The item as the body carries it: a parsed file as its JSON, a JSON object (tampered) as it is. */
const itemJson = (item: BackupItemFile | Record<string, unknown>): unknown => ((item as BackupItemFile).box?.cardPublicKey instanceof Uint8Array ? backupItemFileJson(item as BackupItemFile) : item);
const restore = (item: BackupItemFile | Record<string, unknown>, target: RealCard, id = requestId()) => h.customer.restore({ item: itemJson(item), target: target.target(h.a), requestId: id });

describe('restore policy', () => {
  it('restores nothing until the licensor opts in: policy none by default, 422 not-restorable, nothing changed', async () => {
    expect(await h.a.client.restorePolicy()).toMatchObject({ mode: 'none', reactivation: { maxPerPeriod: 1, approval: 'manual', blacklist: 'license' }, honeyPot: false });
    const source = await sourceCard();
    const item = await source.backupItem(h.a);
    const before = await h.counts();
    expect(await refusal(restore(item, await RealCard.open()))).toMatchObject({ status: 422, reason: 'not-restorable' });
    expect(await h.counts()).toEqual(before);
  });

  it.each([
    ['partial without products', policy({ mode: 'partial' })],
    ['an unknown field', policy({ colour: 'red' })],
    ['stopAt below alertAt', policy({ alerts: { intervalSeconds: 10, alertAt: 3, stopAt: 2 } })],
    ['min time before max time', policy({ units: { maxTimeSeconds: 10, maxDegreePercent: 80, minTimeSeconds: 5, minDegreePercent: 10 } })],
    ['a reactivation rule without approval', policy({ reactivation: { maxPerPeriod: 1, periodSeconds: 10, blacklist: 'license' } })],
  ])('refuses %s (400 input)', async (_name, body) => {
    expect(await refusal(h.b.client.setRestorePolicy(body))).toMatchObject({ status: 400, reason: 'input' });
  });

  it('answers the policy as stored, with the reactivation rules and honey-pot setting', async () => {
    const body = policy({ mode: 'partial', products: [10], reactivation: { maxPerPeriod: 2, periodSeconds: 86_400, approval: 'auto', blacklist: 'container' }, honeyPot: true });
    expect(await h.b.client.setRestorePolicy(body)).toEqual(body);
    expect(await h.b.client.restorePolicy()).toEqual(body);
    expect((await h.a.client.restorePolicy())['mode']).toBe('none');
  });
});

describe('POST /v1/restores', () => {
  beforeAll(async () => {
    await h.a.client.setRestorePolicy(policy());
  });

  it('restores the whole item onto the target: hidden data opened and put back, the units left, the activations moved, the source locked', async () => {
    const source = await sourceCard();
    const item = await source.backupItem(h.a);
    const target = await RealCard.open();
    const answer = await restore(item, target);
    expect(answer).toMatchObject({ status: 'restored', restored: [10, 20], skipped: [], degreePercent: 100 });
    const signed = parseSignedBody(answer.update);
    expect(verifyLicenseBody(signed)).toBe(true);
    expect(signed.body).toMatchObject({ kind: 'update', serial: target.serial, updateCounter: 0 });
    expect((signed.body as UpdateBody).operations.map((op) => op.op)).toEqual(['create-firm', 'put-product', 'put-product']);
    const record = await target.apply(answer.update);
    expect(toHex(target.product(h.a, 10)!.hiddenData)).toBe('c0ffee');
    expect(target.product(h.a, 20)).toMatchObject({ unitLimit: 700, unitsUsed: 0 });
    // The receipt needs no ticket: the record names the licensor and the update; every moved activation is confirmed.
    expect(await h.customer.receipt({ serial: target.serial, record })).toMatchObject({ state: 'confirmed', serial: target.serial });
    const activations = await h.backend.database.db.selectFrom('issuing_activations').select(['serial', 'state']).where('serial', 'in', [source.serial, target.serial]).execute();
    expect(activations).toEqual([{ serial: target.serial, state: 'confirmed' }, { serial: target.serial, state: 'confirmed' }]);
    // The source is on the licensor's locking list, and refused an activation (000 §2.10).
    expect(await h.a.client.locks()).toContainEqual(expect.objectContaining({ serial: source.serial, reason: 'restore', subject: `restored to ${target.serial}` }));
    const { tickets: [ticket] } = await h.a.client.placeOrder({ orderId: `SO-${randomBytes(4).toString('hex')}`, items: [{ productCode: 10, quantity: 1 }] });
    expect(await refusal(h.customer.activate(source.activation(ticket!, h.a)))).toMatchObject({ status: 423, reason: 'locked' });
    expect(await refusal(h.customer.time({ serial: source.serial, firmCode: h.a.firmCode, nonce: Uint8Array.from(randomBytes(16)) }))).toMatchObject({ status: 423, reason: 'locked' });
    expect((await h.a.client.audit({ limit: 1000 })).filter((entry) => entry.action === 'restore').at(-1)).toMatchObject({ outcome: 'ok', subject: `restore ${source.serial} -> ${target.serial}` });
  });

  it('lets the restored licenses be deactivated on the target, with the ticket\'s receipt', async () => {
    const source = await RealCard.open();
    const ticket = await activated(h, source, 10);
    const target = await RealCard.open();
    const answer = await restore(await source.backupItem(h.a), target);
    await h.customer.receipt({ ticket, serial: target.serial, record: await target.apply(answer.update) });
    const deactivation = await h.customer.deactivate({ ticket, serial: target.serial, requestId: requestId() });
    expect((parseSignedBody(deactivation.update).body as UpdateBody).updateCounter).toBe(1);
    expect((await h.customer.receipt({ ticket, serial: target.serial, record: await target.apply(deactivation.update) })).state).toBe('deactivated');
    expect(target.product(h.a, 10)).toBeUndefined();
  });

  it('restores into a target that has a firm item of the licensor already, under its counter', async () => {
    const source = await sourceCard();
    const target = await RealCard.open();
    await activated(h, target, 20);
    const answer = await restore(await source.backupItem(h.a), target);
    expect(parseSignedBody(answer.update).body).toMatchObject({ updateCounter: 1 });
    expect((parseSignedBody(answer.update).body as UpdateBody).operations.map((op) => op.op)).toEqual(['put-product', 'put-product']);
    await target.apply(answer.update);
    expect(target.product(h.a, 20)).toMatchObject({ unitLimit: 700 });
  });

  it('answers the same requestId with the same answer, refuses it for another request, and refuses the same source again as replayed', async () => {
    const source = await sourceCard();
    const item = await source.backupItem(h.a);
    const target = await RealCard.open();
    const id = requestId();
    const first = await restore(item, target, id);
    expect(await restore(item, target, id)).toEqual(first);
    expect(await refusal(restore(item, await RealCard.open(), id))).toMatchObject({ status: 409, reason: 'input' });
    expect(await refusal(restore(item, await RealCard.open()))).toMatchObject({ status: 409, reason: 'replayed' });
    // A newer backup of the source changes nothing: the source's licenses went to the target already.
    expect(await refusal(restore(await source.backupItem(h.a, START + 60), await RealCard.open()))).toMatchObject({ status: 409, reason: 'replayed' });
  });

  it('refuses a locked container as the target (423)', async () => {
    const source = await sourceCard();
    const target = await RealCard.open();
    await restore(await source.backupItem(h.a), target);
    const other = await sourceCard();
    expect(await refusal(restore(await other.backupItem(h.a), source))).toMatchObject({ status: 423, reason: 'locked' });
  });

  it('restores only the policy\'s products in partial mode', async () => {
    await h.a.client.setRestorePolicy(policy({ mode: 'partial', products: [10] }));
    try {
      const source = await sourceCard();
      const target = await RealCard.open();
      const answer = await restore(await source.backupItem(h.a), target);
      expect(answer).toMatchObject({ restored: [10], skipped: [20] });
      await target.apply(answer.update);
      expect(target.product(h.a, 20)).toBeUndefined();
      // The skipped product's activation stays with the (now locked) source.
      const rows = await h.backend.database.db.selectFrom('issuing_activations').select('serial').where('serial', '=', source.serial).execute();
      expect(rows).toHaveLength(1);
    } finally {
      await h.a.client.setRestorePolicy(policy());
    }
  });
});

describe('unit counters by the backup\'s age (000 §2.3, an injected clock)', () => {
  const rule = { maxTimeSeconds: 86_400, maxDegreePercent: 80, minTimeSeconds: 9 * 86_400, minDegreePercent: 10 };
  beforeAll(async () => {
    await h.a.client.setRestorePolicy(policy({ units: rule }));
  });
  afterAll(async () => {
    h.clock.now = START;
    await h.a.client.setRestorePolicy(policy());
  });

  it.each([
    [0, 100, 1000],
    [2 * 86_400, 71.25, 713],
    [5 * 86_400, 45, 450],
    [9 * 86_400, 10, 100],
    [10 * 86_400, 0, 0],
  ])('a backup %i s old restores %f % of 1000 units: %i', async (age, degree, units) => {
    h.clock.now = START;
    const source = await RealCard.open();
    await activated(h, source, 20);
    const item = await source.backupItem(h.a);
    h.clock.now = START + age;
    const target = await RealCard.open();
    const answer = await restore(item, target);
    expect(answer.degreePercent).toBe(degree);
    await target.apply(answer.update);
    expect(target.product(h.a, 20)!.unitLimit).toBe(units);
    expect(units).toBe(restoredUnits(1000, rule, age));
  });

  it('refuses a backup time more than 300 s after the service\'s clock as input, and takes one within', async () => {
    h.clock.now = START;
    const source = await RealCard.open();
    await activated(h, source, 20);
    expect(await refusal(restore(await source.backupItem(h.a, START + 301), await RealCard.open()))).toMatchObject({ status: 400, reason: 'input' });
    const within = await RealCard.open();
    await activated(h, within, 20);
    expect((await restore(await within.backupItem(h.a, START + 300), await RealCard.open())).degreePercent).toBe(100);
  });

  it('restores whole at any age under the default rule', () => {
    expect(restoredUnits(1000, FULL_UNIT_RESTORE, 10 * 365 * 86_400)).toBe(1000);
  });
});

describe('tampered items (000 §2.6): refused with their reason, nothing changed', () => {
  let item: Record<string, unknown>;
  let otherTime: Record<string, unknown>;
  let otherLicensor: Record<string, unknown>;
  let stranger: Record<string, unknown>;
  beforeAll(async () => {
    await h.a.client.setRestorePolicy(policy());
    await h.b.client.setRestorePolicy(policy());
    const source = await sourceCard();
    await activated(h, source, 10, h.b);
    item = backupItemFileJson(await source.backupItem(h.a));
    otherTime = backupItemFileJson(await source.backupItem(h.a, START + 5));
    otherLicensor = backupItemFileJson(await source.backupItem(h.b, START + 5));
    // A card the licensor never activated anything on.
    const unknown = await RealCard.open();
    stranger = { ...item, box: { ...(item['box'] as object), serial: unknown.serial } };
  });

  type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const edit = (base: () => Record<string, unknown>, change: (copy: Json) => void) => () => {
    const copy = structuredClone(base()) as Json;
    change(copy);
    return copy;
  };
  const flip = (hex: string) => `${hex.slice(0, -2)}${(Number.parseInt(hex.slice(-2), 16) ^ 1).toString(16).padStart(2, '0')}`;

  it.each<[string, () => Record<string, unknown>, number, string]>([
    ['a record signature flipped', edit(() => item, (copy) => { copy['record'].signature = flip(copy['record'].signature); }), 422, 'signature'],
    ['a record nonce changed', edit(() => item, (copy) => { copy['record'].nonce = flip(copy['record'].nonce); }), 422, 'signature'],
    ['the box naming another card key', edit(() => item, (copy) => { copy['box'].cardPublicKey = toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey); }), 409, 'foreign'],
    ['the leaf of another backup under this record', edit(() => item, (copy) => { copy['item'].leaf = (otherTime['item'] as Json)['leaf']; }), 422, 'signature'],
    ['an audit path hash changed', edit(() => item, (copy) => { copy['item'].auditPath = (copy['item'].auditPath as string[]).map(flip); }), 422, 'signature'],
    ['another licensor\'s leaf named as this licensor\'s', edit(() => otherLicensor, (copy) => { copy['item'].licensorKey = toHex(h.a.publicKey); copy['item'].firmCode = h.a.firmCode; }), 422, 'signature'],
    ['a licensor this service does not have', edit(() => item, (copy) => { copy['item'].licensorKey = toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey); }), 404, 'no-license'],
    ['a card this licensor never activated', () => stranger, 404, 'no-license'],
    ['a missing field', edit(() => item, (copy) => { delete copy['treeSize']; }), 400, 'input'],
    ['an unknown field', edit(() => item, (copy) => { copy['extra'] = 1; }), 400, 'input'],
    ['a time other than the record\'s', edit(() => item, (copy) => { copy['time'] = (copy['time'] as number) + 1; }), 400, 'input'],
    ['a leaf that is not base64 of a leaf', edit(() => item, (copy) => { copy['item'].leaf = 'AAAA'; }), 400, 'input'],
  ])('%s: %i %s', async (_name, make, status, reason) => {
    const before = await h.counts();
    expect(await refusal(restore(make(), await RealCard.open()))).toMatchObject({ status, reason });
    expect(await h.counts()).toEqual(before);
  });

  it('restores the untampered item afterwards', async () => {
    expect((await restore(item, await RealCard.open())).status).toBe('restored');
  });

  it('refuses a body over the route\'s limit or of the wrong shape before reading the item', async () => {
    const response = await fetch(new URL('/v1/restores', h.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: {}, target: {}, requestId: 'x' }) });
    expect(response.status).toBe(400);
    const big = await fetch(new URL('/v1/restores', h.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(200 * 1024) }) });
    expect(big.status).toBe(413);
  });
});

describe('repeated restores along a chain (000 §2.11)', () => {
  beforeAll(async () => {
    h.clock.now = START;
    await h.a.client.setRestorePolicy(policy({ alerts: { intervalSeconds: 30 * 86_400, alertAt: 2, stopAt: 3 } }));
  });

  it('alerts the licensor at the second restore of a chain, stops the third until it approves, then the same request goes ahead once', async () => {
    const a = await sourceCard();
    const b = await RealCard.open();
    const first = await restore(await a.backupItem(h.a), b);
    await h.customer.receipt({ serial: b.serial, record: await b.apply(first.update) });
    expect((await h.a.client.alerts()).filter((alert) => alert.subject.includes(a.serial))).toEqual([]);

    const c = await RealCard.open();
    const second = await restore(await b.backupItem(h.a), c);
    await h.customer.receipt({ serial: c.serial, record: await c.apply(second.update) });
    expect((await h.a.client.alerts()).find((alert) => alert.subject === `restore ${b.serial} -> ${c.serial}`)).toMatchObject({ kind: 'restore-chain', state: 'notice', chain: 2 });

    const d = await RealCard.open();
    const item = await c.backupItem(h.a);
    const id = requestId();
    const before = await h.counts();
    const stopped = await refusal(restore(item, d, id));
    expect(stopped).toMatchObject({ status: 409, reason: 'approval', alert: expect.any(Number) });
    const after = await h.counts();
    // The refused request made an alert (and its audit record), nothing else.
    expect(after).toEqual({ ...before, issuing_alerts: before['issuing_alerts']! + 1, issuing_audit: before['issuing_audit']! + 1 });
    expect(await refusal(restore(item, d, id))).toMatchObject({ status: 409, reason: 'approval', alert: stopped.alert });
    expect((await h.a.client.alerts()).find((alert) => alert.id === stopped.alert)).toMatchObject({ state: 'pending', chain: 3, subject: `restore ${c.serial} -> ${d.serial}` });
    // Another licensor cannot approve it.
    expect(await refusal(h.b.client.approveAlert(stopped.alert!))).toMatchObject({ status: 404 });

    expect(await h.a.client.approveAlert(stopped.alert!)).toMatchObject({ id: stopped.alert, state: 'approved' });
    expect(await h.a.client.approveAlert(stopped.alert!)).toMatchObject({ state: 'approved' });
    const third = await restore(item, d, id);
    expect(third.status).toBe('restored');
    expect((await h.a.client.alerts()).find((alert) => alert.id === stopped.alert)).toMatchObject({ state: 'used' });
    await d.apply(third.update);
    // The approval was used once: the next restore along the chain stops again.
    expect(await refusal(restore(await d.backupItem(h.a), await RealCard.open()))).toMatchObject({ status: 409, reason: 'approval' });
  });

  it('counts only restores within the interval', async () => {
    const a = await sourceCard();
    const b = await RealCard.open();
    await b.apply((await restore(await a.backupItem(h.a), b)).update);
    h.clock.now = START + 31 * 86_400;
    try {
      const c = await RealCard.open();
      await c.apply((await restore(await b.backupItem(h.a, h.clock.now), c)).update);
      expect((await h.a.client.alerts()).some((alert) => alert.subject === `restore ${b.serial} -> ${c.serial}`)).toBe(false);
    } finally {
      h.clock.now = START;
    }
  });
});
