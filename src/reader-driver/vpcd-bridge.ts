// The card side of pcscd's vpcd driver (vsmartcard): a TCP client that serves a CardSource to pcscd.
// Wire protocol and insert = connect / remove = close as fixed in DESIGN.md "Reader".
import { Socket } from 'node:net';
import { VscError, UsageError } from '../errors/index.js';
import { parseHostPort, type HostPort } from '../host-port/index.js';
import type { CardSource } from '../apdu/index.js';

export const DEFAULT_VPCD_HOST = '127.0.0.1';
/** vpcd's first reader ("Virtual PCD 00 00"); the second one listens on 35964. */
export const DEFAULT_VPCD_PORT = 35963;

/** The control messages vpcd sends as 1-byte payloads (vsmartcard vpcd.h, VPCD_CTRL_*). */
export const VpcdControl = {
  powerOff: 0x00,
  powerOn: 0x01,
  reset: 0x02,
  getAtr: 0x04,
} as const;

/** Largest payload a 2-byte length prefix can carry. */
const MAX_PAYLOAD = 0xffff;
/** Sent when the card's answer cannot go on the wire: 6F00 "no precise diagnosis". */
const SW_NO_PRECISE_DIAGNOSIS = Uint8Array.of(0x6f, 0x00);
/** Sent for a 1-byte payload that is not a control: 6700 "wrong length". */
const SW_WRONG_LENGTH = Uint8Array.of(0x67, 0x00);

/** HOST:PORT of vpcd, e.g. from --vpcd. */
export function parseVpcdAddress(text: string): HostPort {
  return parseHostPort(text, { example: `127.0.0.1:${DEFAULT_VPCD_PORT}` });
}

