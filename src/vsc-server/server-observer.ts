// The server's hook for the operator's view (logs, metrics): what each session did, never a secret.
// The WebSocket server calls it; server-log.ts and server-metrics.ts implement it.
import type { Refusal, SessionOperation } from '../vsc-protocol/index.js';
import type { GuardRefusal } from './peer-guard.js';
import type { ServerLimits } from './server-limits.js';

/** One finished session: its operation and how it ended. Carries no secret by construction. */
export interface FinishedOperation {
  /** 'unknown' when the peer never sent a valid hello. */
  readonly operation: SessionOperation | 'unknown';
  /** The serial named in the hello (checked against SERIAL_PATTERN); undefined before that. */
  readonly serial: string | undefined;
  /** 'ok', or the refusal reason sent to the client. */
  readonly outcome: 'ok' | Refusal;
  /** From the WebSocket connection to the answer sent, client round trips included. */
  readonly durationMs: number;
  readonly remoteAddress: string;
  /** For outcome 'internal' only: the error behind it, for the operator's log. */
  readonly error?: unknown;
}

export interface VscServerObserver {
  /** A session began on a connection (before its handshake): a new connection, or the next session on a kept one. */
  sessionOpened(): void;
  /** That session is done with; called exactly once per sessionOpened. */
  sessionClosed(): void;
  /** Called once per session that completed the handshake, after the answer was sent. */
  operationFinished(info: FinishedOperation): void;
  /** A peer was refused by a limit (server-limits.ts): cut at connect or upgrade, or answered 'retry-later'. */
  peerRefused?(refusal: GuardRefusal): void;
  /** The number of open connections changed. */
  connectionsChanged?(open: number): void;
  /** Once, at start: the limits the server enforces. */
  limitsConfigured?(limits: ServerLimits): void;
  /** A commit group of `size` operations is durable (commit-groups.ts). */
  groupCommitted?(size: number): void;
}

export const NO_OBSERVER: VscServerObserver = Object.freeze({ sessionOpened() {}, sessionClosed() {}, operationFinished() {} });

/**
 * Several observers as one. An observer that throws is not allowed to disturb serving (nor the
 * observers after it): a broken log must never refuse a card operation.
 */
export function combineObservers(...observers: readonly VscServerObserver[]): VscServerObserver {
  const each = (call: (observer: VscServerObserver) => void): void => {
    for (const observer of observers) {
      try {
        call(observer);
      } catch {
        // deliberately ignored: see above
      }
    }
  };
  return Object.freeze({
    sessionOpened: () => each((observer) => observer.sessionOpened()),
    sessionClosed: () => each((observer) => observer.sessionClosed()),
    operationFinished: (info: FinishedOperation) => each((observer) => observer.operationFinished(info)),
    peerRefused: (refusal: GuardRefusal) => each((observer) => observer.peerRefused?.(refusal)),
    connectionsChanged: (open: number) => each((observer) => observer.connectionsChanged?.(open)),
    limitsConfigured: (limits: ServerLimits) => each((observer) => observer.limitsConfigured?.(limits)),
    groupCommitted: (size: number) => each((observer) => observer.groupCommitted?.(size)),
  });
}
