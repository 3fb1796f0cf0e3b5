// The offline files of activation (Wibu 002: activation "online or offline"): the request file is the POST
// /v1/activations body, the receipt file the POST /v1/receipts body. Encode, parse, round trip, a table of malformed
// files, and a property: a file parses exactly when the route accepts its body (the same shapes, issuing-schemas.ts).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../src/bytes/index.js';
import {
  buildIssuingService, encodeActivationRequest, encodeDeactivationRequest, encodeReceiptRequest, generateTicketCode, isTicketCode, LicenseError, openIssuingBackend,
  parseActivationRequest, parseDeactivationRequest, parseReceiptRequest, parseTimeRequest, ticketHash, ticketRef, type ActivationRequest, type IssuingBackend,
} from '../../../src/license/index.js';
import { TestCard } from './issuing-fixture.js';

const ticket = generateTicketCode();
const request: ActivationRequest = { ticket, serial: 'CARD-0001', cardPublicKey: new Uint8Array(32).fill(7), firmUpdateCounter: 3, requestId: new Uint8Array(16).fill(9) };
const json = (): Record<string, unknown> => JSON.parse(encodeActivationRequest(request)) as Record<string, unknown>;

describe('ticket codes', () => {
  it('are 25 base32 characters in five groups, different each time, found by SHA-256 and named by its first 8 bytes', () => {
    const codes = new Set(Array.from({ length: 200 }, generateTicketCode));
    expect(codes.size).toBe(200);
    for (const code of codes) expect(isTicketCode(code)).toBe(true);
    expect(isTicketCode('ABCDE-FGHIJ-KLMNO-PQRST-UVWX1')).toBe(false);
    expect(isTicketCode('abcde-fghij-klmno-pqrst-uvwxy')).toBe(false);
    expect(ticketRef(ticketHash(ticket))).toBe(toHex(ticketHash(ticket)).slice(0, 16));
  });
});

