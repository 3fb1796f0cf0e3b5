// A network license server (Wibu 002 Table 1: network / floating license, overflow, borrowable, hot and cold standby):
// one machine's container, its seats leased over HTTP to programs on other machines. Every seat handed out is a card
// decision first (USE with 0 units: expired, unlicensed feature, clock set back are refused by the card) and a
// card-signed record in the trail, so the licensor can count concurrent use from the trail; a borrow is a card-signed
// certificate the borrowing machine checks offline until its end.
//
//   POST   /v1/seats              {licensorKey, productCode, features, client} -> {seat, record, binding}
//   POST   /v1/seats/:id/heartbeat                                            -> {seat}
//   DELETE /v1/seats/:id                                                      -> {released: true}
//   POST   /v1/borrow             {licensorKey, productCode, features, client, borrowerCard, seconds} -> {seat, certificate}
//   DELETE /v1/borrow/:id                                                     -> {released: true}
//   GET    /v1/status                                                         -> {card, seats, standbySeconds}
// Refusals: {error: {reason, message}} with 400 (input), 404 (unknown seat), 409 (seats, and the card's own reasons),
// 429 (rate); nothing changes on a refusal. Seats are kept in a 0600 state file, written atomically at each change.
import { readFileSync } from 'node:fs';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { bytesEqual, fromHex, toHex } from '../../bytes/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { encodeRecordLine, type AuditRecord } from '../../rental/index.js';
import { encodeCardBinding, type CardBinding } from '../card-binding.js';
import type { LicenseCardLink } from '../license-card-link.js';
import { LicenseError } from '../license-error.js';
import type { ProductItem, UnixSeconds } from '../license-model.js';
import { licensorDigest } from '../license-record-text.js';
import { formatBorrowText } from './borrow-certificate.js';
import { SeatTable, type Seat, type SeatTableState } from './seat-table.js';

export interface StandbyMode {
  readonly kind: 'hot' | 'cold';
  /** A cold standby serves only once an operator made it active. */
  readonly active: boolean;
}

export interface LicenseServerOptions {
  /** The container on this machine, with a writeText for borrow certificates (AgentLicenseLink). */
  readonly link: LicenseCardLink & { writeText(text: string): Promise<AuditRecord> };
  /** The state file (0600); absent: seats are forgotten at a restart. */
  readonly stateFile?: string;
  /** Seconds a lease lasts without a heartbeat (default 60). */
  readonly leaseSeconds?: number;
  /** This server is a standby: it serves only items whose standby rule matches, for at most their maxSeconds. */
  readonly standby?: StandbyMode;
  readonly now?: () => UnixSeconds;
  readonly perClientPerMinute?: number;
}

type Json = Record<string, unknown>;

const HEX32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const CODE = { type: 'integer', minimum: 0, maximum: 0xffff_ffff } as const;
const CLIENT = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' } as const;
const seatBody = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'productCode', 'features', 'client'],
  properties: { licensorKey: HEX32, productCode: CODE, features: CODE, client: CLIENT },
} as const;
const borrowBody = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'productCode', 'features', 'client', 'borrowerCard', 'seconds'],
  properties: {
    licensorKey: HEX32, productCode: CODE, features: CODE, client: CLIENT, seconds: { type: 'integer', minimum: 60, maximum: 2 ** 31 },
    borrowerCard: { type: 'object', additionalProperties: false, required: ['serial', 'cardPublicKey'], properties: { serial: { type: 'string', minLength: 1, maxLength: 128 }, cardPublicKey: HEX32 } },
  },
} as const;
const idParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{24}$' } } } as const;

const STATUS: Partial<Record<string, number>> = { input: 400, 'no-license': 404, limit: 429 };

function seatJson(seat: Seat): Json {
  return { id: seat.id, kind: seat.kind, client: seat.client, overflow: seat.overflow, expiresAt: seat.expiresAt };
}

function loadState(path: string | undefined): SeatTableState | undefined {
  if (path === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SeatTableState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LicenseError('input', `the license server's state file ${path} is not readable state: ${(error as Error).message.split('\n')[0]}`);
  }
}

