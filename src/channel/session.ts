// Noise NK sessions over WebSocket connections (DESIGN.md "Protected channel"): one Noise message per
// binary WebSocket message, prologue "vsc-channel/1", empty handshake payloads. One session carries
// one operation; a connection carries sessions one after another (channel-socket.ts), each with its
// own handshake and fresh ephemeral keys, the next beginning only after the server's last message.
import WebSocket from 'ws';
import { toHex, utf8 } from '../bytes/index.js';
import { assertBytes } from '../errors/index.js';
import type { ChannelConnections } from './channel-connections.js';
import { ChannelError } from './channel-error.js';
import { ChannelSocket, CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER, type FrameSink } from './channel-socket.js';
import { MAX_MESSAGE_LENGTH, NoiseHandshake, type NoiseTransport, type X25519KeyPair } from './noise-nk.js';

export const CHANNEL_PROLOGUE = utf8('vsc-channel/1');
/**
 * ws `maxPayload` for both sides: a little above the Noise limit, so that a frame just over 65535
 * bytes reaches the session and is refused with 1008; ws itself closes with 1009 beyond this.
 * A WebSocketServer that hands sockets to acceptSession must be created with this option.
 */
export const CHANNEL_WS_MAX_PAYLOAD = MAX_MESSAGE_LENGTH + 1024;
export const DEFAULT_CHANNEL_TIMEOUT_MS = 10_000;
/**
 * Received and not yet read: beyond either bound the session is closed (1008). The operation
 * protocol never has more than one message in flight each way; a peer that pushes more only fills
 * memory. The server passes its own, tighter, bounds (server-limits.ts).
 */
export const DEFAULT_MAX_QUEUED_MESSAGES = 16;
export const DEFAULT_MAX_QUEUED_BYTES = 16 * MAX_MESSAGE_LENGTH;

export interface ChannelSession {
  send(plaintext: Uint8Array): Promise<void>;
  /** Next plaintext in order; rejects with ChannelError once the session is closed or broken. */
  receive(timeoutMs?: number): Promise<Uint8Array>;
  /**
   * Server side: sends the operation's last message and ends the session in one step, so that the
   * client's next handshake, however soon it comes, finds the connection between sessions. Resolves,
   * once sent, whether the connection may carry another session (as end()).
   */
  finish(plaintext: Uint8Array): Promise<boolean>;
  /**
   * Ends the session and keeps its connection for the next one; returns whether it could. A session
   * with anything unread, waited for or broken cannot: its connection is closed instead.
   */
  end(): boolean;
  /** Closes the session and its connection (nothing after end()). */
  close(): void;
  readonly handshakeHash: Uint8Array;
}

export interface SessionOptions {
  /** Handshake timeout and default receive timeout, in milliseconds. */
  timeoutMs?: number;
  /** Unread messages the session keeps before it closes (default DEFAULT_MAX_QUEUED_MESSAGES). */
  maxQueuedMessages?: number;
  /** Unread bytes the session keeps before it closes (default DEFAULT_MAX_QUEUED_BYTES). */
  maxQueuedBytes?: number;
  /** Client side: the local address to connect from (a test's second loopback address). */
  localAddress?: string;
  /** Client side: kept connections to take an idle one from and to give it back to at end(). */
  connections?: ChannelConnections;
}

interface QueueBounds {
  readonly messages: number;
  readonly bytes: number;
}

function resolveQueueBounds(options: SessionOptions | undefined): QueueBounds {
  const messages = options?.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
  const bytes = options?.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  for (const [name, value] of [['maxQueuedMessages', messages], ['maxQueuedBytes', bytes]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new ChannelError('channel.state', `expected ${name} to be a positive whole number, got ${value}`);
  }
  return { messages, bytes };
}

function resolveTimeout(options: SessionOptions | undefined): number {
  const timeoutMs = options?.timeoutMs ?? DEFAULT_CHANNEL_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ChannelError('channel.state', `expected a positive timeout in milliseconds, got ${timeoutMs}`);
  }
  return timeoutMs;
}

