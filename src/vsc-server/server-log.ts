// The server's structured log (pino, one JSON object per line): startup, shutdown and one line per
// finished operation. Nothing secret is ever passed to it; `redact` is the second line of defence.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Level, type LevelWithSilent, type Logger } from 'pino';
import { UsageError } from '../errors/index.js';
import type { Refusal } from '../vsc-protocol/index.js';
import type { FinishedOperation, VscServerObserver } from './server-observer.js';
import { PeerLineBudget } from './log-budget.js';
import type { GuardRefusal } from './peer-guard.js';
import { peerKey } from './server-limits.js';

/** Lines a refused peer may write per minute before the rest is summed up in one line. */
export const DEFAULT_REFUSED_LINES_PER_PEER = 10;

export type LogLevel = LevelWithSilent;
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Field names that would hold a secret if one ever slipped into a log call (DESIGN.md "Keys and
 * secrets"). Serials and card states are not secrets. Top-level fields only: log calls pass flat
 * objects, and wildcard paths (`*.name`) cost ~20 µs a line, more than the line itself.
 */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  'password', 'authKey', 'protectionKey', 'authVerifier', 'muk', 'holderSecret', 'holderHash', 'sealed', 'token', 'masterKey', 'keyfile', 'privateKey', 'seed', 'signingSeed', 'keyfileSecret',
]);

export interface ServerLogOptions {
  /** Default 'info'. */
  readonly level?: LogLevel;
  /**
   * Where the lines go; default stderr, written synchronously. Stdout is the command's own output
   * (the listening line and the server public key, which scripts and tests read), so the log stays
   * off it; under systemd both end up in the journal anyway.
   */
  readonly destination?: DestinationStream;
  /** Names this server process among several on one database; default a random UUID. */
  readonly instance?: string;
}

/** A UsageError unless `text` is one of LOG_LEVELS. */
export function parseLogLevel(text: string): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === text);
  if (level === undefined) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
  return level;
}

export function createServerLogger(options: ServerLogOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid, hostname: hostname(), instance: options.instance ?? randomUUID() },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names rather than numbers: the operator greps for "warn", not 40.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    destination,
  );
}

/** Refusals an operator should notice (someone guessing passwords, a rogue client) log as warn; a server fault as error. */
function levelOf(outcome: 'ok' | Refusal): Level {
  switch (outcome) {
    case 'internal':
      return 'error';
    case 'authentication':
    case 'implementation':
    case 'blocked':
      return 'warn';
    default:
      return 'info';
  }
}

/** Name, code and first line of an internal error: enough to look into it, never a stack or a payload. */
function describeError(error: unknown): Record<string, string> {
  if (!(error instanceof Error)) return { type: typeof error };
  const code: Record<string, string> = 'code' in error && typeof error.code === 'string' ? { code: error.code } : {};
  return { type: error.name, ...code, message: (error.message.split('\n')[0] ?? '').slice(0, 300) };
}

export interface OperationLogOptions {
  /**
   * Lines per peer (server-limits.ts peerKey) and minute for refusals, default
   * DEFAULT_REFUSED_LINES_PER_PEER; beyond, lines are counted and one "suppressed" line follows.
   * Lines of operations that succeeded are never suppressed.
   */
  readonly refusedLinesPerPeerPerMinute?: number;
  readonly now?: () => number;
}

/**
 * One line per finished operation: operation, serial, outcome, duration, remote address; one per
 * peer refused by a limit. Refusals are rate-limited per peer, so a flood cannot flood the log.
 */
export function operationLogObserver(logger: Logger, options: OperationLogOptions = {}): VscServerObserver {
  const budget = new PeerLineBudget(options.refusedLinesPerPeerPerMinute ?? DEFAULT_REFUSED_LINES_PER_PEER, 60_000, options.now);
  const summarise = ({ peer, suppressed }: { peer: string; suppressed: number }): void => {
    logger.warn({ event: 'suppressed', peer, lines: suppressed }, `suppressed ${suppressed} lines of refusals of ${peer}`);
  };
  // Summaries of peers that went quiet; unref'd, so it never keeps the process alive.
  setInterval(() => budget.sweep().forEach(summarise), 60_000).unref();
  /** Whether a refusal line of `address` may be written now; writes the summary of an earlier minute first. */
  const allowed = (address: string): boolean => {
    const verdict = budget.take(peerKey(address));
    if (verdict.summary !== undefined) summarise(verdict.summary);
    return verdict.write;
  };
  return Object.freeze({
    sessionOpened() {},
    sessionClosed() {},
    peerRefused(refusal: GuardRefusal) {
      if (!allowed(refusal.peer)) return;
      logger.warn({ event: 'limit', kind: refusal.kind, scope: refusal.scope, peer: refusal.peer, retryInS: refusal.retryInS }, `${refusal.peer} refused: ${refusal.scope} ${refusal.kind} limit`);
    },
    operationFinished(info: FinishedOperation) {
      if (info.outcome !== 'ok' && !allowed(info.remoteAddress)) return;
      const line = {
        event: 'operation',
        operation: info.operation,
        serial: info.serial ?? null,
        outcome: info.outcome,
        durationMs: Math.round(info.durationMs * 1000) / 1000,
        remote: info.remoteAddress,
        ...(info.error === undefined ? {} : { error: describeError(info.error) }),
      };
      logger[levelOf(info.outcome)](line, `${info.operation} ${info.serial ?? '-'} ${info.outcome}`);
    },
  });
}
