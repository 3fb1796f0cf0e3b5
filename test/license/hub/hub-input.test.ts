// Bad input to the restore hub (src/license/hub/hub-service.ts, hub-target.ts; the backup's own parser): every route
// answers a 4xx with {"error": {"reason", "message"}}, and nothing changes — no row, no job, no licensor asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardBackup, OLD_SERIAL, startFakeLicensor, startHub, targetInfo, type FakeLicensor, type HubHarness } from './hub-fixture.js';

let hub: HubHarness;
let licensor: FakeLicensor;
let backup: Record<string, unknown>;
const UNREGISTERED = 'ab'.repeat(32);

beforeAll(async () => {
  hub = await startHub();
  licensor = await startFakeLicensor('Only', 31, 'restore');
  expect(await hub.register(licensor)).toBe(200);
  backup = JSON.parse(cardBackup([licensor]).text) as Record<string, unknown>;
});

afterAll(async () => {
  await licensor.close();
  await hub.close();
});

type Case = [what: string, method: string, path: string, body: () => unknown, status: number, reason: string, headers?: Record<string, string>];

const job = (fields: Record<string, unknown> = {}) => ({ backup, target: targetInfo(), ...fields });
const withBackup = (change: (copy: Record<string, unknown>) => void) => {
  const copy = JSON.parse(JSON.stringify(backup)) as Record<string, unknown>;
  change(copy);
  return job({ backup: copy });
};
const items = (copy: Record<string, unknown>) => copy['items'] as Array<Record<string, unknown>>;

const CASES: Case[] = [
  ['a job without a target', 'POST', '/v1/restore-jobs', () => ({ backup }), 400, 'input'],
  ['a job with an unknown field', 'POST', '/v1/restore-jobs', () => job({ extra: true }), 400, 'input'],
  ['a backup of another format', 'POST', '/v1/restore-jobs', () => withBackup((copy) => void (copy['format'] = 'vsc-license-backup/2')), 400, 'input'],
  ['a backup whose treeSize disagrees with its record', 'POST', '/v1/restore-jobs', () => withBackup((copy) => void (copy['treeSize'] = 2)), 400, 'input'],
  ['a backup item whose leaf is not base64', 'POST', '/v1/restore-jobs', () => withBackup((copy) => void (items(copy)[0]!['leaf'] = '***')), 400, 'input'],
  ['a backup item with an audit path too long', 'POST', '/v1/restore-jobs', () => withBackup((copy) => void (items(copy)[0]!['auditPath'] = ['00'.repeat(32)])), 400, 'input'],
  ['a backup that is an array', 'POST', '/v1/restore-jobs', () => job({ backup: [] }), 400, 'input'],
  ['a target key of 31 bytes', 'POST', '/v1/restore-jobs', () => job({ target: { ...targetInfo(), cardPublicKey: '00'.repeat(31) } }), 400, 'input'],
  ['a target counter map keyed by a name', 'POST', '/v1/restore-jobs', () => job({ target: targetInfo({ alice: 1 }) }), 400, 'input'],
  ['a target counter that is negative', 'POST', '/v1/restore-jobs', () => job({ target: targetInfo({ [UNREGISTERED]: -1 }) }), 400, 'input'],
  ['a target counter given as text', 'POST', '/v1/restore-jobs', () => job({ target: { ...targetInfo(), firmUpdateCounters: { [UNREGISTERED]: '1' } } }), 400, 'input'],
  ['the backed-up card as its own target', 'POST', '/v1/restore-jobs', () => job({ target: { ...targetInfo(), serial: OLD_SERIAL } }), 400, 'input'],
  ['a target serial with a control character', 'POST', '/v1/restore-jobs', () => job({ target: { ...targetInfo(), serial: 'NEW\u0007' } }), 400, 'input'],
  ['an empty selection', 'POST', '/v1/restore-jobs', () => job({ select: [] }), 400, 'input'],
  ['a selection of a licensor without an item', 'POST', '/v1/restore-jobs', () => job({ select: [UNREGISTERED] }), 400, 'input'],
  ['a selection naming a licensor twice', 'POST', '/v1/restore-jobs', () => job({ select: [licensor.keyHex, licensor.keyHex] }), 400, 'input'],
  ['a body that is not JSON', 'POST', '/v1/restore-jobs', () => '{"backup":', 400, 'input'],
  ['a body sent as text/plain', 'POST', '/v1/restore-jobs', () => JSON.stringify(job()), 415, 'input', { 'content-type': 'text/plain' }],
  ['a job body over 8 MiB', 'POST', '/v1/restore-jobs', () => job({ pad: 'x'.repeat(8 * 1024 * 1024 + 64 * 1024) }), 413, 'limit'],
  ['a lock report over 64 KiB', 'POST', '/v1/locks', () => ({ serial: 'x'.repeat(70 * 1024) }), 413, 'limit'],
  ['a job id that is not 32 hex digits', 'GET', '/v1/restore-jobs/12345', () => undefined, 400, 'input'],
  ['an answer of an unknown job', 'GET', `/v1/restore-jobs/${'f'.repeat(32)}/answer`, () => undefined, 404, 'no-license'],
  ['a transfer of a licensor without an item', 'POST', '/v1/transfer-jobs', () => job({ licensorKey: UNREGISTERED }), 400, 'input'],
  ['a transfer proof of a licensor not registered', 'POST', '/v1/transfer-jobs/proof', () => ({
    licensorKey: UNREGISTERED, transfer: 1, record: { nonce: '11'.repeat(16), text: 't', counter: '00'.repeat(16), signature: '22'.repeat(64) },
  }), 404, 'no-license'],
  ['a reactivation with a request that is not an object', 'POST', '/v1/reactivation-jobs', () => ({ licensorKey: licensor.keyHex, request: 'renew' }), 400, 'input'],
  ['alerts of a licensor not registered', 'GET', `/v1/licensor/alerts?licensorKey=${UNREGISTERED}`, () => undefined, 404, 'no-license', { authorization: 'Bearer k' }],
  ['alerts without a licensor key', 'GET', '/v1/licensor/alerts', () => undefined, 400, 'input', { authorization: 'Bearer k' }],
  ['an approval of an alert id that is not a number', 'POST', '/v1/licensor/alerts/x/approve?licensorKey={mine}', () => undefined, 400, 'input', { authorization: 'Bearer k' }],
  ['an unlock of a serial not locked', 'POST', '/v1/unlocks', () => ({ serial: 'NOT-LOCKED' }), 409, 'input', { authorization: 'admin' }],
  ['an unknown route', 'GET', '/v1/backups', () => undefined, 404, 'input'],
];

