// The lost-license requests as typed values and JSON (000 §2.5 restore, §2.12 transfer and its proof; 001 reactivation,
// checkpoint renewal): round trips, a table of malformed bodies, the request digest that makes a requestId's request
// the same, and a property: a body parses exactly when the route accepts it (the same shapes).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  backupItemFileJson, buildIssuingService, parseBackupItemFile, checkpointRequestJson, generateTicketCode, LicenseError, openIssuingBackend, parseCheckpointRequest, parseProofRequest,
  parseReactivationRequest, parseRestoreRequest, proofRequestJson, reactivationRequestJson, requestDigest, restoreRequestJson, type CheckpointRequest, type IssuingBackend,
  type ReactivationRequest,
} from '../../../src/license/index.js';
import { CARD_SERIAL, firstUpdate, LICENSOR, simpleProduct, updateFile } from '../../support/index.js';
import type { TestLicensor } from './issuing-fixture.js';
import { RealCard } from './lost-fixture.js';

const reactivation: ReactivationRequest = {
  ticket: generateTicketCode(), serial: 'CARD-1', cardPublicKey: new Uint8Array(32).fill(7), firmUpdateCounter: null, requestId: new Uint8Array(16).fill(9), reason: 'other-device',
};
const checkpoint: CheckpointRequest = { ticket: generateTicketCode(), serial: 'CARD-1', firmUpdateCounter: 3, requestId: new Uint8Array(16).fill(1) };

describe('round trips', () => {
  it('reads back a reactivation and a checkpoint request from their JSON', () => {
    expect(reactivationRequestJson(reactivation)).toEqual({ ticket: reactivation.ticket, serial: 'CARD-1', cardPublicKey: '07'.repeat(32), firmUpdateCounter: null, requestId: '09'.repeat(16), reason: 'other-device' });
    expect(parseReactivationRequest(JSON.parse(JSON.stringify(reactivationRequestJson(reactivation))))).toEqual(reactivation);
    expect(parseCheckpointRequest(JSON.parse(JSON.stringify(checkpointRequestJson(checkpoint))))).toEqual(checkpoint);
  });

  it('reads back a restore request carrying a card\'s backup item, and a transfer proof', async () => {
    const card = await RealCard.open(CARD_SERIAL);
    const record = await card.apply(updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(1) }])));
    const item = backupItemFileJson(await card.backupItem({ publicKey: LICENSOR.publicKey } as TestLicensor));
    const request = { item, target: { serial: 'NEW', cardPublicKey: new Uint8Array(32).fill(3), firmUpdateCounter: null }, requestId: new Uint8Array(16).fill(4) };
    expect(parseRestoreRequest(JSON.parse(JSON.stringify(restoreRequestJson(request))))).toEqual(request);
    expect(() => parseRestoreRequest({ ...restoreRequestJson(request), item: { format: 'vsc-license-backup-item/1' } })).toThrow(LicenseError);
    expect(parseProofRequest(JSON.parse(JSON.stringify(proofRequestJson({ record }))))).toEqual({ record });
  });
});

describe('malformed bodies', () => {
  const good = (): Record<string, unknown> => reactivationRequestJson(reactivation);
  it.each<[string, (body: Record<string, unknown>) => unknown]>([
    ['an unknown reason', (body) => ({ ...body, reason: 'lost' })],
    ['no reason', ({ reason: _reason, ...body }) => body],
    ['a serial of 129 bytes', (body) => ({ ...body, serial: 'x'.repeat(129) })],
    ['a serial of 65 two-byte characters', (body) => ({ ...body, serial: 'é'.repeat(65) })],
    ['a serial with a line break', (body) => ({ ...body, serial: 'A\nB' })],
    ['an upper-case card key', (body) => ({ ...body, cardPublicKey: 'AB'.repeat(32) })],
    ['a negative counter', (body) => ({ ...body, firmUpdateCounter: -1 })],
    ['an extra field', (body) => ({ ...body, extra: true })],
    ['an array', () => []],
  ])('refuses a reactivation request with %s', (_name, change) => {
    expect(() => parseReactivationRequest(change(good()))).toThrow(LicenseError);
  });

  it('refuses a checkpoint request without a counter (a container with no firm item has nothing to renew)', () => {
    expect(() => parseCheckpointRequest({ ...checkpointRequestJson(checkpoint), firmUpdateCounter: null })).toThrow(LicenseError);
  });
});