/** Errors of a normal end, made once: closing a session builds no Error object. */
const CLOSED_LOCALLY = new ChannelError('channel.closed', 'the channel was closed locally');
const SESSION_ENDED = new ChannelError('channel.state', 'the session has ended; the next operation needs a new session');

function frameBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Uint8Array.from(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

interface Waiter {
  resolve(plaintext: Uint8Array): void;
  reject(error: ChannelError): void;
  timer: NodeJS.Timeout;
}

/** One session on a connection: the handshake first, then the transport, until it ends or breaks. */
class SocketSession implements ChannelSession {
  readonly #channel: ChannelSocket;
  readonly #timeoutMs: number;
  #handshake: NoiseHandshake | undefined;
  #transport: NoiseTransport | undefined;
  #handshakeHash: Uint8Array | undefined;
  #failure: ChannelError | undefined;
  readonly #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  readonly #bounds: QueueBounds;
  readonly #waiters: Waiter[] = [];
  #onHandshake: ((error: ChannelError | undefined) => void) | undefined;
  /** Called with the connection when the session ended cleanly and the connection may carry another. */
  readonly #onEnd: ((channel: ChannelSocket) => void) | undefined;
  readonly #sink: FrameSink;

  constructor(channel: ChannelSocket, handshake: NoiseHandshake, timeoutMs: number, bounds: QueueBounds, onEnd?: (channel: ChannelSocket) => void) {
    this.#channel = channel;
    this.#bounds = bounds;
    this.#handshake = handshake;
    this.#timeoutMs = timeoutMs;
    this.#onEnd = onEnd;
    this.#sink = {
      frame: (data, isBinary) => this.#onMessage(data, isBinary),
      socketEnded: (code, cause) => {
        if (this.#failure !== undefined) return;
        this.#fail(cause === undefined ? this.#closedError(code) : new ChannelError('channel.closed', 'the WebSocket failed', { cause }));
      },
    };
    channel.attach(this.#sink);
  }

  get handshakeHash(): Uint8Array {
    if (this.#handshakeHash === undefined) throw new ChannelError('channel.state', 'the handshake is not complete');
    return this.#handshakeHash.slice();
  }

  #closedError(code: number): ChannelError {
    if (this.#handshake !== undefined) {
      // In NK the server checks message 1 against its static key, so a wrong pinned key shows up
      // on the client as the server refusing the handshake.
      if (code === CLOSE_POLICY_VIOLATION) return new ChannelError('channel.handshake', 'the server refused the handshake (close code 1008); check the pinned server public key');
      if (code === CLOSE_TRY_AGAIN_LATER) return new ChannelError('channel.connect', 'the server refused a new session: too many new sessions from this address; try again later (close code 1013)');
    }
    return new ChannelError('channel.closed', `the peer closed the channel (WebSocket close code ${code})`);
  }

  /** Resolves when the handshake completes, rejects on failure or after the timeout. */
  handshakeDone(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#failure !== undefined) return reject(this.#failure);
      if (this.#transport !== undefined) return resolve();
      const timer = setTimeout(() => this.#violation(new ChannelError('channel.timeout', `no handshake within ${this.#timeoutMs} ms`), CLOSE_NORMAL), this.#timeoutMs);
      this.#onHandshake = (error) => {
        clearTimeout(timer);
        this.#onHandshake = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
  }

  /** Initiator: sends message 1 (the socket is open). */
  start(): void {
    const handshake = this.#handshake;
    if (handshake === undefined) return;
    this.#sendFrame(handshake.writeMessage(new Uint8Array(0)));
  }

  send(plaintext: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const transport = this.#transport;
    if (transport === undefined) return Promise.reject(new ChannelError('channel.state', 'the handshake is not complete'));
    const message = transport.encrypt(plaintext);
    return new Promise<void>((resolve, reject) => {
      this.#channel.send(message, (error) => {
        if (error === undefined || error === null) resolve();
        else reject(new ChannelError('channel.closed', 'the WebSocket could not send', { cause: error }));
      });
    });
  }

  async finish(plaintext: Uint8Array): Promise<boolean> {
    const sent = this.send(plaintext);
    const kept = this.end();
    await sent;
    return kept;
  }

  receive(timeoutMs: number = this.#timeoutMs): Promise<Uint8Array> {
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      this.#queuedBytes -= queued.length;
      return Promise.resolve(queued);
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.#violation(new ChannelError('channel.timeout', `no message within ${timeoutMs} ms`), CLOSE_NORMAL),
        timeoutMs,
      );
      this.#waiters.push({ resolve, reject, timer });
    });
  }

  end(): boolean {
    if (this.#failure === SESSION_ENDED) return true;
    if (this.#failure !== undefined || this.#transport === undefined || this.#queue.length > 0 || this.#waiters.length > 0) {
      this.close();
      return false;
    }
    this.#fail(SESSION_ENDED);
    this.#channel.detach(this.#sink);
    this.#onEnd?.(this.#channel);
    return true;
  }

  close(): void {
    if (this.#failure === SESSION_ENDED) return;
    this.#violation(CLOSED_LOCALLY, CLOSE_NORMAL, false);
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#failure !== undefined) return;
    if (!isBinary) return this.#violation(new ChannelError('channel.protocol', 'expected a binary WebSocket message, got text'));
    const message = frameBytes(data);
    if (message.length > MAX_MESSAGE_LENGTH) {
      return this.#violation(new ChannelError('channel.oversized', `expected a message of at most ${MAX_MESSAGE_LENGTH} bytes, got ${message.length}`));
    }
    try {
      if (this.#transport !== undefined) this.#deliver(this.#transport.decrypt(message));
      else this.#handshakeStep(message);
    } catch (error) {
      const failure = error instanceof ChannelError ? error : new ChannelError('channel.protocol', 'the channel failed', { cause: error });
      this.#violation(failure);
    }
  }

  #handshakeStep(message: Uint8Array): void {
    const handshake = this.#handshake;
    if (handshake === undefined) throw new ChannelError('channel.state', 'no handshake in progress');
    const payload = handshake.readMessage(message);
    if (payload.length !== 0) throw new ChannelError('channel.protocol', `expected an empty handshake payload, got ${payload.length} bytes`);
    // The responder answers message 1; the initiator is done after message 2.
    if (!handshake.complete) this.#sendFrame(handshake.writeMessage(new Uint8Array(0)));
    this.#handshakeHash = handshake.handshakeHash;
    this.#transport = handshake.split();
    this.#handshake = undefined;
    this.#onHandshake?.(undefined);
  }

  #deliver(plaintext: Uint8Array): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      if (this.#queue.length >= this.#bounds.messages || this.#queuedBytes + plaintext.length > this.#bounds.bytes) {
        throw new ChannelError('channel.protocol', `expected at most ${this.#bounds.messages} unread messages of ${this.#bounds.bytes} bytes in all, got more`);
      }
      this.#queue.push(plaintext);
      this.#queuedBytes += plaintext.length;
      return;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(plaintext);
  }

  #sendFrame(message: Uint8Array): void {
    this.#channel.send(message, (error) => {
      if (error) this.#fail(new ChannelError('channel.closed', 'the WebSocket could not send', { cause: error }));
    });
  }

  /** A broken or abandoned session: drop what was queued, close the connection, reject everyone. */
  #violation(error: ChannelError, code = CLOSE_POLICY_VIOLATION, dropQueue = true): void {
    if (dropQueue) {
      this.#queue.length = 0;
      this.#queuedBytes = 0;
    }
    this.#fail(error);
    this.#channel.close(code, error.code);
  }

  /** Records the first failure; later ones (the close that follows) keep the original cause. */
  #fail(error: ChannelError): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#transport?.destroy();
    this.#onHandshake?.(error);
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}
/** Client side without kept connections: a session's end closes its connection, which nobody will reuse. */
const closeWhenDone = (channel: ChannelSocket): void => channel.close(CLOSE_NORMAL, 'done');

