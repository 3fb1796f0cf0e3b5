// One operation on one serial as one savepoint of a group's transaction (DESIGN.md "Card states",
// [0081]; commit-groups.ts): lock the card row through the dialect's CardLock, authenticate whoever
// acts (the owner through the failure buckets of owner-authentication.ts), run the change, append the
// event row; the group's commit makes it durable before it is answered.
import type { Kysely, Transaction } from 'kysely';
import { OperationRefused } from '../vsc-protocol/index.js';
import { checkSerial, type CardOperation } from './card-records.js';
import type { CardsTable, VscDatabaseSchema } from './database.js';
import type { CommitGroups } from './commit-groups.js';
import type { CardLock } from './dialect/index.js';
import { HotStatements } from './hot-statements.js';
import { OwnerAuthentication, type OwnerProof } from './owner-authentication.js';

/**
 * Who may run a transition: the owner (the verifier of its auth key, and its machine), the holder of
 * an in-use card (the change checks its MUK and holder secret), the recovery code's bearer (the change
 * checks it), an administrator, or the enrollment token (the change checks it).
 */
export type Authority = { readonly owner: OwnerProof } | { readonly by: 'admin' | 'token' | 'holder' | 'recovery-code' };

/** What a transition's change reports: the states for the event row, and its value. */
export interface TransitionOutcome<T> {
  readonly from: string;
  readonly to: string;
  readonly detail?: string;
  readonly value: T;
  /**
   * Counted in one event row per card, operation and period instead of a row each (a server-held card's
   * signatures, which may come many a second); the row's detail is the latest one.
   */
  readonly counted?: boolean;
}

export type CardChange<T> = (tx: Transaction<VscDatabaseSchema>, row: CardsTable) => Promise<TransitionOutcome<T>>;

/** Refusals of one kind on one card, and a server-held card's signatures, are counted in one event row per this period. */
export const REFUSAL_EVENT_PERIOD_MS = 60 * 60 * 1000;

export class CardTransactions {
  readonly owners: OwnerAuthentication;
  /** The hot path's statements, prepared once. */
  readonly hot: HotStatements;

  constructor(
    readonly db: Kysely<VscDatabaseSchema>,
    readonly lock: CardLock,
    readonly now: () => number,
    private readonly beforeCommit: (operation: CardOperation) => void,
    private readonly groups: CommitGroups<VscDatabaseSchema>,
  ) {
    this.hot = new HotStatements(db, lock);
    this.owners = new OwnerAuthentication(now, this.hot);
  }

  /** The card row outside any transaction (reads that lock nothing). */
  async row(serial: string): Promise<CardsTable> {
    const row = await this.db.selectFrom('cards').selectAll().where('serial', '=', serial).executeTakeFirst();
    if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
    return row;
  }

  /**
   * One operation on one serial, in a savepoint of its commit group: it locks the card row (refusing,
   * not waiting, when another server process holds it; one process meets the serial's operations in one
   * lane, one after the other), authenticates the owner, runs `change` and appends the event row.
   * A wrong password is committed as a failure in its bucket and then refused; any other refusal
   * rolls everything back and is counted in an aggregated event row. A serial that names no card is
   * refused as `onMissing` says: to a peer that has not proven the owner it looks like any other card.
   */
  async run<T>(
    serial: string,
    operation: CardOperation | 'unblock',
    authority: Authority,
    change: CardChange<T>,
    onMissing: () => OperationRefused = () => new OperationRefused('unknown-card', `no card ${serial}`),
  ): Promise<T> {
    checkSerial(serial);
    const outcome = await this.groups.run(serial, async (tx, undo): Promise<{ refused: OperationRefused; countAfter?: true } | { value: T }> => {
      let known = true;
      try {
        const row = await this.hot.lockCard(tx, serial);
        known = row !== undefined;
        if ('owner' in authority) {
          const failure = await this.owners.check(tx, serial, row, authority.owner);
          if (failure !== undefined) {
            if (row !== undefined) await this.countRefusal(tx, serial, operation, failure.reason);
            return { refused: failure };
          }
        }
        if (row === undefined) throw onMissing();
        const { from, to, detail, value, counted } = await change(tx, row);
        if (counted === true) await this.countEvent(tx, serial, operation, 'ok', { from, to, detail: detail ?? null });
        else await this.hot.event(tx, serial, this.now(), operation, from, to, detail ?? null);
        if (operation !== 'unblock') this.beforeCommit(operation);
        return { value };
      } catch (caught) {
        const conflict = this.lock.isLockConflict(caught);
        const error = conflict ? new OperationRefused('busy', `card ${serial} is busy with another operation; try again`) : caught;
        if (!(error instanceof OperationRefused)) throw error;
        // A refusal takes back what the operation wrote and is counted in its place, in the same group,
        // under the card's lock. A card busy in another process is not locked by this one: its refusal
        // is counted after the group, on its own, so that this group never waits on that card's event
        // row while the other process's group waits on one of this group's.
        await undo();
        if (conflict) return { refused: error, countAfter: true };
        if (known && error.reason !== 'unknown-card') await this.countRefusal(tx, serial, operation, error.reason);
        return { refused: error };
      }
    });
    if ('refused' in outcome) {
      // A count that fails (the database gone meanwhile) does not change the answer: the card is busy.
      if (outcome.countAfter === true) await this.countRefusal(this.db, serial, operation, 'busy').catch(() => undefined);
      // A wrong password: its failure count and event are committed, then it is refused.
      throw outcome.refused;
    }
    return outcome.value;
  }

  /**
   * Counts a refusal in the card's event row for this operation and reason in the current period, so
   * that a flood of refused tries grows a counter, not the table.
   */
  private countRefusal(db: Kysely<VscDatabaseSchema> | Transaction<VscDatabaseSchema>, serial: string, operation: string, reason: string): Promise<void> {
    return this.countEvent(db, serial, operation, `refused: ${reason}`, { from: null, to: null, detail: null });
  }

  /** Counts one event in the card's row for this operation and outcome in the current period (a new row when it has none). */
  private async countEvent(
    db: Kysely<VscDatabaseSchema> | Transaction<VscDatabaseSchema>, serial: string, operation: string, outcome: string,
    row: { readonly from: string | null; readonly to: string | null; readonly detail: string | null },
  ): Promise<void> {
    const now = this.now();
    const periodStart = now - (now % REFUSAL_EVENT_PERIOD_MS);
    const counted = await db
      .updateTable('events')
      .set((eb) => ({ count: eb('count', '+', 1), ...(row.detail === null ? {} : { detail: row.detail }) }))
      .where('serial', '=', serial)
      .where('operation', '=', operation)
      .where('outcome', '=', outcome)
      .where('at', '>=', periodStart)
      .executeTakeFirst();
    if (counted.numUpdatedRows === 0n) {
      await db.insertInto('events').values({ serial, at: now, operation, outcome, from_state: row.from, to_state: row.to, detail: row.detail, count: 1 }).execute();
    }
  }
}
