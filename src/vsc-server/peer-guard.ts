// Enforces ServerLimits (server-limits.ts) for one server process: counts open connections and
// sessions, and rate-limits new sessions, challenges and failed proofs per peer and globally through
// rate-limiter-flexible's RateLimiterMemory. Per process: several processes on one database each
// apply the limits on their own (a load balancer in front multiplies them by the process count).
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { peerKey, type ServerLimits } from './server-limits.js';

/**
 * What was exceeded: a rate (session, proof), the failed-proof budget (failed-proof: blocked;
 * unproven: failures and proofs in flight would exceed it), or a cap on things open at once
 * (connections, sessions).
 */
export type GuardKind = 'session' | 'proof' | 'failed-proof' | 'unproven' | 'connections' | 'sessions';
export type GuardScope = 'peer' | 'global';

export interface GuardRefusal {
  readonly kind: GuardKind;
  readonly scope: GuardScope;
  /** The peer's limiting key (peerKey): an IPv4 address or an IPv6 /64. */
  readonly peer: string;
  /** When trying again may succeed, in whole seconds (at least 1). */
  readonly retryInS: number;
}

/** Told of every refusal and of the number of open connections (metrics, log). */
export interface GuardEvents {
  refused(refusal: GuardRefusal): void;
  connectionsChanged(open: number): void;
}

/** Gives back what an admission took; calling it again does nothing. */
export type Release = () => void;
export type Admission = { readonly admitted: true; readonly release: Release } | { readonly admitted: false; readonly refusal: GuardRefusal };

const GLOBAL = 'all';
/** How long a peer's blocks are remembered for the doubling of the next one. */
const STRIKE_MEMORY_SECONDS = 24 * 3600;

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/** Counts per key, the key dropped at zero so the map holds only peers with something open. */
class OpenCounts {
  total = 0;
  readonly #perPeer = new Map<string, number>();
  of(peer: string): number {
    return this.#perPeer.get(peer) ?? 0;
  }
  add(peer: string, delta: 1 | -1): void {
    this.total += delta;
    const count = this.of(peer) + delta;
    if (count <= 0) this.#perPeer.delete(peer);
    else this.#perPeer.set(peer, count);
  }
}

export class PeerGuard {
  readonly #limits: ServerLimits;
  readonly #events: GuardEvents;
  readonly #connections = new OpenCounts();
  readonly #sessions = new OpenCounts();
  /** Sessions admitted whose proof has not been judged yet, per peer. */
  readonly #unproven = new OpenCounts();
  readonly #sessionRate: { peer: RateLimiterMemory; global: RateLimiterMemory };
  readonly #proofRate: { peer: RateLimiterMemory; global: RateLimiterMemory };
  readonly #failedProofs: RateLimiterMemory;
  readonly #strikes: RateLimiterMemory;

