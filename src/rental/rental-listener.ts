// The rental server on its local socket (rental-protocol.ts has the protocol; patent 003 [0058]): connections read
// line by line, each request answered in order on its connection, the work itself queued by the RentalServer so
// that Writes from every connection run one at a time. Bad input is answered and changes nothing; a line over the
// limit is answered and the connection closed. Closing lets the Write in progress finish and be answered.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { encodeAnswer, encodeExtensionAnswer, encodeRefusal } from './rental-answers.js';
import { RentalError } from './rental-error.js';
import { MAX_MESSAGE_BYTES, RentalLineReader } from './rental-line-reader.js';
import { parseRequest, RentalSocketError, type RentalRequest } from './rental-protocol.js';
import type { RentalServer } from './rental-server.js';

/**
 * The extensions a server is started with, by op name ("license.use"): each checks its request's fields (refusing
 * with RentalError `input`) and answers with fields of its own.
 */
export type RentalExtensions = ReadonlyMap<string, (fields: Readonly<Record<string, unknown>>) => Promise<Readonly<Record<string, unknown>>>>;

/** Requests one connection may have waiting before its socket stops being read. */
const MAX_PENDING_PER_CONNECTION = 32;

/** Whether something accepts connections on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Makes `path` free for a new server: refused (RentalSocketError) when a server answers there or something other
 * than a socket is there; a socket file nobody answers on (a server that died) is removed.
 */
export async function claimRentalSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new RentalSocketError('unusable', `cannot look at the rental socket ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  if (!isSocket) throw new RentalSocketError('unusable', `${path} is there and is not a socket: remove it or give another --socket`);
  if (await answers(path)) throw new RentalSocketError('in-use', `a rental server already answers on ${path}: one per machine ("vsc rental status" shows it)`);
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new RentalSocketError('unusable', `cannot remove the stale rental socket ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
}

function refusalOf(id: number | null, error: unknown): string {
  if (error instanceof RentalError) return encodeRefusal(id, error.reason, error.message);
  return encodeRefusal(id, 'storage', error instanceof Error ? error.message : String(error));
}

async function answer(server: RentalServer, request: RentalRequest, extensions: RentalExtensions): Promise<string> {
  const { id } = request;
  try {
    switch (request.op) {
      case 'extension': return encodeExtensionAnswer(id, await extensions.get(request.name)!(request.fields));
      case 'hello': return encodeAnswer(id, 'hello', await server.hello());
      case 'counter': return encodeAnswer(id, 'counter', { counter: await server.counter() });
      case 'write': return encodeAnswer(id, 'write', await server.write(request.nonce, request.text, request.expectCounter));
      case 'bridge': return encodeAnswer(id, 'bridge', await server.bridge());
      case 'status': return encodeAnswer(id, 'status', await server.status());
    }
  } catch (error) {
    return refusalOf(id, error);
  }
}

/** One client connection: lines in, answers out in the same order. */
class Connection {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  readonly #reader = new RentalLineReader(MAX_MESSAGE_BYTES);
  private readonly extensionOps: ReadonlySet<string>;

  constructor(private readonly socket: Socket, private readonly server: RentalServer, private readonly extensions: RentalExtensions) {
    socket.on('data', (chunk: Buffer) => this.take(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on('error', () => socket.destroy());
    this.extensionOps = new Set(extensions.keys());
  }

  private take(chunk: Uint8Array): void {
    for (const event of this.#reader.push(chunk)) {
      if (event.kind === 'too-long') {
        this.queue(async () => encodeRefusal(null, 'input', `expected a request line of at most ${MAX_MESSAGE_BYTES} bytes, got more: closing the connection`));
        void this.#tail.then(() => this.socket.end());
        return;
      }
      if (event.kind === 'not-utf8') {
        this.queue(async () => encodeRefusal(null, 'input', 'expected a request line of UTF-8 text, got invalid bytes'));
        continue;
      }
      const parsed = parseRequest(event.text, this.extensionOps);
      if (parsed.ok) this.queue(() => answer(this.server, parsed.request, this.extensions));
      else this.queue(async () => encodeRefusal(parsed.id, 'input', parsed.message));
    }
  }

  private queue(make: () => Promise<string>): void {
    this.#pending += 1;
    if (this.#pending >= MAX_PENDING_PER_CONNECTION) this.socket.pause();
    // Started at once (the server queues the card work); written in request order.
    const reply = make();
    this.#tail = this.#tail.then(async () => {
      const line = await reply;
      if (!this.socket.destroyed && this.socket.writable) this.socket.write(line);
      this.#pending -= 1;
      if (this.#pending < MAX_PENDING_PER_CONNECTION && this.socket.isPaused()) this.socket.resume();
    });
  }

  /** Resolves once every answer owed is written. */
  drained(): Promise<void> {
    return this.#tail;
  }

  end(): void {
    this.socket.end(() => this.socket.destroy());
  }
}

export class RentalListener {
  readonly #connections = new Set<Connection>();

  private constructor(readonly path: string, private readonly net: Server, private readonly server: RentalServer) {}

  /**
   * Listens on `path` (made 0600; its directory is the caller's 0700 one) for `server` and its `extensions`. Call
   * claimRentalSocket first.
   */
  static listen(path: string, server: RentalServer, extensions: RentalExtensions = new Map()): Promise<RentalListener> {
    const net = createServer();
    const listener = new RentalListener(path, net, server);
    net.on('connection', (socket: Socket) => {
      const connection = new Connection(socket, server, extensions);
      listener.#connections.add(connection);
      socket.once('close', () => listener.#connections.delete(connection));
    });
    return new Promise((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException): void => {
        net.close();
        reject(error.code === 'EADDRINUSE'
          ? new RentalSocketError('in-use', `another process took the rental socket ${path} first`, { cause: error })
          : new RentalSocketError('listen', `cannot listen on the rental socket ${path}: ${error.code ?? error.message}`, { cause: error }));
      };
      net.once('error', failed);
      net.listen(path, () => {
        net.off('error', failed);
        try {
          chmodSync(path, 0o600);
        } catch (error) {
          failed(error as NodeJS.ErrnoException);
          return;
        }
        resolve(listener);
      });
    });
  }

  /**
   * Stops taking connections, lets the work in progress finish (what was queued behind it is refused as `busy`),
   * writes every answer owed, closes the connections and removes the socket file.
   */
  async close(): Promise<void> {
    this.net.close();
    await this.server.close();
    await Promise.all([...this.#connections].map((connection) => connection.drained()));
    for (const connection of this.#connections) connection.end();
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
