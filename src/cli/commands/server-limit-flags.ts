// The `vsc server start` flags of the server's limits (src/vsc-server/server-limits.ts), events
// retention and refusal log budget: one table, so flag, limit and help text cannot drift apart.
import { UsageError } from '../../errors/index.js';
import type { LimitName, ServerLimits } from '../../vsc-server/index.js';
import type { OptionSpec, OptionValues } from '../command.js';

const LIMIT_FLAGS: Readonly<Record<LimitName, [flag: string, description: string]>> = {
  maxConnections: ['max-connections', 'connections open at once, all peers (default 4096)'],
  maxConnectionsPerPeer: ['max-connections-per-peer', 'connections open at once from one address (default 64)'],
  maxSessions: ['max-sessions', 'operations under way at once, all peers (default 1024)'],
  maxSessionsPerPeer: ['max-sessions-per-peer', 'operations under way at once from one address (default 32)'],
  sessionsPerPeerPerSecond: ['sessions-per-peer-per-second', 'new sessions (connections, and sessions on kept ones) per second from one address (default 20)'],
  sessionsPerSecond: ['sessions-per-second', 'new sessions per second, all peers (default 10000)'],
  proofsPerPeerPerMinute: ['proofs-per-peer-per-minute', 'challenges per minute to one address (default 120)'],
  proofsPerSecond: ['proofs-per-second', 'challenges per second, all peers (default 5000)'],
  failedProofsPerPeerPerMinute: ['failed-proofs-per-peer-per-minute', 'wrong passwords per minute from one address before it is blocked (default 5)'],
  failedProofBlockSeconds: ['failed-proof-block-seconds', 'first block of such an address; doubles per block in a day (default 60)'],
  maxFailedProofBlockSeconds: ['max-failed-proof-block-seconds', 'longest block (default 3600)'],
  preAuthTimeoutMs: ['pre-auth-timeout-ms', 'handshake and hello must arrive within this (default 5000)'],
  idleTimeoutMs: ['idle-timeout-ms', 'a kept connection between sessions is closed after this (default 30000)'],
  maxQueuedMessages: ['max-queued-messages', 'unread messages a session may hold before it is closed (default 4)'],
  maxQueuedBytes: ['max-queued-bytes', 'unread bytes a session may hold before it is closed (default 262140)'],
};

export const SERVER_LIMIT_OPTIONS: Record<string, OptionSpec> = {
  ...Object.fromEntries(Object.values(LIMIT_FLAGS).map(([flag, description]) => [flag, { type: 'string', value: 'N', description }])),
  'events-retention-days': { type: 'string', value: 'N', description: 'delete card events older than N days, at start and hourly; 0 keeps them (default 90)' },
  'refused-log-lines': { type: 'string', value: 'N', description: 'log lines of refusals per address and minute, then one summary (default 10)' },
};

function wholeNumber(values: OptionValues, flag: string): number | undefined {
  const text = values[flag];
  if (typeof text !== 'string') return undefined;
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text)) throw new UsageError(`--${flag}: expected a whole number, got "${text}"`);
  return Number(text);
}

/** The limits given on the command line (validated again, with the defaults, by resolveServerLimits). */
export function limitsFromFlags(values: OptionValues): Partial<ServerLimits> {
  const limits: Partial<Record<LimitName, number>> = {};
  for (const [name, [flag]] of Object.entries(LIMIT_FLAGS) as [LimitName, [string, string]][]) {
    const value = wholeNumber(values, flag);
    if (value !== undefined) limits[name] = value;
  }
  return limits;
}

export const eventsRetentionFromFlags = (values: OptionValues): number | undefined => wholeNumber(values, 'events-retention-days');
export const refusedLogLinesFromFlags = (values: OptionValues): number | undefined => {
  const lines = wholeNumber(values, 'refused-log-lines');
  if (lines === 0) throw new UsageError('--refused-log-lines: expected at least 1, got "0"');
  return lines;
};
