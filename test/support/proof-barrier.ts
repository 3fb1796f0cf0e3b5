// End-to-end helper for races: a TCP relay in front of a server process that holds each client's
// proof (its third WebSocket data message: Noise message 1, hello, proof; DESIGN.md "Protected
// channel") until every contender of the round has sent its own, then lets them all through in the
// same tick. The server takes a serial only after the proof, so this is where a race is decided.
// The relay reads only WebSocket frame headers; the bytes it forwards are the client's, unchanged.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** The third client message of a session is the proof. */
const PROOF_MESSAGE = 3;
/** A round whose contenders never all arrive is released after this, and counted as a failure. */
const STALL_MS = 20_000;

/** Counts contenders of one round to the proof; releases them together once all are there. */
export class ProofBarrier {
  #round = 0;
  #expected = 0;
  #waiting: (() => void)[] = [];
  #released = false;
  #timer: NodeJS.Timeout | undefined;
  /** Rounds released by the stall guard instead of by the last contender. */
  stalled = 0;

  /** Starts a round of `contenders` sessions; returns its number. */
  begin(contenders: number): number {
    this.#release();
    this.#round++;
    this.#expected = contenders;
    this.#released = false;
    return this.#round;
  }

  get round(): number {
    return this.#round;
  }

  /** A contender of `round` holds its proof here until the round is complete (a late retry passes at once). */
  arrive(round: number): Promise<void> {
    if (round !== this.#round || this.#released) return Promise.resolve();
    const released = new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.#waiting.length === 1) {
      this.#timer = setTimeout(() => {
        this.stalled++;
        this.#released = true;
        this.#release();
      }, STALL_MS);
    }
    this.#check();
    return released;
  }

  /** A contender of `round` that closed before its proof: the round no longer waits for it. */
  leave(round: number): void {
    if (round !== this.#round) return;
    this.#expected--;
    this.#check();
  }

  #check(): void {
    if (this.#waiting.length > 0 && this.#waiting.length >= this.#expected) {
      this.#released = true;
      this.#release();
    }
  }

  #release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}

/** Bytes of the complete WebSocket frame starting at `offset`, or undefined while it is incomplete (RFC 6455 §5.2). */
function frameLength(buffer: Buffer, offset: number): number | undefined {
  if (buffer.length < offset + 2) return undefined;
  const masked = (buffer[offset + 1]! & 0x80) !== 0;
  let length = buffer[offset + 1]! & 0x7f;
  let header = 2;
  if (length === 126) {
    if (buffer.length < offset + 4) return undefined;
    length = buffer.readUInt16BE(offset + 2);
    header = 4;
  } else if (length === 127) {
    if (buffer.length < offset + 10) return undefined;
    length = Number(buffer.readBigUInt64BE(offset + 2));
    header = 10;
  }
  const total = header + (masked ? 4 : 0) + length;
  return buffer.length < offset + total ? undefined : total;
}

function relay(client: Socket, target: { host: string; port: number }, barrier: ProofBarrier): void {
  const round = barrier.round;
  const upstream = connect(target.port, target.host);
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.pipe(client);
  let pending = Buffer.alloc(0);
  let upgraded = false;
  let dataMessages = 0;
  let mode: 'reading' | 'holding' | 'through' = 'reading';
  let arrived = false;

  const read = (): void => {
    let offset = 0;
    if (!upgraded) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      offset = end + 4;
      upgraded = true;
    }
    for (let size = frameLength(pending, offset); size !== undefined; size = frameLength(pending, offset)) {
      const opcode = pending[offset]! & 0x0f;
      if ((opcode === 1 || opcode === 2) && ++dataMessages === PROOF_MESSAGE) {
        upstream.write(pending.subarray(0, offset));
        pending = pending.subarray(offset);
        mode = 'holding';
        arrived = true;
        void barrier.arrive(round).then(() => {
          mode = 'through';
          upstream.write(pending);
          pending = Buffer.alloc(0);
        });
        return;
      }
      offset += size;
    }
    upstream.write(pending.subarray(0, offset));
    pending = pending.subarray(offset);
  };

  client.on('data', (chunk: Buffer) => {
    if (mode === 'through') {
      upstream.write(chunk);
      return;
    }
    pending = Buffer.concat([pending, chunk]);
    if (mode === 'reading') read();
  });
  client.on('close', () => {
    if (!arrived) barrier.leave(round);
    upstream.end();
  });
}

export interface HoldingRelay {
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1 and relays every connection to `target` through `barrier`. */
export async function startHoldingRelay(target: { host: string; port: number }, barrier: ProofBarrier): Promise<HoldingRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    relay(client, target, barrier);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
