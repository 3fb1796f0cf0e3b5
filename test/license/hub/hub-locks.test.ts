// The central locking list (src/license/hub/hub-locks.ts; Wibu 000 "CM-Box Backup" §2.10: the Locking instance checks
// that the request came from an authorized licensor, locks a serial once, lets licensors and time services read the
// list; only the central authority unlocks): lock sequences signed by the hub's authority key, no double locking,
// admin-only unlock, replays refused, every step audited.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import { parseLockSequence, signHubLockRequest, verifyLockSequence } from '../../../src/license/index.js';
import { startFakeLicensor, startHub, type FakeLicensor, type HubHarness } from './hub-fixture.js';

let hub: HubHarness;
let first: FakeLicensor;
let second: FakeLicensor;

beforeEach(async () => {
  hub = await startHub();
  first = await startFakeLicensor('First Software', 11, 'restore');
  second = await startFakeLicensor('Second Software', 12, 'restore');
  expect(await hub.register(first)).toBe(200);
  expect(await hub.register(second)).toBe(200);
});

afterEach(async () => {
  await first.close();
  await second.close();
  await hub.close();
});

const report = (serial: string, who: FakeLicensor, time = hub.clock.now) => signHubLockRequest({ serial, time }, who.key);
const admin = () => ({ authorization: `Bearer ${hub.adminToken}` });

