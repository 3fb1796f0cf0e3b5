// Kept WebSocket connections for a client that runs many operations (DESIGN.md "Protected channel"):
// each operation is still its own Noise NK session with fresh ephemeral keys; only the socket under it
// is kept, so an operation skips the TCP connection and the HTTP upgrade. Idle sockets close after a
// while and never keep the process alive.
import type { Socket } from 'node:net';
import type { ChannelSocket } from './channel-socket.js';

/** Default time an idle kept connection stays open on the client: below the server's own idle timeout. */
export const DEFAULT_CLIENT_IDLE_MS = 10_000;
/** Default idle connections kept per server. */
export const DEFAULT_MAX_IDLE_PER_SERVER = 8;

export interface ChannelConnectionsOptions {
  /** How long an idle connection is kept before it is closed (default DEFAULT_CLIENT_IDLE_MS). */
  readonly idleTimeoutMs?: number;
  /** Idle connections kept per server (default DEFAULT_MAX_IDLE_PER_SERVER); more are closed when they come back. */
  readonly maxIdlePerServer?: number;
}

interface Idle {
  readonly channel: ChannelSocket;
  /** Closes it once it stayed idle too long. */
  timer?: NodeJS.Timeout;
  /** Stops listening for its end. */
  forget: () => void;
}

/** Idle connections per server URL, handed to one session at a time. */
export class ChannelConnections {
  readonly idleTimeoutMs: number;
  readonly maxIdlePerServer: number;
  readonly #idle = new Map<string, Idle[]>();
  #closed = false;
  /** Sessions that found an idle connection, and connections given back: for the tests and the benchmark. */
  reused = 0;

  constructor(options: ChannelConnectionsOptions = {}) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_CLIENT_IDLE_MS;
    this.maxIdlePerServer = options.maxIdlePerServer ?? DEFAULT_MAX_IDLE_PER_SERVER;
    for (const [name, value] of [['idleTimeoutMs', this.idleTimeoutMs], ['maxIdlePerServer', this.maxIdlePerServer]] as const) {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`expected ${name} to be a whole number of at least 0, got ${value}`);
    }
  }

  /** An idle connection to `url`, now the caller's; undefined when there is none. */
  take(url: string): ChannelSocket | undefined {
    const list = this.#idle.get(url);
    for (let entry = list?.pop(); entry !== undefined; entry = list?.pop()) {
      clearTimeout(entry.timer);
      entry.forget();
      if (!entry.channel.idle) continue;
      holdsProcess(entry.channel, true);
      this.reused++;
      return entry.channel;
    }
    return undefined;
  }

  /** A connection whose session ended cleanly: kept for the next session to `url`, or closed. */
  give(url: string, channel: ChannelSocket): void {
    const list = this.#idle.get(url) ?? [];
    if (this.#closed || !channel.idle || list.length >= this.maxIdlePerServer || this.idleTimeoutMs === 0) {
      channel.close(1000, 'done');
      return;
    }
    const entry: Idle = { channel, forget: () => undefined };
    const remove = (): void => {
      const at = list.indexOf(entry);
      if (at !== -1) list.splice(at, 1);
    };
    entry.timer = setTimeout(() => {
      remove();
      entry.forget();
      channel.close(1000, 'idle');
    }, this.idleTimeoutMs);
    entry.timer.unref();
    // The server closing it (its idle timeout, a restart) takes it off the list.
    entry.forget = channel.onEnd(() => {
      clearTimeout(entry.timer);
      remove();
    });
    list.push(entry);
    this.#idle.set(url, list);
    holdsProcess(channel, false);
  }

  /** Closes every idle connection, and those given back from now on; sessions under way finish on theirs. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) {
      for (const { channel, timer, forget } of list.splice(0)) {
        clearTimeout(timer);
        forget();
        channel.close(1000, 'done');
      }
    }
    this.#idle.clear();
  }
}

/**
 * An idle kept connection must not keep a finished program running: its TCP socket is unref'd while
 * idle and ref'd again when a session takes it. ws exposes the socket only as `_socket`.
 */
function holdsProcess(channel: ChannelSocket, holds: boolean): void {
  const tcp = (channel.socket as unknown as { _socket?: Socket })._socket;
  if (holds) tcp?.ref();
  else tcp?.unref();
}
