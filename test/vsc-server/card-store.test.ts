// The mediation state machine (patent 004 Fig. 4, [0074], [0081], [0091]-[0098]) on a real SQLite database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../../src/errors/index.js';
import { OperationRefused } from '../../src/vsc-protocol/index.js';
import { BACKOFF_MAX_MS, CardStore, MAX_BUCKET_FAILURES, REFUSAL_EVENT_PERIOD_MS, openDatabase, pruneStaleFailureBuckets, type Enrollment, type VscDatabase } from '../../src/vsc-server/index.js';
import { DEFAULT_KDF } from '../../src/vsc-protocol/index.js';
import { freshPostgresDatabase } from '../support/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const VERIFIER = bytes(1);
const MUK_A = bytes(0xa);
const MUK_B = bytes(0xb);
const HOLDER = bytes(0xc);
const ENROLLMENT: Enrollment = {
  kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: VERIFIER, sealed: bytes(3, 64), publicKey: bytes(4),
};

let dir: string;
let database: VscDatabase;
let clock: number;
let store: CardStore;
let databaseUrl: string;


async function refusal(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  return error as OperationRefused;
}

/** Enrolled from machine A; returns the recovery code. */
async function enrolledCard(serial = 'CARD-1'): Promise<string> {
  const token = await store.create(serial);
  return store.enroll(serial, token, MUK_A, ENROLLMENT);
}

const insert = (muk = MUK_A, serial = 'CARD-1') => store.insert(serial, VERIFIER, { muk: muk, holderHash: HOLDER });

