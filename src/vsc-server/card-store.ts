// The mediation state machine of patent 004 Fig. 4 over the server database: idle --insert-->
// in-use --remove|recover--> idle, idle|in-use --destroy--> destroyed (terminal). Every
// check-and-set is one conditional UPDATE inside a transaction that also appends the event row, so
// it holds across server processes on one database. While an operation on a serial runs, every
// other operation on it is refused ([0081]): a lease in the card row, taken by a conditional UPDATE
// and given back when the operation ends, or lapsing if its server died.
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { constantTimeEqual, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { SERIAL_PATTERN, refusalExitCode, type Refusal } from '../vsc-protocol/messages.js';
import type { CardsTable, VscDatabase, VscDatabaseSchema } from './database.js';

export type CardState = CardsTable['state'];
export type CardOperation = 'enroll' | 'insert' | 'remove' | 'recover' | 'destroy' | 'replace' | 'copy' | 'extend';

/** Why the server refused; the exit code follows from it (DESIGN.md "Command line"). */
export type RefusalReason = Refusal;

export class CardRefusal extends VscError {
  override readonly name = 'CardRefusal';
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(`card.${reason}`, message, { exitCode: refusalExitCode(reason) });
    this.reason = reason;
  }
}

/** Consecutive owner-authentication failures after which a card waits for `admin unblock`. */
export const MAX_AUTH_FAILURES = 10;
/** How long a per-serial lease lasts if the server holding it dies mid-operation. */
export const DEFAULT_LEASE_MS = 60_000;
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

/** A running operation's hold on one serial. */
export interface Lease {
  readonly serial: string;
  readonly operation: CardOperation;
  readonly token: string;
}

export interface CardStoreOptions {
  readonly now?: () => number;
  readonly leaseMs?: number;
  readonly counterWindow?: bigint;
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
const newEnrollmentToken = (): string => randomBytes(24).toString('base64url');
/** Columns of a card no machine holds: no MUK, no holder secret, no counter window. */
const NO_HOLDER = { muk: null, holder_hash: null, window_start: null, window_end: null } as const;
/** Columns of a new card: nobody holds it, no operation runs on it. */
const IDLE = { ...NO_HOLDER, busy_operation: null, busy_until: null } as const;
/** Columns of a destroyed card: no holder, no window, no sealed information. */
const DESTROYED = { state: 'destroyed', ...NO_HOLDER, sealed: null } as const;
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
  private readonly leaseMs: number;
  private readonly counterWindow: bigint;

