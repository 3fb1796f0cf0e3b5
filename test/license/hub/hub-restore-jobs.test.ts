// Restore jobs of the hub (src/license/hub/hub-restore-jobs.ts; Wibu 000 P002 §2.1 the hub sends each license to its
// licensor's Restoring Web Service, "CM-Box Backup" §2.4 a licensor sees only its own item, §2.5 all licensors at the
// same time, optionally only some): real fastify restoring services, one slow, one refusing, one not registered, and
// none that is not (or no longer) authorized by the hub's operator (§2.10).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseBackupItemFile, parseSignedBody } from '../../../src/license/index.js';
import { revokeLicensor } from '../../../src/license/hub/index.js';
import { cardBackup, NEW_SERIAL, OLD_SERIAL, startFakeLicensor, startHub, storeUnauthorizedRegistration, targetInfo, type Behaviour, type FakeLicensor, type HubHarness } from './hub-fixture.js';

interface JobItemJson { licensorKey: string; firmCode: number; name?: string; status: string; update?: string; reason?: string; message?: string; degreePercent?: number }
interface JobJson { state: string; items: JobItemJson[] }

let hub: HubHarness;
let licensors: FakeLicensor[] = [];

async function licensor(name: string, firmCode: number, behaviour: Behaviour, register = true): Promise<FakeLicensor> {
  const made = await startFakeLicensor(name, firmCode, behaviour);
  licensors.push(made);
  if (register) expect(await hub.register(made)).toBe(200);
  return made;
}

async function job(id: string): Promise<JobJson> {
  const answer = await hub.call('GET', `/v1/restore-jobs/${id}`);
  expect(answer.status).toBe(200);
  return answer.body as unknown as JobJson;
}

/** Polls the job until `done` holds (the hub answers while licensors are still working). */
async function until(id: string, done: (view: JobJson) => boolean, timeoutMs = 10_000): Promise<JobJson> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const view = await job(id);
    if (done(view)) return view;
    if (Date.now() > end) throw new Error(`job ${id} did not get there: ${JSON.stringify(view)}`);
    await sleep(20);
  }
}

const itemOf = (view: JobJson, who: FakeLicensor) => view.items.find((item) => item.licensorKey === who.keyHex)!;
const restores = (who: FakeLicensor) => who.received.filter((entry) => entry.path === '/v1/restores');

beforeEach(async () => {
  hub = await startHub();
});

afterEach(async () => {
  await Promise.all(licensors.map((entry) => entry.close()));
  licensors = [];
  await hub.close();
});

