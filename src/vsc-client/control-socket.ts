// The control socket of a running card (`vsc card remove|status` talk to `vsc card insert`): one framed
// protocol, server and client side. A frame is one UTF-8 line ending in "\n"; a read is never taken as a frame.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ExitCode, VscError } from '../errors/index.js';

/** No request or answer comes near this; a peer that sends more is cut off rather than buffered. */
export const MAX_CONTROL_FRAME = 64 * 1024;

export type ControlRequest = 'status' | 'remove';

/** What `vsc card status` shows; the fields of its `--json` output. */
export interface ControlStatus {
  readonly serial: string;
  readonly pid: number;
  readonly nextCounter: string;
  readonly nextWindow: readonly [string, string] | null;
  readonly vpcd: string | null;
  readonly removing: boolean;
}

export type ControlAnswer =
  | { readonly kind: 'status'; readonly status: ControlStatus }
  | { readonly kind: 'removed' }
  | { readonly kind: 'error'; readonly message: string };

export class ControlFrameError extends VscError {
  override readonly name = 'ControlFrameError';
  constructor(message: string) {
    super('control.bad-frame', message);
  }
}

/** Collects socket reads into whole frames: a read may hold part of a frame or several frames. */
export class ControlFrameReader {
  #pending = '';
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  readonly #maxFrame: number;

  constructor(maxFrame = MAX_CONTROL_FRAME) {
    this.#maxFrame = maxFrame;
  }

