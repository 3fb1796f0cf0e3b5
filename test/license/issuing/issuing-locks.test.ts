// The locking lists with the real hub (Wibu 000 "CM-Box Backup" §2.10: the licensor puts a restored container onto its
// local list and reports it to the central locking instance, which makes a Locking Sequence that licensors download;
// a locked container asking for a Remote Activation or a Certified Time Stamp gets the sequence and "is locked").
// A restoring service linked to a real hub (src/license/hub) on 127.0.0.1, real cards applying every update and lock.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import {
  backupItemFileJson, checkCentralSequence, encodeLockSequence, HubLink, IssuingRefusal, LicenseError, parseLockSequence, parseSignedBody, replaceCentralLocks, signLockSequence,
  type HubLinkEvent, type UpdateBody,
} from '../../../src/license/index.js';
import { authorizeLicensor, openHubBackend, startHubService, unlockSerial, type HubBackend, type RunningHubService } from '../../../src/license/hub/index.js';
import { startIssuingHarness, START, template, type IssuingHarness } from './issuing-fixture.js';
import { activated, policy, RealCard, requestId } from './lost-fixture.js';

const clock = { now: START };
let dir: string;
let hub: HubBackend;
let hubService: RunningHubService;
let h: IssuingHarness;
const events: HubLinkEvent[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-issuing-hub-'));
  hub = await openHubBackend({ dataDir: join(dir, 'hub'), now: () => clock.now });
  hubService = await startHubService({ hub, host: '127.0.0.1', port: 0, perClientPerMinute: 1_000_000 });
  h = await startIssuingHarness({ clock, hub: { url: hubService.url, authorityKey: hub.authority.publicKey, onEvent: (event) => events.push(event) } });
  await h.a.client.defineProduct({ code: 10, text: 'Editor', template: template() });
  await h.b.client.defineProduct({ code: 10, text: 'Viewer', template: template() });
  await h.a.client.setRestorePolicy(policy());
  // The hub's operator authorized both licensors (vsc license hub authorize): only then do they register and report locks.
  for (const licensor of [h.a, h.b]) await authorizeLicensor(hub, licensor.publicKey, licensor.name, { actor: 'administrator' });
  await h.hub!.sync();
}, 30_000);
afterAll(async () => {
  await h.close();
  await hubService.close();
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<IssuingRefusal> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(IssuingRefusal);
  return error as IssuingRefusal;
}

const nonce = (): Uint8Array => Uint8Array.from(randomBytes(16));

describe('the hub link', () => {
  it('registers every licensor with this service\'s URL at the hub', async () => {
    const listed = await (await fetch(new URL('/v1/licensors', hubService.url))).json() as { licensors: Array<{ licensorKey: string; name: string; restoreUrl: string }> };
    expect(listed.licensors.map((entry) => entry.licensorKey).sort()).toEqual([toHex(h.a.publicKey), toHex(h.b.publicKey)].sort());
    expect(listed.licensors[0]!.restoreUrl).toBe(h.url);
    expect(events.filter((event) => event.step === 'register').every((event) => event.ok)).toBe(true);
  });

  it('sets the hub\'s key as the lock authority of a container with its first update of the licensor', async () => {
    const card = await RealCard.open();
    await activated(h, card, 10);
    expect(toHex(card.container().lockAuthority!)).toBe(toHex(hub.authority.publicKey));
  });
});

describe('a restored container is locked (000 §2.10)', () => {
  let source: RealCard;
  let target: RealCard;
  let sequence: string;

  beforeAll(async () => {
    source = await RealCard.open();
    await activated(h, source, 10);
    target = await RealCard.open();
    const answer = await h.customer.restore({ item: backupItemFileJson(await source.backupItem(h.a)), target: target.target(h.a), requestId: requestId() });
    expect((parseSignedBody(answer.update).body as UpdateBody).operations.at(-1)).toEqual({ op: 'set-lock-authority', key: hub.authority.publicKey });
    await target.apply(answer.update);
    await h.hub!.report();
    const lock = (await h.a.client.locks()).find((entry) => entry.serial === source.serial)!;
    expect(lock).toMatchObject({ reason: 'restore', reportedAt: START });
    sequence = lock.lockSequence!;
    expect(parseLockSequence(sequence).body).toMatchObject({ kind: 'lock', serial: source.serial, authorityKey: hub.authority.publicKey });
  });

  it('gives the target the hub as its lock authority', () => {
    expect(toHex(target.container().lockAuthority!)).toBe(toHex(hub.authority.publicKey));
  });

  it('answers the locked container\'s activation 423 with the central lock sequence, which locks the card', async () => {
    const { tickets: [ticket] } = await h.a.client.placeOrder({ orderId: `SO-${randomBytes(4).toString('hex')}`, items: [{ productCode: 10, quantity: 1 }] });
    const refused = await refusal(h.customer.activate(source.activation(ticket!, h.a)));
    expect(refused).toMatchObject({ status: 423, reason: 'locked', details: { lockSequence: sequence } });
    await source.client.locking(nonce(), refused.details.lockSequence!);
    expect(source.container().lock).toBeDefined();
    await expect(source.backupItem(h.a)).rejects.toBeInstanceOf(LicenseError);
  });

  it('answers the locked container 423 at another licensor too, once the central list is downloaded', async () => {
    await h.hub!.download();
    const refused = await refusal(h.customer.time({ serial: source.serial, firmCode: h.b.firmCode, nonce: nonce() }));
    expect(refused).toMatchObject({ status: 423, details: { lockSequence: sequence } });
  });

  it('forgets a central lock the hub lifted, while the licensor\'s own list still refuses (without a sequence)', async () => {
    await unlockSerial(hub, source.serial, { actor: 'administrator' });
    await h.hub!.download();
    expect((await h.customer.time({ serial: source.serial, firmCode: h.b.firmCode, nonce: nonce() })).time).toBe(START);
    const refused = await refusal(h.customer.time({ serial: source.serial, firmCode: h.a.firmCode, nonce: nonce() }));
    expect(refused).toMatchObject({ status: 423, reason: 'locked', details: {} });
  });
});

describe('central sequences are checked before they are kept', () => {
  const stranger = ed25519KeyFromSeed(generateEd25519Seed());
  const forged = (serial: string) => encodeLockSequence(signLockSequence({ kind: 'lock', serial, authorityKey: stranger.publicKey, time: START, reason: 'forged', nonce: new Uint8Array(16) }, stranger));

  it.each([
    ['signed by another key', (serial: string) => forged(serial), 'signature'],
    ['for another serial', (_serial: string) => encodeLockSequence(signLockSequence({ kind: 'lock', serial: 'OTHER', authorityKey: hub.authority.publicKey, time: START, reason: 'x', nonce: new Uint8Array(16) }, hub.authority)), 'input'],
    ['an unlock', (serial: string) => encodeLockSequence(signLockSequence({ kind: 'unlock', serial, authorityKey: hub.authority.publicKey, time: START, reason: 'x', nonce: new Uint8Array(16) }, hub.authority)), 'input'],
    ['not a sequence', (_serial: string) => '{}', 'input'],
  ])('refuses one %s', (_name, make, reason) => {
    expect(() => checkCentralSequence(make('CARD-X'), 'CARD-X', hub.authority.publicKey)).toThrow(expect.objectContaining({ reason }));
  });

  it('keeps the list it has when the hub hands out a sequence its key did not sign', async () => {
    const source = await RealCard.open();
    await activated(h, source, 10);
    await h.customer.restore({ item: backupItemFileJson(await source.backupItem(h.a)), target: (await RealCard.open()).target(h.a), requestId: requestId() });
    await h.hub!.report();
    await h.hub!.download();
    const told: HubLinkEvent[] = [];
    const link = new HubLink(h.backend, { hubUrl: hubService.url, authorityKey: stranger.publicKey, publicUrl: h.url, onEvent: (event) => told.push(event) });
    const before = await h.backend.database.db.selectFrom('issuing_central_locks').selectAll().execute();
    await link.download();
    expect(told.at(-1)).toMatchObject({ step: 'download', ok: false });
    expect(await h.backend.database.db.selectFrom('issuing_central_locks').selectAll().execute()).toEqual(before);
    expect(before.map((row) => row.serial)).toContain(source.serial);
  });

  it('answers a restore onto a container on the central list 423 with its sequence', async () => {
    const card = await RealCard.open();
    await activated(h, card, 10);
    const lock = encodeLockSequence(signLockSequence({ kind: 'lock', serial: card.serial, authorityKey: hub.authority.publicKey, time: START, reason: 'test', nonce: new Uint8Array(16) }, hub.authority));
    const kept = await h.backend.database.db.selectFrom('issuing_central_locks').select(['serial', 'lock_sequence']).execute();
    await replaceCentralLocks(h.backend, [...kept.map((row) => ({ serial: row.serial, lockSequence: row.lock_sequence })), { serial: card.serial, lockSequence: lock }]);
    const other = await RealCard.open();
    await activated(h, other, 10);
    const restore = await refusal(h.customer.restore({ item: backupItemFileJson(await other.backupItem(h.a)), target: card.target(h.a), requestId: requestId() }));
    expect(restore).toMatchObject({ status: 423, details: { lockSequence: lock } });
  });
});
