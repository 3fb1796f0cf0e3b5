// What the restore hub's tests share (src/license/hub; Wibu 000 P002 §2.1, "CM-Box Backup" §2.4, §2.5, §2.10): a real
// hub on 127.0.0.1:0 over a temp data directory with a clock the test moves, small real fastify "restoring services"
// of licensors that record every body they receive (one answers at once, one waits until the test lets it, one
// refuses), a signed card backup of several licensors' firm items, and a target info file.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { signedDigest } from '../../../src/apdu/index.js';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, type Ed25519SigningKey } from '../../../src/crypto/index.js';
import {
  assembleBackup, buildCardBackup, encodeBackupFile, encodeSignedBody, formatLicenseRecordText, licenseBodyDigest, signHubLicensorRequest, signLicenseBody,
  type BackupFile, type FirmItem, type UpdateBody,
} from '../../../src/license/index.js';
import { authorizeLicensor, openHubBackend, startHubService, type HubBackend } from '../../../src/license/hub/index.js';
import { recordHash } from '../../../src/rental/index.js';
import { productItem, simpleProduct } from '../../support/index.js';

export const START = 1_800_000_000;
export const OLD_SERIAL = 'OLD-CARD-1';
export const NEW_SERIAL = 'NEW-CARD-1';
export const API_KEY = `vsclk_1_${'ab'.repeat(32)}`;

export type Behaviour = 'restore' | 'slow' | 'refuse' | 'approval' | 'forge';

/** What a restoring service received: path, body and whether an Authorization header came with it. */
export interface Received {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly authorization?: string;
}

export interface FakeLicensor {
  readonly name: string;
  readonly firmCode: number;
  readonly key: Ed25519SigningKey;
  readonly keyHex: string;
  readonly behaviour: Behaviour;
  url: string;
  readonly received: Received[];
  /** A 'slow' service answers its restores once this is called. */
  release(): void;
  /** Its alerts, as GET /v1/alerts answers them (000 §2.11). */
  readonly alerts: Array<{ id: number; kind: string; subject: string; detail: string; state: string; createdAt: number; updatedAt: number }>;
  close(): Promise<void>;
}

