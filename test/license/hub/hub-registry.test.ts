// The hub's licensor registry (src/license/hub/hub-registry.ts; Wibu 000 P002 §2.1 the hub "knows the Restoring Web
// Services of all licensors who support such a restore", opt-in): registrations signed by the licensor key, the newest
// signed time wins, stale, replayed, forged and malformed ones refused with nothing changed; only licensors the hub's
// operator authorized register ("CM-Box Backup" §2.10 "checks whether the Request ... came from an authorized Licensor").
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import { authorizeLicensor, revokeLicensor, signHubLicensorRequest, signHubLockRequest } from '../../../src/license/index.js';
import { startHub, storeUnauthorizedRegistration, type HubHarness } from './hub-fixture.js';

const KEY = ed25519KeyFromSeed(generateEd25519Seed());
const OTHER = ed25519KeyFromSeed(generateEd25519Seed());
const URL_A = 'http://127.0.0.1:9001/restoring';
const URL_B = 'https://licensing.example.com';

let hub: HubHarness;

beforeEach(async () => {
  hub = await startHub();
  await authorizeLicensor(hub.hub, KEY.publicKey, 'Example Software', { actor: 'administrator' });
});

afterEach(async () => {
  await hub.close();
});

const registration = (fields: { name?: string; restoreUrl?: string; time?: number } = {}, key = KEY) =>
  signHubLicensorRequest({ name: fields.name ?? 'Example Software', restoreUrl: fields.restoreUrl ?? URL_A, time: fields.time ?? hub.clock.now }, key);

const listed = async () => (await hub.call('GET', '/v1/licensors')).body['licensors'];