describe('bad input', () => {
  it.each(CASES)('refuses %s', async (_what, method, path, body, status, reason, headers = {}) => {
    const before = { rows: await hub.counts(), jobs: hub.hub.jobs.size, asked: licensor.received.length };
    const given = headers['authorization'] === 'admin' ? { ...headers, authorization: `Bearer ${hub.adminToken}` } : headers;
    const answer = await hub.call(method, path.replace('{mine}', licensor.keyHex), body(), given);
    expect(answer.status).toBe(status);
    expect(answer.body).toMatchObject({ error: { reason, message: expect.any(String) } });
    expect(answer.headers.get('content-security-policy')).toContain("default-src 'self'");
    const after = await hub.counts();
    expect({ ...after, hub_audit: 0 }).toEqual({ ...before.rows, hub_audit: 0 });
    expect(hub.hub.jobs.size).toBe(before.jobs);
    expect(licensor.received.length).toBe(before.asked);
  });

  it('describes every route in GET /openapi.json', async () => {
    const answer = await hub.call('GET', '/openapi.json');
    const paths = Object.keys(answer.body['paths'] as Record<string, unknown>);
    expect(paths).toEqual(expect.arrayContaining([
      '/v1/licensors', '/v1/locks', '/v1/unlocks', '/v1/audit', '/v1/restore-jobs', '/v1/restore-jobs/{id}', '/v1/restore-jobs/{id}/answer', '/v1/transfer-jobs',
      '/v1/transfer-jobs/proof', '/v1/reactivation-jobs', '/v1/licensor/alerts', '/v1/licensor/alerts/{id}/approve',
    ]));
  });
});
