// The mediation state machine of patent 004 Fig. 4 over the server database: idle --insert-->
// in-use --remove|recover--> idle, idle|in-use --destroy--> destroyed (terminal). Every
// operation is one transaction: it locks the card row, authenticates the owner, checks and sets the
// state and appends the event row, so it holds across server processes on one database. While an
// operation on a serial runs, every other operation on it is refused ([0081]): on PostgreSQL the row
// lock is taken with NOWAIT, so a second server process is refused at once instead of queueing; a
// server that dies mid-operation loses its connection and with it the lock, and its transaction
// rolls back. SQLite serialises the transactions of its one server process.
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, utf8 } from '../bytes/index.js';
import { OperationRefused, type Refusal } from '../vsc-protocol/index.js';
import { CardAdmin } from './card-admin.js';
import { DESTROYED, NO_HOLDER, asBytes, hash, toBigInt, type CardEvent, type CardOperation, type CardSummary, type Enrollment, type HolderProof, type InsertGrant, type Upload } from './card-records.js';
import { CardTransactions } from './card-transaction.js';
import { DEFAULT_COUNTER_WINDOW, allocateWindow, returnUnusedValues } from './counter-ranges.js';
import type { VscDatabase } from './database.js';
import { cardLockFor } from './dialect/index.js';
import { checkHolder, gaveBack, isHolder, recoveryMark } from './holder-checks.js';

export * from './card-records.js';
export { MAX_AUTH_FAILURES } from './card-transaction.js';
export { DEFAULT_COUNTER_WINDOW } from './counter-ranges.js';

/** Why the server refused; the exit code follows from it (DESIGN.md "Command line"). */
export type RefusalReason = Refusal;

export interface CardStoreOptions {
  readonly now?: () => number;
  readonly counterWindow?: bigint;
  /**
   * Called inside an operation's transaction once its changes are written, before the commit:
   * crash injection names this step (`in-transaction`), see src/fault-injection.
   */
  readonly beforeCommit?: (operation: CardOperation) => void;
}

export class CardStore {
  private readonly counterWindow: bigint;
  private readonly cards: CardTransactions;
  private readonly admin: CardAdmin;

  constructor(database: VscDatabase, options: CardStoreOptions = {}) {
    this.counterWindow = options.counterWindow ?? DEFAULT_COUNTER_WINDOW;
    this.cards = new CardTransactions(database.db, cardLockFor(database.dialect), options.now ?? Date.now, options.beforeCommit ?? (() => undefined));
    this.admin = new CardAdmin(this.cards);
  }

  // ---- administration (card-admin.ts) ------------------------------------------------------------

  /** A new card record awaiting its owner; returns the one-time enrollment token (shown once). */
  create(serial: string, cardId: Uint8Array = new Uint8Array(randomBytes(16))): Promise<string> {
    return this.admin.create(serial, cardId);
  }
  /** Replace ([0007], [0062]): see CardAdmin.replace. */
  replace(serial: string, newSerial: string, mode: 'exact' | 'complete'): Promise<{ token?: string }> {
    return this.admin.replace(serial, newSerial, mode);
  }
  /** Copy ([0102]): see CardAdmin.copy. */
  copy(serial: string, newSerial: string): Promise<void> {
    return this.admin.copy(serial, newSerial);
  }
  list(): Promise<CardSummary[]> {
    return this.admin.list();
  }
  show(serial: string): Promise<CardSummary> {
    return this.admin.show(serial);
  }
  events(serial: string): Promise<CardEvent[]> {
    return this.admin.events(serial);
  }
  unblock(serial: string): Promise<void> {
    return this.admin.unblock(serial);
  }

  // ---- what a client needs before it can authenticate ---------------------------------------------

  /** The card id, which sealed information is bound to (the client needs it at enrollment). */
  async cardId(serial: string): Promise<Uint8Array> {
    return asBytes((await this.cards.row(serial)).card_id);
  }

