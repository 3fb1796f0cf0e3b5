// Issue 13, attack: 10,000 wrong proofs from one address (127.0.0.2, the deployment's master key,
// random auth keys) against a real `vsc server start` with its default limits. They are slowed (cut
// at connect past 20 sessions a second) and then refused ('retry-later' once the address is blocked),
// only a handful reach the password check, while the owner inserts and removes from 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelError, connectSession } from '../../src/channel/index.js';
import { insertCard, mukFromOverride, removeCard, unchangedUpload } from '../../src/vsc-client/index.js';
import { decodeChallenge, decodeResult, encodeHello, encodeProof, masterProof, newChallengeNonce } from '../../src/vsc-protocol/index.js';
import { DEFAULT_LIMITS } from '../../src/vsc-server/index.js';
import { SPAWNED_PASSWORD, startSpawnedServer, type SpawnedServer } from '../support/index.js';

const SERIAL = 'RATE-1';
const ATTACKER = '127.0.0.2';
const ATTEMPTS = 10_000;
const PARALLEL = 32;
const OWNER_MUK = mukFromOverride('owner-machine');
let server: SpawnedServer;

beforeAll(async () => {
  server = await startSpawnedServer();
  // The owner's machine enrolled the card: its wrong-password bucket is its own, apart from the attacker's.
  await server.enroll(SERIAL, OWNER_MUK);
}, 60_000);
afterAll(async () => server?.close());

const random32 = (): Uint8Array => new Uint8Array(randomBytes(32));

/** One wrong proof, as far as the server lets it go: 'cut' at connect, a refusal reason, or 'ok'. */
async function wrongProof(): Promise<{ outcome: string; message?: string }> {
  let session;
  try {
    session = await connectSession(server.url, server.endpoint.serverKey, { localAddress: ATTACKER, timeoutMs: 20_000 });
  } catch (error) {
    if (error instanceof ChannelError && error.code === 'channel.connect') return { outcome: 'cut' };
    throw error;
  }
  try {
    await session.send(encodeHello({ operation: 'insert', serial: SERIAL }));
    const answer = decodeChallenge('insert', await session.receive());
    if (answer.refused) return { outcome: answer.refusal.reason, message: answer.refusal.message };
    const ri2 = newChallengeNonce();
    const proof = { authKey: random32(), ri2, masterProof: masterProof(server.masterKey, answer.message.ri1, ri2, SERIAL), muk: random32(), holderSecret: random32() };
    await session.send(encodeProof('insert', proof));
    const result = decodeResult('insert', await session.receive());
    return result.refused ? { outcome: result.refusal.reason, message: result.refusal.message } : { outcome: 'ok' };
  } finally {
    session.close();
  }
}

/** The owner's insert then remove from 127.0.0.1, timed. */
async function ownerCycle(): Promise<number> {
  const started = performance.now();
  const inserted = await insertCard(server.endpoint, SERIAL, { password: SPAWNED_PASSWORD }, OWNER_MUK);
  await removeCard(server.endpoint, SERIAL, unchangedUpload(inserted, OWNER_MUK, inserted.counterWindow[0]));
  return performance.now() - started;
}

describe('10,000 wrong proofs from one address', { timeout: 180_000 }, () => {
  it('are slowed, then refused; a handful reach the password check; the owner still inserts from another address', async () => {
    const outcomes = new Map<string, number>();
    const retryMessages = new Set<string>();
    let next = 0;
    const started = performance.now();
    const attack = Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < ATTEMPTS) {
        next++;
        const { outcome, message } = await wrongProof();
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome === 'retry-later' && message !== undefined) retryMessages.add(message.replace(/\d+ s$/, 'N s'));
      }
    }));
    // The owner, three times while the attack runs.
    const ownerTimes: number[] = [];
    for (let round = 0; round < 3; round++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      ownerTimes.push(await ownerCycle());
    }
    await attack;
    const attackSeconds = (performance.now() - started) / 1000;

    const count = (outcome: string): number => outcomes.get(outcome) ?? 0;
    const reached = count('authentication');
    console.log(`wrong proofs: ${ATTEMPTS} in ${attackSeconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(outcomes))}; owner insert+remove ${ownerTimes.map((ms) => `${Math.round(ms)} ms`).join(', ')}`);
    expect([...outcomes.values()].reduce((sum, n) => sum + n, 0)).toBe(ATTEMPTS);
    expect([...outcomes.keys()].sort()).toEqual(['authentication', 'cut', 'retry-later']);
    // Failures and proofs in flight never exceed the per-address budget within the minute.
    expect(reached).toBeGreaterThanOrEqual(1);
    expect(reached).toBeLessThanOrEqual(DEFAULT_LIMITS.failedProofsPerPeerPerMinute);
    expect(count('cut')).toBeGreaterThan(ATTEMPTS / 2); // slowed: past 20 sessions a second, HTTP 429 before any crypto
    expect(count('retry-later')).toBeGreaterThan(0); // refused before a challenge: blocked, or too many tries under way
    expect(retryMessages).toContain('too many wrong passwords from this address; retry in N s');
    for (const message of retryMessages) expect(message).toMatch(/; retry in N s$/);
    // The owner was never refused and never waited for the attacker (an Argon2id run each is most of the time).
    expect(ownerTimes).toHaveLength(3);
    for (const ms of ownerTimes) expect(ms).toBeLessThan(10_000);

    expect(await server.metric('vsc_operations_total', { operation: 'insert', outcome: 'authentication' })).toBe(reached);
    expect(await server.metric('vsc_operations_total', { operation: 'insert', outcome: 'ok' })).toBe(3);
    expect(await server.metric('vsc_limit_refusals_total', { kind: 'session', scope: 'peer' })).toBe(count('cut'));
    expect(await server.metric('vsc_limit_refusals_total', { kind: 'failed-proof', scope: 'peer' })).toBeGreaterThan(0);
    expect(await server.metric('vsc_limit_refusals_total', { kind: 'session', scope: 'global' })).toBe(0);
    expect(await server.metric('vsc_limit', { name: 'failedProofsPerPeerPerMinute' })).toBe(DEFAULT_LIMITS.failedProofsPerPeerPerMinute);
    // The log: at most 10 refusal lines a minute for the attacker, not 10,000.
    const attackerLines = server.process.stderr().split('\n').filter((line) => line.includes(ATTACKER));
    expect(attackerLines.length).toBeGreaterThan(0);
    expect(attackerLines.length).toBeLessThanOrEqual(10);
    expect(server.process.running()).toBe(true);
  });
});
