// What the issuing back end refuses (Wibu 002 back-end issuing; "protecting the access equals protecting the assets"):
// licensor routes without a valid API key (401), another licensor's products and tickets (404), and a table of bad
// requests (malformed JSON, oversized body, wrong types, unknown fields, unknown ticket), each a clear 4xx
// {error: {reason, message}} that leaves every table as it was; the per-client rate limit (429); GET /openapi.json
// describes every route; the audit records every action and no secret.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { IssuingClient, ISSUING_ROUTES, openApiPath, type ActivationRequest } from '../../../src/license/index.js';
import { startIssuingHarness, template, TestCard, type IssuingHarness } from './issuing-fixture.js';

let h: IssuingHarness;
let ticket: string;
let renewal: string;
let card: TestCard;

beforeAll(async () => {
  h = await startIssuingHarness();
  await h.a.client.defineProduct({ code: 7, text: 'Viewer', template: template({ durationSeconds: 86_400 }) });
  await h.b.client.defineProduct({ code: 8, text: 'Other Viewer', template: template() });
  [ticket] = (await h.a.client.placeOrder({ orderId: 'PO-1', items: [{ productCode: 7, quantity: 1 }] })).tickets as [string];
  card = new TestCard();
  const answer = await h.customer.activate(card.activation(ticket, h.a));
  await h.customer.receipt({ ticket, serial: card.serial, record: card.apply(answer.update) });
  [renewal] = (await h.a.client.placeOrder({ orderId: 'PO-2', items: [{ productCode: 7, quantity: 1, renewalOf: ticket }] })).tickets as [string];
}, 30_000);
afterAll(() => h.close());

async function raw(method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: { error?: { reason: string; message: string } } & Record<string, unknown>; headers: Headers }> {
  const response = await fetch(new URL(path, h.url), { method, headers: { 'content-type': 'application/json', ...options.headers }, ...(options.body === undefined ? {} : { body: options.body }) });
  return { status: response.status, json: await response.json() as never, headers: response.headers };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('licensor authentication and isolation', () => {
  it.each([
    ['no Authorization header', {}],
    ['a malformed key', { authorization: 'Bearer hello' }],
    ['another scheme', { authorization: 'Basic dXNlcjpwdw==' }],
    ['a wrong secret for a real licensor id', { authorization: `Bearer vsclk_1_${'0'.repeat(64)}` }],
    ['an unknown licensor id', { authorization: `Bearer vsclk_999_${'1'.repeat(64)}` }],
  ])('answers 401 unauthenticated for %s', async (_name, headers: Record<string, string>) => {
    const before = await h.counts();
    const answer = await raw('POST', '/v1/orders', { headers, body: JSON.stringify({ orderId: 'X', items: [{ productCode: 7, quantity: 1 }] }) });
    expect(answer.status).toBe(401);
    expect(answer.json.error?.reason).toBe('unauthenticated');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(await h.counts()).toEqual(before);
  });

  it('lets a licensor order only its own products and renew only its own tickets (404)', async () => {
    await expect(h.b.client.placeOrder({ orderId: 'B-1', items: [{ productCode: 7, quantity: 1 }] })).rejects.toMatchObject({ status: 404, reason: 'no-license' });
    await expect(h.a.client.placeOrder({ orderId: 'A-9', items: [{ productCode: 8, quantity: 1 }] })).rejects.toMatchObject({ status: 404, reason: 'no-license' });
    await expect(h.b.client.placeOrder({ orderId: 'B-2', items: [{ productCode: 8, quantity: 1, renewalOf: ticket }] })).rejects.toMatchObject({ status: 404, reason: 'ticket' });
  });

  it('shows a licensor only its own audit records', async () => {
    const records = await h.b.client.audit();
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((record) => !record.subject.includes('order PO-'))).toBe(true);
    expect(records.map((record) => record.action)).toContain('product.define');
  });

  it('answers the same tickets to the same order id, and refuses the id with other items', async () => {
    const again = await h.a.client.placeOrder({ orderId: 'PO-1', items: [{ productCode: 7, quantity: 1 }] });
    expect(again.tickets).toEqual([ticket]);
    await expect(h.a.client.placeOrder({ orderId: 'PO-1', items: [{ productCode: 7, quantity: 2 }] })).rejects.toMatchObject({ status: 409, reason: 'input' });
    // Order ids are the licensor's own: another licensor may use the same id.
    expect((await h.b.client.placeOrder({ orderId: 'PO-1', items: [{ productCode: 8, quantity: 1 }] })).tickets).toHaveLength(1);
  });
});