export async function buildLicenseServer(options: LicenseServerOptions): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify');
  const { RateLimiterMemory, RateLimiterRes } = await import('rate-limiter-flexible');
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const leaseSeconds = options.leaseSeconds ?? 60;
  const link = options.link;
  const table = new SeatTable(loadState(options.stateFile));
  const save = (): void => {
    if (options.stateFile !== undefined) writeFileAtomic(options.stateFile, new TextEncoder().encode(`${JSON.stringify(table.state)}\n`));
  };
  const perClient = new RateLimiterMemory({ points: options.perClientPerMinute ?? 6_000, duration: 60 });
  const app = Fastify({ bodyLimit: 16 * 1024, logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } } });
  app.removeContentTypeParser('text/plain');
  // One change at a time: the card answers one command at a time anyway, and seats must be counted without races.
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(job: () => Promise<T>): Promise<T> => {
    const run = tail.then(job);
    tail = run.catch(() => undefined);
    return run;
  };

  const bindingFor = async (licensorKey: Uint8Array): Promise<CardBinding> => {
    const binding = (await link.bindings()).find((entry) => bytesEqual(entry.licensorKey, licensorKey));
    if (binding === undefined) throw new LicenseError('no-license', 'this license server holds no card binding of that licensor');
    return binding;
  };

  const itemOf = async (licensorKey: Uint8Array, productCode: number): Promise<ProductItem> => {
    const firm = (await link.readContainer()).firms.find((entry) => bytesEqual(entry.licensorKey, licensorKey));
    const product = firm?.products.find((entry) => entry.productCode === productCode);
    if (product === undefined) throw new LicenseError('no-license', `this license server's container holds no product ${productCode} of that licensor`);
    return product;
  };

  /** A standby serves an item only while its rule allows: the right kind, active if cold, within its seconds. */
  const checkStandby = (product: ProductItem, item: string): void => {
    const mode = options.standby;
    if (mode === undefined) return;
    const rule = product.standby;
    if (rule === undefined || rule.kind !== mode.kind) throw new LicenseError('seats', `this is a ${mode.kind} standby server, and product ${product.productCode} has no ${mode.kind} standby license`);
    if (mode.kind === 'cold' && !mode.active) throw new LicenseError('seats', 'this cold standby server has not been made active by its operator');
    if (table.standbyUsed(item) >= rule.maxSeconds) throw new LicenseError('expired', `the standby time of product ${product.productCode} (${rule.maxSeconds} s) is used up`);
  };

  /** Time a standby served, counted when a seat's time is renewed or ends. */
  const countStandby = (seat: Seat, until: UnixSeconds, from: UnixSeconds): void => {
    if (options.standby !== undefined) table.addStandby(seat.item, Math.min(until, seat.expiresAt) - Math.max(0, from));
  };

  const grant = async (body: Json, kind: 'lease' | 'borrow'): Promise<Json> => {
    const licensorKey = fromHex(body['licensorKey'] as string);
    const productCode = body['productCode'] as number;
    const client = body['client'] as string;
    const at = now();
    table.expire(at);
    const item = `${licensorDigest(licensorKey)}/${productCode}`;
    const product = await itemOf(licensorKey, productCode);
    checkStandby(product, item);
    const again = table.heldBy(item, client, kind);
    if (again !== undefined && kind === 'lease') {
      again.expiresAt = at + leaseSeconds;
      save();
      return { seat: seatJson(again), again: true };
    }
    let expiresAt = at + leaseSeconds;
    if (kind === 'borrow') {
      if (product.maxBorrowSeconds === undefined) throw new LicenseError('limit', `product ${productCode} may not be borrowed`);
      const seconds = body['seconds'] as number;
      if (seconds > product.maxBorrowSeconds) throw new LicenseError('limit', `product ${productCode} may be borrowed for at most ${product.maxBorrowSeconds} s`);
      expiresAt = at + seconds;
    }
    // The card decides first (expired, not yet active, feature, clock set back ...), and signs the allocation.
    const record = await link.use({ licensorKey, productCode, features: body['features'] as number, units: 0, hostTime: at });
    const seat = table.take(item, product, client, kind, expiresAt, at);
    const binding = await bindingFor(licensorKey);
    let certificate: Json | undefined;
    if (kind === 'borrow') {
      const borrower = body['borrowerCard'] as { serial: string; cardPublicKey: string };
      try {
        const text = formatBorrowText({ licensor: licensorDigest(licensorKey), productCode, features: body['features'] as number, serial: borrower.serial, cardPublicKey: fromHex(borrower.cardPublicKey), until: expiresAt, id: seat.id });
        const signed = await link.writeText(text);
        certificate = { record: JSON.parse(encodeRecordLine(signed)) as unknown, binding: encodeCardBinding(binding) };
      } catch (error) {
        table.release(seat.id);
        throw error;
      }
    }
    save();
    return { seat: seatJson(seat), record: JSON.parse(encodeRecordLine(record)) as unknown, binding: encodeCardBinding(binding), ...(certificate === undefined ? {} : { certificate }) };
  };

  const refuse = (reply: FastifyReply, error: unknown): FastifyReply => {
    if (!(error instanceof LicenseError)) throw error;
    return reply.code(STATUS[error.reason] ?? 409).send({ error: { reason: error.reason, message: error.message.split('\n')[0] } });
  };

  app.addHook('onRequest', async (request, reply) => {
    try {
      await perClient.consume(request.ip);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      return reply.code(429).header('retry-after', String(Math.max(1, Math.ceil(refusal.msBeforeNext / 1000)))).send({ error: { reason: 'limit', message: 'too many requests from this address' } });
    }
    return undefined;
  });
  app.post<{ Body: Json }>('/v1/seats', { schema: { body: seatBody } }, (request, reply) => serial(() => grant(request.body, 'lease')).catch((error: unknown) => refuse(reply, error)));
  app.post<{ Body: Json }>('/v1/borrow', { schema: { body: borrowBody } }, (request, reply) => serial(() => grant(request.body, 'borrow')).catch((error: unknown) => refuse(reply, error)));
  app.post<{ Params: { id: string } }>('/v1/seats/:id/heartbeat', { schema: { params: idParams } }, (request, reply) => serial(async () => {
    const at = now();
    const seat = table.get(request.params.id);
    if (seat === undefined || seat.kind !== 'lease' || seat.expiresAt <= at) throw new LicenseError('no-license', 'no such lease (it was returned or ran out): acquire a seat again');
    countStandby(seat, at, seat.expiresAt - leaseSeconds);
    seat.expiresAt = at + leaseSeconds;
    save();
    return { seat: seatJson(seat) };
  }).catch((error: unknown) => refuse(reply, error)));
  const release = (kind: 'lease' | 'borrow') => (request: { params: { id: string } }, reply: FastifyReply) => serial(async () => {
    const seat = table.get(request.params.id);
    if (seat === undefined || seat.kind !== kind) throw new LicenseError('no-license', `no such ${kind === 'lease' ? 'lease' : 'borrow'}`);
    countStandby(seat, now(), kind === 'lease' ? seat.expiresAt - leaseSeconds : now());
    table.release(seat.id);
    save();
    return { released: true };
  }).catch((error: unknown) => refuse(reply, error));
  app.delete<{ Params: { id: string } }>('/v1/seats/:id', { schema: { params: idParams } }, release('lease'));
  app.delete<{ Params: { id: string } }>('/v1/borrow/:id', { schema: { params: idParams } }, release('borrow'));
  app.get('/v1/status', () => serial(async () => {
    table.expire(now());
    const state = table.state;
    return { card: { serial: link.card.serial, publicKey: toHex(link.card.publicKey) }, seats: state.seats.map(seatJson), standbySeconds: state.standbySeconds };
  }));
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: { reason: 'input', message: `no ${request.method} ${request.url.slice(0, 100)} here` } }));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation !== undefined) return reply.code(400).send({ error: { reason: 'input', message: `request ${error.message}` } });
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    return reply.code(status).send({ error: { reason: status === 500 ? 'card' : 'input', message: status === 500 ? 'the license server failed' : error.message } });
  });
  return app;
}

export interface RunningLicenseServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startLicenseServer(options: LicenseServerOptions & { readonly host: string; readonly port: number }): Promise<RunningLicenseServer> {
  const app = await buildLicenseServer(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return { url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`, close: () => app.close() };
}
