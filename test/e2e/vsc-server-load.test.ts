// Issue 13, load: 2,000 concurrent unauthenticated WebSocket connections (they never start the Noise
// handshake) from 40 loopback addresses against one real `vsc server start` with its default limits.
// Meanwhile cards are inserted and removed from 127.0.0.1: the server stays under a memory cap,
// serves them, and once the flood ends its connections drop back and new clients are served. The
// caps themselves: connections over the per-peer and global caps are cut at accept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { insertCard, mukFromOverride, removeCard, unchangedUpload } from '../../src/vsc-client/index.js';
import { DEFAULT_LIMITS } from '../../src/vsc-server/index.js';
import { SPAWNED_PASSWORD, startSpawnedServer, type SpawnedServer } from '../support/index.js';

const FLOOD_ADDRESSES = Array.from({ length: 40 }, (_, i) => `127.1.0.${i + 1}`);
const PER_ADDRESS = 50; // 40 x 50 = 2,000, under the per-peer cap of 64
const MEMORY_CAP_MIB = 300;
const CARDS = Array.from({ length: 4 }, (_, i) => `LOAD-${i}`);
const MUK = mukFromOverride('load-machine');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Raw WebSocket connections that stay silent; each one the server closes (pre-auth deadline) is opened again. */
class Flood {
  open = 0;
  opened = 0;
  refused = 0;
  #running = true;
  readonly #sockets = new Set<WebSocket>();
  constructor(private readonly url: string) {}

  /** Each address opens its connections ~16 a second, under its 20 sessions a second. */
  async start(): Promise<void> {
    await Promise.all(FLOOD_ADDRESSES.map(async (address) => {
      for (let i = 0; i < PER_ADDRESS && this.#running; i++) {
        this.#connect(address);
        await sleep(60);
      }
    }));
  }

  #connect(address: string): void {
    if (!this.#running) return;
    const socket = new WebSocket(this.url, { localAddress: address });
    this.#sockets.add(socket);
    let wasOpen = false;
    socket.on('open', () => {
      wasOpen = true;
      this.open++;
      this.opened++;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      if (wasOpen) this.open--;
      else this.refused++;
      // Again, a little later: the flood keeps its 2,000 while it runs.
      if (this.#running) setTimeout(() => this.#connect(address), wasOpen ? 10 : 250);
    });
  }

  stop(): void {
    this.#running = false;
    for (const socket of this.#sockets) socket.terminate();
  }
}

async function cycle(server: SpawnedServer, serial: string): Promise<number> {
  const started = performance.now();
  const inserted = await insertCard(server.endpoint, serial, { password: SPAWNED_PASSWORD }, MUK);
  await removeCard(server.endpoint, serial, unchangedUpload(inserted, MUK, inserted.counterWindow[0]));
  return performance.now() - started;
}

describe('2,000 concurrent unauthenticated connections', { timeout: 180_000 }, () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await startSpawnedServer();
    for (const serial of CARDS) await server.enroll(serial);
  }, 60_000);
  afterAll(async () => server?.close());