// The same store code on both databases the server supports.
describe.each(['sqlite', 'postgres'] as const)('on %s', (dialect) => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-store-test-'));
    if (dialect === 'postgres') {
      databaseUrl = await freshPostgresDatabase(inject('postgresUrl'));
      database = await openDatabase(databaseUrl);
    } else {
      database = await openDatabase(join(dir, 'vsc.db'));
    }
    expect(database.dialect).toBe(dialect);
    clock = 1_700_000_000_000;
    store = new CardStore(database, { now: () => clock, counterWindow: 100n });
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('card store: the transitions of Fig. 4', () => {
    it('idle → insert → in-use → remove → idle, with the holder\'s MUK only while in use', async () => {
      await enrolledCard();
      expect((await store.show('CARD-1')).state).toBe('idle');
      const grant = await insert();
      expect(grant.sealed).toEqual(ENROLLMENT.sealed);
      expect(grant.sealedVersion).toBe(1n);
      expect(grant.counterWindow).toEqual([0n, 100n]);
      expect((await store.show('CARD-1')).state).toBe('in-use');
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 7n });
      const card = await store.show('CARD-1');
      expect(card).toMatchObject({ state: 'idle', sealedVersion: 2n, counterWindow: null });
      const row = await database.db.selectFrom('cards').select(['muk', 'holder_hash', 'sealed']).where('serial', '=', 'CARD-1').executeTakeFirstOrThrow();
      expect(row.muk).toBeNull();
      expect(row.holder_hash).toBeNull();
      expect(new Uint8Array(row.sealed!)).toEqual(bytes(5, 64));
      // Values 7..99 were not used and nobody drew after: the next insert starts at 7.
      expect((await insert()).counterWindow).toEqual([7n, 107n]);
    });

    it('the holder repeating an insert or a remove whose answer it lost gets the same answer, and nothing changes twice', async () => {
      await enrolledCard();
      const first = await insert(MUK_A);
      // Same MUK, same holder secret: the answer that a dropped connection lost.
      expect((await insert(MUK_A)).counterWindow).toEqual(first.counterWindow);
      // Same machine, another process (another holder secret): refused.
      expect((await refusal(store.insert('CARD-1', VERIFIER, { muk: MUK_A, holderHash: bytes(0xd) }))).reason).toBe('wrong-state');
      const upload = { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 3n };
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, upload);
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, upload);
      expect(await store.show('CARD-1')).toMatchObject({ state: 'idle', sealedVersion: 2n });
      expect((await store.events('CARD-1')).slice(-2).map((event) => event.detail)).toEqual(['next counter 3', 'repeated by its holder: already removed']);
      // Another holder secret, or another upload, is not the lost answer.
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: bytes(0xd) }, upload))).reason).toBe('holder-mismatch');
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { ...upload, sealedVersion: 3n }))).reason).toBe('holder-mismatch');
      // Once another machine inserted it, the old holder's repeat is refused.
      await insert(MUK_B);
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, upload))).reason).toBe('holder-mismatch');
      expect((await store.show('CARD-1')).state).toBe('in-use');
    });

    it('the machine repeating a recover whose answer it lost is told it succeeded; no other machine is', async () => {
      await enrolledCard();
      await insert(MUK_A);
      await store.recover('CARD-1', VERIFIER, MUK_A);
      await store.recover('CARD-1', VERIFIER, MUK_A);
      expect((await store.events('CARD-1')).at(-1)).toMatchObject({ operation: 'recover', outcome: 'ok', fromState: 'idle', toState: 'idle', detail: 'repeated by the machine that recovered it: already idle' });
      expect((await refusal(store.recover('CARD-1', VERIFIER, MUK_B))).reason).toBe('wrong-state');
      // The card's former holder secret does not pass for a repeated remove after a recover.
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 1n, nextCounter: 0n }))).reason).toBe('holder-mismatch');
      // Inserted again and removed: a late repeat of the old recover no longer passes.
      await insert(MUK_A);
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 150n });
      expect((await refusal(store.recover('CARD-1', VERIFIER, MUK_A))).reason).toBe('wrong-state');
    });

    it('in-use → recover → idle only from the machine that holds it; the whole window counts as used', async () => {
      await enrolledCard();
      await insert(MUK_A);
      const other = await refusal(store.recover('CARD-1', VERIFIER, MUK_B));
      expect(other.reason).toBe('muk-mismatch');
      expect(other.exitCode).toBe(ExitCode.mukMismatch);
      expect((await store.show('CARD-1')).state).toBe('in-use');
      await store.recover('CARD-1', VERIFIER, MUK_A);
      expect((await store.show('CARD-1')).state).toBe('idle');
      expect((await insert(MUK_B)).counterWindow).toEqual([100n, 200n]);
    });

    it('idle → destroy and in-use → destroy are terminal: every later operation is refused with exit 3', async () => {
      await enrolledCard('IDLE');
      await enrolledCard('USED');
      await insert(MUK_A, 'USED');
      for (const serial of ['IDLE', 'USED']) {
        await store.destroy(serial, { verifier: VERIFIER, muk: MUK_A });
        expect((await store.show(serial)).state).toBe('destroyed');
        for (const attempt of [
          () => store.insert(serial, VERIFIER, { muk: MUK_A, holderHash: HOLDER }),
          () => store.recover(serial, VERIFIER, MUK_A),
          () => store.destroy(serial, { verifier: VERIFIER, muk: MUK_A }),
        ]) {
          const refused = await refusal(attempt());
          expect(refused.reason).toBe('wrong-state');
          expect(refused.exitCode).toBe(ExitCode.refusedByState);
        }
        // The holder of the card destroyed under it is told so; to anyone else it is not theirs to remove.
        const removed = await refusal(store.remove(serial, { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(9), sealedVersion: 2n, nextCounter: 1n }));
        expect(removed.reason).toBe(serial === 'USED' ? 'wrong-state' : 'holder-mismatch');
        if (serial === 'USED') expect(removed.message).toMatch(/destroyed while this machine held it/);
      }
      const row = await database.db.selectFrom('cards').select('sealed').where('serial', '=', 'USED').executeTakeFirstOrThrow();
      expect(row.sealed).toBeNull();
    });

    it('refuses the transitions Fig. 4 does not have: insert when in use, remove and recover when idle', async () => {
      await enrolledCard();
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(9), sealedVersion: 2n, nextCounter: 0n }))).reason).toBe('holder-mismatch');
      expect((await refusal(store.recover('CARD-1', VERIFIER, MUK_A))).reason).toBe('wrong-state');
      await insert(MUK_A);
      const second = await refusal(insert(MUK_B));
      expect(second.reason).toBe('wrong-state');
      // A refused insert never touches the holder's MUK: the holder can still recover, the refused machine cannot.
      expect((await refusal(store.recover('CARD-1', VERIFIER, MUK_B))).reason).toBe('muk-mismatch');
      await store.recover('CARD-1', VERIFIER, MUK_A);
    });

    it('remove needs the holder: the same MUK with another holder secret is refused, and so is a counter outside the window', async () => {
      await enrolledCard();
      await insert(MUK_A);
      const upload = { sealed: bytes(5), sealedVersion: 2n, nextCounter: 1n };
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: bytes(0xd) }, upload))).reason).toBe('holder-mismatch');
      expect((await refusal(store.remove('CARD-1', { muk: MUK_B, holderHash: HOLDER }, upload))).reason).toBe('holder-mismatch');
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { ...upload, nextCounter: 101n }))).reason).toBe('wrong-state');
      expect((await refusal(store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { ...upload, sealedVersion: 1n }))).reason).toBe('wrong-state');
      expect((await store.show('CARD-1')).state).toBe('in-use');
    });
  });

  describe('card store: per-serial exclusion ([0081])', () => {
    it('an operation running on a serial (its row locked by another server process) refuses the others at once, not other serials; a dead process releases it', async () => {
      if (dialect !== 'postgres') return void expect(dialect).toBe('sqlite'); // one SQLite server serialises its transactions: see the 16-way race below
      await enrolledCard('A');
      await enrolledCard('B');
      // Another server process, mid-operation on A: a connection of its own holding A's row lock.
      const other = new pg.Client({ connectionString: databaseUrl });
      await other.connect();
      other.on('error', () => undefined);
      await other.query('BEGIN');
      await other.query("SELECT serial FROM cards WHERE serial = 'A' FOR UPDATE");
      const started = Date.now();
      for (const attempt of [() => insert(MUK_A, 'A'), () => store.recover('A', VERIFIER, MUK_A), () => store.destroy('A', { verifier: VERIFIER, muk: MUK_A }), () => store.copy('A', 'A2')]) {
        const busy = await refusal(attempt());
        expect(busy.reason).toBe('busy');
        expect(busy.exitCode).toBe(ExitCode.refusedByState);
      }
      expect(Date.now() - started, 'refused at once, not queued behind the lock').toBeLessThan(2_000);
      await insert(MUK_A, 'B');
      // That process dies mid-transaction: its connection ends, its transaction rolls back, the lock goes.
      const pid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await sql`SELECT pg_terminate_backend(${pid})`.execute(database.db);
      await other.end().catch(() => undefined);
      expect((await insert(MUK_A, 'A')).counterWindow).toEqual([0n, 100n]);
      expect((await store.events('A')).filter((event) => event.outcome === 'refused: busy')).toHaveLength(4);
    });

    it('a write killed before its commit leaves nothing behind', async () => {
      await enrolledCard();
      const crashing = new CardStore(database, { now: () => clock, counterWindow: 100n, beforeCommit: () => { throw new Error('killed before the commit'); } });
      await expect(crashing.insert('CARD-1', VERIFIER, { muk: MUK_A, holderHash: HOLDER })).rejects.toThrow('killed before the commit');
      expect(await store.show('CARD-1')).toMatchObject({ state: 'idle', counterWindow: null });
      expect((await store.events('CARD-1')).map((event) => event.operation)).toEqual(['create', 'enroll']);
      expect((await insert()).counterWindow).toEqual([0n, 100n]); // the window drawn in the rolled-back transaction was never granted
    });

    it('16 concurrent inserts of one idle card: exactly one wins', async () => {
      await enrolledCard();
      const outcomes = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => insert(bytes(i + 1))));
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') expect((outcome.reason as OperationRefused).exitCode).toBe(ExitCode.refusedByState);
      }
    });

    it('an unknown serial answers like a wrong password (exit 4), never "unknown"', async () => {
      const unknown = await refusal(insert(MUK_A, 'NOPE'));
      expect(unknown.reason).toBe('authentication');
      expect(unknown.exitCode).toBe(ExitCode.authenticationFailed);
    });
  });

  describe('card store: owner authentication (DESIGN.md "Keys and secrets": per-machine buckets, back-off, recovery code)', () => {
    const WRONG = bytes(0xee);
    const strangerTry = (verifier = WRONG, serial = 'CARD-1') => store.insert(serial, verifier, { muk: MUK_B, holderHash: HOLDER });
    /** A stranger's wrong try once its bucket's back-off has passed. */
    const strangerFailsAfterBackoff = async (): Promise<void> => {
      clock += BACKOFF_MAX_MS;
      expect((await refusal(strangerTry())).reason).toMatch(/^(authentication|blocked)$/);
    };

    it('a stranger\'s 20 wrong tries delay neither the owner on a machine that held the card nor the holder\'s extend and remove', async () => {
      await enrolledCard(); // machine A enrolled it: it has its own bucket
      for (let i = 0; i < 20; i++) await refusal(strangerTry()); // wrong passwords and retry-later answers
      expect((await store.show('CARD-1')).authFailures).toBeGreaterThan(0);
      const grant = await insert(MUK_A); // at once, no back-off
      expect(grant.counterWindow).toEqual([0n, 100n]);
      for (let i = 0; i < 20; i++) await refusal(strangerTry());
      expect(await store.extend('CARD-1', { muk: MUK_A, holderHash: HOLDER })).toEqual([100n, 200n]);
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 150n });
      expect((await store.show('CARD-1')).state).toBe('idle');
    });

    it('the back-off doubles from 1 s and refuses even the right password until it expires; a success empties the bucket', async () => {
      await enrolledCard();
      expect((await refusal(strangerTry())).reason).toBe('authentication');
      const early = await refusal(strangerTry(VERIFIER));
      expect(early.reason).toBe('retry-later');
      expect(early.message).toMatch(/retry in 1 s/);
      clock += 1000;
      expect((await refusal(strangerTry())).reason).toBe('authentication'); // second failure: 2 s
      clock += 1999;
      expect((await refusal(strangerTry(VERIFIER))).message).toMatch(/retry in 1 s/);
      clock += 1;
      await strangerTry(VERIFIER); // the owner, from a new machine, after the back-off
      expect(await store.show('CARD-1')).toMatchObject({ authFailures: 0, state: 'in-use' });
    });

    it('the back-off is capped at one hour', async () => {
      await enrolledCard();
      for (let i = 0; i < 40; i++) await strangerFailsAfterBackoff();
      const capped = await refusal(strangerTry());
      expect(capped.reason).toBe('retry-later');
      expect(capped.message).toMatch(/retry in 3600 s/);
    });

    it(`a bucket blocks after ${MAX_BUCKET_FAILURES} failures, only its own machines; the recovery code or an administrator lifts it`, async () => {
      const recoveryCode = await enrolledCard();
      for (let i = 0; i < MAX_BUCKET_FAILURES; i++) await strangerFailsAfterBackoff();
      clock += BACKOFF_MAX_MS;
      const blocked = await refusal(strangerTry(VERIFIER)); // even the right password, from a stranger's machine
      expect(blocked.reason).toBe('blocked');
      expect(blocked.exitCode).toBe(ExitCode.authenticationFailed);
      expect(await store.show('CARD-1')).toMatchObject({ blocked: true, authFailures: MAX_BUCKET_FAILURES });
      await insert(MUK_A); // the owner's machine is not blocked
      await store.remove('CARD-1', { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 0n });
      expect((await refusal(store.unblockWithRecoveryCode('CARD-1', 'A'.repeat(32)))).reason).toBe('authentication');
      await store.unblockWithRecoveryCode('CARD-1', recoveryCode);
      expect(await store.show('CARD-1')).toMatchObject({ blocked: false, authFailures: 0 });
      await strangerTry(VERIFIER);
      expect((await store.show('CARD-1')).state).toBe('in-use');
      expect((await store.events('CARD-1')).some((event) => event.operation === 'unblock' && event.detail === 'by recovery code')).toBe(true);
    });

    it('an administrator\'s unblock empties every bucket', async () => {
      await enrolledCard();
      await refusal(strangerTry());
      await refusal(store.recover('CARD-1', WRONG, MUK_A));
      expect((await store.show('CARD-1')).authFailures).toBe(2);
      await store.unblock('CARD-1');
      expect(await store.show('CARD-1')).toMatchObject({ blocked: false, authFailures: 0 });
      await insert(MUK_A);
    });

    it('enrolls once with the one-time token; a wrong token, a second enrollment and an unknown serial get the same refusal', async () => {
      const token = await store.create('CARD-1');
      const before = await refusal(insert());
      expect(before.reason).toBe('authentication'); // not enrolled: like a wrong password
      const wrongToken = await refusal(store.enroll('CARD-1', `${token}x`, MUK_A, ENROLLMENT));
      const recoveryCode = await store.enroll('CARD-1', token, MUK_A, ENROLLMENT);
      expect(recoveryCode).toMatch(/^[A-Z2-7]{32}$/);
      const again = await refusal(store.enroll('CARD-1', token, MUK_A, ENROLLMENT));
      const unknown = await refusal(store.enroll('NOPE-1', token, MUK_A, ENROLLMENT));
      for (const refused of [wrongToken, again, unknown]) expect(refused.reason).toBe('authentication');
      expect(again.message).toBe(wrongToken.message);
      expect(unknown.message.replace('NOPE-1', 'CARD-1')).toBe(wrongToken.message);
      expect((await store.kdfParameters('CARD-1')).salt).toEqual(ENROLLMENT.kdfSalt);
    });

    it('concurrent wrong tries on a serial that names no card all count, and none fails on the bucket\'s key', async () => {
      const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => strangerTry(WRONG, 'NOPE-CONCURRENT')));
      const reasons = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as OperationRefused).reason : 'ok'));
      for (const reason of reasons) expect(['authentication', 'retry-later']).toContain(reason);
      const bucket = await database.db.selectFrom('auth_failures').select('failures').where('serial', '=', 'NOPE-CONCURRENT').executeTakeFirstOrThrow();
      expect(bucket.failures).toBe(reasons.filter((reason) => reason === 'authentication').length);
    });

    it('unknown, unenrolled and enrolled serials look alike before the owner is proven', async () => {
      await enrolledCard('KNOWN');
      await store.create('BLANK');
      // KDF parameters: the design's defaults, and a salt that is the same at every ask
      for (const serial of ['NOPE', 'BLANK']) {
        const params = await store.kdfParameters(serial);
        expect(params).toMatchObject(DEFAULT_KDF);
        expect(params.salt).toHaveLength(16);
        expect(await store.kdfParameters(serial)).toEqual(params);
      }
      expect((await store.kdfParameters('NOPE')).salt).not.toEqual((await store.kdfParameters('BLANK')).salt);
      // wrong passwords, then tries within the back-off
      const answers = async (serial: string): Promise<string[]> => {
        const seen: string[] = [];
        for (const attempt of [() => strangerTry(WRONG, serial), () => strangerTry(WRONG, serial), () => store.recover(serial, WRONG, MUK_B), () => store.destroy(serial, { verifier: WRONG, muk: MUK_B })]) {
          const refused = await refusal(attempt());
          seen.push(`${refused.reason}: ${refused.message.replaceAll(serial, 'S')}`);
        }
        for (const attempt of [() => store.extend(serial, { muk: MUK_B, holderHash: HOLDER }), () => store.remove(serial, { muk: MUK_B, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 0n })]) {
          const refused = await refusal(attempt());
          seen.push(`${refused.reason}: ${refused.message.replaceAll(serial, 'S')}`);
        }
        return seen;
      };
      const known = await answers('KNOWN');
      expect(known[0]).toMatch(/^authentication: /);
      expect(known[1]).toMatch(/^retry-later: /);
      expect(known[4]).toMatch(/^holder-mismatch: /);
      expect(await answers('NOPE')).toEqual(known);
      expect(await answers('BLANK')).toEqual(known);
      // an in-use card answers a stranger's holder proof the same way
      await insert(MUK_A, 'KNOWN');
      const inUse = await refusal(store.extend('KNOWN', { muk: MUK_B, holderHash: HOLDER }));
      expect(`${inUse.reason}: ${inUse.message}`).toBe(known[4]!.replace(': ', ': ').replace('S', 'KNOWN'));
    });
  });

  describe('card store: idle failure buckets are forgotten, blocks of real cards are kept', () => {
    it('prunes buckets idle for a day unless they block a card that exists', async () => {
      await enrolledCard('REAL');
      const row = (serial: string, bucket: number, failures: number, at: number) => ({ serial, bucket: bytes(bucket), failures, last_failure_at: at });
      const old = clock - 2 * 24 * 3600 * 1000;
      await database.db.insertInto('auth_failures').values([
        row('REAL', 1, 7, old), // idle a day, not blocking: forgotten
        row('REAL', 2, MAX_BUCKET_FAILURES, old), // a block of a real card: kept
        row('REAL', 3, 3, clock), // recent: kept
        row('NOPE', 0, MAX_BUCKET_FAILURES, old), // a serial that names no card: forgotten
      ]).execute();
      expect(await pruneStaleFailureBuckets(database.db, clock - 24 * 3600 * 1000)).toBe(2);
      const left = await database.db.selectFrom('auth_failures').select(['serial', 'failures']).orderBy('failures').execute();
      expect(left.map((bucket) => `${bucket.serial}:${bucket.failures}`)).toEqual(['REAL:3', `REAL:${MAX_BUCKET_FAILURES}`]);
    });
  });

  describe('card store: events', () => {
    it('writes one event per transition and per refusal, in order', async () => {
      await enrolledCard();
      await insert(MUK_A);
      await refusal(insert(MUK_B));
      await store.recover('CARD-1', VERIFIER, MUK_A);
      const events = await store.events('CARD-1');
      expect(events.map((event) => `${event.operation}:${event.outcome}:${event.fromState ?? ''}->${event.toState ?? ''}`)).toEqual([
        'create:ok:->idle',
        'enroll:ok:idle->idle',
        'insert:ok:idle->in-use',
        'insert:refused: wrong-state:->',
        'recover:ok:in-use->idle',
      ]);
    });

    it('counts refusals of one kind in one row per hour, so a flood of refused tries grows a counter, not the table', async () => {
      await enrolledCard();
      clock = 1_700_000_000_000 - (1_700_000_000_000 % REFUSAL_EVENT_PERIOD_MS); // the start of an hour
      for (let i = 0; i < 30; i++) {
        await refusal(store.insert('CARD-1', bytes(0xee), { muk: MUK_B, holderHash: HOLDER })); // wrong, then backed off
        await refusal(store.extend('CARD-1', { muk: MUK_B, holderHash: HOLDER }));
      }
      clock += REFUSAL_EVENT_PERIOD_MS; // the next hour: new rows
      await refusal(store.extend('CARD-1', { muk: MUK_B, holderHash: HOLDER }));
      const refused = (await store.events('CARD-1')).filter((event) => event.outcome.startsWith('refused'));
      expect(refused.map((event) => `${event.operation}:${event.outcome}:${event.count}`)).toEqual([
        // in the order each kind first happened
        'insert:refused: authentication:1',
        'extend:refused: holder-mismatch:30',
        'insert:refused: retry-later:29',
        'extend:refused: holder-mismatch:1',
      ]);
    });
  });

  describe('card store: replace ([0007], [0062]) and copy ([0102])', () => {
    const remove = (serial: string, nextCounter: bigint, sealedVersion = 2n) =>
      store.remove(serial, { muk: MUK_A, holderHash: HOLDER }, { sealed: bytes(5, 64), sealedVersion, nextCounter });
    const row = (serial: string) => database.db.selectFrom('cards').selectAll().where('serial', '=', serial).executeTakeFirstOrThrow();

    it('exact replace: same card id, verifier and sealed information under the new serial; the old one is destroyed; the counter goes on past every granted value', async () => {
      await enrolledCard('OLD');
      await insert(MUK_A, 'OLD'); // lost on a dead machine with window 0..100
      expect(await store.replace('OLD', 'NEW', 'exact')).toEqual({});
      const [before, after] = [await row('OLD'), await row('NEW')];
      expect(before.state).toBe('destroyed');
      expect(before.sealed).toBeNull();
      expect(after).toMatchObject({ state: 'idle', enrolled: 1, muk: null });
      expect(new Uint8Array(after.card_id)).toEqual(new Uint8Array(before.card_id));
      expect(new Uint8Array(after.auth_verifier!)).toEqual(VERIFIER);
      expect(new Uint8Array(after.sealed!)).toEqual(ENROLLMENT.sealed);
      expect((await insert(MUK_B, 'NEW')).counterWindow).toEqual([100n, 200n]);
      // The lost machine comes back: its card is destroyed, its remove is refused.
      expect((await refusal(remove('OLD', 5n))).reason).toBe('wrong-state');
      expect((await store.events('OLD')).at(-2)).toMatchObject({ operation: 'replace', outcome: 'ok', fromState: 'in-use', toState: 'destroyed', detail: 'replaced by NEW (exact)' });
      expect((await store.events('NEW'))[0]).toMatchObject({ operation: 'create', detail: 'exact duplicate of OLD' });
    });

    it('complete replace: a fresh card id awaiting enrollment with a new token; the old one is destroyed', async () => {
      await enrolledCard('OLD');
      const { token } = await store.replace('OLD', 'NEW', 'complete');
      expect(token).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{31}$/);
      const [before, after] = [await row('OLD'), await row('NEW')];
      expect(before.state).toBe('destroyed');
      expect(after).toMatchObject({ state: 'idle', enrolled: 0, sealed: null, auth_verifier: null });
      expect(new Uint8Array(after.card_id)).not.toEqual(new Uint8Array(before.card_id));
      await store.enroll('NEW', token!, MUK_A, ENROLLMENT);
      expect((await insert(MUK_A, 'NEW')).counterWindow).toEqual([0n, 100n]);
    });

    it('refuses to replace or copy onto an existing serial, from a destroyed card, or an exact duplicate of a card never enrolled, and changes nothing', async () => {
      await enrolledCard('A');
      await enrolledCard('B');
      await store.create('BLANK');
      expect((await refusal(store.replace('A', 'B', 'exact'))).reason).toBe('wrong-state');
      expect((await refusal(store.copy('A', 'B'))).reason).toBe('wrong-state');
      expect((await refusal(store.replace('BLANK', 'C', 'exact'))).reason).toBe('not-enrolled');
      expect((await refusal(store.copy('BLANK', 'C'))).reason).toBe('not-enrolled');
      expect((await store.list()).map((card) => `${card.serial}:${card.state}`)).toEqual(['A:idle', 'B:idle', 'BLANK:idle']);
      await store.destroy('A', 'admin');
      expect((await refusal(store.replace('A', 'C', 'complete'))).reason).toBe('wrong-state');
      expect((await refusal(store.copy('A', 'C'))).reason).toBe('wrong-state');
      expect((await store.list()).map((card) => card.serial)).toEqual(['A', 'B', 'BLANK']);
    });

    it('copies share one counter range: windows never overlap, and unused values go back only when nobody drew after them', async () => {
      await enrolledCard('ORIG');
      await store.copy('ORIG', 'COPY');
      expect((await store.show('ORIG')).state).toBe('idle');
      expect((await insert(MUK_A, 'ORIG')).counterWindow).toEqual([0n, 100n]);
      expect((await insert(MUK_A, 'COPY')).counterWindow).toEqual([100n, 200n]);
      await remove('ORIG', 10n); // COPY drew after it: 10..99 are not handed out again
      expect((await insert(MUK_A, 'ORIG')).counterWindow).toEqual([200n, 300n]);
      await remove('ORIG', 250n, 3n); // ORIG drew last: 250..299 go back
      expect((await insert(MUK_A, 'ORIG')).counterWindow).toEqual([250n, 350n]);
    });

    it('extend grants the holder the next window of the shared range and moves the recorded window; others are refused', async () => {
      await enrolledCard('ORIG');
      await store.copy('ORIG', 'COPY');
      await insert(MUK_A, 'ORIG');
      await insert(MUK_B, 'COPY');
      expect((await refusal(store.extend('ORIG', { muk: MUK_B, holderHash: HOLDER }))).reason).toBe('holder-mismatch');
      expect((await refusal(store.extend('ORIG', { muk: MUK_A, holderHash: bytes(0xd) }))).reason).toBe('holder-mismatch');
      expect(await store.extend('ORIG', { muk: MUK_A, holderHash: HOLDER })).toEqual([200n, 300n]);
      expect((await store.show('ORIG')).counterWindow).toEqual([200n, 300n]);
      // Remove reports a value inside the newest window; one from the old window is refused.
      expect((await refusal(remove('ORIG', 50n))).reason).toBe('wrong-state');
      await remove('ORIG', 200n);
      await store.recover('COPY', VERIFIER, MUK_B);
      expect((await insert(MUK_A, 'COPY')).counterWindow).toEqual([200n, 300n]);
      expect((await refusal(store.extend('ORIG', { muk: MUK_A, holderHash: HOLDER }))).reason).toBe('holder-mismatch');
    });
  });
});
