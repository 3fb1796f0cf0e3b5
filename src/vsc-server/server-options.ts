// The VSC server's options: merged over explicit defaults, validated and frozen in this one place
// (as ws and kysely do), so the session server and the handlers read settled values.
import { UsageError } from '../errors/index.js';
import type { VscDatabase } from './database.js';
import { DEFAULT_COUNTER_WINDOW } from './card-store.js';
import type { ServerKeys } from './server-data.js';
import { NO_OBSERVER, type VscServerObserver } from './server-observer.js';
import { DEFAULT_LIMITS, resolveServerLimits, type ServerLimits } from './server-limits.js';

/** Which implementation proofs a deployment demands ([0041], [0048]): one of them, or both. */
export const IMPLEMENTATION_PROOFS = ['master', 'keyfile', 'both'] as const;
export type ImplementationProofs = (typeof IMPLEMENTATION_PROOFS)[number];

export interface VscServerOptions {
  readonly keys: ServerKeys;
  readonly database: VscDatabase;
  readonly host?: string;
  readonly port?: number;
  readonly implementationProofs?: ImplementationProofs;
  readonly counterWindow?: bigint;
  readonly now?: () => number;
  /** Told of every session and finished operation (logs, metrics); it never sees a secret. */
  readonly observer?: VscServerObserver;
  /** Caps, rate limits and deadlines (server-limits.ts); each one left out keeps its default. */
  readonly limits?: Partial<ServerLimits>;
  /** Card events older than this many days are deleted, at start and every hour; 0 keeps them forever. */
  readonly eventsRetentionDays?: number;
  /**
   * Seed of the server's attestation key (attestation-key.ts): an insert of a server-held card then carries the
   * server's attestation of the card's key. Without it, inserts carry none.
   */
  readonly attestationSeed?: Uint8Array;
}

/** The options once settled: every field present (the attestation key where given), every limit too. */
export type ResolvedServerOptions = Readonly<Required<Omit<VscServerOptions, 'limits' | 'attestationSeed'>> & { limits: ServerLimits; attestationSeed?: Uint8Array }>;

export const SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  /** 0: the system picks a free port (tests, the demo); `vsc server run` passes its own. */
  port: 0,
  implementationProofs: 'master' as ImplementationProofs,
  counterWindow: DEFAULT_COUNTER_WINDOW,
  now: Date.now,
  observer: NO_OBSERVER,
  limits: DEFAULT_LIMITS,
  /** Long enough to look into an incident reported a season later; short enough that refusals do not pile up for years. */
  eventsRetentionDays: 90,
});

/** About 27 years: beyond, 0 (keep forever) says it better. */
const MAX_RETENTION_DAYS = 10_000;

const KEY_LENGTHS = { channelPrivateKey: 32, channelPublicKey: 32, signingSeed: 32, keyfileSecret: 32, masterKey: 32 } as const;

/** Merges `options` over SERVER_DEFAULTS, checks every value and freezes the result. */
export function resolveServerOptions(options: VscServerOptions): ResolvedServerOptions {
  if (typeof options !== 'object' || options === null) throw new UsageError(`expected server options, got ${String(options)}`);
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const merged = { ...SERVER_DEFAULTS, ...defined } as Required<VscServerOptions>;
  const resolved = { ...merged, limits: resolveServerLimits(options.limits) };
  const { keys, database, host, port, implementationProofs, counterWindow, now, observer, eventsRetentionDays } = resolved;
  if (typeof keys !== 'object' || keys === null) throw new UsageError(`expected the server keys, got ${String(keys)}`);
  for (const [name, length] of Object.entries(KEY_LENGTHS)) {
    const key = (keys as unknown as Record<string, unknown>)[name];
    if (!(key instanceof Uint8Array) || key.length !== length) throw new UsageError(`expected server key ${name} of ${length} bytes, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`);
  }
  if (typeof database !== 'object' || database === null || typeof database.db !== 'object') throw new UsageError(`expected an open server database, got ${String(database)}`);
  if (typeof host !== 'string' || host.length === 0) throw new UsageError(`expected a host name or address to listen on, got ${JSON.stringify(host)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`expected a port in 0..65535, got ${String(port)}`);
  if (!IMPLEMENTATION_PROOFS.includes(implementationProofs)) throw new UsageError(`expected implementation proofs to be one of ${IMPLEMENTATION_PROOFS.join(', ')}, got ${JSON.stringify(String(implementationProofs))}`);
  if (typeof counterWindow !== 'bigint' || counterWindow <= 0n || counterWindow >= 1n << 128n) throw new UsageError(`expected a counter window in 1..2^128-1, got ${String(counterWindow)}`);
  if (typeof now !== 'function') throw new UsageError(`expected a clock function, got ${typeof now}`);
  if (typeof observer !== 'object' || observer === null) throw new UsageError(`expected an observer, got ${String(observer)}`);
  const { attestationSeed } = resolved;
  if (attestationSeed !== undefined && (!(attestationSeed instanceof Uint8Array) || attestationSeed.length !== 32)) {
    throw new UsageError(`expected an attestation key seed of 32 bytes, got ${attestationSeed instanceof Uint8Array ? `${attestationSeed.length} bytes` : typeof attestationSeed}`);
  }
  if (typeof eventsRetentionDays !== 'number' || !Number.isInteger(eventsRetentionDays) || eventsRetentionDays < 0 || eventsRetentionDays > MAX_RETENTION_DAYS) {
    throw new UsageError(`expected events retention in whole days, 0..${MAX_RETENTION_DAYS} (0 keeps every event), got ${String(eventsRetentionDays)}`);
  }
  return Object.freeze(resolved);
}