/**
 * Client side: a session with the server at `url` pinned to its key, on a kept connection from
 * `options.connections` when one is idle, else on a new one. A kept connection the server closed
 * meanwhile (its idle timeout, a restart) is dropped for a new one: its handshake never reached the
 * server's operations.
 */
export async function connectSession(url: string, serverPublicKey: Uint8Array, options?: SessionOptions): Promise<ChannelSession> {
  const timeoutMs = resolveTimeout(options);
  const bounds = resolveQueueBounds(options);
  const pool = options?.connections;
  const onEnd = pool === undefined ? closeWhenDone : (channel: ChannelSocket) => pool.give(url, channel);
  for (let kept = pool?.take(url); kept !== undefined; kept = pool?.take(url)) {
    const session = new SocketSession(kept, NoiseHandshake.initiator({ remoteStatic: serverPublicKey, prologue: CHANNEL_PROLOGUE }), timeoutMs, bounds, onEnd);
    const done = session.handshakeDone();
    session.start();
    try {
      await done;
      return session;
    } catch (error) {
      if (!(error instanceof ChannelError && error.code === 'channel.closed')) throw error;
    }
  }
  const handshake = NoiseHandshake.initiator({ remoteStatic: serverPublicKey, prologue: CHANNEL_PROLOGUE });
  const from = options?.localAddress === undefined ? {} : { localAddress: options.localAddress };
  const socket = new WebSocket(url, { maxPayload: CHANNEL_WS_MAX_PAYLOAD, handshakeTimeout: timeoutMs, ...from });
  const session = new SocketSession(new ChannelSocket(socket), handshake, timeoutMs, bounds, onEnd);
  const done = session.handshakeDone();
  socket.once('open', () => {
    try {
      session.start();
    } catch {
      socket.terminate();
    }
  });
  try {
    await done;
  } catch (error) {
    // A socket that closed or failed before message 2 never reached the server's Noise layer.
    if (error instanceof ChannelError && error.code === 'channel.closed') {
      throw new ChannelError('channel.connect', `could not open a channel to ${url}`, { cause: error });
    }
    throw error;
  }
  return session;
}

