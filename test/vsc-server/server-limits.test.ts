// The server's limits (src/vsc-server/server-limits.ts, peer-guard.ts, log-budget.ts): defaults
// merged, validated and frozen; peers keyed by address (IPv6 by /64); caps, per-peer-then-global
// rates and growing blocks after failed proofs, as PeerGuard applies them; the log line budget.
import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../src/errors/index.js';
import {
  DEFAULT_LIMITS, LIMIT_NAMES, PeerGuard, PeerLineBudget, peerKey, resolveServerLimits, resolveServerOptions,
  type GuardRefusal, type ServerKeys, type ServerLimits, type VscDatabase,
} from '../../src/vsc-server/index.js';

describe('resolveServerLimits', () => {
  it('fills every default and freezes; undefined keeps the default', () => {
    expect(resolveServerLimits(undefined)).toBe(DEFAULT_LIMITS);
    const resolved = resolveServerLimits({ maxConnections: 10, maxConnectionsPerPeer: 2, sessionsPerSecond: undefined });
    expect(resolved).toEqual({ ...DEFAULT_LIMITS, maxConnections: 10, maxConnectionsPerPeer: 2 });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
    expect(LIMIT_NAMES).toHaveLength(Object.keys(DEFAULT_LIMITS).length);
  });

  it('per-peer limits apply before the global ones in the defaults: the defaults never let one peer hold the whole budget', () => {
    expect(DEFAULT_LIMITS.maxConnectionsPerPeer * 10).toBeLessThan(DEFAULT_LIMITS.maxConnections);
    expect(DEFAULT_LIMITS.sessionsPerPeerPerSecond * 10).toBeLessThan(DEFAULT_LIMITS.sessionsPerSecond);
    expect(DEFAULT_LIMITS.proofsPerPeerPerMinute / 60).toBeLessThan(DEFAULT_LIMITS.proofsPerSecond / 10);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', 5, /expected server limits as an object, got 5/],
    ['an unknown limit', { maxSockets: 1 }, /expected a server limit of maxConnections, .*, got "maxSockets"/],
    ['zero connections', { maxConnections: 0 }, /expected server limit maxConnections to be a whole number in 1\.\.2147483647, got 0/],
    ['a fraction', { sessionsPerSecond: 1.5 }, /sessionsPerSecond to be a whole number .*, got 1\.5/],
    ['a string', { proofsPerSecond: '10' }, /proofsPerSecond to be a whole number .*, got string/],
    ['NaN', { maxSessions: Number.NaN }, /maxSessions to be a whole number .*, got NaN/],
    ['beyond 32 bits', { failedProofBlockSeconds: 2 ** 31 }, /failedProofBlockSeconds to be a whole number in 1\.\.2147483647, got 2147483648/],
    ['a pre-auth deadline under 100 ms', { preAuthTimeoutMs: 99 }, /preAuthTimeoutMs to be a whole number in 100\.\./],
    ['a queue smaller than one message', { maxQueuedBytes: 1000 }, /maxQueuedBytes to be a whole number in 65535\.\./],
    ['a per-peer cap above the global one', { maxConnections: 10, maxConnectionsPerPeer: 11 }, /expected maxConnectionsPerPeer \(11\) not above maxConnections \(10\)/],
    ['a per-peer session cap above the global one', { maxSessionsPerPeer: 2000 }, /expected maxSessionsPerPeer \(2000\) not above maxSessions \(1024\)/],
    ['a first block longer than the longest', { failedProofBlockSeconds: 7200 }, /expected failedProofBlockSeconds \(7200\) not above maxFailedProofBlockSeconds \(3600\)/],
  ];
  it.each(bad)('refuses %s as a usage error', (_, limits, expected) => {
    let error: unknown;
    try {
      resolveServerLimits(limits as Partial<ServerLimits>);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(ExitCode.usage);
    expect((error as UsageError).message).toMatch(expected);
  });

  it('is part of the server options, with the events retention', () => {
    const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
    const keys: ServerKeys = { channelPrivateKey: key(1), channelPublicKey: key(2), signingSeed: key(3), keyfileSecret: key(4), masterKey: key(5) };
    const database = { db: {}, dialect: 'sqlite' } as unknown as VscDatabase;
    const resolved = resolveServerOptions({ keys, database, limits: { maxSessions: 7, maxSessionsPerPeer: 7 } });
    expect(resolved.limits).toEqual({ ...DEFAULT_LIMITS, maxSessions: 7, maxSessionsPerPeer: 7 });
    expect(resolved.eventsRetentionDays).toBe(90);
    expect(resolveServerOptions({ keys, database, eventsRetentionDays: 0 }).eventsRetentionDays).toBe(0);
    expect(() => resolveServerOptions({ keys, database, limits: { maxSessions: 0 } })).toThrow(/maxSessions/);
    for (const days of [-1, 1.5, 10_001, '90']) {
      expect(() => resolveServerOptions({ keys, database, eventsRetentionDays: days as number })).toThrow(/expected events retention in whole days, 0\.\.10000 \(0 keeps every event\), got/);
    }
  });
});

describe('peerKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s is limited as %s', (address, key) => {
    expect(peerKey(address)).toBe(key);
  });
});

