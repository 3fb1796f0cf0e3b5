// Group commit: card operations that arrive together share one database transaction, so one durable
// commit (one fsync on SQLite, one WAL flush on PostgreSQL) serves them all. Each runs in a savepoint
// of its own, so one that fails rolls back only itself; none is answered before the commit that holds
// it is durable; when that commit fails, every operation of the group fails and none is answered as
// done. A group takes what is queued when it starts and what arrives while it runs, and commits once
// its queue stays empty for one turn of the event loop: nothing waits on a timer for company.
import { sql, type ControlledTransaction, type Kysely, type Transaction } from 'kysely';

export interface CommitGroupsOptions {
  /**
   * Groups under way at once, each on a connection of its own: 1 on SQLite (one writer), a few on
   * PostgreSQL. An operation's lane follows from its key (the serial), so two operations on one card
   * always meet in one lane, one after the other, never as two lanes' lock conflict.
   */
  readonly lanes: number;
  /** Operations at most in one group. */
  readonly maxGroupSize: number;
  /** Called with the group's size just before its commit: crash injection names this step. */
  readonly beforeCommit?: (size: number) => void;
  /** Called with the group's size once its commit is durable (the metrics). */
  readonly committed?: (size: number) => void;
}

/** Takes back what the operation wrote so far (to its savepoint); it may then write again (a counted refusal). */
export type Undo = () => Promise<void>;

/** One operation's work inside its group's transaction. */
export type GroupWork<S, T> = (tx: Transaction<S>, undo: Undo) => Promise<T>;

interface Queued<S> {
  readonly work: GroupWork<S, unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Lane<S> {
  readonly queue: Queued<S>[];
  running: boolean;
}

/**
 * Savepoint statements (the name is this file's constant, never input). Each operation's savepoint
 * shadows the one before, and ROLLBACK TO names the newest, its own; they are never released one by
 * one (a round trip each on PostgreSQL) but all at once by the commit.
 */
const SAVEPOINT = sql.raw('SAVEPOINT vsc_operation');
const ROLLBACK_TO = sql.raw('ROLLBACK TO SAVEPOINT vsc_operation');

export class CommitGroups<S> {
  readonly #lanes: Lane<S>[];

  constructor(
    private readonly db: Kysely<S>,
    private readonly options: CommitGroupsOptions,
  ) {
    if (!Number.isInteger(options.lanes) || options.lanes < 1) throw new RangeError(`expected at least one lane, got ${options.lanes}`);
    if (!Number.isInteger(options.maxGroupSize) || options.maxGroupSize < 1) throw new RangeError(`expected a group size of at least 1, got ${options.maxGroupSize}`);
    this.#lanes = Array.from({ length: options.lanes }, () => ({ queue: [], running: false }));
  }

  /**
   * Runs `work` in the next group of `key`'s lane; resolves with its value, or rejects with what it
   * threw, once the group's commit is durable (or has failed: then every operation of it rejects).
   */
  run<T>(key: string, work: GroupWork<S, T>): Promise<T> {
    const lane = this.#lanes[laneOf(key, this.#lanes.length)]!;
    return new Promise<T>((resolve, reject) => {
      lane.queue.push({ work: work as GroupWork<S, unknown>, resolve: resolve as (value: unknown) => void, reject });
      if (!lane.running) void this.#drain(lane);
    });
  }

  async #drain(lane: Lane<S>): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0) await this.#group(lane);
    } finally {
      lane.running = false;
    }
  }

  /** One group: begin, each queued operation in its savepoint, commit, then answer them all. */
  async #group(lane: Lane<S>): Promise<void> {
    const members: { readonly queued: Queued<S>; settle: () => void }[] = [];
    let tx: ControlledTransaction<S> | undefined;
    try {
      tx = await this.db.startTransaction().execute();
      const open = tx;
      while (members.length < this.options.maxGroupSize) {
        // Before committing, one turn of the event loop: operations whose messages arrived meanwhile
        // (a synchronous commit blocks the loop, so they pile up) join this group rather than wait for the next.
        if (lane.queue.length === 0) await nextTurn();
        const queued = lane.queue.shift();
        if (queued === undefined) break;
        const member = { queued, settle: (): void => undefined };
        members.push(member);
        await SAVEPOINT.execute(open);
        try {
          const value = await queued.work(open, async () => void (await ROLLBACK_TO.execute(open)));
          member.settle = () => queued.resolve(value);
        } catch (error) {
          // Its own writes go; the group's stay. A failure of the rollback itself fails the group (below).
          member.settle = () => queued.reject(error);
          await ROLLBACK_TO.execute(open);
        }
      }
      this.options.beforeCommit?.(members.length);
      await open.commit().execute();
    } catch (error) {
      if (tx !== undefined) await tx.rollback().execute().catch(() => undefined);
      // No transaction at all (the database unreachable): what waits fails now, as each operation's
      // own transaction would have, rather than the lane trying again and again.
      const failed = tx === undefined ? lane.queue.splice(0) : members.map((member) => member.queued);
      for (const queued of failed) queued.reject(error);
      return;
    }
    this.options.committed?.(members.length);
    for (const { settle } of members) settle();
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A lane for `key`: FNV-1a over its UTF-16 code units, so one key always finds one lane. */
function laneOf(key: string, lanes: number): number {
  if (lanes === 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % lanes;
}
