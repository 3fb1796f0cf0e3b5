// Noise NK sessions over a real ws server on 127.0.0.1: round trip, pinned key, and every way a
// peer can break the framing (replay, reorder, truncation, modification, size, text, silence).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import {
  acceptSession,
  CHANNEL_PROLOGUE,
  CHANNEL_WS_MAX_PAYLOAD,
  ChannelError,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_QUEUED_MESSAGES,
  type ChannelSession,
  connectSession,
  encodeServerPublicKey,
  generateX25519KeyPair,
  NoiseHandshake,
  type NoiseTransport,
  parseServerPublicKey,
} from '../../src/channel/index.js';
import { fromUtf8, toHex, utf8 } from '../../src/bytes/index.js';

const serverKeys = generateX25519KeyPair();
let server: WebSocketServer;
let url: string;
/** Results of acceptSession, in connection order. */
const accepted: Promise<ChannelSession>[] = [];
/** Remote addresses of the connections, in connection order. */
const remotes: (string | undefined)[] = [];

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: CHANNEL_WS_MAX_PAYLOAD });
  server.on('connection', (socket, request) => {
    remotes.push(request.socket.remoteAddress);
    const result = acceptSession(socket, serverKeys, { timeoutMs: 2_000 });
    result.catch(() => undefined);
    accepted.push(result);
  });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function nextAccepted(): Promise<ChannelSession> {
  while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  return accepted.shift() as Promise<ChannelSession>;
}

async function expectRejection(promise: Promise<unknown>, code?: string): Promise<ChannelError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection, got a value');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChannelError);
  if (code !== undefined) expect((error as ChannelError).code).toBe(code);
  return error as ChannelError;
}

interface RawClient {
  socket: WebSocket;
  transport: NoiseTransport;
  closeCode: Promise<number>;
}

/** A client that does the handshake by hand, so the test can send any frame it likes. */
async function rawClient(): Promise<RawClient> {
  const socket = new WebSocket(url);
  const closeCode = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('open', resolve));
  const handshake = NoiseHandshake.initiator({ remoteStatic: serverKeys.publicKey, prologue: CHANNEL_PROLOGUE });
  const reply = new Promise<Uint8Array>((resolve) => socket.once('message', (data) => resolve(Uint8Array.from(data as Buffer))));
  socket.send(handshake.writeMessage(new Uint8Array(0)));
  handshake.readMessage(await reply);
  return { socket, transport: handshake.split(), closeCode };
}