function guardWith(limits: Partial<ServerLimits>): { guard: PeerGuard; refusals: GuardRefusal[]; open: number[] } {
  const refusals: GuardRefusal[] = [];
  const open: number[] = [];
  const guard = new PeerGuard(resolveServerLimits(limits), { refused: (refusal) => refusals.push(refusal), connectionsChanged: (count) => open.push(count) });
  return { guard, refusals, open };
}

describe('PeerGuard', () => {
  it('caps open connections per peer, then globally, and gives a slot back once', () => {
    const { guard, refusals, open } = guardWith({ maxConnections: 3, maxConnectionsPerPeer: 2 });
    const a1 = guard.admitConnection('10.0.0.1');
    const a2 = guard.admitConnection('10.0.0.1');
    expect([a1.admitted, a2.admitted]).toEqual([true, true]);
    expect(guard.admitConnection('10.0.0.1')).toMatchObject({ admitted: false, refusal: { kind: 'connections', scope: 'peer', peer: '10.0.0.1' } });
    expect(guard.admitConnection('10.0.0.2').admitted).toBe(true);
    expect(guard.admitConnection('10.0.0.3')).toMatchObject({ admitted: false, refusal: { kind: 'connections', scope: 'global' } });
    if (!a1.admitted) throw new Error('unreachable');
    a1.release();
    a1.release();
    expect(guard.connections).toBe(2);
    expect(guard.admitConnection('10.0.0.3').admitted).toBe(true);
    expect(refusals.map((refusal) => refusal.scope)).toEqual(['peer', 'global']);
    expect(open).toEqual([1, 2, 3, 2, 3]);
  });

  it('rate-limits new sessions per peer first: a peer over its own limit does not spend the global budget', async () => {
    const { guard } = guardWith({ sessionsPerPeerPerSecond: 3, sessionsPerSecond: 5 });
    const flood = await Promise.all(Array.from({ length: 100 }, () => guard.admitSessionRate('10.0.0.1')));
    expect(flood.filter((refusal) => refusal === undefined)).toHaveLength(3);
    expect(flood.at(-1)).toMatchObject({ kind: 'session', scope: 'peer', retryInS: 1 });
    // 97 refusals later, the global budget still has 2 left for everyone else.
    expect(await guard.admitSessionRate('10.0.0.2')).toBeUndefined();
    expect(await guard.admitSessionRate('10.0.0.3')).toBeUndefined();
    expect(await guard.admitSessionRate('10.0.0.4')).toMatchObject({ kind: 'session', scope: 'global' });
  });

  it('rate-limits challenges and caps sessions under way', async () => {
    const { guard } = guardWith({ proofsPerPeerPerMinute: 2, maxSessions: 3, maxSessionsPerPeer: 3 });
    const first = await guard.admitOperation('10.0.0.1');
    const second = await guard.admitOperation('10.0.0.1');
    expect(await guard.admitOperation('10.0.0.1')).toMatchObject({ admitted: false, refusal: { kind: 'proof', scope: 'peer' } });
    expect((await guard.admitOperation('10.0.0.2')).admitted).toBe(true);
    expect(guard.sessions).toBe(3);
    expect(await guard.admitOperation('10.0.0.3')).toMatchObject({ admitted: false, refusal: { kind: 'sessions', scope: 'global' } });
    if (!first.admitted || !second.admitted) throw new Error('expected both admitted');
    first.release();
    expect((await guard.admitOperation('10.0.0.3')).admitted).toBe(true);
  });

  it('counts proofs in flight against the failed-proof budget: a parallel burst cannot overshoot it', async () => {
    const { guard } = guardWith({ failedProofsPerPeerPerMinute: 3 });
    const burst = await Promise.all(Array.from({ length: 10 }, () => guard.admitOperation('10.0.0.1')));
    expect(burst.filter((admission) => admission.admitted)).toHaveLength(3);
    expect(burst.at(-1)).toMatchObject({ admitted: false, refusal: { kind: 'unproven', scope: 'peer', retryInS: 1 } });
    // One of the three failed, then ended: two failures' worth of room is left, one of it in flight.
    await guard.recordFailedProof('10.0.0.1');
    const [first] = burst;
    if (first?.admitted !== true) throw new Error('expected the first admitted');
    first.release();
    expect((await guard.admitOperation('10.0.0.1')).admitted).toBe(false); // 1 failed + 2 in flight
    expect((await guard.admitOperation('10.0.0.2')).admitted).toBe(true);
  });

  it('blocks a peer after its failed proofs, and no one else', async () => {
    const { guard } = guardWith({ failedProofsPerPeerPerMinute: 2, failedProofBlockSeconds: 10, maxFailedProofBlockSeconds: 15 });
    await guard.recordFailedProof('10.0.0.1');
    expect((await guard.admitOperation('10.0.0.1')).admitted).toBe(true);
    await guard.recordFailedProof('10.0.0.1'); // the second in a minute: the budget is used up
    const blocked = await guard.admitOperation('10.0.0.1');
    expect(blocked).toMatchObject({ admitted: false, refusal: { kind: 'failed-proof', scope: 'peer', retryInS: 10 } });
    await guard.recordFailedProof('10.0.0.1'); // one in flight while blocked: no second strike
    expect(await guard.admitOperation('10.0.0.1')).toMatchObject({ refusal: { retryInS: 10 } });
    expect((await guard.admitOperation('10.0.0.2')).admitted).toBe(true);
    expect((await guard.admitOperation('::ffff:10.0.0.1')).admitted).toBe(false);
  });

  it('doubles the block for a peer blocked again within a day, up to the longest', async () => {
    const { guard } = guardWith({ failedProofsPerPeerPerMinute: 1, failedProofBlockSeconds: 1, maxFailedProofBlockSeconds: 3 });
    const blockFor = async (): Promise<number> => {
      await guard.recordFailedProof('10.0.0.9');
      await guard.recordFailedProof('10.0.0.9'); // in flight when the block began: no second strike
      const admission = await guard.admitOperation('10.0.0.9');
      if (admission.admitted) throw new Error('expected a block');
      return admission.refusal.retryInS;
    };
    expect(await blockFor()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await blockFor()).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect(await blockFor()).toBe(3); // 4 s, capped
  });
});

describe('PeerLineBudget', () => {
  it('writes N lines per peer and window, then one summary of the rest', () => {
    let now = 0;
    const budget = new PeerLineBudget(2, 60_000, () => now);
    const verdicts = Array.from({ length: 5 }, () => budget.take('a'));
    expect(verdicts.map((verdict) => verdict.write)).toEqual([true, true, false, false, false]);
    expect(budget.take('b').write).toBe(true);
    now = 60_000;
    expect(budget.take('a')).toEqual({ write: true, summary: { peer: 'a', suppressed: 3 } });
    now = 120_000;
    expect(budget.sweep()).toEqual([]);
    for (let i = 0; i < 3; i++) budget.take('c');
    now = 180_000;
    expect(budget.sweep()).toEqual([{ peer: 'c', suppressed: 1 }]);
    expect(budget.sweep()).toEqual([]);
    expect(() => new PeerLineBudget(0)).toThrow(/expected log lines per peer as a positive whole number, got 0/);
  });
});
