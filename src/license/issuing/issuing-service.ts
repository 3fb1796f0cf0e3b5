// The issuing back end over HTTP (`vsc license serve`; Wibu 002 back-end license issuing, DESIGN.md "License
// containers"): fastify with the routes of issuing-routes.ts, every body checked against its JSON shape (no extra
// fields, no type coercion) under a 64 KiB body limit, a per-client rate limit (429), and refusals as
// {"error": {"reason", "message"}} with the LicenseReason. Each action runs in one transaction: a refusal changes nothing.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LicenseError } from '../license-error.js';
import type { IssuingBackend } from './issuing-backend.js';
import { authenticateLicensor } from './issuing-licensors.js';
import { issuingOpenApi, OPENAPI_PATH } from './issuing-openapi.js';
import { IssuingRefusal, statusOf } from './issuing-refusal.js';
import { ISSUING_ROUTES } from './issuing-routes.js';
import type { HubLink } from './hub-link.js';

export const ISSUING_BODY_LIMIT = 64 * 1024;
export const DEFAULT_REQUESTS_PER_MINUTE = 600;

export interface IssuingServiceOptions {
  readonly backend: IssuingBackend;
  /** The link to the hub (its authority key goes onto restored containers; new locks are reported at once). */
  readonly hub?: HubLink;
  /** Bytes of one request body (default 64 KiB). */
  readonly bodyLimit?: number;
  /** Requests one client address may make per minute (default 600); more are answered 429 with Retry-After. */
  readonly perClientPerMinute?: number;
  /**
   * Addresses (IP or CIDR, comma-separated) of the TLS proxies in front of the service: their X-Forwarded-For names
   * the client whose rate is limited and audited. Default none: the peer's address is the client's.
   */
  readonly trustProxy?: string;
  /** Told of every answer, for a log line; never of a secret (no body, no header). */
  readonly onRequest?: (event: IssuingEvent) => void;
}

export interface IssuingEvent {
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly reason?: string;
  readonly client: string;
}

/** The reason of each refused answer, for the onRequest event. */
const refusedFor = new WeakMap<object, string>();

function send(reply: FastifyReply, refusal: IssuingRefusal | LicenseError): FastifyReply {
  refusedFor.set(reply.raw, refusal.reason);
  const status = refusal instanceof IssuingRefusal ? refusal.status : statusOf(refusal.reason);
  if (refusal instanceof IssuingRefusal && refusal.retryAfterSeconds !== undefined) reply.header('retry-after', String(refusal.retryAfterSeconds));
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  const details = refusal instanceof IssuingRefusal ? refusal.details : {};
  return reply.code(status).send({ error: { reason: refusal.reason, message: refusal.message }, ...details });
}

/** The service, not listening yet (startIssuingService listens). fastify loads here, not with the license module. */
export async function buildIssuingService(options: IssuingServiceOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? ISSUING_BODY_LIMIT;
  const perMinute = options.perClientPerMinute ?? DEFAULT_REQUESTS_PER_MINUTE;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 16 * 1024 * 1024) throw new TypeError(`expected a body limit of 1 KiB..16 MiB, got ${String(bodyLimit)}`);
  if (!Number.isSafeInteger(perMinute) || perMinute < 1) throw new TypeError(`expected at least 1 request per client per minute, got ${String(perMinute)}`);
  const { default: Fastify } = await import('fastify');
  const { RateLimiterMemory, RateLimiterRes } = await import('rate-limiter-flexible');
  const perClient = new RateLimiterMemory({ points: perMinute, duration: 60 });
  const app = Fastify({ bodyLimit, logger: false, ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }), ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } } });
  // JSON only: fastify would otherwise hand a text/plain body to the schema as a string.
  app.removeContentTypeParser('text/plain');
  const tell = options.onRequest ?? (() => undefined);
  app.addHook('onResponse', async (request, reply) => {
    const reason = refusedFor.get(reply.raw) ?? (reply.statusCode >= 500 ? 'internal' : undefined);
    tell({ method: request.method, route: request.routeOptions.url ?? 'unknown', status: reply.statusCode, client: request.ip, ...(reason === undefined ? {} : { reason }) });
  });
  // Limits are checked before the body is read, so a refused request costs almost nothing.
  app.addHook('onRequest', async (request, reply) => {
    try {
      await perClient.consume(request.ip);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      const wait = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
      return send(reply, new IssuingRefusal(429, 'limit', `at most ${perMinute} requests a minute from one address`, wait));
    }
    return undefined;
  });

  const openApi = issuingOpenApi(ISSUING_ROUTES);
  app.get(OPENAPI_PATH, async () => openApi);
  for (const route of ISSUING_ROUTES) {
    const schema = { ...(route.body === undefined ? {} : { body: route.body }), ...(route.params === undefined ? {} : { params: route.params }), ...(route.querystring === undefined ? {} : { querystring: route.querystring }) };
    app.route({
      method: route.method, url: route.url, schema, ...(route.bodyLimit === undefined ? {} : { bodyLimit: Math.max(route.bodyLimit, bodyLimit) }),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const licensor = route.licensor ? await authenticateLicensor(options.backend, request.headers.authorization) : undefined;
        const answer = await route.handle({
          backend: options.backend, ...(options.hub === undefined ? {} : { hub: options.hub }), caller: { actor: licensor === undefined ? 'customer' : `licensor ${licensor.name}`, client: request.ip },
          body: request.body, params: (request.params ?? {}) as Record<string, string>, query: (request.query ?? {}) as Record<string, string>,
          ...(licensor === undefined ? {} : { licensor }),
        });
        return reply.code(route.status).send(answer);
      },
    });
  }
  app.setNotFoundHandler((request, reply) => send(reply, new IssuingRefusal(404, 'input', `no ${request.method} ${request.url.slice(0, 100)} here: see GET ${OPENAPI_PATH}`)));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof LicenseError) return send(reply, error);
    if (error.validation !== undefined) return send(reply, new IssuingRefusal(400, 'input', `request ${error.message}`));
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, new IssuingRefusal(413, 'limit', `expected a body of at most ${bodyLimit} bytes`));
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, new IssuingRefusal(415, 'input', 'expected a body of Content-Type application/json'));
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status < 500) return send(reply, new IssuingRefusal(status, 'input', error.message));
    // A 500 says nothing of its cause to the caller.
    return reply.code(500).send({ error: { reason: 'internal', message: 'the issuing service failed' } });
  });
  return app;
}

export interface RunningIssuingService {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `vsc license serve`: the service listening on host:port (port 0 picks a free one). */
export async function startIssuingService(options: IssuingServiceOptions & { readonly host: string; readonly port: number }): Promise<RunningIssuingService> {
  const app = await buildIssuingService(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}`, port, close: () => app.close() };
}