describe('channel session', () => {
  it('round trips both ways and agrees on the handshake hash', async () => {
    const client = await connectSession(url, serverKeys.publicKey);
    const peer = await nextAccepted();
    expect(toHex(client.handshakeHash)).toBe(toHex(peer.handshakeHash));
    await client.send(utf8('hello'));
    await client.send(utf8('again'));
    expect(fromUtf8(await peer.receive())).toBe('hello');
    expect(fromUtf8(await peer.receive())).toBe('again');
    await peer.send(new Uint8Array(65535 - 16));
    expect((await client.receive()).length).toBe(65535 - 16);
    client.close();
    await expectRejection(peer.receive(), 'channel.closed');
    await expectRejection(client.receive(), 'channel.closed');
    await expectRejection(client.send(utf8('late')), 'channel.closed');
  });

  it('a wrong pinned server key gives no session on either side', async () => {
    await expectRejection(connectSession(url, generateX25519KeyPair().publicKey), 'channel.handshake');
    await expectRejection(nextAccepted(), 'channel.handshake');
  });

  // a was delivered; the receiver now expects b (nonce 1).
  const violations: [string, (m: { a: Uint8Array; b: Uint8Array; c: Uint8Array }) => Uint8Array][] = [
    ['replayed', ({ a }) => a],
    ['reordered', ({ c }) => c],
    ['truncated', ({ b }) => b.subarray(0, b.length - 1)],
    ['modified', ({ b }) => Uint8Array.from(b, (x, k) => (k === 3 ? x ^ 0x80 : x))],
  ];
  for (const [name, tamper] of violations) {
    it(`a ${name} message closes the session with 1008`, async () => {
      const raw = await rawClient();
      const peer = await nextAccepted();
      const a = raw.transport.encrypt(utf8('first'));
      const b = raw.transport.encrypt(utf8('second'));
      const c = raw.transport.encrypt(utf8('third'));
      const first = peer.receive();
      raw.socket.send(a);
      expect(fromUtf8(await first)).toBe('first');
      const pending = peer.receive();
      raw.socket.send(tamper({ a, b, c }));
      await expectRejection(pending, 'channel.decrypt');
      expect(await raw.closeCode).toBe(1008);
      await expectRejection(peer.receive(), 'channel.decrypt');
      await expectRejection(peer.send(utf8('x')), 'channel.decrypt');
    });
  }

  it('a frame over 65535 bytes closes with 1008; one over maxPayload is refused by ws', async () => {
    const raw = await rawClient();
    const peer = await nextAccepted();
    raw.socket.send(new Uint8Array(65536));
    await expectRejection(peer.receive(), 'channel.oversized');
    expect(await raw.closeCode).toBe(1008);

    const big = await rawClient();
    const bigPeer = await nextAccepted();
    big.socket.send(new Uint8Array(CHANNEL_WS_MAX_PAYLOAD + 1));
    await expectRejection(bigPeer.receive(), 'channel.closed');
    expect(await big.closeCode).toBe(1009);
  });

  it('a text frame closes with 1008', async () => {
    const raw = await rawClient();
    const peer = await nextAccepted();
    raw.socket.send('hello');
    await expectRejection(peer.receive(), 'channel.protocol');
    expect(await raw.closeCode).toBe(1008);
  });

  it('a receive timeout closes the session and later receives reject', async () => {
    const raw = await rawClient();
    const peer = await nextAccepted();
    await expectRejection(peer.receive(50), 'channel.timeout');
    await raw.closeCode;
    raw.socket.send(raw.transport.encrypt(utf8('too late')));
    await expectRejection(peer.receive(), 'channel.timeout');
  });

  it('a server that never answers times the handshake out', async () => {
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => silent.once('listening', resolve));
    const port = (silent.address() as AddressInfo).port;
    await expectRejection(connectSession(`ws://127.0.0.1:${port}`, serverKeys.publicKey, { timeoutMs: 100 }), 'channel.timeout');
    for (const client of silent.clients) client.terminate();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('a refused connection rejects with channel.connect', async () => {
    const closed = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => closed.once('listening', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expectRejection(connectSession(`ws://127.0.0.1:${port}`, serverKeys.publicKey), 'channel.connect');
  });

  it('more unread messages than the bound close the session with 1008; the ones read before stay read', async () => {
    const raw = await rawClient();
    const peer = await nextAccepted(); // default bound: DEFAULT_MAX_QUEUED_MESSAGES
    raw.socket.send(raw.transport.encrypt(utf8('first')));
    expect(fromUtf8(await peer.receive())).toBe('first');
    for (let i = 0; i <= DEFAULT_MAX_QUEUED_MESSAGES; i++) raw.socket.send(raw.transport.encrypt(utf8(`unread ${i}`)));
    expect(await raw.closeCode).toBe(1008);
    const error = await expectRejection(peer.receive(), 'channel.protocol');
    expect(error.message).toBe(`expected at most ${DEFAULT_MAX_QUEUED_MESSAGES} unread messages of ${DEFAULT_MAX_QUEUED_BYTES} bytes in all, got more`);
  });

  it('a client bounds its queue by messages and by bytes, and connects from the local address it is given', async () => {
    const client = await connectSession(url, serverKeys.publicKey, { maxQueuedMessages: 2, maxQueuedBytes: 65535, localAddress: '127.0.0.2' });
    const peer = await nextAccepted();
    expect(remotes.at(-1)).toBe('127.0.0.2');
    await peer.send(new Uint8Array(40_000));
    await peer.send(new Uint8Array(30_000)); // 70,000 unread bytes: over 65535
    await expectRejection(peer.receive(), 'channel.closed'); // the client closed it
    await expectRejection(client.receive(), 'channel.protocol');

    const counted = await connectSession(url, serverKeys.publicKey, { maxQueuedMessages: 2 });
    const countedPeer = await nextAccepted();
    for (let i = 0; i < 3; i++) await countedPeer.send(utf8(`m${i}`));
    await expectRejection(countedPeer.receive(), 'channel.closed');
    await expectRejection(counted.receive(), 'channel.protocol');
    await expect(connectSession(url, serverKeys.publicKey, { maxQueuedMessages: 0 })).rejects.toThrow(/expected maxQueuedMessages to be a positive whole number, got 0/);
  });

  it('garbage as handshake message 1 fails acceptSession', async () => {
    const socket = new WebSocket(url);
    const closeCode = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(new Uint8Array(48).fill(7));
    await expectRejection(nextAccepted(), 'channel.handshake');
    expect(await closeCode).toBe(1008);
  });
});

describe('server public key text form', () => {
  it('encodes as 64 lower-case hex digits and parses back', () => {
    const text = encodeServerPublicKey(serverKeys.publicKey);
    expect(text).toMatch(/^[0-9a-f]{64}$/);
    expect(toHex(parseServerPublicKey(`  ${text.toUpperCase()}\n`))).toBe(text);
  });

  it.each([
    ['', 'got 0 hex digits'],
    ['ab'.repeat(31), 'got 62 hex digits'],
    ['ab'.repeat(33), 'got 66 hex digits'],
    ['zz'.repeat(32), 'not all hex digits'],
    [`${'ab'.repeat(16)} ${'ab'.repeat(16)}`, 'not all hex digits'],
  ])('refuses %j with a readable one-line message', (text, fragment) => {
    let error: unknown;
    try {
      parseServerPublicKey(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChannelError);
    expect((error as ChannelError).message).toContain(fragment);
    expect((error as ChannelError).message).not.toContain('\n');
  });

  it('refuses to encode a key of the wrong length', () => {
    expect(() => encodeServerPublicKey(new Uint8Array(31))).toThrow(ChannelError);
  });
});