  constructor(limits: ServerLimits, events: GuardEvents) {
    this.#limits = limits;
    this.#events = events;
    this.#sessionRate = {
      peer: new RateLimiterMemory({ keyPrefix: 'session-peer', points: limits.sessionsPerPeerPerSecond, duration: 1 }),
      global: new RateLimiterMemory({ keyPrefix: 'session-global', points: limits.sessionsPerSecond, duration: 1 }),
    };
    this.#proofRate = {
      peer: new RateLimiterMemory({ keyPrefix: 'proof-peer', points: limits.proofsPerPeerPerMinute, duration: 60 }),
      global: new RateLimiterMemory({ keyPrefix: 'proof-global', points: limits.proofsPerSecond, duration: 1 }),
    };
    // No blockDuration: recordFailedProof blocks with a duration that grows with the peer's strikes.
    this.#failedProofs = new RateLimiterMemory({ keyPrefix: 'failed-proof', points: limits.failedProofsPerPeerPerMinute, duration: 60 });
    this.#strikes = new RateLimiterMemory({ keyPrefix: 'strikes', points: 1_000_000, duration: STRIKE_MEMORY_SECONDS });
  }

  /** Connections open now (admitted and not yet closed). */
  get connections(): number {
    return this.#connections.total;
  }

  /** Sessions past their hello now. */
  get sessions(): number {
    return this.#sessions.total;
  }

  /**
   * A new TCP connection from `address`, before any byte is read: refused over the global or the
   * peer's cap. Synchronous, so that the count and the check cannot interleave.
   */
  admitConnection(address: string | undefined): Admission {
    const peer = peerKey(address);
    const cap = this.#overCap(this.#connections, peer, this.#limits.maxConnections, this.#limits.maxConnectionsPerPeer, 'connections');
    if (cap !== undefined) return cap;
    this.#connections.add(peer, 1);
    this.#events.connectionsChanged(this.#connections.total);
    return this.#admitted(() => {
      this.#connections.add(peer, -1);
      this.#events.connectionsChanged(this.#connections.total);
    });
  }

  /** A WebSocket upgrade from `address`: refused over the peer's, then the global, session rate. */
  async admitSessionRate(address: string | undefined): Promise<GuardRefusal | undefined> {
    const peer = peerKey(address);
    return (await this.#consume(this.#sessionRate.peer, peer, 'session', 'peer', peer)) ?? (await this.#consume(this.#sessionRate.global, GLOBAL, 'session', 'global', peer));
  }

  /**
   * A session whose hello arrived, before the server issues a challenge (and reads the database):
   * refused while the peer is blocked for failed proofs, when its failures this minute plus its
   * proofs in flight reach the failed-proof budget (so a burst of parallel wrong proofs cannot
   * overshoot it), over the session caps, or over the challenge rates (peer first). A proof answers
   * a challenge and a session carries one, so counting challenges bounds the proofs received and
   * refuses before any proof is looked at. Release when the session ends, after recordFailedProof.
   */
  async admitOperation(address: string | undefined): Promise<Admission> {
    const peer = peerKey(address);
    const failures = await this.#failedProofs.get(peer);
    // From here to the reservation nothing awaits: the checks and the counts cannot interleave.
    const failed = failures?.consumedPoints ?? 0;
    const budget = this.#limits.failedProofsPerPeerPerMinute;
    if (failures !== null && failed >= budget) return this.#refuse({ kind: 'failed-proof', scope: 'peer', peer, retryInS: seconds(failures.msBeforeNext) });
    const cap = this.#overCap(this.#sessions, peer, this.#limits.maxSessions, this.#limits.maxSessionsPerPeer, 'sessions');
    if (cap !== undefined) return cap;
    if (failed + this.#unproven.of(peer) >= budget) return this.#refuse({ kind: 'unproven', scope: 'peer', peer, retryInS: 1 });
    this.#sessions.add(peer, 1);
    this.#unproven.add(peer, 1);
    const admitted = this.#admitted(() => {
      this.#sessions.add(peer, -1);
      this.#unproven.add(peer, -1);
    });
    const rate = (await this.#consume(this.#proofRate.peer, peer, 'proof', 'peer', peer)) ?? (await this.#consume(this.#proofRate.global, GLOBAL, 'proof', 'global', peer));
    if (rate === undefined) return admitted;
    if (admitted.admitted) admitted.release();
    return { admitted: false, refusal: rate };
  }

  /**
   * An owner proof from `address` failed (a wrong password). The failure that uses up the peer's
   * failedProofsPerPeerPerMinute blocks it for failedProofBlockSeconds, doubled for each block it
   * earned in the last day, up to maxFailedProofBlockSeconds.
   */
  async recordFailedProof(address: string | undefined): Promise<void> {
    const peer = peerKey(address);
    let counted: RateLimiterRes;
    try {
      counted = await this.#failedProofs.consume(peer);
    } catch (rejection) {
      // Past the budget: the peer is blocked already; a failure that was in flight earns no second strike.
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return;
    }
    if (counted.consumedPoints < this.#limits.failedProofsPerPeerPerMinute) return;
    const strikes = (await this.#strikes.penalty(peer)).consumedPoints;
    const { failedProofBlockSeconds: first, maxFailedProofBlockSeconds: longest } = this.#limits;
    await this.#failedProofs.block(peer, Math.min(longest, first * 2 ** Math.min(strikes - 1, 30)));
  }

  #overCap(counts: OpenCounts, peer: string, global: number, perPeer: number, kind: 'connections' | 'sessions'): Admission | undefined {
    if (counts.of(peer) >= perPeer) return this.#refuse({ kind, scope: 'peer', peer, retryInS: 1 });
    if (counts.total >= global) return this.#refuse({ kind, scope: 'global', peer, retryInS: 1 });
    return undefined;
  }

  async #consume(limiter: RateLimiterMemory, key: string, kind: GuardKind, scope: GuardScope, peer: string): Promise<GuardRefusal | undefined> {
    try {
      await limiter.consume(key);
      return undefined;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const refusal = { kind, scope, peer, retryInS: seconds(rejection.msBeforeNext) };
      this.#events.refused(refusal);
      return refusal;
    }
  }

  #refuse(refusal: GuardRefusal): Admission {
    this.#events.refused(refusal);
    return { admitted: false, refusal };
  }

  #admitted(undo: () => void): Admission {
    let done = false;
    return {
      admitted: true,
      release: () => {
        if (done) return;
        done = true;
        undo();
      },
    };
  }
}
