// VpcdBridge against a fake vpcd (a TCP server in this file): framing, controls, ordering, reconnection.
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors/index.js';
import type { CardSource } from '../../src/apdu/index.js';
import { VpcdBridge, parseVpcdAddress, type VpcdBridgeEvent, type VpcdBridgeOptions } from '../../src/reader-driver/vpcd-bridge.js';

const ATR = Uint8Array.of(0x3b, 0x80, 0x80, 0x01, 0x01);

/** Records what reaches the card; answers an APDU with its INS byte then 9000, after `delays[ins]` ms. */
class RecordingCard implements CardSource {
  readonly atr = ATR;
  readonly calls: string[] = [];
  delays: Record<number, number> = {};
  failTransmit = false;
  answer: ((command: Uint8Array) => Uint8Array) | undefined;

  powerOn(): void {
    this.calls.push('powerOn');
  }
  powerOff(): void {
    this.calls.push('powerOff');
  }
  reset(): void {
    this.calls.push('reset');
  }
  async transmit(command: Uint8Array): Promise<Uint8Array> {
    const ins = command[1] ?? 0;
    this.calls.push(`transmit ${ins.toString(16)}`);
    await sleep(this.delays[ins] ?? 0);
    if (this.failTransmit) throw new Error('link to the remote card dropped');
    return this.answer?.(command) ?? Uint8Array.of(ins, 0x90, 0x00);
  }
}

function frame(...payload: number[]): Buffer {
  return Buffer.from([payload.length >> 8, payload.length & 0xff, ...payload]);
}

/** The vpcd side: accepts the card, sends messages, and reads length-prefixed answers. */
class FakeVpcd {
  readonly server: Server;
  readonly connections: Socket[] = [];
  #waiters: ((socket: Socket) => void)[] = [];
  #received = new Map<Socket, Buffer>();
  port = 0;