describe('licensor registry', () => {
  it('refuses a licensor the hub\'s operator has not authorized (403), with nothing stored: a stranger cannot register, hence cannot lock', async () => {
    const before = await hub.counts();
    const answer = await hub.call('POST', '/v1/licensors', registration({}, OTHER));
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ error: { reason: 'unauthenticated' } });
    expect((answer.body['error'] as { message: string }).message)
      .toBe(`licensor ${toHex(OTHER.publicKey).slice(0, 16)}… is not authorized at this hub: its operator runs vsc license hub authorize`);
    expect(await listed()).toEqual([]);
    const after = await hub.counts();
    expect({ ...after, hub_audit: 0 }).toEqual({ ...before, hub_audit: 0 });
    // Audited (000 §2.10 "the source of such wrong locking requests can be found ... and eliminated"), in a row of its own.
    const audit = await hub.hub.database.db.selectFrom('hub_audit').selectAll().orderBy('id').execute();
    expect(audit.map((row) => [row.action, row.subject, row.outcome])).toEqual([
      ['licensor.authorize', `licensor ${toHex(KEY.publicKey)}`, 'ok'],
      ['licensor.register', `licensor ${toHex(OTHER.publicKey)}`, 'unauthenticated'],
    ]);
  });

  it('authorizing a licensor again renames it and changes nothing else; authorizing it as it is changes nothing', async () => {
    expect(await authorizeLicensor(hub.hub, KEY.publicKey, 'Example Software', { actor: 'administrator' })).toEqual({ changed: false });
    expect(await authorizeLicensor(hub.hub, KEY.publicKey, 'Example Software GmbH', { actor: 'administrator' })).toEqual({ changed: true });
    const rows = await hub.hub.database.db.selectFrom('hub_authorized_licensors').select(['name', 'authorized_at']).execute();
    expect(rows.map((row) => [row.name, Number(row.authorized_at)])).toEqual([['Example Software GmbH', hub.clock.now]]);
    const audit = await hub.hub.database.db.selectFrom('hub_audit').select(['action', 'detail']).orderBy('id').execute();
    expect(audit.map((row) => [row.action, row.detail])).toEqual([['licensor.authorize', 'Example Software'], ['licensor.authorize', 'Example Software GmbH']]);
  });

  it('neither lists nor lets lock a registration stored without an authorization (a hub database from before the check)', async () => {
    await storeUnauthorizedRegistration(hub.hub, { key: OTHER, name: 'Old Software' }, hub.clock.now);
    expect(await listed()).toEqual([]);
    const report = await hub.call('POST', '/v1/locks', signHubLockRequest({ serial: 'VSC-LOST', time: hub.clock.now }, OTHER));
    expect(report.status).toBe(403);
    expect(report.body).toMatchObject({ error: { reason: 'unauthenticated' } });
    expect((await hub.call('GET', '/v1/locks')).body['locks']).toEqual([]);
    // Its operator authorizes it: the registration it has counts again.
    await authorizeLicensor(hub.hub, OTHER.publicKey, 'Old Software', { actor: 'administrator' });
    expect(await listed()).toEqual([{ licensorKey: toHex(OTHER.publicKey), name: 'Old Software', restoreUrl: 'http://127.0.0.1:9/' }]);
  });

  it('a revoked licensor\'s registration is gone and its lock reports are refused (403)', async () => {
    expect((await hub.call('POST', '/v1/licensors', registration())).status).toBe(200);
    expect(await revokeLicensor(hub.hub, KEY.publicKey, { actor: 'administrator' })).toEqual({ revoked: true });
    expect(await listed()).toEqual([]);
    const report = await hub.call('POST', '/v1/locks', signHubLockRequest({ serial: 'VSC-LOST', time: hub.clock.now }, KEY));
    expect(report.status).toBe(403);
    expect((await hub.call('GET', '/v1/locks')).body['locks']).toEqual([]);
    expect((await hub.call('POST', '/v1/licensors', registration({ time: hub.clock.now + 1 }))).status).toBe(403);
    expect((await hub.counts())['hub_licensors']).toBe(0);
    const audit = await hub.hub.database.db.selectFrom('hub_audit').selectAll().orderBy('id').execute();
    expect(audit.map((row) => [row.action, row.outcome, row.actor])).toEqual([
      ['licensor.authorize', 'ok', 'administrator'], ['licensor.register', 'ok', 'licensor Example Software'], ['licensor.revoke', 'ok', 'administrator'],
      ['lock.report', 'unauthenticated', `licensor ${toHex(KEY.publicKey)}`], ['licensor.register', 'unauthenticated', 'licensor Example Software'],
    ]);
    // Revoking a licensor that is not authorized changes nothing and says so.
    expect(await revokeLicensor(hub.hub, KEY.publicKey, { actor: 'administrator' })).toEqual({ revoked: false });
  });

  it('registers a licensor signed by its key and lists its key, name and restoring service', async () => {
    expect(await listed()).toEqual([]);
    const answer = await hub.call('POST', '/v1/licensors', registration());
    expect(answer).toMatchObject({ status: 200, body: { licensor: { licensorKey: toHex(KEY.publicKey), name: 'Example Software', restoreUrl: URL_A } } });
    expect(await listed()).toEqual([{ licensorKey: toHex(KEY.publicKey), name: 'Example Software', restoreUrl: URL_A }]);
    const audit = await hub.hub.database.db.selectFrom('hub_audit').selectAll().execute();
    expect(audit.map((row) => [row.action, row.outcome, row.actor])).toEqual([['licensor.authorize', 'ok', 'administrator'], ['licensor.register', 'ok', 'licensor Example Software']]);
  });

  it('lets the newest signed time win: a later registration moves the service, the same one again changes nothing', async () => {
    const first = registration();
    expect((await hub.call('POST', '/v1/licensors', first)).status).toBe(200);
    expect((await hub.call('POST', '/v1/licensors', first)).status).toBe(200);
    hub.clock.now += 60;
    expect((await hub.call('POST', '/v1/licensors', registration())).status).toBe(200); // the service's timer: nothing new to audit
    hub.clock.now += 60;
    expect((await hub.call('POST', '/v1/licensors', registration({ restoreUrl: URL_B, name: 'Example Software GmbH' }))).status).toBe(200);
    // The registration two minutes ago is older than the one taken since.
    expect((await hub.call('POST', '/v1/licensors', registration({ time: hub.clock.now - 60 }))).status).toBe(409);
    expect(await listed()).toEqual([{ licensorKey: toHex(KEY.publicKey), name: 'Example Software GmbH', restoreUrl: URL_B }]);
    const audit = await hub.hub.database.db.selectFrom('hub_audit').selectAll().orderBy('id').execute();
    expect(audit.map((row) => [row.action, row.outcome])).toEqual([['licensor.authorize', 'ok'], ['licensor.register', 'ok'], ['licensor.register', 'ok'], ['licensor.register', 'replayed']]);
  });

  describe('refuses with nothing changed', () => {
    const cases: Array<[string, () => unknown, number, string]> = [
      // The clock moved 60 s on since the registration taken.
      ['an older registration than the one taken (replayed)', () => registration({ time: hub.clock.now - 70, restoreUrl: URL_B }), 409, 'replayed'],
      ['the same time saying something else', () => registration({ time: hub.clock.now - 60, restoreUrl: URL_B }), 409, 'replayed'],
      ['a time more than 5 minutes old', () => registration({ time: hub.clock.now - 301 + 60 }), 409, 'replayed'],
      ['a time more than 5 minutes ahead', () => registration({ time: hub.clock.now + 301 + 60 }), 409, 'replayed'],
      ['a signature that does not verify', () => ({ ...registration({ time: hub.clock.now + 60 }), signature: '00'.repeat(64) }), 422, 'signature'],
      ['a registration signed by another key', () => ({ ...registration({ time: hub.clock.now + 60 }, OTHER), licensorKey: toHex(KEY.publicKey) }), 422, 'signature'],
      ['an unknown field', () => ({ ...registration({ time: hub.clock.now + 60 }), extra: 1 }), 400, 'input'],
      ['a URL that is not http(s)', () => ({ ...registration({ time: hub.clock.now + 60 }), restoreUrl: 'ftp://example.com' }), 400, 'input'],
      ['a time as a string', () => ({ ...registration({ time: hub.clock.now + 60 }), time: String(hub.clock.now) }), 400, 'input'],
    ];
    it.each(cases)('%s', async (_what, body, status, reason) => {
      expect((await hub.call('POST', '/v1/licensors', registration())).status).toBe(200);
      hub.clock.now += 60;
      const before = { rows: await hub.counts(), listed: await listed() };
      const answer = await hub.call('POST', '/v1/licensors', body());
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({ error: { reason } });
      expect(await listed()).toEqual(before.listed);
      const after = await hub.counts();
      expect({ ...after, hub_audit: 0 }).toEqual({ ...before.rows, hub_audit: 0 });
    });
  });
});
