// The server's bounds (issue 13 "Bounded server"): caps on concurrent connections and sessions, rate
// limits on new sessions and on proofs (per peer and global, rate-limiter-flexible), the deadline
// before authentication and the channel's receive queue. Defaults merged, validated and frozen here.
import { MAX_MESSAGE_LENGTH } from '../channel/index.js';
import { UsageError } from '../errors/index.js';

export interface ServerLimits {
  /** WebSocket connections open at once, all peers together; more are refused at upgrade (HTTP 503). */
  readonly maxConnections: number;
  /** WebSocket connections open at once from one peer; more are refused at upgrade (HTTP 429). */
  readonly maxConnectionsPerPeer: number;
  /** Sessions past their hello (an operation under way, a database read ahead) at once, all peers. */
  readonly maxSessions: number;
  /** The same from one peer. */
  readonly maxSessionsPerPeer: number;
  /** New connections per second from one peer (a burst of this many, refilled each second). */
  readonly sessionsPerPeerPerSecond: number;
  /** New connections per second, all peers together (counted only once the peer's own limit passed). */
  readonly sessionsPerSecond: number;
  /** Challenges (each answered by at most one proof) per minute to one peer. */
  readonly proofsPerPeerPerMinute: number;
  /** Challenges per second, all peers together (counted only once the peer's own limit passed). */
  readonly proofsPerSecond: number;
  /** Failed owner proofs one peer may make per minute before it is blocked. */
  readonly failedProofsPerPeerPerMinute: number;
  /** The first block of such a peer, in seconds; each further block within a day lasts twice as long. */
  readonly failedProofBlockSeconds: number;
  /** The longest block, in seconds. */
  readonly maxFailedProofBlockSeconds: number;
  /** Handshake and hello must arrive within this many ms of the connection; the proof keeps CHALLENGE_LIFETIME_MS. */
  readonly preAuthTimeoutMs: number;
  /** A kept connection with no session under way is closed after this many ms (1000, "idle"). */
  readonly idleTimeoutMs: number;
  /** Messages a session may have received and not yet read; beyond, it is closed (1008). */
  readonly maxQueuedMessages: number;
  /** Bytes a session may have received and not yet read; beyond, it is closed (1008). */
  readonly maxQueuedBytes: number;
}

/**
 * The defaults, and why:
 * - A client opens one session per operation and runs one operation at a time; a machine's card does
 *   an insert, a few extends and a remove. 20 new sessions a second and 64 open connections let an
 *   office behind one NAT address work, and keep one address from holding more than 64 sockets.
 * - 4096 connections at once is a few tens of MB of socket and Noise state; sessions past their
 *   hello hold database work, so fewer (1024, 32 per peer): more than a server's commit groups take
 *   at once would only queue (BENCHMARKS.md has its cycles a second).
 * - The global session and proof rates (10,000/s, 5,000/s) sit above what one process can serve (with
 *   group commit and kept connections, a few thousand operations a second on a fast machine): they
 *   are a backstop that sheds load, never the first limit a peer meets. Per-peer limits are consumed
 *   first and a peer they refuse does not consume the global ones, so one address cannot spend the
 *   budget of everyone else.
 * - Proofs: 120 challenges a minute per peer covers a busy NAT. Wrong passwords are another matter:
 *   5 a minute per peer, then blocked for 60 s, 120 s, 240 s, ... up to an hour, which makes 10,000
 *   guesses from one address take weeks while the per-card buckets (card-transaction.ts) protect
 *   the owner from strangers at other addresses. Proofs in flight count against the same budget
 *   (failures + in flight < 5), so a burst of parallel wrong proofs cannot overshoot it; this also
 *   bounds the operations one address has under way at once to 5, plenty for a machine or a small
 *   office (raise it behind a big NAT).
 * - 5 s before authentication: a handshake and a hello are one round trip each; everything after
 *   keeps the 30 s of [0042] (the client runs Argon2id between challenge and proof). The same 5 s
 *   count again from the first message of each later session on a kept connection.
 * - 30 s for a kept connection between sessions: a client running many operations keeps its socket
 *   (each operation still its own Noise NK session); an idle one holds a connection slot, so not long.
 *   Each later session counts against the session rates like a new connection.
 * - 4 unread messages, 4 x 64 KiB: a session carries hello then proof, each read as it arrives; a
 *   peer that pushes more is not running the protocol.
 */