  constructor() {
    this.server = createServer((socket) => {
      this.connections.push(socket);
      this.#received.set(socket, Buffer.alloc(0));
      socket.on('data', (chunk) => this.#received.set(socket, Buffer.concat([this.#received.get(socket)!, chunk])));
      socket.on('error', () => {});
      for (const waiter of this.#waiters.splice(0)) waiter(socket);
    });
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops listening and drops every card connection. */
  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get last(): Socket {
    const socket = this.connections.at(-1);
    if (socket === undefined) throw new Error('expected a card connection, got none');
    return socket;
  }

  /** Resolves with the next connection (or the `index`-th one if it is already there). */
  connection(index: number): Promise<Socket> {
    const existing = this.connections[index];
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve) => this.#waiters.push(() => void this.connection(index).then(resolve)));
  }

  /** Waits for `count` answers on `socket` and returns their payloads. */
  async answers(socket: Socket, count: number, timeoutMs = 2_000): Promise<number[][]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const payloads = parse(this.#received.get(socket)!);
      if (payloads.length >= count) {
        return payloads.slice(0, count);
      }
      if (Date.now() > deadline) throw new Error(`expected ${count} answers, got ${payloads.length}`);
      await sleep(5);
    }
  }

  /** Forgets what was received so far on `socket`. */
  clear(socket: Socket): void {
    this.#received.set(socket, Buffer.alloc(0));
  }
}

function parse(bytes: Buffer): number[][] {
  const out: number[][] = [];
  let offset = 0;
  while (bytes.length - offset >= 2) {
    const length = bytes.readUInt16BE(offset);
    if (bytes.length - offset - 2 < length) break;
    out.push([...bytes.subarray(offset + 2, offset + 2 + length)]);
    offset += 2 + length;
  }
  return out;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setup(options: Partial<VpcdBridgeOptions> = {}) {
  const vpcd = new FakeVpcd();
  await vpcd.listen();
  const card = new RecordingCard();
  const events: VpcdBridgeEvent[] = [];
  const bridge = new VpcdBridge(card, { host: '127.0.0.1', port: vpcd.port, reconnectDelayMs: 20, ...options, onEvent: (event) => events.push(event) });
  cleanups.push(async () => {
    await bridge.stop();
    await vpcd.close();
  });
  await bridge.start();
  const socket = await vpcd.connection(0);
  return { vpcd, card, events, bridge, socket };
}

describe('parseVpcdAddress', () => {
  it.each([
    ['127.0.0.1:35963', '127.0.0.1', 35963],
    ['localhost:35964', 'localhost', 35964],
    ['[::1]:1', '::1', 1],
    [' vpcd.example:65535 ', 'vpcd.example', 65535],
  ])('parses %j', (text, host, port) => {
    expect(parseVpcdAddress(text)).toEqual({ host, port });
  });

  it.each(['', '127.0.0.1', ':35963', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:35963x', 'a b:1', '::1:35963', 'host:-1'])(
    'rejects %j with a usage error',
    (text) => {
      expect(() => parseVpcdAddress(text)).toThrow(UsageError);
      expect(() => parseVpcdAddress(text)).toThrow(/expected HOST:PORT/);
    },
  );
});

describe('VpcdBridge options', () => {
  it('merges over frozen defaults', () => {
    const bridge = new VpcdBridge(new RecordingCard(), { port: 35964 });
    expect(bridge.options).toMatchObject({ host: '127.0.0.1', port: 35964, reconnectDelayMs: 250 });
    expect(Object.isFrozen(bridge.options)).toBe(true);
  });

  it.each([{ port: 0 }, { port: 1.5 }, { host: '' }, { reconnectDelayMs: -1 }, { maxReconnectDelayMs: Number.NaN }])('rejects %j', (options) => {
    expect(() => new VpcdBridge(new RecordingCard(), options)).toThrow(UsageError);
  });
});

describe('VpcdBridge protocol', () => {
  it('reports the connection and answers GET ATR with the ATR', async () => {
    const { vpcd, socket, events, bridge } = await setup();
    expect(bridge.connected).toBe(true);
    expect(events[0]).toEqual({ type: 'connected', host: '127.0.0.1', port: vpcd.port });
    socket.write(frame(0x04));
    expect(await vpcd.answers(socket, 1)).toEqual([[...ATR]]);
  });

  it('passes power on, power off and reset to the card without answering them', async () => {
    const { vpcd, socket, card } = await setup();
    socket.write(Buffer.concat([frame(0x01), frame(0x02), frame(0x00), frame(0x01), frame(0x04)]));
    // Only GET ATR is answered, so the one answer is the ATR.
    expect(await vpcd.answers(socket, 1)).toEqual([[...ATR]]);
    expect(card.calls).toEqual(['powerOn', 'reset', 'powerOff', 'powerOn']);
    await sleep(20);
    expect(await vpcd.answers(socket, 1)).toHaveLength(1);
  });

  it('answers a command APDU with the response APDU', async () => {
    const { vpcd, socket, card } = await setup();
    socket.write(frame(0x80, 0x22, 0x00, 0x00, 0x10));
    expect(await vpcd.answers(socket, 1)).toEqual([[0x22, 0x90, 0x00]]);
    expect(card.calls).toEqual(['transmit 22']);
  });

  it('joins a message split across many reads', async () => {
    const { vpcd, socket, card } = await setup();
    card.answer = (command) => Uint8Array.from([...command.subarray(5), 0x90, 0x00]);
    const data = Array.from({ length: 200 }, (_, i) => i);
    const bytes = frame(0x80, 0x24, 0x00, 0x00, data.length, ...data);
    // One byte per write, spaced out so that TCP cannot coalesce them back together.
    for (const byte of bytes.subarray(0, 8)) {
      socket.write(Uint8Array.of(byte));
      await sleep(3);
    }
    socket.write(bytes.subarray(8, 100));
    await sleep(10);
    socket.write(bytes.subarray(100));
    expect(await vpcd.answers(socket, 1)).toEqual([[...data, 0x90, 0x00]]);
  });

  it('answers every message of one read, in order', async () => {
    const { vpcd, socket } = await setup();
    const apdus = [0x20, 0x22, 0x26].map((ins) => frame(0x80, ins, 0x00, 0x00, 0x00));
    // The last message is cut in two: its second half arrives with the next read.
    const all = Buffer.concat([frame(0x04), ...apdus]);
    socket.write(all.subarray(0, all.length - 2));
    await sleep(10);
    socket.write(all.subarray(all.length - 2));
    expect(await vpcd.answers(socket, 4)).toEqual([[...ATR], [0x20, 0x90, 0x00], [0x22, 0x90, 0x00], [0x26, 0x90, 0x00]]);
  });

  it('answers strictly in order even when an earlier command is slower', async () => {
    const { vpcd, socket, card } = await setup();
    card.delays = { 0x24: 60, 0x22: 0 };
    socket.write(Buffer.concat([frame(0x80, 0x24, 0x00, 0x00, 0x00), frame(0x80, 0x22, 0x00, 0x00, 0x00), frame(0x02), frame(0x04)]));
    expect(await vpcd.answers(socket, 3)).toEqual([[0x24, 0x90, 0x00], [0x22, 0x90, 0x00], [...ATR]]);
    // The reset waited for the slow command instead of overtaking it.
    expect(card.calls).toEqual(['transmit 24', 'transmit 22', 'reset']);
  });

  it('ignores an empty payload and answers an unknown 1-byte payload with 6700', async () => {
    const { vpcd, socket, events } = await setup();
    socket.write(Buffer.concat([frame(), frame(0x07), frame(0x80, 0x22, 0x00, 0x00, 0x00)]));
    expect(await vpcd.answers(socket, 2)).toEqual([[0x67, 0x00], [0x22, 0x90, 0x00]]);
    const codes = events.flatMap((event) => (event.type === 'error' ? [event.error.code] : []));
    expect(codes).toEqual(['vpcd.malformed-frame', 'vpcd.malformed-frame']);
  });

  it('answers 6F00 when the card returns something that is not a response APDU', async () => {
    const { vpcd, socket, card, events } = await setup();
    card.answer = () => new Uint8Array(0);
    socket.write(frame(0x80, 0x22, 0x00, 0x00, 0x00));
    expect(await vpcd.answers(socket, 1)).toEqual([[0x6f, 0x00]]);
    expect(events.some((event) => event.type === 'error' && event.error.code === 'vpcd.card-error')).toBe(true);
  });

  it('removes the card for good when transmit rejects', async () => {
    const { vpcd, socket, card, events, bridge } = await setup();
    card.failTransmit = true;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(frame(0x80, 0x22, 0x00, 0x00, 0x00));
    await closed;
    await waitFor(() => events.some((event) => event.type === 'disconnected'), 'the disconnected event');
    expect(events.at(-1)).toEqual({ type: 'disconnected', reason: 'card gone', willReconnect: false });
    expect(bridge.connected).toBe(false);
    await sleep(100);
    expect(vpcd.connections).toHaveLength(1);
  });

  it('survives a card whose powerOn throws', async () => {
    const { vpcd, socket, card, events } = await setup();
    card.powerOn = () => {
      throw new Error('broken');
    };
    socket.write(Buffer.concat([frame(0x01), frame(0x04)]));
    expect(await vpcd.answers(socket, 1)).toEqual([[...ATR]]);
    expect(events.some((event) => event.type === 'error' && event.error.code === 'vpcd.card-error')).toBe(true);
  });
});

describe('VpcdBridge connection lifecycle', () => {
  it('reconnects when vpcd drops the connection and when vpcd restarts', async () => {
    const { vpcd, card, events, bridge } = await setup();
    vpcd.last.destroy();
    const second = await vpcd.connection(1);
    second.write(frame(0x04));
    expect(await vpcd.answers(second, 1)).toEqual([[...ATR]]);
    expect(card.calls).toContain('powerOff'); // removal cuts the power

    // pcscd restarting: nobody listens for a while (connections are refused), then vpcd is back.
    const port = vpcd.port;
    await vpcd.close();
    await sleep(150);
    expect(bridge.connected).toBe(false);
    const restarted = new FakeVpcd();
    await restarted.listen(port);
    cleanups.push(() => restarted.close());
    const third = await restarted.connection(0);
    third.write(frame(0x80, 0x26, 0x00, 0x00, 0x00));
    expect(await restarted.answers(third, 1)).toEqual([[0x26, 0x90, 0x00]]);
    await waitFor(() => bridge.connected, 'the bridge to be connected');

    const types = events.map((event) => (event.type === 'error' ? event.error.code : event.type));
    expect(types.filter((type) => type === 'connected')).toHaveLength(3);
    expect(types).toContain('vpcd.connect-failed');
    expect(events.find((event) => event.type === 'disconnected')).toMatchObject({ willReconnect: true });
  });

  it('stop() removes the card and stops reconnecting', async () => {
    const { vpcd, socket, events, bridge } = await setup();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await bridge.stop();
    await closed;
    expect(bridge.connected).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'disconnected', reason: 'stopped', willReconnect: false });
    await sleep(150);
    expect(vpcd.connections).toHaveLength(1);
  });

  it('stop() waits for the command in progress', async () => {
    const { socket, card, bridge } = await setup();
    card.delays = { 0x24: 80 };
    socket.write(frame(0x80, 0x24, 0x00, 0x00, 0x00));
    await waitFor(() => card.calls.length > 0, 'the command to reach the card');
    await bridge.stop();
    expect(card.calls).toEqual(['transmit 24', 'powerOff']);
  });

  it('keeps retrying until vpcd appears, and stop() before that rejects start()', async () => {
    const vpcd = new FakeVpcd();
    await vpcd.listen();
    const port = vpcd.port;
    await vpcd.close(); // nothing listens on this port now
    const events: VpcdBridgeEvent[] = [];
    const bridge = new VpcdBridge(new RecordingCard(), { port, reconnectDelayMs: 10, maxReconnectDelayMs: 40, onEvent: (event) => events.push(event) });
    const started = bridge.start();
    expect(bridge.start()).toBe(started);
    await waitFor(() => events.length >= 3, 'three failed attempts');
    expect(events.every((event) => event.type === 'error' && event.error.code === 'vpcd.connect-failed')).toBe(true);
    await bridge.stop();
    await expect(started).rejects.toMatchObject({ code: 'vpcd.stopped' });
    const count = events.length;
    await sleep(100);
    expect(events).toHaveLength(count);
  });

  it('swallows exceptions from the onEvent hook', async () => {
    const vpcd = new FakeVpcd();
    await vpcd.listen();
    const bridge = new VpcdBridge(new RecordingCard(), {
      port: vpcd.port,
      onEvent: () => {
        throw new Error('bad logger');
      },
    });
    cleanups.push(async () => {
      await bridge.stop();
      await vpcd.close();
    });
    await bridge.start();
    const socket = await vpcd.connection(0);
    socket.write(frame(0x04));
    expect(await vpcd.answers(socket, 1)).toEqual([[...ATR]]);
  });
});
