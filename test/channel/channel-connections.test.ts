// Kept connections (issue 18; DESIGN.md "Protected channel"): one WebSocket carries sessions one after
// another, each its own Noise NK handshake with fresh keys; the next begins only after the server's last
// message; a peer that does not wait is cut; idle connections close on both sides and a client that finds
// its kept connection gone opens a new one without the caller noticing.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { fromUtf8, toHex, utf8 } from '../../src/bytes/index.js';
import {
  acceptSession, CHANNEL_PROLOGUE, CHANNEL_WS_MAX_PAYLOAD, ChannelConnections, ChannelSocket, connectSession, generateX25519KeyPair, NoiseHandshake,
} from '../../src/channel/index.js';

const serverKeys = generateX25519KeyPair();

interface EchoServer {
  readonly url: string;
  /** TCP connections accepted so far. */
  connections: number;
  /** Handshake hashes of the sessions served, in order. */
  readonly hashes: string[];
  /** Close codes the server saw on its connections. */
  readonly closes: number[];
  close(): Promise<void>;
}

/** Serves sessions on each connection like the VSC server: one message in, its echo as the last message out. */
async function echoServer(idleMs: number): Promise<EchoServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: CHANNEL_WS_MAX_PAYLOAD });
  const served: EchoServer = {
    url: '', connections: 0, hashes: [], closes: [],
    close: () => new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    }),
  };
  wss.on('connection', (socket) => {
    served.connections++;
    socket.once('close', (code) => served.closes.push(code));
    const channel = new ChannelSocket(socket);
    void (async () => {
      for (let first = true; first || (await channel.nextSession(idleMs)); first = false) {
        const session = await acceptSession(channel, serverKeys, { timeoutMs: 2_000 }).catch(() => undefined);
        if (session === undefined) return;
        served.hashes.push(toHex(session.handshakeHash));
        const message = await session.receive().catch(() => undefined);
        if (message === undefined || !(await session.finish(utf8(`echo ${fromUtf8(message)}`)).catch(() => false))) return;
      }
    })();
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  return Object.assign(served, { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` });
}

let server: EchoServer | undefined;
let pool: ChannelConnections | undefined;
afterEach(async () => {
  pool?.close();
  await server?.close();
});

async function echo(text: string, connections?: ChannelConnections): Promise<string> {
  const session = await connectSession(server!.url, serverKeys.publicKey, { timeoutMs: 2_000, ...(connections === undefined ? {} : { connections }) });
  await session.send(utf8(text));
  const answer = fromUtf8(await session.receive());
  expect(session.end(), 'the session ended cleanly after the last message').toBe(true);
  return answer;
}

describe('kept connections', () => {
  it('carry one session after another on one TCP connection, each with its own handshake', async () => {
    server = await echoServer(5_000);
    pool = new ChannelConnections();
    for (const text of ['one', 'two', 'three']) expect(await echo(text, pool)).toBe(`echo ${text}`);
    expect(server.connections).toBe(1);
    expect(pool.reused).toBe(2);
    expect(new Set(server.hashes).size, 'three different handshake hashes: fresh ephemeral keys each time').toBe(3);
  });

  it('without kept connections, each session has a connection of its own, closed at its end', async () => {
    server = await echoServer(5_000);
    for (const text of ['one', 'two']) expect(await echo(text)).toBe(`echo ${text}`);
    expect(server.connections).toBe(2);
    await waitFor(() => server!.closes.length === 2);
    expect(server.closes).toEqual([1000, 1000]);
  });

  it('the server closes a connection idle between sessions; the client then opens a new one unnoticed', async () => {
    server = await echoServer(150);
    pool = new ChannelConnections({ idleTimeoutMs: 10_000 });
    expect(await echo('before', pool)).toBe('echo before');
    await waitFor(() => server!.closes.length === 1);
    expect(server.closes).toEqual([1000]);
    expect(await echo('after', pool)).toBe('echo after');
    expect(server.connections).toBe(2);
    expect(pool.reused, 'the closed connection was not reused').toBe(0);
  });

  it('the client closes its own idle connections after its idle timeout', async () => {
    server = await echoServer(10_000);
    pool = new ChannelConnections({ idleTimeoutMs: 100 });
    await echo('x', pool);
    await waitFor(() => server!.closes.length === 1);
    expect(await echo('y', pool)).toBe('echo y');
    expect(server.connections).toBe(2);
  });

  it('a client that starts its next handshake before the server\'s last message is cut (1008)', async () => {
    server = await echoServer(5_000);
    const socket = new WebSocket(server.url);
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    const handshake = NoiseHandshake.initiator({ remoteStatic: serverKeys.publicKey, prologue: CHANNEL_PROLOGUE });
    const reply = new Promise<Uint8Array>((resolve) => socket.once('message', (data) => resolve(Uint8Array.from(data as Buffer))));
    socket.send(handshake.writeMessage(new Uint8Array(0)));
    handshake.readMessage(await reply);
    const transport = handshake.split();
    // The operation's message and, at once, message 1 of a next session: the server is still in the first.
    socket.send(transport.encrypt(utf8('first')));
    socket.send(NoiseHandshake.initiator({ remoteStatic: serverKeys.publicKey, prologue: CHANNEL_PROLOGUE }).writeMessage(new Uint8Array(0)));
    expect(await closed).toBe(1008);
    expect(server.hashes).toHaveLength(1);
  });

  it('a pool takes only idle, open connections, and keeps at most its number per server', async () => {
    server = await echoServer(5_000);
    pool = new ChannelConnections({ maxIdlePerServer: 1 });
    // Two sessions at once need two connections; only one is kept afterwards.
    const [a, b] = await Promise.all([
      connectSession(server.url, serverKeys.publicKey, { connections: pool }),
      connectSession(server.url, serverKeys.publicKey, { connections: pool }),
    ]);
    for (const session of [a, b]) await session.send(utf8('p'));
    for (const session of [a, b]) {
      await session.receive();
      session.end();
    }
    await waitFor(() => server!.closes.length === 1);
    expect(await echo('q', pool)).toBe('echo q');
    expect(server.connections).toBe(2);
    expect(() => new ChannelConnections({ idleTimeoutMs: -1 })).toThrow(/expected idleTimeoutMs to be a whole number of at least 0, got -1/);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