describe('central locking list', () => {
  it('locks a serial a registered licensor reports, with a sequence the hub\'s authority signed', async () => {
    const answer = await hub.call('POST', '/v1/locks', report('LOST-1', first));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ serial: 'LOST-1', created: true });
    const signed = parseLockSequence(answer.body['lockSequence'] as string);
    expect(verifyLockSequence(signed)).toBe(true);
    expect(signed.body).toMatchObject({ kind: 'lock', serial: 'LOST-1', time: hub.clock.now, reason: 'restored elsewhere' });
    expect(toHex(signed.body.authorityKey)).toBe(toHex(hub.hub.authority.publicKey));
    expect((await hub.call('GET', '/v1/locks')).body).toEqual({ locks: [{ serial: 'LOST-1', lockSequence: answer.body['lockSequence'] }] });
  });

  it('never locks twice: a second report, by any licensor, answers the existing sequence', async () => {
    const made = await hub.call('POST', '/v1/locks', report('LOST-2', first));
    hub.clock.now += 30;
    const again = await hub.call('POST', '/v1/locks', report('LOST-2', second));
    const repeated = await hub.call('POST', '/v1/locks', report('LOST-2', first, hub.clock.now - 30));
    expect(again.body).toEqual({ serial: 'LOST-2', lockSequence: made.body['lockSequence'], created: false });
    expect(repeated.body).toEqual(again.body);
    expect((await hub.counts())['hub_locks']).toBe(1);
  });

  it('unlocks for the admin token only ("handled exclusively" by the central authority), then the serial leaves the list', async () => {
    const locked = await hub.call('POST', '/v1/locks', report('LOST-3', first));
    const lockTime = parseLockSequence(locked.body['lockSequence'] as string).body.time;
    for (const headers of <Array<Record<string, string>>>[{}, { authorization: 'Bearer vschub_' + '0'.repeat(64) }, { authorization: hub.adminToken }, { authorization: `Bearer ${first.keyHex}` }]) {
      const refused = await hub.call('POST', '/v1/unlocks', { serial: 'LOST-3' }, headers);
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ error: { reason: 'unauthenticated' } });
      expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await hub.call('GET', '/v1/locks')).body['locks']).toHaveLength(1);
    const unlocked = await hub.call('POST', '/v1/unlocks', { serial: 'LOST-3' }, admin());
    expect(unlocked.status).toBe(200);
    const signed = parseLockSequence(unlocked.body['unlockSequence'] as string);
    expect(verifyLockSequence(signed)).toBe(true);
    expect(signed.body).toMatchObject({ kind: 'unlock', serial: 'LOST-3' });
    expect(signed.body.time).toBeGreaterThan(lockTime); // the card takes an unlock only after its lock
    expect((await hub.call('GET', '/v1/locks')).body).toEqual({ locks: [] });
    const twice = await hub.call('POST', '/v1/unlocks', { serial: 'LOST-3' }, admin());
    expect(twice).toMatchObject({ status: 409, body: { error: { reason: 'input' } } });
  });

  it('refuses a report taken before when it comes again after an unlock; a new report locks anew, later than the unlock', async () => {
    const original = report('LOST-4', first);
    await hub.call('POST', '/v1/locks', original);
    const unlocked = await hub.call('POST', '/v1/unlocks', { serial: 'LOST-4' }, admin());
    const replayed = await hub.call('POST', '/v1/locks', original);
    expect(replayed).toMatchObject({ status: 409, body: { error: { reason: 'replayed' } } });
    expect((await hub.call('GET', '/v1/locks')).body).toEqual({ locks: [] });
    const fresh = await hub.call('POST', '/v1/locks', report('LOST-4', second));
    expect(fresh.body['created']).toBe(true);
    expect(parseLockSequence(fresh.body['lockSequence'] as string).body.time).toBeGreaterThan(parseLockSequence(unlocked.body['unlockSequence'] as string).body.time);
  });

  describe('refuses with the list unchanged', () => {
    const stranger = ed25519KeyFromSeed(generateEd25519Seed());
    const cases: Array<[string, () => unknown, number, string]> = [
      ['a licensor not registered at the hub', () => signHubLockRequest({ serial: 'LOST-9', time: hub.clock.now }, stranger), 403, 'unauthenticated'],
      ['a report more than 5 minutes old', () => report('LOST-9', first, hub.clock.now - 301), 409, 'replayed'],
      ['a report more than 5 minutes ahead', () => report('LOST-9', first, hub.clock.now + 301), 409, 'replayed'],
      ['a signature that does not verify', () => ({ ...report('LOST-9', first), signature: 'ff'.repeat(64) }), 422, 'signature'],
      ['a report of another serial than signed', () => ({ ...report('LOST-9', first), serial: 'LOST-8' }), 422, 'signature'],
      ['a registered licensor\'s key on a stranger\'s signature', () => ({ ...signHubLockRequest({ serial: 'LOST-9', time: hub.clock.now }, stranger), licensorKey: first.keyHex }), 422, 'signature'],
      ['a serial with a line break', () => ({ ...report('LOST-9', first), serial: 'LOST\n9' }), 400, 'input'],
      ['a missing signature', () => ({ serial: 'LOST-9', licensorKey: first.keyHex, time: hub.clock.now }), 400, 'input'],
    ];
    it.each(cases)('%s', async (_what, body, status, reason) => {
      const before = await hub.counts();
      const answer = await hub.call('POST', '/v1/locks', body());
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({ error: { reason } });
      expect((await hub.call('GET', '/v1/locks')).body).toEqual({ locks: [] });
      const after = await hub.counts();
      expect({ ...after, hub_audit: 0 }).toEqual({ ...before, hub_audit: 0 });
    });
  });

  it('audits registrations, locks, repeated reports, refusals and unlocks, for the admin only', async () => {
    await hub.call('POST', '/v1/locks', report('LOST-5', first));
    await hub.call('POST', '/v1/locks', report('LOST-5', second));
    await hub.call('POST', '/v1/locks', signHubLockRequest({ serial: 'LOST-6', time: hub.clock.now }, ed25519KeyFromSeed(generateEd25519Seed())));
    await hub.call('POST', '/v1/unlocks', { serial: 'LOST-5' }, admin());
    expect((await hub.call('GET', '/v1/audit')).status).toBe(401);
    const audit = await hub.call('GET', '/v1/audit', undefined, admin());
    const rows = (audit.body['records'] as Array<{ action: string; subject: string; outcome: string; actor: string }>).map((row) => [row.action, row.subject, row.outcome, row.actor]);
    expect(rows).toEqual([
      ['licensor.authorize', `licensor ${first.keyHex}`, 'ok', 'administrator'],
      ['licensor.register', `licensor ${first.keyHex}`, 'ok', 'licensor First Software'],
      ['licensor.authorize', `licensor ${second.keyHex}`, 'ok', 'administrator'],
      ['licensor.register', `licensor ${second.keyHex}`, 'ok', 'licensor Second Software'],
      ['lock', 'serial LOST-5', 'ok', 'licensor First Software'],
      ['lock.report', 'serial LOST-5', 'locked already', 'licensor Second Software'],
      ['lock.report', 'serial LOST-6', 'unauthenticated', expect.stringMatching(/^licensor [0-9a-f]{64}$/)],
      ['unlock', 'serial LOST-5', 'ok', 'administrator'],
    ]);
  });
});
