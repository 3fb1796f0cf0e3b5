// The restore hub over HTTP (`vsc license hub serve`; Wibu 000 P002 §2.1 "Hub Web Service", "CM-Box Backup" §2.10
// "Locking instance"): fastify as the issuing service is — every body checked against its JSON shape (no extra fields,
// no coercion) under a 64 KiB limit (a job carrying a backup file: 8 MiB), a per-client rate limit (429), refusals as
// {"error": {"reason", "message"}}, GET /openapi.json — plus the self-service page at GET /.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LicenseError } from '../license-error.js';
import { IssuingRefusal, statusOf } from '../issuing/index.js';
import type { HubBackend } from './hub-backend.js';
import { isAdminAuthorization } from './hub-data.js';
import { hubOpenApi, HUB_OPENAPI_PATH } from './hub-openapi.js';
import { loadHubPage, PAGE_SCRIPT_PATH, SECURITY_HEADERS } from './hub-page.js';
import { HUB_ROUTES, HubReply, requireBearer } from './hub-routes.js';

export const HUB_BODY_LIMIT = 64 * 1024;
export const DEFAULT_HUB_REQUESTS_PER_MINUTE = 600;

export interface HubServiceOptions {
  readonly hub: HubBackend;
  /** Requests one client address may make per minute (default 600); more are answered 429 with Retry-After. */
  readonly perClientPerMinute?: number;
  /** Addresses (IP or CIDR, comma-separated) of TLS proxies in front, whose X-Forwarded-For names the client. */
  readonly trustProxy?: string;
  /** Told of every answer, for a log line; never of a body or a header. */
  readonly onRequest?: (event: HubEvent) => void;
}

export interface HubEvent {
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly reason?: string;
  readonly client: string;
}

const refusedFor = new WeakMap<object, string>();

function send(reply: FastifyReply, status: number, reason: string, message: string, retryAfter?: number): FastifyReply {
  refusedFor.set(reply.raw, reason);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(status).send({ error: { reason, message } });
}

function refuse(reply: FastifyReply, error: LicenseError): FastifyReply {
  return send(reply, error instanceof IssuingRefusal ? error.status : statusOf(error.reason), error.reason, error.message);
}

/** The service, not listening yet. fastify loads here, not with the license module. */
export async function buildHubService(options: HubServiceOptions): Promise<FastifyInstance> {
  const perMinute = options.perClientPerMinute ?? DEFAULT_HUB_REQUESTS_PER_MINUTE;
  if (!Number.isSafeInteger(perMinute) || perMinute < 1) throw new TypeError(`expected at least 1 request per client per minute, got ${String(perMinute)}`);
  const page = loadHubPage();
  const { default: Fastify } = await import('fastify');
  const { RateLimiterMemory, RateLimiterRes } = await import('rate-limiter-flexible');
  const perClient = new RateLimiterMemory({ points: perMinute, duration: 60 });
  const app = Fastify({
    bodyLimit: HUB_BODY_LIMIT, logger: false, ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  app.removeContentTypeParser('text/plain');
  const tell = options.onRequest ?? (() => undefined);
  app.addHook('onResponse', async (request, reply) => {
    const reason = refusedFor.get(reply.raw) ?? (reply.statusCode >= 500 ? 'internal' : undefined);
    tell({ method: request.method, route: request.routeOptions.url ?? 'unknown', status: reply.statusCode, client: request.ip, ...(reason === undefined ? {} : { reason }) });
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    try {
      await perClient.consume(request.ip);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      return send(reply, 429, 'limit', `at most ${perMinute} requests a minute from one address`, Math.max(1, Math.ceil(refusal.msBeforeNext / 1000)));
    }
    return undefined;
  });

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page.html));
  app.get(PAGE_SCRIPT_PATH, async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(page.script));
  // Browsers ask for it on their own; the page has no icon.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
  const openApi = hubOpenApi(HUB_ROUTES);
  app.get(HUB_OPENAPI_PATH, async () => openApi);
  for (const route of HUB_ROUTES) {
    const schema = { ...(route.body === undefined ? {} : { body: route.body }), ...(route.params === undefined ? {} : { params: route.params }), ...(route.querystring === undefined ? {} : { querystring: route.querystring }) };
    app.route({
      method: route.method, url: route.url, schema, ...(route.bodyLimit === undefined ? {} : { bodyLimit: route.bodyLimit }),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const authorization = request.headers.authorization;
        if (route.auth === 'admin' && !isAdminAuthorization(options.hub, authorization)) {
          return send(reply, 401, 'unauthenticated', 'expected an Authorization: Bearer header with the hub\'s admin token (DIR/admin.token)');
        }
        if (route.auth === 'licensor-key') requireBearer(authorization);
        const answer = await route.handle({
          hub: options.hub, caller: { actor: 'customer', client: request.ip }, body: request.body,
          params: (request.params ?? {}) as Record<string, string>, query: (request.query ?? {}) as Record<string, string>,
          ...(route.auth === 'licensor-key' && authorization !== undefined ? { authorization } : {}),
        });
        if (!(answer instanceof HubReply)) return reply.code(route.status).send(answer);
        const refusal = answer.status >= 400 ? (answer.body as { error?: { reason?: unknown } } | null)?.error?.reason : undefined;
        if (typeof refusal === 'string') refusedFor.set(reply.raw, refusal);
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      },
    });
  }
  app.setNotFoundHandler((request, reply) => send(reply, 404, 'input', `no ${request.method} ${request.url.slice(0, 100)} here: see GET ${HUB_OPENAPI_PATH}`));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof LicenseError) return refuse(reply, error);
    if (error.validation !== undefined) return send(reply, 400, 'input', `request ${error.message}`);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, 413, 'limit', 'the body is larger than this route takes (64 KiB; a job with a backup file 8 MiB)');
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, 415, 'input', 'expected a body of Content-Type application/json');
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status < 500) return send(reply, status, 'input', error.message);
    return reply.code(500).send({ error: { reason: 'internal', message: 'the hub failed' } });
  });
  return app;
}

export interface RunningHubService {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `vsc license hub serve`: the service listening on host:port (port 0 picks a free one). */
export async function startHubService(options: HubServiceOptions & { readonly host: string; readonly port: number }): Promise<RunningHubService> {
  const app = await buildHubService(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}`, port, close: () => app.close() };
}