  /** The Argon2id parameters the client needs before it can authenticate. */
  async kdfParameters(serial: string): Promise<{ salt: Uint8Array; memoryKiB: number; iterations: number; parallelism: number }> {
    const row = await this.cards.db.selectFrom('cards').select(['enrolled', 'kdf_salt', 'kdf_memory_kib', 'kdf_iterations', 'kdf_parallelism']).where('serial', '=', serial).executeTakeFirst();
    if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
    if (row.enrolled !== 1 || row.kdf_salt === null) throw new OperationRefused('not-enrolled', `card ${serial} has not been enrolled by its owner`);
    return { salt: asBytes(row.kdf_salt), memoryKiB: row.kdf_memory_kib!, iterations: row.kdf_iterations!, parallelism: row.kdf_parallelism! };
  }

  // ---- transitions -------------------------------------------------------------------------------

  /** Stores the owner's enrollment once, against the one-time token. */
  async enroll(serial: string, token: string, enrollment: Enrollment): Promise<void> {
    await this.cards.run(serial, 'enroll', { by: 'token' }, async (tx, row) => {
      if (row.enrolled === 1 || row.enrollment_token === null) throw new OperationRefused('wrong-state', `card ${serial} is already enrolled`);
      if (!constantTimeEqual(hash(utf8(token)), row.enrollment_token)) throw new OperationRefused('authentication', 'wrong enrollment token');
      await tx
        .updateTable('cards')
        .set({
          enrolled: 1, enrollment_token: null, kdf_salt: enrollment.kdfSalt, kdf_memory_kib: enrollment.kdfMemoryKiB, kdf_iterations: enrollment.kdfIterations,
          kdf_parallelism: enrollment.kdfParallelism, auth_verifier: enrollment.authVerifier, sealed: enrollment.sealed, sealed_version: 1, public_key: enrollment.publicKey,
          updated_at: this.cards.now(),
        })
        .where('serial', '=', serial)
        .where('enrolled', '=', 0)
        .execute();
      return { from: 'idle', to: 'idle', value: undefined };
    });
  }