/** A problem on the vpcd link; reported through the onEvent hook, never thrown at the socket's caller. */
export class VpcdBridgeError extends VscError {
  override readonly name = 'VpcdBridgeError';
  constructor(
    code: 'vpcd.connect-failed' | 'vpcd.socket' | 'vpcd.malformed-frame' | 'vpcd.card-error' | 'vpcd.card-gone' | 'vpcd.stopped',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

export type VpcdBridgeEvent =
  | { readonly type: 'connected'; readonly host: string; readonly port: number }
  /** `willReconnect` is false after stop() and after the card reported itself gone. */
  | { readonly type: 'disconnected'; readonly reason: string; readonly willReconnect: boolean }
  | { readonly type: 'error'; readonly error: VpcdBridgeError };

export interface VpcdBridgeOptions {
  readonly host: string;
  readonly port: number;
  /** First delay before reconnecting; doubles on each failed attempt up to maxReconnectDelayMs. */
  readonly reconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
  /** Logging hook. Exceptions thrown by it are swallowed. */
  readonly onEvent?: ((event: VpcdBridgeEvent) => void) | undefined;
}

export const VPCD_BRIDGE_DEFAULTS: Readonly<VpcdBridgeOptions> = Object.freeze({
  host: DEFAULT_VPCD_HOST,
  port: DEFAULT_VPCD_PORT,
  reconnectDelayMs: 250,
  maxReconnectDelayMs: 5_000,
});

function checkOptions(options: VpcdBridgeOptions): void {
  if (typeof options.host !== 'string' || options.host.length === 0) {
    throw new UsageError(`expected a non-empty vpcd host, got ${JSON.stringify(options.host)}`);
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new UsageError(`expected a vpcd port in 1..65535, got ${options.port}`);
  }
  for (const name of ['reconnectDelayMs', 'maxReconnectDelayMs'] as const) {
    if (!Number.isFinite(options[name]) || options[name] < 0) {
      throw new UsageError(`expected ${name} to be a non-negative number, got ${options[name]}`);
    }
  }
}

/**
 * Splits the byte stream into length-prefixed payloads, whatever the TCP segmentation:
 * a payload may arrive over several reads, and one read may carry several payloads.
 */
class VpcdFrameReader {
  #pending: Uint8Array = new Uint8Array(0);

  /** Appends one read and returns every payload it completes, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const buffer = new Uint8Array(this.#pending.length + chunk.length);
    buffer.set(this.#pending, 0);
    buffer.set(chunk, this.#pending.length);
    const payloads: Uint8Array[] = [];
    let offset = 0;
    while (buffer.length - offset >= 2) {
      const length = (buffer[offset]! << 8) | buffer[offset + 1]!;
      if (buffer.length - offset - 2 < length) break;
      payloads.push(buffer.slice(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    this.#pending = buffer.slice(offset);
    return payloads;
  }
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 2);
  out[0] = payload.length >> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, 2);
  return out;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One TCP connection to vpcd, i.e. one insertion of the card. */
interface Link {
  readonly socket: Socket;
  readonly reader: VpcdFrameReader;
  /** Messages are handled one after another, so answers leave in the order the commands came. */
  queue: Promise<void>;
  open: boolean;
  /** Why the card side closed the link, if it did; undefined when the peer or the network did. */
  closeReason?: string;
}

/**
 * Inserts a CardSource into a vpcd reader for as long as it runs.
 *
 * start() connects, resolves once the first connection is up (the card is inserted), and keeps
 * reconnecting with capped exponential backoff whenever the link drops (pcscd restarting) until
 * stop(). stop() removes the card: closes the socket and waits for the command in progress.
 * If card.transmit rejects, the card is gone: the link is closed and the bridge stops for good.
 *
 * "Connected" means the TCP connection is up. vpcd serves one card per port: while another card
 * holds the port, the kernel still completes our connection, but vpcd only talks to us once that
 * card leaves.
 */
export class VpcdBridge {
  readonly options: Readonly<VpcdBridgeOptions>;
  readonly #card: CardSource;
  #link: Link | undefined;
  #started: Promise<void> | undefined;
  #resolveStarted: (() => void) | undefined;
  #rejectStarted: ((error: Error) => void) | undefined;
  #stopped = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #closedLink: Promise<void> = Promise.resolve();

  constructor(card: CardSource, options: Partial<VpcdBridgeOptions> = {}) {
    const merged: VpcdBridgeOptions = { ...VPCD_BRIDGE_DEFAULTS, ...options };
    checkOptions(merged);
    this.options = Object.freeze(merged);
    this.#card = card;
  }

  /** True while a TCP connection to vpcd is up. */
  get connected(): boolean {
    return this.#link?.open === true;
  }

  /** Starts connecting; resolves on the first connection, rejects if stop() comes first. Idempotent. */
  start(): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    this.#started = new Promise<void>((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    if (this.#stopped) {
      this.#settleStart(new VpcdBridgeError('vpcd.stopped', 'expected a bridge that was not stopped, got a stopped one'));
    } else {
      this.#connect();
    }
    return this.#started;
  }

  /** Removes the card: stops reconnecting, closes the link, waits until no card call is in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#settleStart(new VpcdBridgeError('vpcd.stopped', 'stopped before vpcd accepted the connection'));
    if (this.#link !== undefined) this.#closeLink(this.#link, 'stopped');
    await this.#closedLink;
  }

  #emit(event: VpcdBridgeEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A logging hook must not break the card.
    }
  }

  #settleStart(error?: Error): void {
    const resolve = this.#resolveStarted;
    const reject = this.#rejectStarted;
    this.#resolveStarted = undefined;
    this.#rejectStarted = undefined;
    if (error === undefined) resolve?.();
    else reject?.(error);
  }

  #connect(): void {
    const { host, port } = this.options;
    const socket = new Socket();
    const link: Link = { socket, reader: new VpcdFrameReader(), queue: Promise.resolve(), open: false };
    this.#link = link;
    let wasConnected = false;
    let resolveClosed: () => void = () => {};
    this.#closedLink = new Promise<void>((resolve) => (resolveClosed = resolve));

    // One small message each way per APDU: Nagle on our side would add latency. The other direction
    // is not ours to fix: Debian 12's vpcd sends the 2-byte length and the payload in two send()
    // calls with Nagle on, so the payload waits for our delayed ACK (~40 ms per APDU). Node cannot
    // set TCP_QUICKACK; `ip route ... quickack 1` on the route to vpcd, or a newer vpcd, avoids it.
    socket.setNoDelay(true);
    socket.on('connect', () => {
      wasConnected = true;
      link.open = true;
      this.#failures = 0;
      socket.setKeepAlive(true);
      this.#emit({ type: 'connected', host, port });
      this.#settleStart();
    });
    socket.on('data', (chunk: Buffer) => {
      if (!link.open) return;
      for (const payload of link.reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        link.queue = link.queue.then(() => this.#handle(link, payload));
      }
    });
    socket.on('error', (error: Error) => {
      const code = wasConnected ? 'vpcd.socket' : 'vpcd.connect-failed';
      const what = wasConnected ? 'vpcd connection failed' : `could not connect to vpcd at ${host}:${port}`;
      this.#emit({ type: 'error', error: new VpcdBridgeError(code, `${what}: ${error.message}`, { cause: error }) });
    });
    socket.on('close', () => {
      link.open = false;
      const reason = link.closeReason;
      const willReconnect = !this.#stopped;
      if (wasConnected) {
        this.#emit({ type: 'disconnected', reason: reason ?? 'vpcd closed the connection', willReconnect });
      }
      // Removing a card cuts its power; wait for the command in progress first.
      void link.queue
        .then(() => {
          if (wasConnected) this.#callCard('power off', () => this.#card.powerOff());
        })
        .finally(resolveClosed);
      if (this.#link === link) this.#link = undefined;
      if (willReconnect) this.#scheduleReconnect();
    });
    socket.connect({ host, port });
  }

  #scheduleReconnect(): void {
    const { reconnectDelayMs, maxReconnectDelayMs } = this.options;
    const delay = Math.min(reconnectDelayMs * 2 ** Math.min(this.#failures, 30), maxReconnectDelayMs);
    this.#failures += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#stopped) this.#connect();
    }, delay);
  }

  #closeLink(link: Link, reason: string): void {
    link.closeReason ??= reason;
    link.open = false;
    link.socket.destroy();
  }

  #send(link: Link, payload: Uint8Array): void {
    if (link.open) link.socket.write(frame(payload));
  }

  #callCard(what: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#emit({ type: 'error', error: new VpcdBridgeError('vpcd.card-error', `card ${what} failed: ${describeError(error)}`, { cause: error }) });
    }
  }

  /** Handles one payload from vpcd; never rejects. */
  async #handle(link: Link, payload: Uint8Array): Promise<void> {
    if (!link.open) return; // the card was removed while this message waited
    if (payload.length === 0) {
      // vpcd never sends an empty payload and waits for no answer to one: answering would shift every later answer.
      this.#emit({ type: 'error', error: new VpcdBridgeError('vpcd.malformed-frame', 'expected a payload of at least 1 byte, got 0; ignored') });
      return;
    }
    if (payload.length === 1) {
      this.#control(link, payload[0]!);
      return;
    }
    let response: Uint8Array;
    try {
      response = await this.#card.transmit(payload);
    } catch (error) {
      this.#emit({ type: 'error', error: new VpcdBridgeError('vpcd.card-gone', `card transmit failed, removing the card: ${describeError(error)}`, { cause: error }) });
      this.#stopped = true; // a card that is gone is not inserted again
      clearTimeout(this.#retryTimer);
      this.#closeLink(link, 'card gone');
      return;
    }
    if (response.length < 2 || response.length > MAX_PAYLOAD) {
      // An empty answer would make vpcd eject the card; an oversized one cannot be framed.
      this.#emit({ type: 'error', error: new VpcdBridgeError('vpcd.card-error', `expected a response APDU of 2..${MAX_PAYLOAD} bytes, got ${response.length}; answered 6F00`) });
      response = SW_NO_PRECISE_DIAGNOSIS;
    }
    this.#send(link, response);
  }

  #control(link: Link, code: number): void {
    switch (code) {
      case VpcdControl.powerOff:
        this.#callCard('power off', () => this.#card.powerOff());
        return;
      case VpcdControl.powerOn:
        this.#callCard('power on', () => this.#card.powerOn());
        return;
      case VpcdControl.reset:
        this.#callCard('reset', () => this.#card.reset());
        return;
      case VpcdControl.getAtr:
        this.#send(link, this.#card.atr);
        return;
      default:
        // vpcd sends no other control code, so this is a 1-byte APDU from an application, and vpcd
        // waits for its answer: a 1-byte command is malformed (ISO 7816-4 needs 4 header bytes).
        this.#emit({ type: 'error', error: new VpcdBridgeError('vpcd.malformed-frame', `expected a control code 00, 01, 02 or 04 or an APDU of at least 4 bytes, got the single byte ${code.toString(16).padStart(2, '0')}; answered 6700`) });
        this.#send(link, SW_WRONG_LENGTH);
    }
  }
}