describe('activation request file', () => {
  it('is the route\'s body as one JSON line, and parses back to the same request', () => {
    const text = encodeActivationRequest(request);
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({ ticket, serial: 'CARD-0001', cardPublicKey: '07'.repeat(32), firmUpdateCounter: 3, requestId: '09'.repeat(16) });
    expect(parseActivationRequest(text)).toEqual(request);
    expect(parseActivationRequest(utf8(text))).toEqual(request);
    const first = { ...request, firmUpdateCounter: null };
    expect(parseActivationRequest(encodeActivationRequest(first))).toEqual(first);
  });

  it.each<[string, unknown]>([
    ['not JSON', '{"ticket":'],
    ['not UTF-8', Uint8Array.of(0x7b, 0xff, 0x7d)],
    ['too large', `${' '.repeat(70_000)}{}`],
    ['an array', '[]'],
    ['an unknown field', { ...json(), extra: 1 }],
    ['a missing field', { ...json(), firmUpdateCounter: undefined }],
    ['a counter as a string', { ...json(), firmUpdateCounter: '3' }],
    ['a negative counter', { ...json(), firmUpdateCounter: -1 }],
    ['a fractional counter', { ...json(), firmUpdateCounter: 1.5 }],
    ['upper-case hex', { ...json(), cardPublicKey: 'AB'.repeat(32) }],
    ['a short request id', { ...json(), requestId: 'ab' }],
    ['an empty serial', { ...json(), serial: '' }],
    ['a serial of 129 bytes', { ...json(), serial: 'é'.repeat(65) }],
    ['a serial with a newline', { ...json(), serial: 'A\nB' }],
    ['a lower-case ticket', { ...json(), ticket: ticket.toLowerCase() }],
  ])('refuses %s with reason input', (_name, value) => {
    const input = typeof value === 'object' && !(value instanceof Uint8Array) ? JSON.stringify(value) : value;
    let thrown: unknown;
    try {
      parseActivationRequest(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LicenseError);
    expect((thrown as LicenseError).reason).toBe('input');
    expect((thrown as Error).message).toMatch(/activation request/);
  });

  it('never encodes a request the route would refuse', () => {
    expect(() => encodeActivationRequest({ ...request, serial: '' })).toThrow(LicenseError);
    expect(() => encodeActivationRequest({ ...request, requestId: new Uint8Array(3) })).toThrow(LicenseError);
  });
});

describe('receipt and deactivation files', () => {
  it('round-trip the card-signed record and the deactivation request', () => {
    const card = new TestCard('CARD-R');
    const record = card.sign(`license update ${'a'.repeat(32)} 7 counter 1 digest ${'b'.repeat(64)}`);
    const receipt = { ticket, serial: card.serial, record };
    const text = encodeReceiptRequest(receipt);
    expect(parseReceiptRequest(text)).toEqual(receipt);
    expect(JSON.parse(text).record).toEqual({ nonce: toHex(record.nonce), text: record.text, counter: record.counter.toString(16).padStart(32, '0'), signature: toHex(record.signature) });
    const deactivation = { ticket, serial: 'S', requestId: new Uint8Array(16).fill(1) };
    expect(parseDeactivationRequest(encodeDeactivationRequest(deactivation))).toEqual(deactivation);
    expect(parseDeactivationRequest(encodeDeactivationRequest({ ...deactivation, firmUpdateCounter: 4 }))).toEqual({ ...deactivation, firmUpdateCounter: 4 });
  });

  it.each<[string, (record: Record<string, unknown>) => unknown]>([
    ['a record with an extra field', (record) => ({ ...record, extra: 1 })],
    ['a record with a short signature', (record) => ({ ...record, signature: 'ab' })],
    ['a record with a counter of 15 bytes', (record) => ({ ...record, counter: '00'.repeat(15) })],
    ['a record with a lone surrogate', (record) => ({ ...record, text: 'a\ud800b' })],
    ['a record that is a string', () => 'record'],
  ])('refuses %s', (_name, change) => {
    const card = new TestCard('CARD-R');
    const good = JSON.parse(encodeReceiptRequest({ ticket, serial: 'S', record: card.sign('x') })) as Record<string, unknown>;
    expect(() => parseReceiptRequest(JSON.stringify({ ...good, record: change(good['record'] as Record<string, unknown>) }))).toThrow(LicenseError);
  });

  it('reads a time request strictly', () => {
    expect(parseTimeRequest({ serial: 'S', firmCode: 5, nonce: '00'.repeat(16) })).toEqual({ serial: 'S', firmCode: 5, nonce: new Uint8Array(16) });
    expect(() => parseTimeRequest({ serial: 'S', firmCode: 2 ** 32, nonce: '00'.repeat(16) })).toThrow(LicenseError);
  });
});

describe('a file parses exactly when the route accepts its body', () => {
  let dir: string;
  let backend: IssuingBackend;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-issuing-requests-'));
    backend = await openIssuingBackend({ dataDir: dir });
    app = await buildIssuingService({ backend, perClientPerMinute: 1_000_000 });
  });
  afterAll(async () => {
    await app.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const field = fc.constantFrom('ticket', 'serial', 'cardPublicKey', 'firmUpdateCounter', 'requestId', 'extra');
  const value = fc.oneof(
    fc.constant(undefined), fc.constant(null), fc.integer({ min: -5, max: 2 ** 33 }), fc.double(), fc.boolean(), fc.string({ maxLength: 140 }),
    fc.constant(generateTicketCode()), fc.constant('ab'.repeat(16)), fc.constant('cd'.repeat(32)), fc.constant('AB'.repeat(16)), fc.constant('é'.repeat(65)), fc.constant([]),
  );

  it('for random changes of a valid activation request', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(field, value), { maxLength: 3 }), async (changes) => {
      const body: Record<string, unknown> = { ...json(), ticket: generateTicketCode(), requestId: toHex(Uint8Array.from(randomBytes(16))) };
      for (const [key, next] of changes) body[key] = next;
      const payload = JSON.stringify(body);
      let parsed = true;
      try {
        parseActivationRequest(payload);
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
        parsed = false;
      }
      const answer = await app.inject({ method: 'POST', url: '/v1/activations', headers: { 'content-type': 'application/json' }, payload });
      // A body the route accepts names an unknown ticket (404); one it refuses is 400.
      expect(answer.statusCode).toBe(parsed ? 404 : 400);
    }), { numRuns: 300 });
  });
});
