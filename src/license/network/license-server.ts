// The network license server over HTTP (Wibu 002 Table 1: network / floating, overflow, borrowable, high availability,
// hot and cold standby; `vsc license network serve`): fastify around seat-service.ts, which holds this machine's
// container through a LicenseCardLink and leases its seats to programs on other machines.
//
//   POST   /v1/seats               {licensorKey, productCode, features, client, user?, hostTime?}
//                                  -> {leaseId, expiresAt, heartbeatSeconds, record, overflow, binding}
//   POST   /v1/seats/:id/heartbeat -> {leaseId, expiresAt, heartbeatSeconds}
//   DELETE /v1/seats/:id           -> {released: true}
//   POST   /v1/borrow              {licensorKey, productCode, features?, client, borrowerCard: {serial, cardPublicKey,
//                                  keyMode}, seconds} -> {borrowId, until, certificate}
//   DELETE /v1/borrow/:id          -> {returned: true}
//   GET    /v1/status              -> seat-status.ts
// Strict schemas (no extra field, no coercion) under a 16 KiB body limit, a per-address rate limit (429), refusals as
// {"error": {"reason", "message"}} with the LicenseReason: 400 input, 404 no-license or an unknown id, 409 the license's
// refusals (seats, expired, feature ...), 413, 415, 429; 503 when the card cannot be reached (clients fail over).
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { fromHex } from '../../bytes/index.js';
import { encodeCardBinding } from '../card-binding.js';
import { LicenseError, type LicenseReason } from '../license-error.js';
import { MAX_CODE } from '../license-model.js';
import { recordToWire } from './record-wire.js';
import { SeatService, type SeatServiceOptions } from './seat-service.js';

export const LICENSE_SERVER_BODY_LIMIT = 16 * 1024;

export interface LicenseServerOptions extends SeatServiceOptions {
  /** Requests one address may make per minute (default 1200: heartbeats of many programs behind one address). */
  readonly perClientPerMinute?: number;
}

const HEX32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const CODE = { type: 'integer', minimum: 0, maximum: MAX_CODE } as const;
/** A program's name for itself: printable ASCII, no spaces (it appears in logs and the status). */
const CLIENT = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' } as const;
const seatBody = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'productCode', 'features', 'client'],
  properties: { licensorKey: HEX32, productCode: CODE, features: CODE, client: CLIENT, user: { type: 'string', minLength: 1, maxLength: 128 }, hostTime: { type: 'integer', minimum: 0, maximum: 2 ** 40 } },
} as const;
const borrowBody = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'productCode', 'client', 'borrowerCard', 'seconds'],
  properties: {
    licensorKey: HEX32, productCode: CODE, features: CODE, client: CLIENT, seconds: { type: 'integer', minimum: 1, maximum: 2 ** 31 },
    borrowerCard: {
      type: 'object', additionalProperties: false, required: ['serial', 'cardPublicKey', 'keyMode'],
      properties: { serial: { type: 'string', minLength: 1, maxLength: 128 }, cardPublicKey: HEX32, keyMode: { enum: ['individual', 'universal'] } },
    },
  },
} as const;
const idParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{24}$' } } } as const;

interface SeatBody { licensorKey: string; productCode: number; features: number; client: string; user?: string; hostTime?: number }
interface BorrowBody { licensorKey: string; productCode: number; features?: number; client: string; borrowerCard: { serial: string; cardPublicKey: string; keyMode: 'individual' | 'universal' }; seconds: number }

function statusOf(reason: LicenseReason): number {
  switch (reason) {
    case 'input':
      return 400;
    case 'no-license':
      return 404;
    case 'signature':
      return 422;
    case 'card':
      return 503;
    default:
      return 409;
  }
}

function send(reply: FastifyReply, status: number, reason: LicenseReason, message: string): FastifyReply {
  return reply.code(status).send({ error: { reason, message: message.split('\n')[0] } });
}