describe('bad requests: a clear 4xx, and nothing changed', () => {
  const activation = (): Record<string, unknown> => ({ ticket, serial: 'S-NEW', cardPublicKey: toHex(new Uint8Array(32).fill(1)), firmUpdateCounter: null, requestId: 'ab'.repeat(16) });
  const cases: Array<[name: string, method: string, path: string, body: () => string | undefined, status: number, reason: string, headers?: Record<string, string>]> = [
    ['malformed JSON', 'POST', '/v1/activations', () => '{"ticket": ', 400, 'input'],
    ['an empty body', 'POST', '/v1/activations', () => '', 400, 'input'],
    ['a JSON array', 'POST', '/v1/activations', () => '[]', 400, 'input'],
    ['an oversized body', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), serial: 'x'.repeat(70_000) }), 413, 'limit'],
    ['a number where a string belongs', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), serial: 12 }), 400, 'input'],
    ['a string where a number belongs', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), firmUpdateCounter: '3' }), 400, 'input'],
    ['an unknown field', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), extra: true }), 400, 'input'],
    ['a missing field', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), requestId: undefined }), 400, 'input'],
    ['a short card key', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), cardPublicKey: 'ab' }), 400, 'input'],
    ['a serial with a control character', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), serial: 'A\u0007B' }), 400, 'input'],
    ['a malformed ticket', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), ticket: 'not-a-ticket' }), 400, 'input'],
    ['an unknown ticket', 'POST', '/v1/activations', () => JSON.stringify({ ...activation(), ticket: 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA' }), 404, 'ticket'],
    ['an unknown ticket (GET)', 'GET', '/v1/tickets/AAAAA-AAAAA-AAAAA-AAAAA-AAAAA', () => undefined, 404, 'ticket'],
    ['a malformed ticket (GET)', 'GET', '/v1/tickets/nope', () => undefined, 400, 'input'],
    ['a receipt of no update', 'POST', '/v1/receipts', () => JSON.stringify({ ticket, serial: card.serial, record: { nonce: '00'.repeat(16), text: 'hello', counter: '00'.repeat(16), signature: '00'.repeat(64) } }), 400, 'input'],
    ['a deactivation of a renewal ticket', 'POST', '/v1/deactivations', () => JSON.stringify({ ticket: renewal, serial: card.serial, requestId: 'cd'.repeat(16) }), 409, 'ticket'],
    ['a time request with a fractional firm code', 'POST', '/v1/time', () => JSON.stringify({ serial: 'S', firmCode: 1.5, nonce: '00'.repeat(16) }), 400, 'input'],
    ['text/plain', 'POST', '/v1/time', () => 'hello', 415, 'input', { 'content-type': 'text/plain' }],
    ['an unknown route', 'POST', '/v1/nothing', () => '{}', 404, 'input'],
    ['a product with a contradicting template', 'POST', '/v1/products', () => JSON.stringify({ code: 9, text: 'T', template: { durationSeconds: 5, expiration: 10 } }), 400, 'input'],
    ['a product with an unknown template field', 'POST', '/v1/products', () => JSON.stringify({ code: 9, text: 'T', template: { colour: 'red' } }), 400, 'input'],
    ['an order of an unknown product', 'POST', '/v1/orders', () => JSON.stringify({ orderId: 'PO-404', items: [{ productCode: 404, quantity: 1 }] }), 404, 'no-license'],
    ['an order of zero seats', 'POST', '/v1/orders', () => JSON.stringify({ orderId: 'PO-0', items: [{ productCode: 7, quantity: 0 }] }), 400, 'input'],
    ['an order renewing an unknown ticket', 'POST', '/v1/orders', () => JSON.stringify({ orderId: 'PO-R', items: [{ productCode: 7, quantity: 1, renewalOf: 'AAAAA-AAAAA-AAAAA-AAAAA-AAAAA' }] }), 404, 'ticket'],
    ['an audit query with a bad limit', 'GET', '/v1/audit?limit=5000', () => undefined, 400, 'input'],
  ];

  it.each(cases)('%s', async (_name, method, path, body, status, reason, headers) => {
    const before = await h.counts();
    const text = body();
    const answer = await raw(method, path, { ...(text === undefined ? {} : { body: text }), headers: { ...(path.startsWith('/v1/products') || path.startsWith('/v1/orders') || path.startsWith('/v1/audit') ? bearer(h.a.apiKey) : {}), ...headers } });
    expect(answer.status).toBe(status);
    expect(answer.json).toEqual({ error: { reason, message: expect.any(String) } });
    expect(answer.json.error!.message.length).toBeGreaterThan(5);
    expect(await h.counts()).toEqual(before);
  });
});