  it('the server stays under its memory cap, serves legitimate clients meanwhile, and recovers when the flood ends', async () => {
    const idleRss = server.rssMiB();
    const flood = new Flood(server.url);
    let peakRss = idleRss;
    let peakOpen = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, server.rssMiB());
      peakOpen = Math.max(peakOpen, flood.open);
    }, 100);
    const floodStarted = performance.now();
    try {
      await flood.start();
      await expect.poll(() => flood.open, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(1950);
      const reachedMs = performance.now() - floodStarted;
      const serverConnections = await server.metric('vsc_connections_active');
      // Legitimate clients while the flood holds, for 8 s (past the 5 s pre-authentication deadline, so the
      // server closes silent connections and the flood opens them again): every card inserted and removed, all at once.
      const cycles: number[] = [];
      const holdUntil = performance.now() + 8000;
      // A round is 8 sessions from 127.0.0.1; a pause after each keeps the address under its 20 sessions a second.
      while (performance.now() < holdUntil) {
        cycles.push(...(await Promise.all(CARDS.map((serial) => cycle(server, serial)))));
        await sleep(1000);
      }
      const openDuring = flood.open;
      console.log(`flood: ${flood.open} open after ${Math.round(reachedMs)} ms (server counts ${serverConnections}); ${flood.opened} opened, ${flood.refused} refused in all; ${cycles.length} legitimate insert+remove under flood, ms: ${cycles.map((ms) => Math.round(ms)).join(', ')}; ${openDuring} still open after them`);
      expect(serverConnections).toBeGreaterThanOrEqual(1950);
      expect(openDuring).toBeGreaterThanOrEqual(1500);
      // Silent connections were closed at the deadline (and opened again by the flood).
      expect(flood.opened).toBeGreaterThan(2 * 1950);
      expect(cycles.length).toBeGreaterThanOrEqual(2 * CARDS.length);
      for (const ms of cycles) expect(ms).toBeLessThan(15_000);
      expect(await server.metric('vsc_operations_total', { operation: 'insert', outcome: 'ok' })).toBe(cycles.length);
    } finally {
      flood.stop();
      clearInterval(sampler);
    }
    console.log(`server RSS: ${idleRss.toFixed(1)} MiB idle, ${peakRss.toFixed(1)} MiB peak under ${peakOpen} open connections (cap ${MEMORY_CAP_MIB} MiB)`);
    expect(peakOpen).toBeGreaterThanOrEqual(1950);
    expect(peakRss).toBeLessThan(MEMORY_CAP_MIB);

    // Recovery: the connections drop back, and a new client is served.
    const stopped = performance.now();
    await expect.poll(() => server.metric('vsc_connections_active'), { timeout: 15_000, interval: 100 }).toBe(0);
    console.log(`connections back to 0 ${Math.round(performance.now() - stopped)} ms after the flood ended`);
    expect(await cycle(server, CARDS[0]!)).toBeLessThan(10_000);
    expect(server.process.running()).toBe(true);
  });
});

describe('connection caps', { timeout: 60_000 }, () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await startSpawnedServer(['--max-connections', '30', '--max-connections-per-peer', '10', '--sessions-per-peer-per-second', '1000']);
  }, 60_000);
  afterAll(async () => server?.close());

  /** Opens `count` raw connections from `address` at once; resolves with the ones that opened (still open). */
  async function connectAll(address: string, count: number): Promise<WebSocket[]> {
    const results = await Promise.all(Array.from({ length: count }, () => new Promise<WebSocket | undefined>((resolve) => {
      const socket = new WebSocket(server.url, { localAddress: address });
      socket.on('open', () => resolve(socket));
      socket.on('error', () => resolve(undefined));
    })));
    return results.filter((socket): socket is WebSocket => socket !== undefined);
  }

  it('cuts connections over the per-peer cap, then over the global cap, before any handshake; they come back when closed', async () => {
    expect(DEFAULT_LIMITS.maxConnectionsPerPeer).toBe(64);
    const first = await connectAll('127.2.0.1', 25);
    expect(first).toHaveLength(10);
    const others = (await Promise.all(['127.2.0.2', '127.2.0.3', '127.2.0.4'].map((address) => connectAll(address, 10)))).flat();
    expect(others).toHaveLength(20); // 30 in all: the global cap
    expect(await server.metric('vsc_connections_active')).toBe(30);
    expect(await server.metric('vsc_limit_refusals_total', { kind: 'connections', scope: 'peer' })).toBe(15);
    expect(await server.metric('vsc_limit_refusals_total', { kind: 'connections', scope: 'global' })).toBe(10);
    expect(await server.metric('vsc_limit', { name: 'maxConnections' })).toBe(30);
    for (const socket of [...first, ...others]) socket.terminate();
    await expect.poll(() => server.metric('vsc_connections_active'), { timeout: 5000 }).toBe(0);
    expect(await connectAll('127.2.0.1', 10)).toHaveLength(10);
  });
});