/** A licensor's restoring service: the routes the hub calls, answering as `behaviour` says. */
export async function startFakeLicensor(name: string, firmCode: number, behaviour: Behaviour): Promise<FakeLicensor> {
  const { default: Fastify } = await import('fastify');
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const received: Received[] = [];
  const alerts = [{ id: 7, kind: 'restore-chain', subject: `serial ${OLD_SERIAL}`, detail: 'third restore along one chain within 30 days', state: 'pending', createdAt: START, updatedAt: START }];
  const signedFor = (target: { serial: string; firmUpdateCounter: number | null }, serial = target.serial) => {
    const signed = signLicenseBody<UpdateBody>({
      kind: 'update', serial, licensorKey: key.publicKey, firmCode, updateCounter: target.firmUpdateCounter ?? 0, time: START,
      operations: [{ op: 'create-firm', text: name }, { op: 'put-product', product: simpleProduct(1, 50) }],
    }, key);
    return { update: encodeSignedBody(signed), digest: toHex(licenseBodyDigest(signed)) };
  };
  app.addHook('onRequest', async (request) => {
    received.push({ method: request.method, path: request.url, body: undefined, ...(request.headers.authorization === undefined ? {} : { authorization: request.headers.authorization }) });
  });
  app.addHook('preHandler', async (request) => {
    const last = received.findLast((entry) => entry.path === request.url && entry.body === undefined);
    if (last !== undefined) (last as { body: unknown }).body = request.body;
  });
  app.post('/v1/restores', async (request, reply) => {
    const body = request.body as { target: { serial: string; firmUpdateCounter: number | null } };
    if (behaviour === 'slow') await released;
    if (behaviour === 'refuse') return reply.code(409).send({ error: { reason: 'replayed', message: `${name}: this backup was restored before` } });
    if (behaviour === 'approval') return reply.code(409).send({ error: { reason: 'approval', message: `${name}: restores along a chain wait for approval (alert 7)` }, alert: 7 });
    const made = signedFor(body.target, behaviour === 'forge' ? 'SOMEONE-ELSE' : body.target.serial);
    return { status: 'restored', ...made, binding: `binding of ${name}`, restored: [1], skipped: [], degreePercent: 80 };
  });
  app.post('/v1/transfers', async (request) => {
    const body = request.body as { item: { box: { serial: string } } };
    const made = signedFor({ serial: body.item.box.serial, firmUpdateCounter: 1 });
    return { transfer: 3, deleteUpdate: made.update, deleteDigest: made.digest };
  });
  app.post('/v1/transfers/:id/proof', async (request) => ({ status: 'transferred', ...signedFor({ serial: NEW_SERIAL, firmUpdateCounter: null }), binding: 'b', restored: [1], skipped: [], id: (request.params as { id: string }).id }));
  app.post('/v1/reactivations', async () => ({ ...signedFor({ serial: NEW_SERIAL, firmUpdateCounter: null }), binding: 'b' }));
  const authorized = (authorization: string | undefined) => authorization === `Bearer ${API_KEY}`;
  app.get('/v1/alerts', async (request, reply) => (authorized(request.headers.authorization) ? { alerts } : reply.code(401).send({ error: { reason: 'unauthenticated', message: 'the API key is not valid' } })));
  app.post('/v1/alerts/:id/approve', async (request, reply) => {
    if (!authorized(request.headers.authorization)) return reply.code(401).send({ error: { reason: 'unauthenticated', message: 'the API key is not valid' } });
    const alert = alerts.find((entry) => String(entry.id) === (request.params as { id: string }).id);
    if (alert === undefined) return reply.code(404).send({ error: { reason: 'no-license', message: 'no such alert' } });
    alert.state = 'approved';
    return { alert };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    name, firmCode, key, keyHex: toHex(key.publicKey), behaviour, url: `http://127.0.0.1:${port}`, received, alerts, release: () => release(),
    close: async () => {
      release();
      await app.close();
    },
  };
}

export interface HubHarness {
  readonly url: string;
  readonly hub: HubBackend;
  readonly clock: { now: number };
  readonly dataDir: string;
  readonly adminToken: string;
  /** Rows of every hub table, by name. */
  counts(): Promise<Record<string, number>>;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  register(licensor: FakeLicensor, time?: number): Promise<number>;
  close(): Promise<void>;
}

export const HUB_TABLES = ['hub_licensors', 'hub_authorized_licensors', 'hub_locks', 'hub_unlocks', 'hub_seen_reports', 'hub_audit'] as const;

export async function startHub(options: { forwardTimeoutMs?: number } = {}): Promise<HubHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-hub-'));
  const clock = { now: START };
  const dataDir = join(dir, 'data');
  const hub = await openHubBackend({ dataDir, now: () => clock.now, forwardTimeoutMs: options.forwardTimeoutMs ?? 5000 });
  const service = await startHubService({ hub, host: '127.0.0.1', port: 0, perClientPerMinute: 1_000_000 });
  const call: HubHarness['call'] = async (method, path, body, headers = {}) => {
    const response = await fetch(`${service.url}${path}`, {
      method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>, headers: response.headers };
  };
  return {
    url: service.url, hub, clock, dataDir, adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), call,
    async counts() {
      const out: Record<string, number> = {};
      for (const table of HUB_TABLES) {
        const row = await hub.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
        out[table] = Number(row.n);
      }
      return out;
    },
    async register(licensor, time = clock.now) {
      await authorizeLicensor(hub, licensor.key.publicKey, licensor.name, { actor: 'administrator' });
      const answer = await call('POST', '/v1/licensors', signHubLicensorRequest({ name: licensor.name, restoreUrl: licensor.url, time }, licensor.key));
      return answer.status;
    },
    async close() {
      await service.close();
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A registration row of `licensor` with no authorization beside it, as a hub database from before the hub checked
 * authorization holds one (or one an operator's revoke raced): written straight into the table.
 */
export async function storeUnauthorizedRegistration(hub: HubBackend, licensor: { key: Ed25519SigningKey; name: string; url?: string }, time = START): Promise<void> {
  await hub.database.db.insertInto('hub_licensors').values({
    licensor_key: licensor.key.publicKey, name: licensor.name, restore_url: licensor.url ?? 'http://127.0.0.1:9/', signed_time: time, registered_at: time, updated_at: time,
  }).execute();
}

/** A firm item of `licensor` holding one product. */
const firmOf = (licensor: { key: Ed25519SigningKey; firmCode: number; name: string }): FirmItem => ({
  licensorKey: licensor.key.publicKey, firmCode: licensor.firmCode, text: licensor.name, updateCounter: 2, products: [productItem(simpleProduct(1, 50), { unitsUsed: 10 })],
});

/** The signed backup of card OLD_SERIAL holding one firm item of each licensor (firm code order), as the card answers. */
export function cardBackup(licensors: ReadonlyArray<{ key: Ed25519SigningKey; firmCode: number; name: string }>, time = START - 3600): { file: BackupFile; text: string; cardKey: Ed25519SigningKey } {
  const cardKey = ed25519KeyFromSeed(generateEd25519Seed());
  const firms = [...licensors].sort((a, b) => a.firmCode - b.firmCode).map(firmOf);
  const { leaves, root } = buildCardBackup({ clock: time, firms }, OLD_SERIAL, time, (n) => Uint8Array.from(randomBytes(n)));
  const text = formatLicenseRecordText({ kind: 'backup', items: leaves.length, root: toHex(root), at: time });
  const nonce = Uint8Array.from(randomBytes(16));
  const counter = 41n;
  const record = { nonce, counter, text, signature: cardKey.sign(signedDigest(recordHash(nonce, text), counter, 'individual', OLD_SERIAL)) };
  const file = assembleBackup({ box: { serial: OLD_SERIAL, cardPublicKey: cardKey.publicKey, keyMode: 'individual', containerFormat: 1 }, record, leaves, user: [] });
  return { file, text: encodeBackupFile(file), cardKey };
}

/** The new card's target info file: its firm update counter per licensor (null: no firm item of it yet). */
export function targetInfo(counters: Record<string, number | null> = {}): { serial: string; cardPublicKey: string; firmUpdateCounters: Record<string, number | null> } {
  return { serial: NEW_SERIAL, cardPublicKey: toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey), firmUpdateCounters: counters };
}
