// Group commit (issue 18; src/vsc-server/commit-groups.ts) on real SQLite and PostgreSQL databases:
// operations that arrive together share one commit, none is answered before that commit, a failing
// operation takes back only its own writes, a failed commit fails the whole group, and the card store's
// operations keep their meaning inside a group.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { OperationRefused } from '../../src/vsc-protocol/index.js';
import { CardStore, CommitGroups, openDatabase, type Enrollment, type VscDatabase, type VscDatabaseSchema } from '../../src/vsc-server/index.js';
import { freshPostgresDatabase } from '../support/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const VERIFIER = bytes(1);
const ENROLLMENT: Enrollment = {
  kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: VERIFIER, sealed: bytes(3, 64), publicKey: bytes(4),
};

let dir: string;
let database: VscDatabase;

/** A row per operation in a table of its own: what each operation wrote, seen after the commit. */
async function notesTable(db: Kysely<VscDatabaseSchema>): Promise<void> {
  await sql`CREATE TABLE notes (name TEXT PRIMARY KEY)`.execute(db);
}
const note = (name: string) => async (tx: Kysely<VscDatabaseSchema>) => void (await sql`INSERT INTO notes (name) VALUES (${name})`.execute(tx));
async function notes(db: Kysely<VscDatabaseSchema>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM notes ORDER BY name`.execute(db);
  return rows.map((row) => row.name);
}

describe.each(['sqlite', 'postgres'] as const)('commit groups on %s', (dialect) => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-groups-test-'));
    database = await openDatabase(dialect === 'postgres' ? await freshPostgresDatabase(inject('postgresUrl')) : join(dir, 'vsc.db'));
    await notesTable(database.db);
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('operations that arrive together share one commit, and none is answered before it', async () => {
    const answered: string[] = [];
    const atCommit: { size: number; answered: number }[] = [];
    const committed: number[] = [];
    const groups = new CommitGroups(database.db, {
      lanes: 1, maxGroupSize: 64,
      beforeCommit: (size) => atCommit.push({ size, answered: answered.length }),
      committed: (size) => committed.push(size),
    });
    const names = Array.from({ length: 12 }, (_, i) => `op-${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((name) => groups.run(name, note(name)).then(() => answered.push(name))));
    // All twelve queued before the group's transaction began: one group, one commit, no answer before it.
    expect(atCommit.map((group) => group.size)).toEqual([12]);
    expect(atCommit.map((group) => group.answered), 'answered when the group was about to commit').toEqual([0]);
    expect(committed, 'one durable commit of twelve').toEqual([12]);
    // One more while a group runs joins that group or the next, never commits on its own beside it.
    const late: number[] = [];
    const lateGroups = new CommitGroups(database.db, { lanes: 1, maxGroupSize: 64, beforeCommit: (size) => late.push(size) });
    const first = lateGroups.run('late-1', async (tx) => {
      await note('late-1')(tx);
      void lateGroups.run('late-2', note('late-2'));
      void lateGroups.run('late-3', note('late-3'));
    });
    await first;
    await lateGroups.run('late-4', note('late-4'));
    expect(late[0], 'the two that came while the first ran joined its group').toBe(3);
    expect(await notes(database.db)).toEqual(['late-1', 'late-2', 'late-3', 'late-4', ...names]);
  });

  it('a failing operation inside a group takes back only its own writes; the others are committed', async () => {
    const sizes: number[] = [];
    const groups = new CommitGroups(database.db, { lanes: 1, maxGroupSize: 64, beforeCommit: (size) => sizes.push(size) });
    const results = await Promise.allSettled([
      groups.run('a', note('a')),
      groups.run('b', note('b')),
      groups.run('c', async (tx) => {
        await note('c-partial')(tx);
        throw new Error('c fails after writing');
      }),
      // A statement the database itself refuses (a duplicate key) in the middle of the group.
      groups.run('d', note('a')),
      groups.run('e', note('e')),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(String((results[2] as PromiseRejectedResult).reason)).toContain('c fails after writing');
    expect(sizes).toEqual([5]);
    expect(await notes(database.db)).toEqual(['a', 'b', 'e']);
  });

  it('an operation may take back its writes and write again (a counted refusal), kept by the commit', async () => {
    const groups = new CommitGroups(database.db, { lanes: 1, maxGroupSize: 64 });
    await Promise.all([
      groups.run('x', note('x')),
      groups.run('y', async (tx, undo) => {
        await note('y-change')(tx);
        await undo();
        await note('y-refusal-counted')(tx);
      }),
    ]);
    expect(await notes(database.db)).toEqual(['x', 'y-refusal-counted']);
  });

  it('a commit that fails fails every operation of its group, and none of their writes stays', async () => {
    let failNext = false;
    const groups = new CommitGroups(database.db, {
      lanes: 1, maxGroupSize: 64,
      beforeCommit: () => {
        if (failNext) throw new Error('the disk is full');
      },
    });
    await groups.run('before', note('before'));
    failNext = true;
    const results = await Promise.allSettled(['p', 'q', 'r'].map((name) => groups.run(name, note(name))));
    expect(results.every((result) => result.status === 'rejected' && String(result.reason).includes('the disk is full'))).toBe(true);
    failNext = false;
    await groups.run('after', note('after'));
    expect(await notes(database.db)).toEqual(['after', 'before']);
  });

  it('a database that cannot begin a transaction fails what waits at once, without trying again and again', async () => {
    const opened = await openDatabase(dialect === 'postgres' ? await freshPostgresDatabase(inject('postgresUrl')) : join(dir, 'other.db'));
    const groups = new CommitGroups(opened.db, { lanes: 1, maxGroupSize: 64 });
    await opened.close();
    const results = await Promise.allSettled(['a', 'b', 'c'].map((name) => groups.run(name, async () => name)));
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
  });

  it('groups are bounded in size, and one key always finds the same lane', async () => {
    const sizes: number[] = [];
    const groups = new CommitGroups(database.db, { lanes: dialect === 'postgres' ? 3 : 1, maxGroupSize: 4, beforeCommit: (size) => sizes.push(size) });
    const order: string[] = [];
    // Twenty operations on one key: one lane, one after the other, in the order they came.
    await Promise.all(Array.from({ length: 20 }, (_, i) => groups.run('one card', async (tx) => {
      order.push(String(i));
      await note(`k-${String(i).padStart(2, '0')}`)(tx);
    })));
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(20);
    expect(await notes(database.db)).toHaveLength(20);
  });

  it('the card store inside one group: a wrong password is counted, a refused insert changes nothing, the others are in use', async () => {
    const sizes: number[] = [];
    const store = new CardStore(database, { counterWindow: 100n, commitLanes: 1, beforeGroupCommit: (size) => sizes.push(size) });
    const serials = ['G-1', 'G-2', 'G-3', 'G-4'];
    for (const serial of serials) await store.enroll(serial, await store.create(serial), bytes(0xa), ENROLLMENT);
    await store.insert('G-4', VERIFIER, { muk: bytes(0xa), holderHash: bytes(0xc) });
    sizes.length = 0;
    const results = await Promise.allSettled([
      store.insert('G-1', VERIFIER, { muk: bytes(0xa), holderHash: bytes(0xc) }),
      store.insert('G-2', bytes(9), { muk: bytes(0xa), holderHash: bytes(0xc) }), // wrong password
      store.insert('G-4', VERIFIER, { muk: bytes(0xb), holderHash: bytes(0xd) }), // in use elsewhere
      store.insert('G-3', VERIFIER, { muk: bytes(0xa), holderHash: bytes(0xc) }),
    ]);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(4);
    expect(Math.max(...sizes), 'at least two of them shared a commit').toBeGreaterThanOrEqual(2);
    const reasons = results.map((result) => (result.status === 'fulfilled' ? 'ok' : (result.reason as OperationRefused).reason));
    expect(reasons).toEqual(['ok', 'authentication', 'wrong-state', 'ok']);
    const states = Object.fromEntries((await store.list()).map((card) => [card.serial, card.state]));
    expect(states).toEqual({ 'G-1': 'in-use', 'G-2': 'idle', 'G-3': 'in-use', 'G-4': 'in-use' });
    const g2 = await store.events('G-2');
    expect(g2.some((event) => event.outcome === 'refused: authentication'), 'the wrong password is counted').toBe(true);
    const g4 = await store.events('G-4');
    expect(g4.some((event) => event.outcome === 'refused: wrong-state'), 'the refused insert is counted').toBe(true);
    const { rows } = await sql<{ failures: number }>`SELECT failures FROM auth_failures WHERE serial = 'G-2'`.execute(database.db);
    expect(rows.map((row) => Number(row.failures))).toEqual([1]);
  });
});
