// The VSC server's kept connections (issue 18): a client's operations share one WebSocket, each still
// its own Noise NK session; a refusal ends its session and keeps the connection; each later session
// counts against the session rate like a new connection and is cut with 1013 when over it; an idle
// connection is closed by the server.
import { afterEach, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { ChannelConnections, ChannelError } from '../../src/channel/index.js';
import { extendCounterWindow, insertCard, mukFromOverride, OperationRefused, removeCard, unchangedUpload, enrollCard, type ServerEndpoint } from '../../src/vsc-client/index.js';
import type { ServerLimits } from '../../src/vsc-server/index.js';
import { startInProcessServer, type InProcessServer } from '../support/index.js';

const PASSWORD = utf8('correct horse battery staple');
const MUK = mukFromOverride('kept-connections machine');

let deployment: InProcessServer | undefined;
let pool: ChannelConnections | undefined;
afterEach(async () => {
  pool?.close();
  await deployment?.close();
  deployment = undefined;
});

/** A server with `limits`, one enrolled card, and an endpoint that keeps its connections. */
async function setUp(limits: Partial<ServerLimits> = {}): Promise<ServerEndpoint> {
  deployment = await startInProcessServer('vsc-kept-test-', { limits });
  await enrollCard(deployment.endpoint, 'KEPT-1', await deployment.store.create('KEPT-1'), PASSWORD, MUK);
  pool = new ChannelConnections();
  return { ...deployment.endpoint, connections: pool, retryMs: 0 };
}

describe('kept connections to the VSC server', { timeout: 30_000 }, () => {
  it('insert, extends and remove run on one connection, each its own session; a refusal closes the connection', async () => {
    const endpoint = await setUp();
    const inserted = await insertCard(endpoint, 'KEPT-1', { password: PASSWORD }, MUK);
    const holder = { muk: MUK, holderSecret: inserted.holderSecret };
    const first = await extendCounterWindow(endpoint, 'KEPT-1', holder);
    const second = await extendCounterWindow(endpoint, 'KEPT-1', holder);
    expect(second[0]).toBeGreaterThan(first[0]);
    expect(pool!.reused, 'each operation after the first found the kept connection').toBe(2);
    // Refused (another machine's MUK is not the holder): the refusal ends the connection as well.
    const wrongHolder = await extendCounterWindow(endpoint, 'KEPT-1', { muk: mukFromOverride('someone else'), holderSecret: inserted.holderSecret }).catch((error: unknown) => error);
    expect(wrongHolder).toBeInstanceOf(OperationRefused);
    await removeCard(endpoint, 'KEPT-1', unchangedUpload(inserted, MUK, second[0]));
    expect((await deployment!.store.show('KEPT-1')).state).toBe('idle');
    expect(pool!.reused, 'the remove after the refusal came on a new connection').toBe(3);
  });

  it('each later session on a kept connection counts against the peer\'s session rate: over it, the server cuts the connection (1013)', async () => {
    const endpoint = await setUp({ sessionsPerPeerPerSecond: 2 });
    // Enrollment used the burst of 2 a second on its own connection: wait for the refill.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const inserted = await insertCard(endpoint, 'KEPT-1', { password: PASSWORD }, MUK);
    const holder = { muk: MUK, holderSecret: inserted.holderSecret };
    await extendCounterWindow(endpoint, 'KEPT-1', holder);
    const over = await extendCounterWindow(endpoint, 'KEPT-1', holder).catch((error: unknown) => error);
    expect(over).toBeInstanceOf(ChannelError);
    expect((over as ChannelError).code).toBe('channel.connect');
    expect((over as ChannelError).message).toMatch(/too many new sessions from this address; try again later \(close code 1013\)/);
  });

  it('the server closes a connection left idle between sessions; the next operation opens a new one', async () => {
    const endpoint = await setUp({ idleTimeoutMs: 200 });
    const inserted = await insertCard(endpoint, 'KEPT-1', { password: PASSWORD }, MUK);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await extendCounterWindow(endpoint, 'KEPT-1', { muk: MUK, holderSecret: inserted.holderSecret });
    expect(pool!.reused, 'the idle connection was closed by the server, not reused').toBe(0);
  });
});