/** The server, not listening yet (startLicenseServer listens). fastify loads here, not with the license module. */
export async function buildLicenseServer(options: LicenseServerOptions): Promise<FastifyInstance> {
  const perMinute = options.perClientPerMinute ?? 1200;
  if (!Number.isSafeInteger(perMinute) || perMinute < 1) throw new TypeError(`expected at least 1 request per client per minute, got ${String(perMinute)}`);
  const seats = new SeatService(options);
  const { default: Fastify } = await import('fastify');
  const { RateLimiterMemory, RateLimiterRes } = await import('rate-limiter-flexible');
  const perClient = new RateLimiterMemory({ points: perMinute, duration: 60 });
  const app = Fastify({ bodyLimit: LICENSE_SERVER_BODY_LIMIT, logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } } });
  // JSON only: fastify would otherwise hand a text/plain body to the schema as a string.
  app.removeContentTypeParser('text/plain');
  // Limits are checked before the body is read, so a refused request costs almost nothing.
  app.addHook('onRequest', async (request, reply) => {
    try {
      await perClient.consume(request.ip);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      reply.header('retry-after', String(Math.max(1, Math.ceil(refusal.msBeforeNext / 1000))));
      return send(reply, 429, 'limit', `at most ${perMinute} requests a minute from one address`);
    }
    return undefined;
  });

  app.post<{ Body: SeatBody }>('/v1/seats', { schema: { body: seatBody } }, async (request) => {
    const body = request.body;
    const lease = await seats.acquire({
      licensorKey: fromHex(body.licensorKey), productCode: body.productCode, features: body.features, client: body.client,
      ...(body.user === undefined ? {} : { user: body.user }), ...(body.hostTime === undefined ? {} : { hostTime: body.hostTime }),
    });
    return { leaseId: lease.leaseId, expiresAt: lease.expiresAt, heartbeatSeconds: lease.heartbeatSeconds, record: recordToWire(lease.record), overflow: lease.overflow, binding: encodeCardBinding(lease.binding) };
  });
  app.post<{ Params: { id: string } }>('/v1/seats/:id/heartbeat', { schema: { params: idParams } }, async (request) => seats.heartbeat(request.params.id));
  app.delete<{ Params: { id: string } }>('/v1/seats/:id', { schema: { params: idParams } }, async (request) => {
    await seats.release(request.params.id);
    return { released: true };
  });
  app.post<{ Body: BorrowBody }>('/v1/borrow', { schema: { body: borrowBody } }, async (request) => {
    const body = request.body;
    const card = body.borrowerCard;
    return seats.borrow({
      licensorKey: fromHex(body.licensorKey), productCode: body.productCode, features: body.features ?? 0, client: body.client, seconds: body.seconds,
      borrowerCard: { serial: card.serial, publicKey: fromHex(card.cardPublicKey), keyMode: card.keyMode },
    });
  });
  app.delete<{ Params: { id: string } }>('/v1/borrow/:id', { schema: { params: idParams } }, async (request) => {
    await seats.returnBorrowed(request.params.id);
    return { returned: true };
  });
  app.get('/v1/status', async () => seats.status());

  app.setNotFoundHandler((request, reply) => send(reply, 404, 'input', `no ${request.method} ${request.url.slice(0, 100)} here: /v1/seats, /v1/borrow, /v1/status`));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof LicenseError) return send(reply, statusOf(error.reason), error.reason, error.message);
    if (error.validation !== undefined) return send(reply, 400, 'input', `request ${error.message}`);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, 413, 'limit', `expected a body of at most ${LICENSE_SERVER_BODY_LIMIT} bytes`);
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, 415, 'input', 'expected a body of Content-Type application/json');
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 503;
    // A failure of the card or its agent says nothing of its cause; clients take it as a server down and fail over.
    return status < 500 ? send(reply, status, 'input', error.message) : send(reply, 503, 'card', 'the license server cannot serve now (its card or agent failed)');
  });
  return app;
}

export interface RunningLicenseServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `vsc license network serve`: the server listening on host:port (port 0 picks a free one). */
export async function startLicenseServer(options: LicenseServerOptions & { readonly host: string; readonly port: number }): Promise<RunningLicenseServer> {
  const app = await buildLicenseServer(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}`, port, close: () => app.close() };
}