  /**
   * Mediation of insert ([0091]-[0094]): idle → in-use in one statement that also records the
   * holder's MUK and holder-secret hash, and grants a counter window from the card id's range.
   * The same holder asking again (its answer was lost with a dropped connection or a dead server)
   * gets the same grant: only the process that chose the holder secret can ask with its hash.
   */
  async insert(serial: string, owner: Uint8Array, holder: HolderProof): Promise<InsertGrant> {
    return this.cards.run(serial, 'insert', { owner }, async (tx, row) => {
      const grant = (window: readonly [bigint, bigint]): InsertGrant =>
        Object.freeze({ cardId: asBytes(row.card_id), sealed: asBytes(row.sealed!), sealedVersion: toBigInt(row.sealed_version), counterWindow: window });
      if (row.state === 'in-use' && isHolder(row, holder)) {
        const window = [BigInt(row.window_start!), BigInt(row.window_end!)] as const;
        return { from: 'in-use', to: 'in-use', detail: `repeated for its holder: window ${window[0]}..${window[1]}`, value: grant(window) };
      }
      if (row.state !== 'idle') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not idle`);
      const [start, end] = await allocateWindow(tx, this.cards.lock, row.card_id, this.counterWindow);
      const moved = await tx
        .updateTable('cards')
        .set({ state: 'in-use', muk: holder.muk, holder_hash: holder.holderHash, window_start: start.toString(), window_end: end.toString(), updated_at: this.cards.now() })
        .where('serial', '=', serial)
        .where('state', '=', 'idle')
        .executeTakeFirst();
      if (moved.numUpdatedRows !== 1n) throw new OperationRefused('wrong-state', `card ${serial} is no longer idle`);
      return { from: 'idle', to: 'in-use', detail: `window ${start}..${end}`, value: grant([start, end] as const) };
    });
  }

  /**
   * Remove ([0095]): only the holder (same MUK and holder secret) moves in-use → idle, uploading the
   * new sealed information; values of the window it did not use go back to the range when no copy
   * drew after it. The holder repeating a remove whose answer it lost is told it succeeded, and
   * nothing changes.
   */
  async remove(serial: string, owner: Uint8Array, holder: HolderProof, upload: Upload): Promise<void> {
    await this.cards.run(serial, 'remove', { owner }, async (tx, row) => {
      if (gaveBack(row, holder.holderHash) && upload.sealedVersion === toBigInt(row.sealed_version)) {
        return { from: 'idle', to: 'idle', detail: 'repeated by its holder: already removed', value: undefined };
      }
      checkHolder(serial, row, holder);
      const start = BigInt(row.window_start!);
      const end = BigInt(row.window_end!);
      if (upload.nextCounter < start || upload.nextCounter > end) throw new OperationRefused('wrong-state', `the reported counter ${upload.nextCounter} is outside the granted window`);
      if (upload.sealedVersion !== toBigInt(row.sealed_version) + 1n) throw new OperationRefused('wrong-state', `expected sealed version ${toBigInt(row.sealed_version) + 1n}, got ${upload.sealedVersion}`);
      await tx
        .updateTable('cards')
        .set({ state: 'idle', ...NO_HOLDER, last_holder_hash: holder.holderHash, sealed: upload.sealed, sealed_version: upload.sealedVersion.toString(), updated_at: this.cards.now() })
        .where('serial', '=', serial)
        .where('state', '=', 'in-use')
        .execute();
      await returnUnusedValues(tx, row.card_id, end, upload.nextCounter);
      return { from: 'in-use', to: 'idle', detail: `next counter ${upload.nextCounter}`, value: undefined };
    });
  }

  /**
   * A further counter window while the card is in use (DESIGN.md "Counters that never roll back"),
   * for the holder only. The card moves to it when its current window runs out, and reports a value
   * inside it at remove; whatever it leaves of the old window is never granted again.
   */
  async extend(serial: string, owner: Uint8Array, holder: HolderProof): Promise<readonly [bigint, bigint]> {
    return this.cards.run(serial, 'extend', { owner }, async (tx, row) => {
      checkHolder(serial, row, holder);
      const window = await allocateWindow(tx, this.cards.lock, row.card_id, this.counterWindow);
      await tx.updateTable('cards').set({ window_start: window[0].toString(), window_end: window[1].toString(), updated_at: this.cards.now() }).where('serial', '=', serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'in-use', detail: `window ${window[0]}..${window[1]}`, value: window };
    });
  }

  /**
   * Recover ([0059]-[0060]): in-use → idle from the machine that lost the card; the whole window
   * counts as used. That machine repeating a recover whose answer it lost is told it succeeded.
   */
  async recover(serial: string, owner: Uint8Array, muk: Uint8Array): Promise<void> {
    const recoveredBy = recoveryMark(muk);
    await this.cards.run(serial, 'recover', { owner }, async (tx, row) => {
      if (gaveBack(row, recoveredBy)) {
        return { from: 'idle', to: 'idle', detail: 'repeated by the machine that recovered it: already idle', value: undefined };
      }
      if (row.state !== 'in-use') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not in use`);
      if (row.muk === null || !constantTimeEqual(muk, row.muk)) throw new OperationRefused('muk-mismatch', `card ${serial} was not lost by this machine`);
      await tx.updateTable('cards').set({ state: 'idle', ...NO_HOLDER, last_holder_hash: recoveredBy, updated_at: this.cards.now() }).where('serial', '=', serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'idle', detail: `counter floor ${row.window_end}`, value: undefined };
    });
  }

  /** Destroy ([0098]): idle or in-use → destroyed, for good; the sealed information is dropped. */
  async destroy(serial: string, by: { owner: Uint8Array } | 'admin'): Promise<void> {
    await this.cards.run(serial, 'destroy', by === 'admin' ? { by: 'admin' } : by, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is already destroyed`);
      await tx.updateTable('cards').set({ ...DESTROYED, updated_at: this.cards.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: 'destroyed', detail: `by ${by === 'admin' ? 'admin' : 'owner'}`, value: undefined };
    });
  }
}
