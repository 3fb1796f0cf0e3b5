// The mediation state machine of patent 004 Fig. 4 over the server database: idle --insert-->
// in-use --remove|recover--> idle, idle|in-use --destroy--> destroyed (terminal). Every
// operation is one transaction: it locks the card row, authenticates the owner, checks and sets the
// state and appends the event row, so it holds across server processes on one database. While an
// operation on a serial runs, every other operation on it is refused ([0081]): on PostgreSQL the row
// lock is taken with NOWAIT, so a second server process is refused at once instead of queueing; a
// server that dies mid-operation loses its connection and with it the lock, and its transaction
// rolls back. SQLite serialises the transactions of its one server process.
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { constantTimeEqual, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { OperationRefused, SERIAL_PATTERN, type Refusal } from '../vsc-protocol/index.js';
import type { CardsTable, VscDatabase, VscDatabaseSchema } from './database.js';

export type CardState = CardsTable['state'];
export type CardOperation = 'enroll' | 'insert' | 'remove' | 'recover' | 'destroy' | 'replace' | 'copy' | 'extend';

/** Why the server refused; the exit code follows from it (DESIGN.md "Command line"). */
export type RefusalReason = Refusal;

/** Consecutive owner-authentication failures after which a card waits for `admin unblock`. */
export const MAX_AUTH_FAILURES = 10;
/** Counter values granted to an insert ([DESIGN.md] "Counters that never roll back"). */
export const DEFAULT_COUNTER_WINDOW = 1n << 20n;

export interface CardSummary {
  readonly serial: string;
  readonly state: CardState;
  readonly enrolled: boolean;
  readonly blocked: boolean;
  readonly authFailures: number;
  readonly sealedVersion: bigint;
  readonly counterWindow: readonly [bigint, bigint] | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface CardEvent {
  readonly id: number;
  readonly serial: string;
  readonly at: Date;
  readonly operation: string;
  readonly outcome: string;
  readonly fromState: string | null;
  readonly toState: string | null;
  readonly detail: string | null;
}

export interface CardStoreOptions {
  readonly now?: () => number;
  readonly counterWindow?: bigint;
  /**
   * Called inside an operation's transaction once its changes are written, before the commit:
   * crash injection names this step (`in-transaction`), see src/fault-injection.
   */
  readonly beforeCommit?: (operation: CardOperation) => void;
}

/** The holder of an in-use card: the machine recorded at insert, and the process that inserted it. */
export interface HolderProof {
  readonly muk: Uint8Array;
  readonly holderHash: Uint8Array;
}

/** What remove uploads. */
export interface Upload {
  readonly sealed: Uint8Array;
  readonly sealedVersion: bigint;
  readonly nextCounter: bigint;
}

export interface Enrollment {
  readonly kdfSalt: Uint8Array;
  readonly kdfMemoryKiB: number;
  readonly kdfIterations: number;
  readonly kdfParallelism: number;
  readonly authVerifier: Uint8Array;
  readonly sealed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface InsertGrant {
  readonly cardId: Uint8Array;
  readonly sealed: Uint8Array;
  readonly sealedVersion: bigint;
  readonly counterWindow: readonly [bigint, bigint];
}

const hash = (bytes: Uint8Array): Uint8Array => sha256(bytes);
/** 192 random bits, base64url; never starting with '-', which a command line would take for an option. */
function newEnrollmentToken(): string {
  for (;;) {
    const token = randomBytes(24).toString('base64url');
    if (/^[A-Za-z0-9]/.test(token)) return token;
  }
}
/** Columns of a card no machine holds: no MUK, no holder secret, no counter window. */
const NO_HOLDER = { muk: null, holder_hash: null, window_start: null, window_end: null } as const;
/** Columns of a new card: nobody holds it, nobody removed it. */
const IDLE = { ...NO_HOLDER, last_holder_hash: null } as const;
/** Columns of a destroyed card: no holder, no window, no sealed information. */
const DESTROYED = { state: 'destroyed', ...IDLE, sealed: null } as const;
const RECOVERY_DOMAIN = utf8('vsc recovered by MUK\0');
/** PostgreSQL's lock_not_available: the row is locked by another operation (FOR UPDATE NOWAIT). */
const PG_LOCK_NOT_AVAILABLE = '55P03';
const toBigInt = (value: number | string | bigint): bigint => BigInt(value);
/** Drivers hand back Buffers (views into pools); callers get plain Uint8Array copies. */
const asBytes = (value: Uint8Array): Uint8Array => Uint8Array.from(value);

function summarise(row: CardsTable): CardSummary {
  return Object.freeze({
    serial: row.serial,
    state: row.state,
    enrolled: row.enrolled === 1,
    blocked: row.blocked === 1,
    authFailures: row.auth_failures,
    sealedVersion: toBigInt(row.sealed_version),
    counterWindow: row.window_start === null || row.window_end === null ? null : ([BigInt(row.window_start), BigInt(row.window_end)] as const),
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  });
}

function checkSerial(serial: string): void {
  if (!SERIAL_PATTERN.test(serial)) {
    throw new VscError('card.serial', `expected a serial of 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(serial.slice(0, 80))}`, { exitCode: ExitCode.usage });
  }
}

export class CardStore {
  private readonly now: () => number;
  private readonly counterWindow: bigint;
  private readonly beforeCommit: (operation: CardOperation) => void;

  constructor(
    private readonly database: VscDatabase,
    options: CardStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.counterWindow = options.counterWindow ?? DEFAULT_COUNTER_WINDOW;
    this.beforeCommit = options.beforeCommit ?? (() => undefined);
  }

  private get db() {
    return this.database.db;
  }

  // ---- administration --------------------------------------------------------------------------

  /** A new card record awaiting its owner; returns the one-time enrollment token (shown once). */
  async create(serial: string, cardId: Uint8Array = new Uint8Array(randomBytes(16))): Promise<string> {
    checkSerial(serial);
    const token = newEnrollmentToken();
    await this.db.transaction().execute((tx) => this.insertFresh(tx, serial, cardId, token, null));
    return token;
  }

  /**
   * Replace ([0007], [0062]): the card under `serial` is destroyed and `newSerial` takes its place.
   * `exact` is an identical copy (same card id, sealed information, owner verifier and counter
   * range, so the old password opens it and its counter goes on past every value ever granted);
   * `complete` is a fresh card with a new card id that the owner enrolls anew (token returned).
   * A card in use on a lost machine can be replaced; whatever that machine did not upload is lost.
   */
  async replace(serial: string, newSerial: string, mode: 'exact' | 'complete'): Promise<{ token?: string }> {
    checkSerial(newSerial);
    return this.transition(serial, 'replace', { by: 'admin' }, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed; its information is gone: enroll a new card`);
      if (mode === 'exact' && row.enrolled !== 1) throw new OperationRefused('not-enrolled', `card ${serial} was never enrolled: there is nothing to duplicate`);
      let token: string | undefined;
      if (mode === 'exact') {
        await this.insertCopy(tx, row, newSerial, `exact duplicate of ${serial}`);
      } else {
        token = newEnrollmentToken();
        await this.insertFresh(tx, newSerial, new Uint8Array(randomBytes(16)), token, `complete replacement of ${serial}`);
      }
      await tx.updateTable('cards').set({ ...DESTROYED, updated_at: this.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: 'destroyed', detail: `replaced by ${newSerial} (${mode})`, value: token === undefined ? {} : { token } };
    });
  }

  /**
   * Copy ([0102]): a new serial with the same information; both stay usable. Copies share the card
   * id and so one counter range: no counter value is ever granted to two of them.
   */
  async copy(serial: string, newSerial: string): Promise<void> {
    checkSerial(newSerial);
    await this.transition(serial, 'copy', { by: 'admin' }, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed`);
      if (row.enrolled !== 1) throw new OperationRefused('not-enrolled', `card ${serial} was never enrolled: there is nothing to copy`);
      await this.insertCopy(tx, row, newSerial, `copy of ${serial}`);
      return { from: row.state, to: row.state, detail: `copied to ${newSerial}`, value: undefined };
    });
  }

  async list(): Promise<CardSummary[]> {
    const rows = await this.db.selectFrom('cards').selectAll().orderBy('serial').execute();
    return rows.map(summarise);
  }

  async show(serial: string): Promise<CardSummary> {
    return summarise(await this.row(serial));
  }

  async events(serial: string): Promise<CardEvent[]> {
    const rows = await this.db.selectFrom('events').selectAll().where('serial', '=', serial).orderBy('id').execute();
    return rows.map((row) =>
      Object.freeze({ id: Number(row.id), serial: row.serial, at: new Date(Number(row.at)), operation: row.operation, outcome: row.outcome, fromState: row.from_state, toState: row.to_state, detail: row.detail }),
    );
  }

  async unblock(serial: string): Promise<void> {
    await this.transition(serial, 'unblock', { by: 'admin' }, async (tx, row) => {
      await tx.updateTable('cards').set({ blocked: 0, auth_failures: 0, updated_at: this.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: row.state, value: undefined };
    });
  }

  // ---- what a client needs before it can authenticate ---------------------------------------------

  /** The card id, which sealed information is bound to (the client needs it at enrollment). */
  async cardId(serial: string): Promise<Uint8Array> {
    return asBytes((await this.row(serial)).card_id);
  }

  /** The Argon2id parameters the client needs before it can authenticate. */
  async kdfParameters(serial: string): Promise<{ salt: Uint8Array; memoryKiB: number; iterations: number; parallelism: number }> {
    const row = await this.db.selectFrom('cards').select(['enrolled', 'kdf_salt', 'kdf_memory_kib', 'kdf_iterations', 'kdf_parallelism']).where('serial', '=', serial).executeTakeFirst();
    if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
    if (row.enrolled !== 1 || row.kdf_salt === null) throw new OperationRefused('not-enrolled', `card ${serial} has not been enrolled by its owner`);
    return { salt: asBytes(row.kdf_salt), memoryKiB: row.kdf_memory_kib!, iterations: row.kdf_iterations!, parallelism: row.kdf_parallelism! };
  }

  // ---- transitions -------------------------------------------------------------------------------

  /** Stores the owner's enrollment once, against the one-time token. */
  async enroll(serial: string, token: string, enrollment: Enrollment): Promise<void> {
    await this.transition(serial, 'enroll', { by: 'token' }, async (tx, row) => {
      if (row.enrolled === 1 || row.enrollment_token === null) throw new OperationRefused('wrong-state', `card ${serial} is already enrolled`);
      if (!constantTimeEqual(hash(utf8(token)), row.enrollment_token)) throw new OperationRefused('authentication', 'wrong enrollment token');
      await tx
        .updateTable('cards')
        .set({
          enrolled: 1, enrollment_token: null, kdf_salt: enrollment.kdfSalt, kdf_memory_kib: enrollment.kdfMemoryKiB, kdf_iterations: enrollment.kdfIterations,
          kdf_parallelism: enrollment.kdfParallelism, auth_verifier: enrollment.authVerifier, sealed: enrollment.sealed, sealed_version: 1, public_key: enrollment.publicKey,
          updated_at: this.now(),
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
    return this.transition(serial, 'insert', { owner }, async (tx, row) => {
      const grant = (window: readonly [bigint, bigint]): InsertGrant =>
        Object.freeze({ cardId: asBytes(row.card_id), sealed: asBytes(row.sealed!), sealedVersion: toBigInt(row.sealed_version), counterWindow: window });
      if (row.state === 'in-use' && isHolder(row, holder)) {
        const window = [BigInt(row.window_start!), BigInt(row.window_end!)] as const;
        return { from: 'in-use', to: 'in-use', detail: `repeated for its holder: window ${window[0]}..${window[1]}`, value: grant(window) };
      }
      if (row.state !== 'idle') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not idle`);
      const [start, end] = await this.allocateWindow(tx, row.card_id);
      const moved = await tx
        .updateTable('cards')
        .set({ state: 'in-use', muk: holder.muk, holder_hash: holder.holderHash, window_start: start.toString(), window_end: end.toString(), updated_at: this.now() })
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
    await this.transition(serial, 'remove', { owner }, async (tx, row) => {
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
        .set({ state: 'idle', ...NO_HOLDER, last_holder_hash: holder.holderHash, sealed: upload.sealed, sealed_version: upload.sealedVersion.toString(), updated_at: this.now() })
        .where('serial', '=', serial)
        .where('state', '=', 'in-use')
        .execute();
      await tx.updateTable('counter_ranges').set({ next_unallocated: upload.nextCounter.toString() }).where('card_id', '=', row.card_id).where('next_unallocated', '=', end.toString()).execute();
      return { from: 'in-use', to: 'idle', detail: `next counter ${upload.nextCounter}`, value: undefined };
    });
  }

  /**
   * A further counter window while the card is in use (DESIGN.md "Counters that never roll back"),
   * for the holder only. The card moves to it when its current window runs out, and reports a value
   * inside it at remove; whatever it leaves of the old window is never granted again.
   */
  async extend(serial: string, owner: Uint8Array, holder: HolderProof): Promise<readonly [bigint, bigint]> {
    return this.transition(serial, 'extend', { owner }, async (tx, row) => {
      checkHolder(serial, row, holder);
      const window = await this.allocateWindow(tx, row.card_id);
      await tx.updateTable('cards').set({ window_start: window[0].toString(), window_end: window[1].toString(), updated_at: this.now() }).where('serial', '=', serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'in-use', detail: `window ${window[0]}..${window[1]}`, value: window };
    });
  }

  /**
   * Recover ([0059]-[0060]): in-use → idle from the machine that lost the card; the whole window
   * counts as used. That machine repeating a recover whose answer it lost is told it succeeded.
   */
  async recover(serial: string, owner: Uint8Array, muk: Uint8Array): Promise<void> {
    const recoveredBy = recoveryMark(muk);
    await this.transition(serial, 'recover', { owner }, async (tx, row) => {
      if (gaveBack(row, recoveredBy)) {
        return { from: 'idle', to: 'idle', detail: 'repeated by the machine that recovered it: already idle', value: undefined };
      }
      if (row.state !== 'in-use') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not in use`);
      if (row.muk === null || !constantTimeEqual(muk, row.muk)) throw new OperationRefused('muk-mismatch', `card ${serial} was not lost by this machine`);
      await tx.updateTable('cards').set({ state: 'idle', ...NO_HOLDER, last_holder_hash: recoveredBy, updated_at: this.now() }).where('serial', '=', serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'idle', detail: `counter floor ${row.window_end}`, value: undefined };
    });
  }

  /** Destroy ([0098]): idle or in-use → destroyed, for good; the sealed information is dropped. */
  async destroy(serial: string, by: { owner: Uint8Array } | 'admin'): Promise<void> {
    await this.transition(serial, 'destroy', by === 'admin' ? { by: 'admin' } : by, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is already destroyed`);
      await tx.updateTable('cards').set({ ...DESTROYED, updated_at: this.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: 'destroyed', detail: `by ${by === 'admin' ? 'admin' : 'owner'}`, value: undefined };
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /**
   * The next window of the card id's counter range. Copies (other serials, same card id) draw from
   * the same row: it is locked like the card row, so a concurrent draw is refused, never doubled.
   */
  private async allocateWindow(tx: Transaction<VscDatabaseSchema>, cardId: Uint8Array): Promise<readonly [bigint, bigint]> {
    let query = tx.selectFrom('counter_ranges').select('next_unallocated').where('card_id', '=', cardId);
    if (this.database.dialect === 'postgres') query = query.forUpdate().noWait();
    const range = await query.executeTakeFirstOrThrow();
    const start = BigInt(range.next_unallocated);
    const end = start + this.counterWindow;
    const moved = await tx.updateTable('counter_ranges').set({ next_unallocated: end.toString() }).where('card_id', '=', cardId).where('next_unallocated', '=', range.next_unallocated).executeTakeFirst();
    if (moved.numUpdatedRows !== 1n) throw new OperationRefused('busy', 'a copy of this card drew counter values at the same moment; try again');
    return [start, end] as const;
  }

  private async checkNewSerial(tx: Transaction<VscDatabaseSchema>, serial: string): Promise<void> {
    const existing = await tx.selectFrom('cards').select('serial').where('serial', '=', serial).executeTakeFirst();
    if (existing !== undefined) throw new OperationRefused('wrong-state', `card ${serial} already exists`);
  }

  /** A row awaiting enrollment, with its counter range and creation event. */
  private async insertFresh(tx: Transaction<VscDatabaseSchema>, serial: string, cardId: Uint8Array, token: string, detail: string | null): Promise<void> {
    await this.checkNewSerial(tx, serial);
    const at = this.now();
    await tx
      .insertInto('cards')
      .values({
        serial, card_id: cardId, state: 'idle', enrollment_token: hash(utf8(token)), enrolled: 0,
        kdf_salt: null, kdf_memory_kib: null, kdf_iterations: null, kdf_parallelism: null, auth_verifier: null, auth_failures: 0, blocked: 0,
        sealed: null, sealed_version: 0, public_key: null, ...IDLE, created_at: at, updated_at: at,
      })
      .execute();
    await tx.insertInto('counter_ranges').values({ card_id: cardId, next_unallocated: '0' }).onConflict((conflict) => conflict.column('card_id').doNothing()).execute();
    await tx.insertInto('events').values({ serial, at, operation: 'create', outcome: 'ok', from_state: null, to_state: 'idle', detail }).execute();
  }

  /** An idle row carrying `source`'s card id, owner verifier and sealed information. */
  private async insertCopy(tx: Transaction<VscDatabaseSchema>, source: CardsTable, serial: string, detail: string): Promise<void> {
    await this.checkNewSerial(tx, serial);
    const at = this.now();
    await tx
      .insertInto('cards')
      .values({
        serial, card_id: source.card_id, state: 'idle', enrollment_token: null, enrolled: 1,
        kdf_salt: source.kdf_salt, kdf_memory_kib: source.kdf_memory_kib, kdf_iterations: source.kdf_iterations, kdf_parallelism: source.kdf_parallelism,
        auth_verifier: source.auth_verifier, auth_failures: 0, blocked: 0, sealed: source.sealed, sealed_version: source.sealed_version, public_key: source.public_key,
        ...IDLE, created_at: at, updated_at: at,
      })
      .execute();
    await tx.insertInto('events').values({ serial, at, operation: 'create', outcome: 'ok', from_state: null, to_state: 'idle', detail }).execute();
  }

  private async row(serial: string): Promise<CardsTable> {
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
  private async transition<T>(
    serial: string,
    operation: CardOperation | 'unblock',
    authority: { owner: Uint8Array } | { by: 'admin' | 'token' },
    change: (tx: Transaction<VscDatabaseSchema>, row: CardsTable) => Promise<{ from: string; to: string; detail?: string; value: T }>,
  ): Promise<T> {
    checkSerial(serial);
    let outcome: { refused: OperationRefused } | { value: T };
    try {
      outcome = await this.db.transaction().execute(async (tx) => {
        let query = tx.selectFrom('cards').selectAll().where('serial', '=', serial);
        if (this.database.dialect === 'postgres') query = query.forUpdate().noWait();
        const row = await query.executeTakeFirst();
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
      const error = asRefusal(caught, serial);
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

/**
 * What a recover leaves in last_holder_hash: a hash of the recovering machine's MUK, domain-separated
 * from the holder-secret hashes a remove leaves there.
 */
function recoveryMark(muk: Uint8Array): Uint8Array {
  const input = new Uint8Array(RECOVERY_DOMAIN.length + muk.length);
  input.set(RECOVERY_DOMAIN, 0);
  input.set(muk, RECOVERY_DOMAIN.length);
  return hash(input);
}

/** Whether the card is idle because of whoever `mark` names (last_holder_hash): a repeated remove or recover. */
function gaveBack(row: CardsTable, mark: Uint8Array): boolean {
  return row.state === 'idle' && row.last_holder_hash !== null && constantTimeEqual(mark, row.last_holder_hash);
}

function isHolder(row: CardsTable, holder: HolderProof): boolean {
  // Both comparisons run, whatever the first one says.
  const muk = row.muk !== null && constantTimeEqual(holder.muk, row.muk);
  const secret = row.holder_hash !== null && constantTimeEqual(holder.holderHash, row.holder_hash);
  return muk && secret;
}

/** The holder of an in-use card: the machine recorded at insert, and the process that inserted it. */
function checkHolder(serial: string, row: CardsTable, holder: HolderProof): void {
  if (row.state !== 'in-use') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not in use`);
  if (row.muk === null || !constantTimeEqual(holder.muk, row.muk)) throw new OperationRefused('muk-mismatch', `card ${serial} is held by another machine`);
  if (row.holder_hash === null || !constantTimeEqual(holder.holderHash, row.holder_hash)) throw new OperationRefused('holder-mismatch', `this process did not insert card ${serial}`);
}

/** A lock held by another operation (another server process) is a busy serial, refused at once. */
function asRefusal(error: unknown, serial: string): unknown {
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  if (code === PG_LOCK_NOT_AVAILABLE || code === 'SQLITE_BUSY') return new OperationRefused('busy', `card ${serial} is busy with another operation; try again`);
  return error;
}