describe('request digests', () => {
  it('ignore the request id and tell every other field apart', () => {
    const base = reactivationRequestJson(reactivation);
    expect(toHex(requestDigest({ ...base, requestId: 'ff'.repeat(16) }))).toBe(toHex(requestDigest(base)));
    for (const [key, value] of [['serial', 'CARD-2'], ['reason', 'same-device'], ['firmUpdateCounter', 0]] as const) {
      expect(toHex(requestDigest({ ...base, [key]: value }))).not.toBe(toHex(requestDigest(base)));
    }
  });
});

describe('a body parses exactly when the route accepts it', () => {
  let dir: string;
  let backend: IssuingBackend;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-issuing-lost-requests-'));
    backend = await openIssuingBackend({ dataDir: dir });
    app = await buildIssuingService({ backend, perClientPerMinute: 1_000_000 });
  });
  afterAll(async () => {
    await app.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const value = fc.oneof(
    fc.constant(undefined), fc.constant(null), fc.integer({ min: -5, max: 2 ** 33 }), fc.double(), fc.boolean(), fc.string({ maxLength: 140 }),
    fc.constant(generateTicketCode()), fc.constant('ab'.repeat(16)), fc.constant('cd'.repeat(32)), fc.constant('é'.repeat(65)), fc.constant('same-device'), fc.constant([]),
  );

  it.each<[string, string, () => Record<string, unknown>, (body: unknown) => unknown, readonly string[]]>([
    ['reactivation', '/v1/reactivations', () => reactivationRequestJson({ ...reactivation, ticket: generateTicketCode() }), parseReactivationRequest, ['ticket', 'serial', 'cardPublicKey', 'firmUpdateCounter', 'requestId', 'reason', 'extra']],
    ['checkpoint', '/v1/checkpoints', () => checkpointRequestJson({ ...checkpoint, ticket: generateTicketCode() }), parseCheckpointRequest, ['ticket', 'serial', 'firmUpdateCounter', 'requestId', 'extra']],
  ])('for random changes of a valid %s request', async (_name, url, make, parse, fields) => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...fields), value), { maxLength: 3 }), async (changes) => {
      const body = make();
      for (const [key, next] of changes) body[key] = next;
      const payload = JSON.stringify(body);
      let parsed = true;
      try {
        parse(JSON.parse(payload));
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
        parsed = false;
      }
      const answer = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
      // A body the route accepts names an unknown ticket (404); one it refuses is 400.
      expect(answer.statusCode).toBe(parsed ? 404 : 400);
    }), { numRuns: 200 });
  });

  it('for random changes of a restore body around a card\'s real backup item', async () => {
    const card = await RealCard.open(CARD_SERIAL);
    await card.apply(updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(1) }])));
    const item = backupItemFileJson(await card.backupItem({ publicKey: LICENSOR.publicKey } as TestLicensor));
    const target = (): Record<string, unknown> => ({ serial: 'NEW-CARD', cardPublicKey: 'cd'.repeat(32), firmUpdateCounter: null });
    const where = fc.constantFrom('target.serial', 'target.cardPublicKey', 'target.firmUpdateCounter', 'target.extra', 'requestId', 'extra', 'item.time', 'item.extra');
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(where, value), { maxLength: 3 }), async (changes) => {
      const body: Record<string, Record<string, unknown> | unknown> = { item: structuredClone(item), target: target(), requestId: toHex(Uint8Array.from(randomBytes(16))) };
      for (const [path, next] of changes) {
        const [head, key] = path.split('.') as [string, string | undefined];
        if (key === undefined) body[head] = next;
        else (body[head] as Record<string, unknown>)[key] = next;
      }
      const payload = JSON.stringify(body);
      let parsed = true;
      try {
        const request = parseRestoreRequest(JSON.parse(payload));
        parseBackupItemFile(request.item);
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
        parsed = false;
      }
      const answer = await app.inject({ method: 'POST', url: '/v1/restores', headers: { 'content-type': 'application/json' }, payload });
      // A body the route accepts names a licensor this service does not have (404); one it refuses is 400.
      expect(answer.statusCode).toBe(parsed ? 404 : 400);
    }), { numRuns: 200 });
  });
});
