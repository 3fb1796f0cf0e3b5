// One WebSocket connection that carries protected-channel sessions one after another (DESIGN.md
// "Protected channel"): each session is a Noise NK handshake and its transport messages, and ends with
// the server's last message of the operation. The frames of the connection go to the session under way;
// between sessions the next frame must be message 1 of a new handshake, which is held for it.
import WebSocket from 'ws';
import { ChannelError } from './channel-error.js';

/** RFC 6455 section 7.4.1 close codes. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_POLICY_VIOLATION = 1008;
/** RFC 6455 registry: "Try Again Later", a server over its rate of new sessions. */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** What a session does with its connection's frames and its end. */
export interface FrameSink {
  frame(data: WebSocket.RawData, isBinary: boolean): void;
  /** The socket closed (close code) or failed (its error). */
  socketEnded(code: number, cause?: unknown): void;
}

export class ChannelSocket {
  readonly socket: WebSocket;
  #sink: FrameSink | undefined;
  /** Between sessions: the first frame of the next one, held until it is attached. */
  #held: { data: WebSocket.RawData; isBinary: boolean } | undefined;
  #onHeld: (() => void) | undefined;
  #ended: { code: number; cause?: unknown } | undefined;
  readonly #endListeners = new Set<() => void>();

  constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data, isBinary) => this.#frame(data, isBinary));
    socket.on('close', (code) => this.#end(code));
    socket.on('error', (cause) => this.#end(CLOSE_POLICY_VIOLATION, cause));
  }

  /** Whether the socket is open and no session holds it: it may carry the next one. */
  get idle(): boolean {
    return this.#ended === undefined && this.#sink === undefined && this.socket.readyState === WebSocket.OPEN;
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  /** Hands the connection's frames to `sink`, starting with a frame held since the last session. */
  attach(sink: FrameSink): void {
    if (this.#sink !== undefined) throw new ChannelError('channel.state', 'the connection already carries a session');
    this.#sink = sink;
    const ended = this.#ended;
    if (ended !== undefined) return sink.socketEnded(ended.code, ended.cause);
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) sink.frame(held.data, held.isBinary);
  }

  /** The session is over; frames from now on belong to the next one. */
  detach(sink: FrameSink): void {
    if (this.#sink === sink) this.#sink = undefined;
  }

  /**
   * Server side, between sessions: resolves true once the first frame of the next session arrived,
   * false when the connection ended or stayed silent for `idleMs` (then it is closed, 1000).
   */
  nextSession(idleMs: number): Promise<boolean> {
    if (this.#held !== undefined) return Promise.resolve(true);
    if (this.#ended !== undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (started: boolean): void => {
        clearTimeout(timer);
        this.#onHeld = undefined;
        this.#endListeners.delete(onEnd);
        resolve(started);
      };
      const onEnd = (): void => done(false);
      const timer = setTimeout(() => {
        done(false);
        this.close(CLOSE_NORMAL, 'idle');
      }, idleMs);
      this.#onHeld = () => done(true);
      this.#endListeners.add(onEnd);
    });
  }

  /** Calls `listener` once when the socket closes or fails (at once if it has); returns its removal. */
  onEnd(listener: () => void): () => void {
    if (this.#ended !== undefined) {
      listener();
      return () => undefined;
    }
    this.#endListeners.add(listener);
    return () => this.#endListeners.delete(listener);
  }

  send(frame: Uint8Array, done: (error?: Error) => void): void {
    this.socket.send(frame, { binary: true }, done);
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState !== WebSocket.OPEN && this.socket.readyState !== WebSocket.CONNECTING) return;
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
    }
  }

  #frame(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#sink !== undefined) return this.#sink.frame(data, isBinary);
    // A second frame before the next session began: the peer does not wait for its handshake.
    if (this.#held !== undefined) return this.close(CLOSE_POLICY_VIOLATION, 'channel.protocol');
    this.#held = { data, isBinary };
    this.#onHeld?.();
  }

  #end(code: number, cause?: unknown): void {
    if (this.#ended !== undefined) return;
    this.#ended = cause === undefined ? { code } : { code, cause };
    this.#sink?.socketEnded(code, cause);
    for (const listener of [...this.#endListeners]) listener();
    this.#endListeners.clear();
  }
}