describe('rate limit', () => {
  it('answers 429 limit with Retry-After past the per-client budget', async () => {
    const limited = await startIssuingHarness({ perClientPerMinute: 3 });
    try {
      const client = new IssuingClient({ server: limited.url });
      for (let i = 0; i < 3; i++) await client.openApi();
      const refused = await client.openApi().catch((error: unknown) => error);
      expect(refused).toMatchObject({ status: 429, reason: 'limit' });
      expect((refused as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it('limits each client behind a trusted proxy by its X-Forwarded-For address', async () => {
    const proxied = await startIssuingHarness({ perClientPerMinute: 1, trustProxy: '127.0.0.1' });
    try {
      const get = (client: string) => fetch(new URL('/openapi.json', proxied.url), { headers: { 'x-forwarded-for': client } }).then((response) => response.status);
      expect(await get('192.0.2.1')).toBe(200);
      expect(await get('192.0.2.1')).toBe(429);
      expect(await get('192.0.2.2')).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document describing every route with its schemas and errors', async () => {
    const doc = await h.customer.openApi() as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown>; security?: unknown }>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const route of ISSUING_ROUTES) {
      const operation = doc.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.url}`).toBeDefined();
      expect(operation!.responses['200']).toBeDefined();
      expect(operation!.responses['400']).toBeDefined();
      expect(operation!.security !== undefined).toBe(route.licensor);
      if (route.body !== undefined) expect(operation!.requestBody).toMatchObject({ required: true, content: { 'application/json': { schema: { additionalProperties: false } } } });
      else expect(operation!.requestBody).toBeUndefined();
    }
    // Every POST and PUT but the approval of an alert (its id is in the path) has a body.
    expect(ISSUING_ROUTES.filter((route) => route.method !== 'GET' && route.body === undefined).map((route) => route.url)).toEqual(['/v1/alerts/:id/approve']);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/openapi.json', '/v1/activations', '/v1/alerts', '/v1/alerts/{id}/approve', '/v1/audit', '/v1/checkpoints', '/v1/deactivations', '/v1/locks', '/v1/orders', '/v1/products',
      '/v1/reactivations', '/v1/receipts', '/v1/restore-policy', '/v1/restores', '/v1/tickets/{ticket}', '/v1/time', '/v1/transfers', '/v1/transfers/{id}/proof',
    ]);
    expect(doc.paths['/v1/restores']!['post']!.responses).toHaveProperty('423');
    expect(doc.paths['/v1/restore-policy']).toHaveProperty('put');
  });
});

describe('the audit', () => {
  it('records every action with who, what, when and outcome, and never an API key or a ticket code', async () => {
    const fresh = new TestCard();
    const [code] = (await h.a.client.placeOrder({ orderId: 'PO-AUDIT', items: [{ productCode: 7, quantity: 1 }] })).tickets as [string];
    const request: ActivationRequest = fresh.activation(code, h.a, Uint8Array.from(randomBytes(16)));
    const answer = await h.customer.activate(request);
    await h.customer.receipt({ ticket: code, serial: fresh.serial, record: fresh.apply(answer.update) });
    await h.customer.ticket(code);
    await h.customer.deactivate({ ticket: code, serial: fresh.serial, requestId: Uint8Array.from(randomBytes(16)) });
    await h.customer.time({ serial: fresh.serial, firmCode: 1001, nonce: Uint8Array.from(randomBytes(16)) });
    const records = await h.a.client.audit({ limit: 1000 });
    const actions = records.map((record) => record.action);
    for (const action of ['licensor.add', 'product.define', 'order.create', 'activation', 'activation.receipt', 'ticket.view', 'deactivation', 'time']) expect(actions).toContain(action);
    for (const record of records) {
      expect(record).toMatchObject({ id: expect.any(Number), at: expect.any(Number), actor: expect.any(String), subject: expect.any(String), outcome: expect.any(String) });
    }
    expect(records.find((record) => record.action === 'order.create' && record.subject === 'order PO-AUDIT')).toMatchObject({ actor: 'licensor Example Software', client: '127.0.0.1', outcome: 'ok' });
    // Every row of the audit table, of every licensor, as stored:
    const rows = JSON.stringify(await h.backend.database.db.selectFrom('issuing_audit').selectAll().execute());
    for (const secret of [h.a.apiKey, h.b.apiKey, h.a.apiKey.slice(-64), code, ticket, renewal]) expect(rows).not.toContain(secret);
    expect(rows).not.toMatch(/[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}/);
    // And no ticket code or API key anywhere in the database in clear.
    const everything = JSON.stringify(await Promise.all(['issuing_licensors', 'issuing_tickets', 'issuing_activations', 'issuing_orders'].map((table) => h.backend.database.db.selectFrom(table as 'issuing_tickets').selectAll().execute())));
    for (const secret of [h.a.apiKey.slice(-64), code, ticket]) expect(everything).not.toContain(secret);
  });
});
