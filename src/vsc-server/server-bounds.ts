// Where the session server applies its limits before any crypto: caps on open connections at TCP
// accept, session rates at the WebSocket upgrade (HTTP 429 with Retry-After), HTTP deadlines for
// peers that never upgrade; and the 'retry-later' refusal of a peer over its proof limits.
import type { Server, ServerOptions } from 'node:http';
import type { VerifyClientCallbackAsync } from 'ws';
import { OperationRefused } from '../vsc-protocol/index.js';
import type { GuardRefusal, PeerGuard } from './peer-guard.js';
import type { ServerLimits } from './server-limits.js';

/** A connection that has not sent its upgrade request within the pre-authentication deadline is closed. */
export function preAuthHttpTimeouts(limits: ServerLimits): ServerOptions {
  // Node checks these deadlines on a timer, 30 s apart by default: once a second keeps them near their value.
  return { headersTimeout: limits.preAuthTimeoutMs, requestTimeout: limits.preAuthTimeoutMs, connectionsCheckingInterval: 1000 };
}

/**
 * Counts every TCP connection of `http` against the caps, cut at accept when over (no byte read, no
 * key used), released when the socket closes; returns the ws `verifyClient` hook that applies the
 * session rates to each upgrade.
 */
export function guardConnections(http: Server, guard: PeerGuard, limits: ServerLimits): VerifyClientCallbackAsync {
  // A hard stop a little above the cap, for a flood faster than the listener below can destroy.
  http.maxConnections = limits.maxConnections + Math.ceil(limits.maxConnections / 8);
  http.on('connection', (socket) => {
    const admission = guard.admitConnection(socket.remoteAddress);
    if (!admission.admitted) {
      socket.destroy();
      return;
    }
    socket.once('close', admission.release);
  });
  return (info, done) => {
    guard.admitSessionRate(info.req.socket.remoteAddress).then(
      (refusal) => {
        if (refusal === undefined) done(true);
        else done(false, 429, 'Too Many Requests', { 'Retry-After': String(refusal.retryInS) });
      },
      () => done(false, 503, 'Service Unavailable'),
    );
  };
}

const LIMIT_WORDS: Record<GuardRefusal['kind'], string> = {
  session: 'too many new sessions',
  proof: 'too many tries',
  'failed-proof': 'too many wrong passwords from this address',
  unproven: 'too many tries under way',
  connections: 'too many connections',
  sessions: 'too many operations under way',
};

/** The refusal a peer over a limit gets in place of its challenge: exit 3, and when to try again. */
export function refuseOperation(refusal: GuardRefusal): OperationRefused {
  const whose = refusal.scope === 'peer' ? 'from this address' : 'on this server';
  const what = refusal.kind === 'failed-proof' ? LIMIT_WORDS[refusal.kind] : `${LIMIT_WORDS[refusal.kind]} ${whose}`;
  return new OperationRefused('retry-later', `${what}; retry in ${refusal.retryInS} s`);
}