/**
 * Server side: runs the handshake of the next session on a connection (a socket just opened, or a
 * kept connection whose next session began: ChannelSocket.nextSession). Call it on 'connection'.
 */
export async function acceptSession(socket: WebSocket | ChannelSocket, keyPair: X25519KeyPair, options?: SessionOptions): Promise<ChannelSession> {
  const timeoutMs = resolveTimeout(options);
  const bounds = resolveQueueBounds(options);
  const handshake = NoiseHandshake.responder({ staticKeyPair: keyPair, prologue: CHANNEL_PROLOGUE });
  const session = new SocketSession(socket instanceof ChannelSocket ? socket : new ChannelSocket(socket), handshake, timeoutMs, bounds);
  await session.handshakeDone();
  return session;
}

/** 64 lower-case hex digits, the form operators paste into client configuration. */
export function encodeServerPublicKey(publicKey: Uint8Array): string {
  assertBytes('X25519 public key', publicKey, 32, (message) => new ChannelError('channel.key', message));
  return toHex(publicKey);
}

export function parseServerPublicKey(text: string): Uint8Array {
  const clean = typeof text === 'string' ? text.trim() : '';
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) {
    const got = typeof text !== 'string' ? typeof text : /^[0-9a-fA-F]*$/.test(clean) ? `${clean.length} hex digits` : `${clean.length} characters, not all hex digits`;
    throw new ChannelError('channel.key', `expected the server public key as 64 hex digits, got ${got}`);
  }
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}