  constructor(
    private readonly database: VscDatabase,
    options: CardStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.counterWindow = options.counterWindow ?? DEFAULT_COUNTER_WINDOW;
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
  async replace(lease: Lease, newSerial: string, mode: 'exact' | 'complete'): Promise<{ token?: string }> {
    checkSerial(newSerial);
    let token: string | undefined;
    await this.transition(lease.serial, 'replace', async (tx, row) => {
      if (row.state === 'destroyed') throw new CardRefusal('wrong-state', `card ${lease.serial} is destroyed; its information is gone: enroll a new card`);
      if (mode === 'exact' && row.enrolled !== 1) throw new CardRefusal('not-enrolled', `card ${lease.serial} was never enrolled: there is nothing to duplicate`);
      const at = this.now();
      if (mode === 'exact') {
        await this.insertCopy(tx, row, newSerial, `exact duplicate of ${lease.serial}`);
      } else {
        token = newEnrollmentToken();
        await this.insertFresh(tx, newSerial, new Uint8Array(randomBytes(16)), token, `complete replacement of ${lease.serial}`);
      }
      await tx.updateTable('cards').set({ ...DESTROYED, updated_at: at }).where('serial', '=', lease.serial).execute();
      return { from: row.state, to: 'destroyed', detail: `replaced by ${newSerial} (${mode})` };
    });
    return token === undefined ? {} : { token };
  }

  /**
   * Copy ([0102]): a new serial with the same information; both stay usable. Copies share the card
   * id and so one counter range: no counter value is ever granted to two of them.
   */
  async copy(lease: Lease, newSerial: string): Promise<void> {
    checkSerial(newSerial);
    await this.transition(lease.serial, 'copy', async (tx, row) => {
      if (row.state === 'destroyed') throw new CardRefusal('wrong-state', `card ${lease.serial} is destroyed`);
      if (row.enrolled !== 1) throw new CardRefusal('not-enrolled', `card ${lease.serial} was never enrolled: there is nothing to copy`);
      await this.insertCopy(tx, row, newSerial, `copy of ${lease.serial}`);
      return { from: row.state, to: row.state, detail: `copied to ${newSerial}` };
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
    await this.transition(serial, 'unblock', async (tx, row) => {
      await tx.updateTable('cards').set({ blocked: 0, auth_failures: 0, updated_at: this.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: row.state };
    });
  }

  // ---- per-serial exclusion ----------------------------------------------------------------------

  /** Takes the serial for `operation`, or refuses when another operation holds it ([0081]). */
  async begin(serial: string, operation: CardOperation): Promise<Lease> {
    checkSerial(serial);
    const token = randomBytes(16).toString('hex');
    const at = this.now();
    const result = await this.db
      .updateTable('cards')
      .set({ busy_operation: `${operation}:${token}`, busy_until: at + this.leaseMs })
      .where('serial', '=', serial)
      .where((eb) => eb.or([eb('busy_operation', 'is', null), eb('busy_until', '<', at)]))
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) {
      await this.row(serial); // unknown-card when there is none
      throw new CardRefusal('busy', `card ${serial} is busy with another operation; try again`);
    }
    return Object.freeze({ serial, operation, token });
  }

  async end(lease: Lease): Promise<void> {
    await this.db
      .updateTable('cards')
      .set({ busy_operation: null, busy_until: null })
      .where('serial', '=', lease.serial)
      .where('busy_operation', '=', `${lease.operation}:${lease.token}`)
      .execute();
  }

  // ---- owner authentication ----------------------------------------------------------------------

  /** The card id, which sealed information is bound to (the client needs it at enrollment). */
  async cardId(serial: string): Promise<Uint8Array> {
    return asBytes((await this.row(serial)).card_id);
  }

  /** The Argon2id parameters the client needs before it can authenticate. */
  async kdfParameters(serial: string): Promise<{ salt: Uint8Array; memoryKiB: number; iterations: number; parallelism: number }> {
    const row = await this.row(serial);
    if (row.enrolled !== 1 || row.kdf_salt === null) throw new CardRefusal('not-enrolled', `card ${serial} has not been enrolled by its owner`);
    return { salt: asBytes(row.kdf_salt), memoryKiB: row.kdf_memory_kib!, iterations: row.kdf_iterations!, parallelism: row.kdf_parallelism! };
  }

  /**
   * Checks the owner's auth key against the stored verifier (constant time). Failures are counted;
   * the tenth blocks the card until `admin unblock`. A success resets the count.
   */
  async authenticateOwner(lease: Lease, verifier: Uint8Array): Promise<void> {
    const row = await this.row(lease.serial);
    if (row.enrolled !== 1 || row.auth_verifier === null) throw new CardRefusal('not-enrolled', `card ${lease.serial} has not been enrolled by its owner`);
    if (row.blocked === 1) throw new CardRefusal('blocked', `card ${lease.serial} is blocked after ${MAX_AUTH_FAILURES} failed authentications; an administrator must unblock it`);
    if (constantTimeEqual(verifier, row.auth_verifier)) {
      if (row.auth_failures !== 0) await this.db.updateTable('cards').set({ auth_failures: 0 }).where('serial', '=', lease.serial).execute();
      return;
    }
    const failures = row.auth_failures + 1;
    const blocked = failures >= MAX_AUTH_FAILURES;
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('cards').set({ auth_failures: failures, blocked: blocked ? 1 : 0, updated_at: this.now() }).where('serial', '=', lease.serial).execute();
      await tx.insertInto('events').values({ serial: lease.serial, at: this.now(), operation: lease.operation, outcome: blocked ? 'refused: blocked' : 'refused: authentication', from_state: row.state, to_state: row.state, detail: `failure ${failures}` }).execute();
    });
    throw new CardRefusal(blocked ? 'blocked' : 'authentication', blocked ? `wrong password; card ${lease.serial} is now blocked until an administrator unblocks it` : 'wrong password');
  }

  // ---- transitions -------------------------------------------------------------------------------

  /** Stores the owner's enrollment once, against the one-time token. */
  async enroll(lease: Lease, token: string, enrollment: Enrollment): Promise<void> {
    await this.transition(lease.serial, 'enroll', async (tx, row) => {
      if (row.enrolled === 1 || row.enrollment_token === null) throw new CardRefusal('wrong-state', `card ${lease.serial} is already enrolled`);
      if (!constantTimeEqual(hash(utf8(token)), row.enrollment_token)) throw new CardRefusal('authentication', 'wrong enrollment token');
      await tx
        .updateTable('cards')
        .set({
          enrolled: 1, enrollment_token: null, kdf_salt: enrollment.kdfSalt, kdf_memory_kib: enrollment.kdfMemoryKiB, kdf_iterations: enrollment.kdfIterations,
          kdf_parallelism: enrollment.kdfParallelism, auth_verifier: enrollment.authVerifier, sealed: enrollment.sealed, sealed_version: 1, public_key: enrollment.publicKey,
          updated_at: this.now(),
        })
        .where('serial', '=', lease.serial)
        .where('enrolled', '=', 0)
        .execute();
      return { from: 'idle', to: 'idle' };
    });
  }

  /**
   * Mediation of insert ([0091]-[0094]): idle → in-use in one statement that also records the
   * holder's MUK and holder-secret hash, and grants a counter window from the card id's range.
   */
  async insert(lease: Lease, muk: Uint8Array, holderHash: Uint8Array): Promise<InsertGrant> {
    let grant: InsertGrant | undefined;
    await this.transition(lease.serial, 'insert', async (tx, row) => {
      if (row.state !== 'idle') throw new CardRefusal('wrong-state', `card ${lease.serial} is ${row.state}, not idle`);
      const [start, end] = await this.allocateWindow(tx, row.card_id);
      const moved = await tx
        .updateTable('cards')
        .set({ state: 'in-use', muk, holder_hash: holderHash, window_start: start.toString(), window_end: end.toString(), updated_at: this.now() })
        .where('serial', '=', lease.serial)
        .where('state', '=', 'idle')
        .executeTakeFirst();
      if (moved.numUpdatedRows !== 1n) throw new CardRefusal('wrong-state', `card ${lease.serial} is no longer idle`);
      grant = Object.freeze({ cardId: asBytes(row.card_id), sealed: asBytes(row.sealed!), sealedVersion: toBigInt(row.sealed_version), counterWindow: [start, end] as const });
      return { from: 'idle', to: 'in-use', detail: `window ${start}..${end}` };
    });
    return grant!;
  }

  /**
   * Remove ([0095]): only the holder (same MUK and holder secret) moves in-use → idle, uploading the
   * new sealed information; values of the window it did not use go back to the range when no copy
   * drew after it.
   */
  async remove(lease: Lease, proof: { muk: Uint8Array; holderHash: Uint8Array }, upload: { sealed: Uint8Array; sealedVersion: bigint; nextCounter: bigint }): Promise<void> {
    await this.transition(lease.serial, 'remove', async (tx, row) => {
      this.checkHolder(lease.serial, row, proof);
      const start = BigInt(row.window_start!);
      const end = BigInt(row.window_end!);
      if (upload.nextCounter < start || upload.nextCounter > end) throw new CardRefusal('wrong-state', `the reported counter ${upload.nextCounter} is outside the granted window`);
      if (upload.sealedVersion !== toBigInt(row.sealed_version) + 1n) throw new CardRefusal('wrong-state', `expected sealed version ${toBigInt(row.sealed_version) + 1n}, got ${upload.sealedVersion}`);
      await tx
        .updateTable('cards')
        .set({ state: 'idle', ...NO_HOLDER, sealed: upload.sealed, sealed_version: upload.sealedVersion.toString(), updated_at: this.now() })
        .where('serial', '=', lease.serial)
        .where('state', '=', 'in-use')
        .execute();
      await tx.updateTable('counter_ranges').set({ next_unallocated: upload.nextCounter.toString() }).where('card_id', '=', row.card_id).where('next_unallocated', '=', end.toString()).execute();
      return { from: 'in-use', to: 'idle', detail: `next counter ${upload.nextCounter}` };
    });
  }

  /**
   * A further counter window while the card is in use (DESIGN.md "Counters that never roll back"),
   * for the holder only. The card moves to it when its current window runs out, and reports a value
   * inside it at remove; whatever it leaves of the old window is never granted again.
   */
  async extend(lease: Lease, proof: { muk: Uint8Array; holderHash: Uint8Array }): Promise<readonly [bigint, bigint]> {
    let window: readonly [bigint, bigint] | undefined;
    await this.transition(lease.serial, 'extend', async (tx, row) => {
      this.checkHolder(lease.serial, row, proof);
      window = await this.allocateWindow(tx, row.card_id);
      await tx.updateTable('cards').set({ window_start: window[0].toString(), window_end: window[1].toString(), updated_at: this.now() }).where('serial', '=', lease.serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'in-use', detail: `window ${window[0]}..${window[1]}` };
    });
    return window!;
  }

  /** Recover ([0059]-[0060]): in-use → idle from the machine that lost the card; the whole window counts as used. */
  async recover(lease: Lease, muk: Uint8Array): Promise<void> {
    await this.transition(lease.serial, 'recover', async (tx, row) => {
      if (row.state !== 'in-use') throw new CardRefusal('wrong-state', `card ${lease.serial} is ${row.state}, not in use`);
      if (row.muk === null || !constantTimeEqual(muk, row.muk)) throw new CardRefusal('muk-mismatch', `card ${lease.serial} was not lost by this machine`);
      await tx.updateTable('cards').set({ state: 'idle', ...NO_HOLDER, updated_at: this.now() }).where('serial', '=', lease.serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'idle', detail: `counter floor ${row.window_end}` };
    });
  }

  /** Destroy ([0098]): idle or in-use → destroyed, for good; the sealed information is dropped. */
  async destroy(lease: Lease | { serial: string }, by: 'owner' | 'admin'): Promise<void> {
    await this.transition(lease.serial, 'destroy', async (tx, row) => {
      if (row.state === 'destroyed') throw new CardRefusal('wrong-state', `card ${lease.serial} is already destroyed`);
      await tx.updateTable('cards').set({ ...DESTROYED, updated_at: this.now() }).where('serial', '=', lease.serial).execute();
      return { from: row.state, to: 'destroyed', detail: `by ${by}` };
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** The holder of an in-use card: the machine recorded at insert, and the process that inserted it. */
  private checkHolder(serial: string, row: CardsTable, proof: { muk: Uint8Array; holderHash: Uint8Array }): void {
    if (row.state !== 'in-use') throw new CardRefusal('wrong-state', `card ${serial} is ${row.state}, not in use`);
    if (row.muk === null || !constantTimeEqual(proof.muk, row.muk)) throw new CardRefusal('muk-mismatch', `card ${serial} is held by another machine`);
    if (row.holder_hash === null || !constantTimeEqual(proof.holderHash, row.holder_hash)) throw new CardRefusal('holder-mismatch', `this process did not insert card ${serial}`);
  }

  /**
   * The next window of the card id's counter range. The conditional update makes a concurrent
   * allocation for a copy (another serial, same card id) fail instead of granting the same values.
   */
  private async allocateWindow(tx: Transaction<VscDatabaseSchema>, cardId: Uint8Array): Promise<readonly [bigint, bigint]> {
    const range = await tx.selectFrom('counter_ranges').select('next_unallocated').where('card_id', '=', cardId).executeTakeFirstOrThrow();
    const start = BigInt(range.next_unallocated);
    const end = start + this.counterWindow;
    const moved = await tx.updateTable('counter_ranges').set({ next_unallocated: end.toString() }).where('card_id', '=', cardId).where('next_unallocated', '=', range.next_unallocated).executeTakeFirst();
    if (moved.numUpdatedRows !== 1n) throw new CardRefusal('busy', 'a copy of this card drew counter values at the same moment; try again');
    return [start, end] as const;
  }

  private async checkNewSerial(tx: Transaction<VscDatabaseSchema>, serial: string): Promise<void> {
    const existing = await tx.selectFrom('cards').select('serial').where('serial', '=', serial).executeTakeFirst();
    if (existing !== undefined) throw new CardRefusal('wrong-state', `card ${serial} already exists`);
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
    if (row === undefined) throw new CardRefusal('unknown-card', `no card ${serial}`);
    return row;
  }

  /** Runs `change` in a transaction with the event row; a refusal is recorded as an event too. */
  private async transition(
    serial: string,
    operation: string,
    change: (tx: Transaction<VscDatabaseSchema>, row: CardsTable) => Promise<{ from: string; to: string; detail?: string }>,
  ): Promise<void> {
    try {
      await this.db.transaction().execute(async (tx) => {
        const row = await tx.selectFrom('cards').selectAll().where('serial', '=', serial).executeTakeFirst();
        if (row === undefined) throw new CardRefusal('unknown-card', `no card ${serial}`);
        const { from, to, detail } = await change(tx, row);
        await tx.insertInto('events').values({ serial, at: this.now(), operation, outcome: 'ok', from_state: from, to_state: to, detail: detail ?? null }).execute();
      });
    } catch (error) {
      if (error instanceof CardRefusal && error.reason !== 'unknown-card') {
        await this.db.insertInto('events').values({ serial, at: this.now(), operation, outcome: `refused: ${error.reason}`, from_state: null, to_state: null, detail: null }).execute();
      }
      throw error;
    }
  }
}
