// The server's Prometheus metrics (prom-client, a registry of its own) and the separate HTTP
// listener that serves them: operations by kind and outcome, latencies, cards by state, sessions.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VscError } from '../errors/index.js';
import { CARD_STATES, countCardsByState } from './card-counts.js';
import type { CardState } from './card-store.js';
import type { VscDatabase } from './database.js';
import type { FinishedOperation, VscServerObserver } from './server-observer.js';
import type { GuardRefusal } from './peer-guard.js';
import { LIMIT_NAMES, type ServerLimits } from './server-limits.js';

/** 1 ms … 5 s: a cycle on a warm server takes milliseconds; an insert with Argon2id on the client takes a few hundred. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
/** A scrape storm costs the database at most one GROUP BY per this many milliseconds. */
export const CARD_COUNT_TTL_MS = 1000;

export interface ServerMetricsOptions {
  readonly database: VscDatabase;
  /** How long one count of the cards by state is served from memory; default CARD_COUNT_TTL_MS. */
  readonly cardCountTtlMs?: number;
  readonly now?: () => number;
  /** Node's process metrics (CPU, memory, event loop lag, ...); default true. */
  readonly processMetrics?: boolean;
}

export interface ServerMetrics {
  readonly registry: Registry;
  /** Feeds the operation and session metrics; give it to startVscServer. */
  readonly observer: VscServerObserver;
  /** The exposition text (cards counted from the database, or from the cache). */
  scrape(): Promise<string>;
  readonly contentType: string;
}

export function createServerMetrics(options: ServerMetricsOptions): ServerMetrics {
  const { database, cardCountTtlMs = CARD_COUNT_TTL_MS, now = Date.now, processMetrics = true } = options;
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry });

  const operations = new Counter({
    name: 'vsc_operations_total',
    help: 'Finished operations by kind and outcome (ok, or the refusal reason sent to the client).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'vsc_operation_duration_seconds',
    help: 'From the session\'s first message (a new connection\'s, or the next on a kept one) to the answer sent, client round trips included.',
    labelNames: ['operation'] as const,
    buckets: [...DURATION_BUCKETS_SECONDS],
    registers: [registry],
  });
  const groups = new Histogram({
    name: 'vsc_commit_group_operations',
    help: 'Operations per durable database commit (group commit: those that arrive together share one).',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const sessions = new Gauge({ name: 'vsc_sessions_active', help: 'WebSocket sessions being served now.', registers: [registry] });
  const countFailures = new Counter({ name: 'vsc_card_count_failures_total', help: 'Scrapes whose count of cards by state failed (vsc_cards is then absent).', registers: [registry] });

  const limitRefusals = new Counter({
    name: 'vsc_limit_refusals_total',
    help: 'Peers refused by a limit: kind session or proof (rates), failed-proof (blocked after wrong passwords), connections or sessions (caps); scope peer or global.',
    labelNames: ['kind', 'scope'] as const,
    registers: [registry],
  });
  const connections = new Gauge({ name: 'vsc_connections_active', help: 'TCP connections open on the client listener now, counted against the caps.', registers: [registry] });
  const limitGauge = new Gauge({ name: 'vsc_limit', help: 'The limits the server enforces (server-limits.ts), by name.', labelNames: ['name'] as const, registers: [registry] });

  let cached: { at: number; counts: Promise<Record<CardState, number>> } | undefined;
  /** One query per TTL however many scrapes arrive, concurrent ones included. */
  const cardCounts = (): Promise<Record<CardState, number>> => {
    const at = now();
    if (cached === undefined || at - cached.at >= cardCountTtlMs) {
      const entry = { at, counts: countCardsByState(database) };
      cached = entry;
      // A failed count is not cached: the next scrape asks again.
      entry.counts.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    return cached.counts;
  };
  new Gauge({
    name: 'vsc_cards',
    help: 'Cards by state (idle, in-use, destroyed), counted from the database at most once a second.',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      try {
        const counts = await cardCounts();
        for (const state of CARD_STATES) this.set({ state }, counts[state]);
      } catch {
        // No stale numbers: the series disappear, the failure counter says why.
        this.reset();
        countFailures.inc();
      }
    },
  });

  const observer: VscServerObserver = Object.freeze({
    sessionOpened: () => sessions.inc(),
    sessionClosed: () => sessions.dec(),
    operationFinished(info: FinishedOperation) {
      operations.inc({ operation: info.operation, outcome: info.outcome });
      durations.observe({ operation: info.operation }, info.durationMs / 1000);
    },
    peerRefused: (refusal: GuardRefusal) => limitRefusals.inc({ kind: refusal.kind, scope: refusal.scope }),
    connectionsChanged: (open: number) => connections.set(open),
    groupCommitted: (size: number) => groups.observe(size),
    limitsConfigured(limits: ServerLimits) {
      for (const name of LIMIT_NAMES) limitGauge.set({ name }, limits[name]);
    },
  });
  return Object.freeze({ registry, observer, scrape: () => registry.metrics(), contentType: registry.contentType });
}

export interface MetricsListener {
  /** http://HOST:PORT/metrics */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** One readable line for a listener that could not bind. */
export function listenError(what: string, host: string, port: number, error: unknown): VscError {
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const reasons: Record<string, string> = { EADDRINUSE: 'the address is already in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such local address', ENOTFOUND: 'unknown host' };
  const reason = (code === undefined ? undefined : reasons[code]) ?? (error instanceof Error ? error.message : String(error));
  return new VscError('server.listen', `cannot listen for ${what} on ${host}:${port}: ${reason}`, { cause: error });
}

/**
 * Serves GET /metrics on its own listener, apart from the WebSocket port, so it can be bound to
 * another interface and firewalled on its own. Everything else is 404.
 */
export async function serveMetrics(metrics: ServerMetrics, address: { host: string; port: number }, onScrapeError: (error: unknown) => void = () => undefined): Promise<MetricsListener> {
  const http: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at GET /metrics\n');
      return;
    }
    metrics.scrape().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (error: unknown) => {
        onScrapeError(error);
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', (error) => reject(listenError('metrics', address.host, address.port, error)));
    http.listen(address.port, address.host, () => resolve());
  });
  const bound = http.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return Object.freeze({
    url: `http://${shownHost}:${bound.port}/metrics`,
    port: bound.port,
    async close() {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections(); // scrapers keep connections alive; they must not hold the shutdown
      await closed;
    },
  });
}
