// What the hub passes on to one licensor (src/license/hub/hub-pass-through.ts; Wibu 000 "CM-Box Backup" §2.11 the
// licensor's alert list and approvals, §2.12 transfer with only the licensor's own item; 001 reactivation): the
// licensor's answers pass through as they came, its API key goes on to its service and is never kept by the hub.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseBackupItemFile } from '../../../src/license/index.js';
import { API_KEY, cardBackup, NEW_SERIAL, startFakeLicensor, startHub, targetInfo, type FakeLicensor, type HubHarness } from './hub-fixture.js';

let hub: HubHarness;
let mine: FakeLicensor;
let other: FakeLicensor;

beforeEach(async () => {
  hub = await startHub();
  mine = await startFakeLicensor('Mine', 21, 'restore');
  other = await startFakeLicensor('Other', 22, 'restore');
  expect(await hub.register(mine)).toBe(200);
  expect(await hub.register(other)).toBe(200);
});

afterEach(async () => {
  await mine.close();
  await other.close();
  await hub.close();
});

const bearer = (key = API_KEY) => ({ authorization: `Bearer ${key}` });

describe('licensor alerts through the hub', () => {
  it('shows the licensor\'s alerts and approves one with its API key, which the hub passes on and does not keep', async () => {
    const alerts = await hub.call('GET', `/v1/licensor/alerts?licensorKey=${mine.keyHex}`, undefined, bearer());
    expect(alerts.status).toBe(200);
    expect(alerts.body['alerts']).toMatchObject([{ id: 7, state: 'pending' }]);
    const approved = await hub.call('POST', `/v1/licensor/alerts/7/approve?licensorKey=${mine.keyHex}`, undefined, bearer());
    expect(approved).toMatchObject({ status: 200, body: { alert: { id: 7, state: 'approved' } } });
    expect(mine.received.map((entry) => [entry.method, entry.path, entry.authorization])).toEqual([
      ['GET', '/v1/alerts', `Bearer ${API_KEY}`], ['POST', '/v1/alerts/7/approve', `Bearer ${API_KEY}`],
    ]);
    expect(other.received).toEqual([]);
    const stored = readdirSync(hub.dataDir).map((name) => readFileSync(join(hub.dataDir, name)).toString('latin1')).join('');
    expect(stored).not.toContain(API_KEY.slice(8));
  });

  it('passes the licensor\'s refusal of a wrong key through, and asks for a key before calling anyone', async () => {
    const wrong = await hub.call('GET', `/v1/licensor/alerts?licensorKey=${mine.keyHex}`, undefined, bearer('vsclk_1_' + '00'.repeat(32)));
    expect(wrong).toMatchObject({ status: 401, body: { error: { reason: 'unauthenticated', message: 'the API key is not valid' } } });
    const none = await hub.call('GET', `/v1/licensor/alerts?licensorKey=${mine.keyHex}`);
    expect(none).toMatchObject({ status: 401, body: { error: { reason: 'unauthenticated' } } });
    expect(mine.received).toHaveLength(1);
  });

  it('answers 502 unavailable when the licensor\'s service is down', async () => {
    await mine.close();
    const down = await hub.call('GET', `/v1/licensor/alerts?licensorKey=${mine.keyHex}`, undefined, bearer());
    expect(down).toMatchObject({ status: 502, body: { error: { reason: 'unavailable', message: 'the restoring service of Mine cannot be reached: try again later' } } });
  });
});

describe('transfer and reactivation through the hub', () => {
  it('sends a transfer only the licensor\'s own item, then its proof, and passes the answers through (000 §2.12)', async () => {
    const backup = cardBackup([mine, other]);
    const target = targetInfo({ [mine.keyHex]: 4 });
    const started = await hub.call('POST', '/v1/transfer-jobs', { backup: JSON.parse(backup.text), target, licensorKey: mine.keyHex });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ transfer: 3, deleteUpdate: expect.any(String) });
    const sent = mine.received.find((entry) => entry.path === '/v1/transfers')!.body as { item: unknown; target: unknown; requestId: string };
    expect(parseBackupItemFile(sent.item).item.firmCode).toBe(21);
    expect(JSON.stringify(sent)).not.toContain(other.keyHex);
    expect(sent.target).toEqual({ serial: NEW_SERIAL, cardPublicKey: target.cardPublicKey, firmUpdateCounter: 4 });
    expect(other.received).toEqual([]);

    const record = { nonce: '11'.repeat(16), text: 'license update x', counter: '00'.repeat(16), signature: '22'.repeat(64) };
    const proved = await hub.call('POST', '/v1/transfer-jobs/proof', { licensorKey: mine.keyHex, transfer: 3, record });
    expect(proved).toMatchObject({ status: 200, body: { status: 'transferred', id: '3' } });
    expect(mine.received.find((entry) => entry.path === '/v1/transfers/3/proof')!.body).toEqual({ record });
  });

  it('forwards a reactivation request to the licensor as it is (001)', async () => {
    const request = { ticket: 'AAAAA-BBBBB-CCCCC-DDDDD-EEEEE', serial: NEW_SERIAL, reason: 'other-device' };
    const answer = await hub.call('POST', '/v1/reactivation-jobs', { licensorKey: other.keyHex, request });
    expect(answer).toMatchObject({ status: 200, body: { update: expect.any(String), binding: 'b' } });
    expect(other.received.map((entry) => [entry.path, entry.body])).toEqual([['/v1/reactivations', request]]);
  });
});