describe('restore jobs', () => {
  it('sends each licensor only its own item, all at once, and shows each answer as it comes', async () => {
    const fast = await licensor('Fast Software', 101, 'restore');
    const slow = await licensor('Slow Software', 102, 'slow');
    const refusing = await licensor('Refusing Software', 103, 'refuse');
    const absent = await licensor('Absent Software', 104, 'restore', false);
    const backup = cardBackup([fast, slow, refusing, absent]);
    const target = targetInfo({ [slow.keyHex]: 3 });
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(backup.text), target });
    expect(started.status).toBe(202);
    const id = (started.body as { job: string }).job;
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    // Progress: the fast and the refusing licensor answered while the slow one still works on its item.
    const midway = await until(id, (view) => itemOf(view, fast).status !== 'pending' && itemOf(view, refusing).status !== 'pending');
    expect(midway.state).toBe('running');
    expect(itemOf(midway, slow).status).toBe('pending');
    expect(restores(slow)).toHaveLength(1); // asked at the same time as the others, not after them
    expect(itemOf(midway, fast)).toMatchObject({ status: 'restored', name: 'Fast Software', firmCode: 101, degreePercent: 80 });
    expect(itemOf(midway, refusing)).toMatchObject({ status: 'refused', reason: 'replayed', message: 'Refusing Software: this backup was restored before' });
    expect(itemOf(midway, absent)).toMatchObject({ status: 'not-restorable', reason: 'not-restorable', name: 'Absent Software' });
    expect(itemOf(midway, absent).message).toContain('offers no restore');
    expect((await hub.call('GET', `/v1/restore-jobs/${id}/answer`)).status).toBe(409);

    slow.release();
    const done = await until(id, (view) => view.state === 'done');
    expect(done.items.map((item) => item.status)).toEqual(['restored', 'restored', 'refused', 'not-restorable']);

    // Each licensor received exactly one body, holding only its own firm item (000 §2.4), for the target.
    for (const who of [fast, slow, refusing]) {
      expect(restores(who)).toHaveLength(1);
      const body = restores(who)[0]!.body as { item: unknown; target: Record<string, unknown>; requestId: string };
      const item = parseBackupItemFile(body.item);
      expect(item.box.serial).toBe(OLD_SERIAL);
      expect(item.item.firmCode).toBe(who.firmCode);
      expect(Buffer.from(item.item.licensorKey).toString('hex')).toBe(who.keyHex);
      expect(body.target).toEqual({ serial: NEW_SERIAL, cardPublicKey: target.cardPublicKey, firmUpdateCounter: who === slow ? 3 : null });
      expect(body.requestId).toMatch(/^[0-9a-f]{32}$/);
      const others = [fast, slow, refusing, absent].filter((other) => other !== who);
      for (const other of others) expect(JSON.stringify(body)).not.toContain(other.keyHex);
      for (const entry of backup.file.items.filter((entry) => entry.firmCode !== who.firmCode)) expect(JSON.stringify(body)).not.toContain(Buffer.from(entry.leaf).toString('base64'));
    }
    expect(absent.received).toEqual([]);

    // The answer file: the two restored updates, each for the target.
    const answer = await hub.call('GET', `/v1/restore-jobs/${id}/answer`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-disposition')).toBe(`attachment; filename="restore-answer-${NEW_SERIAL}.json"`);
    const file = answer.body as { format: string; updates: string[] };
    expect(file.format).toBe('vsc-license-restore-answer/1');
    expect(file.updates.map((update) => parseSignedBody(update).body.serial)).toEqual([NEW_SERIAL, NEW_SERIAL]);
    expect(file.updates.map((update) => Buffer.from(parseSignedBody(update).body.licensorKey).toString('hex'))).toEqual([fast.keyHex, slow.keyHex]);
  });

  it('restores only the licensors selected, the others are not asked (a partial restore)', async () => {
    const first = await licensor('First', 201, 'restore');
    const second = await licensor('Second', 202, 'restore');
    const backup = cardBackup([first, second]);
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(backup.text), target: targetInfo(), select: [second.keyHex] });
    expect(started.status).toBe(202);
    const done = await until((started.body as { job: string }).job, (view) => view.state === 'done');
    expect(done.items.map((item) => [item.licensorKey, item.status])).toEqual([[second.keyHex, 'restored']]);
    expect(restores(first)).toEqual([]);
    expect(restores(second)).toHaveLength(1);
  });

  it('does not ask a licensor its operator revoked, nor one whose registration was stored without an authorization', async () => {
    const kept = await licensor('Kept', 251, 'restore');
    const revoked = await licensor('Revoked', 252, 'restore');
    const unauthorized = await licensor('Unauthorized', 253, 'restore', false);
    expect(await revokeLicensor(hub.hub, revoked.key.publicKey, { actor: 'administrator' })).toEqual({ revoked: true });
    await storeUnauthorizedRegistration(hub.hub, unauthorized, hub.clock.now);
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(cardBackup([kept, revoked, unauthorized]).text), target: targetInfo() });
    expect(started.status).toBe(202);
    const done = await until((started.body as { job: string }).job, (view) => view.state === 'done');
    expect(done.items.map((item) => [item.licensorKey, item.status])).toEqual([[kept.keyHex, 'restored'], [revoked.keyHex, 'not-restorable'], [unauthorized.keyHex, 'not-restorable']]);
    expect(restores(kept)).toHaveLength(1);
    expect(revoked.received).toEqual([]);
    expect(unauthorized.received).toEqual([]);
  });

  it('asks again with the same request id when the same restore is started twice (the licensor answers the same)', async () => {
    const only = await licensor('Only', 301, 'restore');
    const body = { backup: JSON.parse(cardBackup([only]).text), target: targetInfo() };
    for (let i = 0; i < 2; i += 1) {
      const started = await hub.call('POST', '/v1/restore-jobs', body);
      await until((started.body as { job: string }).job, (view) => view.state === 'done');
    }
    const ids = restores(only).map((entry) => (entry.body as { requestId: string }).requestId);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
  });

  it.each([
    ['an update for another container', 'refused', 'forge', 'signature'],
    ['a chain of restores waiting for the licensor', 'approval', 'approval', 'approval'],
  ] as const)('reports %s as %s', async (_what, status, behaviour, reason) => {
    const who = await licensor('Checked', 401, behaviour);
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(cardBackup([who]).text), target: targetInfo() });
    const done = await until((started.body as { job: string }).job, (view) => view.state === 'done');
    expect(done.items[0]).toMatchObject({ status, reason });
    expect(done.items[0]!.update).toBeUndefined();
  });

  it('reports a service that does not answer in time, or cannot be reached, as unavailable', async () => {
    await hub.close();
    hub = await startHub({ forwardTimeoutMs: 300 });
    const stuck = await licensor('Stuck', 501, 'slow');
    const gone = await licensor('Gone', 502, 'restore');
    await gone.close();
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(cardBackup([stuck, gone]).text), target: targetInfo() });
    const done = await until((started.body as { job: string }).job, (view) => view.state === 'done');
    expect(done.items).toMatchObject([
      { status: 'refused', reason: 'unavailable', message: 'the restoring service of Stuck no answer within 0.3 s: try again later' },
      { status: 'refused', reason: 'unavailable', message: 'the restoring service of Gone cannot be reached: try again later' },
    ]);
  });

  it('forgets a job an hour after it started, and knows no other', async () => {
    const only = await licensor('Only', 601, 'restore');
    const started = await hub.call('POST', '/v1/restore-jobs', { backup: JSON.parse(cardBackup([only]).text), target: targetInfo() });
    const id = (started.body as { job: string }).job;
    await until(id, (view) => view.state === 'done');
    expect((await hub.call('GET', `/v1/restore-jobs/${'0'.repeat(32)}`)).status).toBe(404);
    hub.clock.now += 3600;
    const gone = await hub.call('GET', `/v1/restore-jobs/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ error: { reason: 'no-license' } });
  });
});