export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  maxConnections: 4096,
  maxConnectionsPerPeer: 64,
  maxSessions: 1024,
  maxSessionsPerPeer: 32,
  sessionsPerPeerPerSecond: 20,
  sessionsPerSecond: 10_000,
  proofsPerPeerPerMinute: 120,
  proofsPerSecond: 5000,
  failedProofsPerPeerPerMinute: 5,
  failedProofBlockSeconds: 60,
  maxFailedProofBlockSeconds: 3600,
  preAuthTimeoutMs: 5000,
  idleTimeoutMs: 30_000,
  maxQueuedMessages: 4,
  maxQueuedBytes: 4 * MAX_MESSAGE_LENGTH,
});

export type LimitName = keyof ServerLimits;
export const LIMIT_NAMES: readonly LimitName[] = Object.freeze(Object.keys(DEFAULT_LIMITS) as LimitName[]);

/** Whole numbers only, each at least this (a limit of 0 would refuse everyone). */
const LIMIT_MINIMUMS: Readonly<Partial<Record<LimitName, number>>> = { preAuthTimeoutMs: 100, idleTimeoutMs: 100, maxQueuedBytes: MAX_MESSAGE_LENGTH };
/** setTimeout and rate-limiter-flexible take 32-bit milliseconds; no limit needs more. */
const LIMIT_MAXIMUM = 2 ** 31 - 1;

/** Merges `limits` over DEFAULT_LIMITS, checks every value ("expected X, got Y") and freezes. */
export function resolveServerLimits(limits: Partial<ServerLimits> | undefined): ServerLimits {
  if (limits === undefined) return DEFAULT_LIMITS;
  if (typeof limits !== 'object' || limits === null) throw new UsageError(`expected server limits as an object, got ${String(limits)}`);
  for (const name of Object.keys(limits)) {
    if (!LIMIT_NAMES.includes(name as LimitName)) throw new UsageError(`expected a server limit of ${LIMIT_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
  const defined = Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
  const resolved = { ...DEFAULT_LIMITS, ...defined } as ServerLimits;
  for (const name of LIMIT_NAMES) {
    const value: unknown = resolved[name];
    const minimum = LIMIT_MINIMUMS[name] ?? 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > LIMIT_MAXIMUM) {
      throw new UsageError(`expected server limit ${name} to be a whole number in ${minimum}..${LIMIT_MAXIMUM}, got ${typeof value === 'number' ? value : typeof value}`);
    }
  }
  if (resolved.maxConnectionsPerPeer > resolved.maxConnections) throw new UsageError(`expected maxConnectionsPerPeer (${resolved.maxConnectionsPerPeer}) not above maxConnections (${resolved.maxConnections})`);
  if (resolved.maxSessionsPerPeer > resolved.maxSessions) throw new UsageError(`expected maxSessionsPerPeer (${resolved.maxSessionsPerPeer}) not above maxSessions (${resolved.maxSessions})`);
  if (resolved.failedProofBlockSeconds > resolved.maxFailedProofBlockSeconds) {
    throw new UsageError(`expected failedProofBlockSeconds (${resolved.failedProofBlockSeconds}) not above maxFailedProofBlockSeconds (${resolved.maxFailedProofBlockSeconds})`);
  }
  return Object.freeze(resolved);
}

/**
 * The key a peer is limited under: its IPv4 address, or the /64 prefix of its IPv6 address (one
 * host usually holds a whole /64, so per-address limits would be no limit). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
export function peerKey(address: string | undefined): string {
  if (address === undefined || address.length === 0) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