  /** Appends one read and returns every frame it completes, in order, without their "\n". */
  push(chunk: Uint8Array): string[] {
    let text: string;
    try {
      text = this.#decoder.decode(chunk, { stream: true });
    } catch {
      throw new ControlFrameError('control frame: expected UTF-8 text, got invalid bytes');
    }
    this.#pending += text;
    const frames: string[] = [];
    const tooLong = (): never => {
      throw new ControlFrameError(`control frame: expected at most ${this.#maxFrame} characters, got more`);
    };
    let newline: number;
    while ((newline = this.#pending.indexOf('\n')) >= 0) {
      if (newline > this.#maxFrame) tooLong();
      frames.push(this.#pending.slice(0, newline));
      this.#pending = this.#pending.slice(newline + 1);
    }
    if (this.#pending.length > this.#maxFrame) tooLong();
    return frames;
  }

  /** True when a frame has started but not ended (the peer closed mid-frame). */
  get partial(): boolean {
    return this.#pending.length > 0;
  }
}

export function encodeControlRequest(request: ControlRequest): string {
  return `${request}\n`;
}

export function decodeControlRequest(frame: string): ControlRequest {
  const request = frame.trim();
  if (request === 'status' || request === 'remove') return request;
  throw new ControlFrameError(`control request: expected "status" or "remove", got ${JSON.stringify(request.slice(0, 32))}`);
}

export function encodeControlAnswer(answer: ControlAnswer): string {
  switch (answer.kind) {
    case 'status':
      return `status ${JSON.stringify(answer.status)}\n`;
    case 'removed':
      return 'removed\n';
    case 'error':
      // One line: a multi-line message would end the frame early.
      return `error ${answer.message.split('\n')[0]}\n`;
  }
}

export function decodeControlAnswer(frame: string): ControlAnswer {
  const line = frame.trim();
  if (line === 'removed') return { kind: 'removed' };
  if (line.startsWith('error ')) return { kind: 'error', message: line.slice('error '.length) };
  if (line.startsWith('status ')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.slice('status '.length));
    } catch {
      throw new ControlFrameError('control answer: expected a JSON status, got malformed JSON');
    }
    return { kind: 'status', status: checkStatus(parsed) };
  }
  throw new ControlFrameError(`control answer: expected "status", "removed" or "error", got ${JSON.stringify(line.slice(0, 32))}`);
}

function checkStatus(value: unknown): ControlStatus {
  const bad = (field: string): never => {
    throw new ControlFrameError(`control answer: status field ${field} is missing or of the wrong type`);
  };
  if (typeof value !== 'object' || value === null) return bad('(object)');
  const status = value as Record<string, unknown>;
  if (typeof status['serial'] !== 'string') bad('serial');
  if (typeof status['pid'] !== 'number') bad('pid');
  if (typeof status['nextCounter'] !== 'string') bad('nextCounter');
  const window = status['nextWindow'];
  if (window !== null && !(Array.isArray(window) && window.length === 2 && window.every((end) => typeof end === 'string'))) bad('nextWindow');
  if (status['vpcd'] !== null && typeof status['vpcd'] !== 'string') bad('vpcd');
  if (typeof status['removing'] !== 'boolean') bad('removing');
  return {
    serial: status['serial'] as string, pid: status['pid'] as number, nextCounter: status['nextCounter'] as string,
    nextWindow: window === null ? null : [(window as string[])[0]!, (window as string[])[1]!], vpcd: status['vpcd'] as string | null, removing: status['removing'] as boolean,
  };
}

/**
 * Answers one request per connection; a bad frame is answered with an error and the connection closed.
 * `path` is a socket file in a 0700 directory; the caller holds the lock of that directory (the machine
 * lock), so a socket file already there is a stale one of a process that died, and is replaced. The
 * socket is made 0600. A failure to listen rejects with a VscError naming the path.
 */
export function serveControlSocket(path: string, handle: (request: ControlRequest) => Promise<ControlAnswer>): Promise<Server> {
  removeStaleSocket(path);
  const server = createServer((socket: Socket) => {
    const reader = new ControlFrameReader();
    let answered = false;
    const answer = (reply: ControlAnswer): void => {
      if (answered) return;
      answered = true;
      socket.end(encodeControlAnswer(reply));
    };
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      let frames: string[];
      try {
        frames = reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (error) {
        return answer({ kind: 'error', message: (error as Error).message });
      }
      if (frames.length === 0) return;
      let request: ControlRequest;
      try {
        request = decodeControlRequest(frames[0]!);
      } catch {
        return answer({ kind: 'error', message: 'unknown request' });
      }
      answered = true;
      handle(request).then(
        (reply) => socket.end(encodeControlAnswer(reply)),
        (error: unknown) => socket.end(encodeControlAnswer({ kind: 'error', message: error instanceof Error ? error.message : String(error) })),
      );
    });
  });
  return new Promise<Server>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      server.close();
      reject(new VscError('control.listen', `cannot listen on the control socket ${path}: ${error.code ?? error.message}`, { cause: error }));
    };
    server.once('error', failed);
    server.listen(path, () => {
      server.off('error', failed);
      try {
        chmodSync(path, 0o600);
      } catch (error) {
        failed(error as NodeJS.ErrnoException);
        return;
      }
      resolve(server);
    });
  });
}

/** Unlinks a socket file left at `path`; anything else there (a file, a directory) is left for listen to refuse. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new VscError('control.listen', `cannot replace the stale control socket ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
}

/** Sends one request to the running card at `path`; its answer, or undefined when it closed without one. */
export function askControlSocket(path: string, request: ControlRequest, stateDir: string): Promise<ControlAnswer | undefined> {
  return new Promise<ControlAnswer | undefined>((resolve, reject) => {
    const socket = createConnection(path);
    const reader = new ControlFrameReader();
    let settled = false;
    const settle = (run: () => void): void => {
      if (settled) return;
      settled = true;
      run();
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        const frames = reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (frames.length > 0) settle(() => resolve(decodeControlAnswer(frames[0]!)));
      } catch (error) {
        settle(() => reject(error));
      }
    });
    socket.on('end', () => settle(() => (reader.partial ? reject(new ControlFrameError('control answer: the card process closed mid-frame')) : resolve(undefined))));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      settle(() =>
        reject(
          error.code === 'ECONNREFUSED' || error.code === 'ENOENT'
            ? new VscError('card.not-inserted', `no card is inserted on this machine (${stateDir}); after a crash use "vsc card recover"`, { exitCode: ExitCode.refusedByState })
            : error,
        ),
      ),
    );
    socket.write(encodeControlRequest(request));
  });
}
