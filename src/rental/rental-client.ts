// The client of the rental server's protocol (rental-protocol.ts; patent 003 [0058]): what rented programs and
// `vsc rental ...` use to reach the one Rental Server of the machine. It checks every answer's shape and turns
// refusals into RentalError with the server's reason; it does not check what the answers mean: a program that does
// not trust the server (it should not, [0058]) runs writeThroughServer / validateThroughServer over this client.
//
//   const client = await RentalClient.connect();          // or connect('/path/to/rental.sock')
//   const { card, trail } = await client.hello();
//   const { record, counterAfter } = await client.write(nonce, text, expectCounter);
//   client.close();
//
// Requests may overlap: each carries its own id, and the server answers a connection's requests in order.
import { createConnection, type Socket } from 'node:net';
import type { AuditRecord } from './audit-record.js';
import { decodeAnswer, parseResponseEnvelope, refusalError, type BridgeAnswer, type HelloAnswer, type RentalAnswers, type StatusAnswer } from './rental-answers.js';
import { MAX_MESSAGE_BYTES, RentalLineReader } from './rental-line-reader.js';
import { encodeRequest, MAX_REQUEST_ID, RentalProtocolError, RentalSocketError, type RentalOp, type RentalRequest } from './rental-protocol.js';
import { rentalSocketPath } from './rental-socket-path.js';
import type { RentalServerLink } from './program-trail.js';

interface Pending {
  readonly op: RentalOp | 'extension';
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Distributes `Omit` over a union, keeping each member's own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class RentalClient implements RentalServerLink {
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #reader = new RentalLineReader(MAX_MESSAGE_BYTES);
  #failure: Error | undefined;

  private constructor(readonly socketPath: string, private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.take(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new RentalSocketError('closed', `the connection to the rental server at ${socketPath} failed: ${error.code ?? error.message}`, { cause: error })));
    socket.on('close', () => this.fail(new RentalSocketError('closed', `the rental server at ${socketPath} closed the connection`)));
  }

  /**
   * Connects to the rental server at `socketPath` (default: rental.sock in this user's machine directory, the
   * same place `vsc rental serve` uses). No server there: RentalSocketError `rental.socket.not-running` (exit 3).
   */
  static async connect(socketPath?: string): Promise<RentalClient> {
    const path = await rentalSocketPath(socketPath);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const attempt = createConnection(path);
      attempt.once('connect', () => {
        attempt.removeAllListeners('error');
        resolve(attempt);
      });
      attempt.once('error', (error: NodeJS.ErrnoException) => {
        const absent = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
        reject(new RentalSocketError(absent ? 'not-running' : 'unusable', absent
          ? `no rental server answers on ${path}: start one with "vsc rental serve --reader R --trail DIR"`
          : `cannot connect to the rental server at ${path}: ${error.code ?? error.message}`, { cause: error }));
      });
    });
    return new RentalClient(path, socket);
  }

  private take(chunk: Uint8Array): void {
    for (const event of this.#reader.push(chunk)) {
      if (event.kind !== 'line') {
        this.fail(new RentalProtocolError(event.kind === 'too-long' ? `the rental server sent a line over ${MAX_MESSAGE_BYTES} bytes` : 'the rental server sent a line that is not UTF-8'));
        return;
      }
      try {
        this.settle(event.text);
      } catch (error) {
        this.fail(error as Error);
        return;
      }
    }
  }

  private settle(line: string): void {
    const envelope = parseResponseEnvelope(line);
    const pending = envelope.id === null ? undefined : this.#pending.get(envelope.id);
    if (pending === undefined) {
      // Every request this client sends has a readable id: an answer to none is the server's fault.
      throw new RentalProtocolError(envelope.ok ? `the rental server answered request ${envelope.id}, which is not waiting` : `the rental server refused a request it could not read: ${envelope.error.message}`);
    }
    this.#pending.delete(envelope.id!);
    if (!envelope.ok) {
      pending.reject(refusalError(envelope.error));
      return;
    }
    let answer: unknown;
    try {
      // An extension's answer is the extension client's to check (license-agent-client.ts).
      answer = pending.op === 'extension' ? envelope.fields : decodeAnswer(pending.op, envelope.fields);
    } catch (error) {
      pending.reject(error as Error);
      throw error;
    }
    pending.resolve(answer);
  }

  /** Rejects every waiting request with `error` and closes the connection; later requests get the same error. */
  private fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.socket.destroy();
  }

  private request<Op extends RentalOp | 'extension'>(fields: WithoutId<RentalRequest> & { op: Op }): Promise<Op extends RentalOp ? RentalAnswers[Op] : Readonly<Record<string, unknown>>> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId;
    this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
    let line: string;
    try {
      line = encodeRequest({ ...fields, id } as RentalRequest);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { op: fields.op, resolve: resolve as (value: unknown) => void, reject });
      this.socket.write(line);
    });
  }

  /** The card the server owns, the trail's path and the card's counter. */
  hello(): Promise<HelloAnswer> {
    return this.request({ op: 'hello' });
  }

  /** GET COUNTER: the counter the next signature will carry. */
  async counter(): Promise<bigint> {
    return (await this.request({ op: 'counter' })).counter;
  }

  /**
   * Has the card sign `text` with `nonce` and the record appended durably; with `expectCounter`, only at that
   * counter (else RentalError `counter-moved`, nothing signed). The answer is the server's word: check it
   * (writeThroughServer does).
   */
  write(nonce: Uint8Array, text: string, expectCounter?: bigint): Promise<{ readonly record: AuditRecord; readonly counterAfter: bigint }> {
    return this.request({ op: 'write', nonce, text, ...(expectCounter === undefined ? {} : { expectCounter }) });
  }

  /** A card-signed record naming the counters the card passed that the trail lacks; bridged null when none. */
  bridge(): Promise<BridgeAnswer> {
    return this.request({ op: 'bridge' });
  }

  status(): Promise<StatusAnswer> {
    return this.request({ op: 'status' });
  }

  /**
   * A request for an extension the server was started with (`name` as "license.use"); the answer's fields besides id
   * and ok, unchecked: the extension's client checks them.
   */
  extension(name: string, fields: Readonly<Record<string, unknown>>): Promise<Readonly<Record<string, unknown>>> {
    return this.request({ op: 'extension', name, fields });
  }

  /** Closes the connection; requests still waiting are rejected. */
  close(): void {
    this.fail(new RentalSocketError('closed', 'the rental client was closed'));
  }
}
