// One operation on one serial as one database transaction (DESIGN.md "Card states", [0081]): lock
// the card row through the dialect's CardLock, authenticate the owner, run the change, append the
// event row, commit. The seam where per-machine failure buckets and group commit will go.
import type { Kysely, Transaction } from 'kysely';
import { constantTimeEqual } from '../bytes/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { checkSerial, type CardOperation } from './card-records.js';
import type { CardsTable, VscDatabaseSchema } from './database.js';
import type { CardLock } from './dialect/index.js';

/** Consecutive owner-authentication failures after which a card waits for `admin unblock`. */
export const MAX_AUTH_FAILURES = 10;

/** Who may run a transition: the owner (proven by the verifier of its auth key), an administrator, or the enrollment token. */
export type Authority = { readonly owner: Uint8Array } | { readonly by: 'admin' | 'token' };

/** What a transition's change reports: the states for the event row, and its value. */
export interface TransitionOutcome<T> {
  readonly from: string;
  readonly to: string;
  readonly detail?: string;
  readonly value: T;
}

export type CardChange<T> = (tx: Transaction<VscDatabaseSchema>, row: CardsTable) => Promise<TransitionOutcome<T>>;

export class CardTransactions {
  constructor(
    readonly db: Kysely<VscDatabaseSchema>,
    readonly lock: CardLock,
    readonly now: () => number,
    private readonly beforeCommit: (operation: CardOperation) => void,
  ) {}

  /** The card row outside any transaction (reads that lock nothing). */
  async row(serial: string): Promise<CardsTable> {
    const row = await this.db.selectFrom('cards').selectAll().where('serial', '=', serial).executeTakeFirst();
    if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
    return row;
  }

  /**
   * One operation on one serial: a transaction that locks the card row (refusing, not waiting, when
   * another operation holds it), authenticates the owner, runs `change` and appends the event row.
   * A wrong password is committed as a failure (the tenth blocks the card) and then refused; any
   * other refusal rolls everything back and is recorded as an event of its own.
   */
  async run<T>(
    serial: string,
    operation: CardOperation | 'unblock',
    authority: Authority,
    change: CardChange<T>,
  ): Promise<T> {
    checkSerial(serial);
    let outcome: { refused: OperationRefused } | { value: T };
    try {
      outcome = await this.db.transaction().execute(async (tx) => {
        const row = await this.lock.lockCard(tx, serial);
        if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
        if ('owner' in authority) {
          const failure = await this.authenticateOwner(tx, serial, operation, row, authority.owner);
          if (failure !== undefined) return { refused: failure };
        }
        const { from, to, detail, value } = await change(tx, row);
        await tx.insertInto('events').values({ serial, at: this.now(), operation, outcome: 'ok', from_state: from, to_state: to, detail: detail ?? null }).execute();
        if (operation !== 'unblock') this.beforeCommit(operation);
        return { value };
      });
    } catch (caught) {
      const error = this.lock.isLockConflict(caught) ? new OperationRefused('busy', `card ${serial} is busy with another operation; try again`) : caught;
      if (error instanceof OperationRefused && error.reason !== 'unknown-card') {
        await this.db.insertInto('events').values({ serial, at: this.now(), operation, outcome: `refused: ${error.reason}`, from_state: null, to_state: null, detail: null }).execute();
      }
      throw error;
    }
    // A wrong password: its failure count and event are committed, then it is refused.
    if ('refused' in outcome) throw outcome.refused;
    return outcome.value;
  }

  /**
   * Checks the owner's auth key against the stored verifier (constant time), inside the operation's
   * transaction. Failures are counted (the tenth blocks the card until `admin unblock`) and
   * returned, to be thrown once they are committed; a success resets the count.
   */
  private async authenticateOwner(tx: Transaction<VscDatabaseSchema>, serial: string, operation: string, row: CardsTable, verifier: Uint8Array): Promise<OperationRefused | undefined> {
    if (row.enrolled !== 1 || row.auth_verifier === null) throw new OperationRefused('not-enrolled', `card ${serial} has not been enrolled by its owner`);
    if (row.blocked === 1) throw new OperationRefused('blocked', `card ${serial} is blocked after ${MAX_AUTH_FAILURES} failed authentications; an administrator must unblock it`);
    if (constantTimeEqual(verifier, row.auth_verifier)) {
      if (row.auth_failures !== 0) await tx.updateTable('cards').set({ auth_failures: 0 }).where('serial', '=', serial).execute();
      return undefined;
    }
    const failures = row.auth_failures + 1;
    const blocked = failures >= MAX_AUTH_FAILURES;
    await tx.updateTable('cards').set({ auth_failures: failures, blocked: blocked ? 1 : 0, updated_at: this.now() }).where('serial', '=', serial).execute();
    await tx.insertInto('events').values({ serial, at: this.now(), operation, outcome: blocked ? 'refused: blocked' : 'refused: authentication', from_state: row.state, to_state: row.state, detail: `failure ${failures}` }).execute();
    return new OperationRefused(blocked ? 'blocked' : 'authentication', blocked ? `wrong password; card ${serial} is now blocked until an administrator unblocks it` : 'wrong password');
  }
}
