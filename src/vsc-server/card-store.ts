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
import { hmacSha256 } from '../crypto/index.js';
import {
  DEFAULT_KDF, KDF_SALT_LENGTH, OperationRefused, enrollmentTokenHash, newRecoveryCode, noCardIdToWrap, noCardKeyToWrap, wrapCardId, wrapCardKey, type Refusal,
} from '../vsc-protocol/index.js';
import { CardAdmin } from './card-admin.js';
import {
  DESTROYED, NO_HOLDER, asBytes, hash, toBigInt, type CardEvent, type CardOperation, type CardSummary, type Enrollment, type HeldSignature, type HolderProof, type InsertGrant, type Upload,
} from './card-records.js';
import { CardTransactions } from './card-transaction.js';
import { DEFAULT_COUNTER_WINDOW, allocateWindow, returnUnusedValues } from './counter-ranges.js';
import { CommitGroups } from './commit-groups.js';
import type { VscDatabase } from './database.js';
import { cardLockFor } from './dialect/index.js';
import { checkHolder, gaveBack, isHolder, notTheHolder, recoveryMark } from './holder-checks.js';
import type { OwnerProof } from './owner-authentication.js';
import type { ServerAttester } from './server-attestation.js';
import { insertServerHeld, removeServerHeld } from './server-held-card.js';
import type { HeldSeedSealer } from './server-held-seed.js';
import { isServerHeld, signForHolder } from './server-held-signing.js';

export * from './card-records.js';
export { BACKOFF_MAX_MS, MAX_BUCKET_FAILURES, STRANGERS_BUCKET, backoffMs, machineMark, pruneStaleFailureBuckets, type OwnerProof } from './owner-authentication.js';
export { DEFAULT_COUNTER_WINDOW } from './counter-ranges.js';
export { REFUSAL_EVENT_PERIOD_MS } from './card-transaction.js';

/** Why the server refused; the exit code follows from it (DESIGN.md "Command line"). */
export type RefusalReason = Refusal;

export interface CardStoreOptions {
  readonly now?: () => number;
  readonly counterWindow?: bigint;
  /**
   * A server secret the KDF salts of serials without an enrolled card are derived from, so that they
   * answer like enrolled ones (the same salt every time). Default: random per store (tests).
   */
  readonly saltSecret?: Uint8Array;
  /**
   * Called inside an operation's transaction once its changes are written, before the commit:
   * crash injection names this step (`in-transaction`), see src/fault-injection.
   */
  readonly beforeCommit?: (operation: CardOperation) => void;
  /**
   * Seals and opens server-held cards' seeds (server-held-seed.ts): needed to create, copy, replace and sign
   * for such cards; without it they are refused.
   */
  readonly heldSeeds?: HeldSeedSealer;
  /** Called with a commit group's size once its commit is durable (the metrics). */
  readonly groupCommitted?: (size: number) => void;
  /** Commit groups under way at once on PostgreSQL (default POSTGRES_COMMIT_LANES); SQLite has one. */
  readonly commitLanes?: number;
  /** Called with a commit group's size just before its commit (crash injection: `server.group.committing`). */
  readonly beforeGroupCommit?: (size: number) => void;
  /** Signs the attestation an insert of a server-held card carries; without it inserts carry none. */
  readonly attester?: ServerAttester;
}

/**
 * Commit groups under way at once on PostgreSQL, each on a pool connection of its own (the pool has 10;
 * reads outside operations take others). SQLite has one writer, so one.
 */
export const POSTGRES_COMMIT_LANES = 4;
/** Operations at most in one commit group. */
export const MAX_GROUP_SIZE = 64;
/**
 * On PostgreSQL: each operation's savepoint that writes is a subtransaction, and a backend caches at
 * most 64 of them before every other backend's snapshots must look them up on disk.
 */
export const POSTGRES_MAX_GROUP_SIZE = 32;

const SALT_DOMAIN = utf8('vsc-kdf-salt/1\0');
const WRONG_TOKEN = (serial: string): OperationRefused => new OperationRefused('authentication', `wrong enrollment token, or card ${serial} awaits no enrollment`);

export class CardStore {
  private readonly counterWindow: bigint;
  private readonly saltSecret: Uint8Array;
  private readonly cards: CardTransactions;
  private readonly admin: CardAdmin;
  private readonly heldSeeds: HeldSeedSealer | undefined;
  private readonly attester: ServerAttester | undefined;

  constructor(database: VscDatabase, options: CardStoreOptions = {}) {
    this.counterWindow = options.counterWindow ?? DEFAULT_COUNTER_WINDOW;
    this.saltSecret = options.saltSecret ?? new Uint8Array(randomBytes(32));
    const groups = new CommitGroups(database.db, {
      lanes: database.dialect === 'postgres' ? options.commitLanes ?? POSTGRES_COMMIT_LANES : 1,
      maxGroupSize: database.dialect === 'postgres' ? POSTGRES_MAX_GROUP_SIZE : MAX_GROUP_SIZE,
      ...(options.beforeGroupCommit === undefined ? {} : { beforeCommit: options.beforeGroupCommit }), ...(options.groupCommitted === undefined ? {} : { committed: options.groupCommitted }),
    });
    this.cards = new CardTransactions(database.db, cardLockFor(database.dialect), options.now ?? Date.now, options.beforeCommit ?? (() => undefined), groups);
    this.heldSeeds = options.heldSeeds;
    this.attester = options.attester;
    this.admin = new CardAdmin(this.cards, this.heldSeeds);
  }

  // ---- administration (card-admin.ts) ------------------------------------------------------------

  /**
   * A new card record awaiting its owner; returns the one-time enrollment token (shown once). A server-held
   * card (patent 003 [0096]) gets its signing key here, generated on and sealed to this server.
   */
  create(serial: string, cardId: Uint8Array = new Uint8Array(randomBytes(16)), options: { readonly serverHeld?: boolean } = {}): Promise<string> {
    return this.admin.create(serial, cardId, options.serverHeld === true ? 'server-held' : 'software');
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
  /** `vsc admin unblock`: empties every failure bucket of the card. */
  unblock(serial: string): Promise<void> {
    return this.admin.unblock(serial);
  }

  // ---- what a client needs before it can authenticate ---------------------------------------------

  /**
   * The enroll challenge's card id and the card's key kind (a server-held card's public key), each wrapped
   * under the enrollment token (enrollment-wrap.ts): random bytes of the same lengths for a serial that awaits
   * no enrollment, so the challenge tells a peer without the token nothing, not even whether the serial exists.
   */
  async enrollSecrets(serial: string, ri1: Uint8Array): Promise<{ wrappedCardId: Uint8Array; wrappedCardKey: Uint8Array }> {
    const row = await this.cards.db.selectFrom('cards').select(['card_id', 'enrollment_token', 'enrolled', 'state', 'kind', 'public_key']).where('serial', '=', serial).executeTakeFirst();
    if (row === undefined || row.enrolled === 1 || row.enrollment_token === null || row.state === 'destroyed') return { wrappedCardId: noCardIdToWrap(), wrappedCardKey: noCardKeyToWrap() };
    const tokenHash = asBytes(row.enrollment_token);
    const cardKey = row.kind === 'server-held' && row.public_key !== null ? { kind: 'server-held' as const, publicKey: asBytes(row.public_key) } : { kind: 'software' as const };
    return { wrappedCardId: wrapCardId(tokenHash, serial, ri1, asBytes(row.card_id)), wrappedCardKey: wrapCardKey(tokenHash, serial, ri1, cardKey) };
  }

  /**
   * The Argon2id parameters the client needs before it can authenticate: the card's own, or for a
   * serial without an enrolled card the design's defaults with a salt derived from the server
   * secret and the serial, the same at every ask, so that unknown and enrolled serials look alike.
   */
  async kdfParameters(serial: string): Promise<{ salt: Uint8Array; memoryKiB: number; iterations: number; parallelism: number }> {
    const row = await this.cards.hot.kdfParameters(this.cards.db, serial);
    if (row === undefined || row.enrolled !== 1 || row.kdf_salt === null) {
      return { salt: hmacSha256(this.saltSecret, SALT_DOMAIN, utf8(serial)).slice(0, KDF_SALT_LENGTH), ...DEFAULT_KDF };
    }
    return { salt: asBytes(row.kdf_salt), memoryKiB: row.kdf_memory_kib!, iterations: row.kdf_iterations!, parallelism: row.kdf_parallelism! };
  }

  // ---- transitions -------------------------------------------------------------------------------

  /**
   * Stores the owner's enrollment once, against the one-time token, and returns the recovery code
   * (shown to the owner once; the server keeps its hash). The enrolling machine counts as one that
   * has held the card. Whatever the serial, a peer without the token hears "wrong token".
   */
  async enroll(serial: string, token: string, muk: Uint8Array, enrollment: Enrollment): Promise<string> {
    const recoveryCode = newRecoveryCode();
    await this.cards.run(serial, 'enroll', { by: 'token' }, async (tx, row) => {
      const stored = row.enrolled === 1 || row.enrollment_token === null || row.state === 'destroyed' ? undefined : row.enrollment_token;
      if (!constantTimeEqual(enrollmentTokenHash(token), stored ?? new Uint8Array(32)) || stored === undefined) throw WRONG_TOKEN(serial);
      // A server-held card's public key is the one this server generated: an owner naming another one
      // (a client that generated its own key) would never see a signature verify.
      if (isServerHeld(row) && (row.public_key === null || !constantTimeEqual(asBytes(row.public_key), enrollment.publicKey))) {
        throw new OperationRefused('wrong-state', `card ${serial} is server-held: its public key is the one this server generated; enroll it with a client that knows server-held cards`);
      }
      await tx
        .updateTable('cards')
        .set({
          enrolled: 1, enrollment_token: null, kdf_salt: enrollment.kdfSalt, kdf_memory_kib: enrollment.kdfMemoryKiB, kdf_iterations: enrollment.kdfIterations,
          kdf_parallelism: enrollment.kdfParallelism, auth_verifier: enrollment.authVerifier, recovery_hash: hash(utf8(recoveryCode)), sealed: enrollment.sealed, sealed_version: 1,
          public_key: enrollment.publicKey, updated_at: this.cards.now(),
        })
        .where('serial', '=', serial)
        .where('enrolled', '=', 0)
        .execute();
      await this.cards.owners.rememberMachine(tx, serial, muk);
      return { from: 'idle', to: 'idle', value: undefined };
    }, () => WRONG_TOKEN(serial));
    return recoveryCode;
  }

  /**
   * Mediation of insert ([0091]-[0094]): idle → in-use in one statement that also records the
   * holder's MUK and holder-secret hash, and grants a counter window from the card id's range.
   * The same holder asking again (its answer was lost with a dropped connection or a dead server)
   * gets the same grant: it proves the holder secret itself, whose hash only the server keeps.
   */
  async insert(serial: string, owner: Uint8Array, holder: HolderProof): Promise<InsertGrant> {
    return this.cards.run(serial, 'insert', { owner: { verifier: owner, muk: holder.muk } }, async (tx, row) => {
      const grant = (window: readonly [bigint, bigint]): InsertGrant =>
        Object.freeze({ cardId: asBytes(row.card_id), sealed: asBytes(row.sealed!), sealedVersion: toBigInt(row.sealed_version), counterWindow: window });
      if (isServerHeld(row)) return insertServerHeld(this.cards, this.attester, tx, serial, row, holder);
      if (row.state === 'in-use' && isHolder(row, holder)) {
        const window = [BigInt(row.window_start!), BigInt(row.window_end!)] as const;
        return { from: 'in-use', to: 'in-use', detail: `repeated for its holder: window ${window[0]}..${window[1]}`, value: grant(window) };
      }
      if (row.state !== 'idle') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not idle`);
      const [start, end] = await allocateWindow(tx, this.cards.hot, row.card_id, this.counterWindow);
      if (!(await this.cards.hot.markInUse(tx, serial, holder, [start.toString(), end.toString()], this.cards.now()))) throw new OperationRefused('wrong-state', `card ${serial} is no longer idle`);
      await this.cards.owners.rememberMachine(tx, serial, holder.muk);
      return { from: 'idle', to: 'in-use', detail: `window ${start}..${end}`, value: grant([start, end] as const) };
    });
  }

  /**
   * Remove ([0095]): only the holder (same MUK and holder secret, no password: the holder's own
   * operation is never held up by others' failures) moves in-use → idle, uploading the new sealed
   * information; values of the window it did not use go back to the range when no copy drew after
   * it. Without a next counter (an upload the card process kept on disk before it died) the whole
   * window counts as used, as at recover. The holder repeating a remove whose answer it lost is told
   * it succeeded, and nothing changes.
   */
  async remove(serial: string, holder: HolderProof, upload: Upload): Promise<void> {
    await this.cards.run(serial, 'remove', { by: 'holder' }, async (tx, row) => {
      if (gaveBack(row, holder.holderHash) && upload.sealedVersion === toBigInt(row.sealed_version)) {
        return { from: 'idle', to: 'idle', detail: 'repeated by its holder: already removed', value: undefined };
      }
      checkHolder(serial, row, holder);
      if (isServerHeld(row)) return removeServerHeld(this.cards, tx, serial, row, holder, upload);
      const start = BigInt(row.window_start!);
      const end = BigInt(row.window_end!);
      const next = upload.nextCounter ?? end;
      if (next < start || next > end) throw new OperationRefused('wrong-state', `the reported counter ${next} is outside the granted window`);
      if (upload.sealedVersion !== toBigInt(row.sealed_version) + 1n) throw new OperationRefused('wrong-state', `expected sealed version ${toBigInt(row.sealed_version) + 1n}, got ${upload.sealedVersion}`);
      await this.cards.hot.markIdle(tx, serial, holder.holderHash, upload.sealed, upload.sealedVersion, this.cards.now());
      await returnUnusedValues(tx, this.cards.hot, row.card_id, end, next);
      return { from: 'in-use', to: 'idle', detail: upload.nextCounter === undefined ? `kept upload; counter floor ${end}` : `next counter ${next}`, value: undefined };
    }, () => notTheHolder(serial));
  }

  /**
   * A further counter window while the card is in use (DESIGN.md "Counters that never roll back"),
   * for the holder only. The card moves to it when its current window runs out, and reports a value
   * inside it at remove; whatever it leaves of the old window is never granted again.
   */
  async extend(serial: string, holder: HolderProof): Promise<readonly [bigint, bigint]> {
    return this.cards.run(serial, 'extend', { by: 'holder' }, async (tx, row) => {
      checkHolder(serial, row, holder);
      if (isServerHeld(row)) throw new OperationRefused('wrong-state', `card ${serial} is server-held: its server signs and counts, so it needs no counter windows`);
      const window = await allocateWindow(tx, this.cards.hot, row.card_id, this.counterWindow);
      await this.cards.hot.newWindow(tx, serial, window, this.cards.now());
      return { from: 'in-use', to: 'in-use', detail: `window ${window[0]}..${window[1]}`, value: window };
    }, () => notTheHolder(serial));
  }

  /**
   * Recover ([0059]-[0060]): in-use → idle from the machine that lost the card; the whole window
   * counts as used. That machine repeating a recover whose answer it lost is told it succeeded. A
   * server-held card has no window: its counter lives here, so recover loses no counter value at all,
   * and a rental trail needs no bridge record for it.
   */
  async recover(serial: string, owner: Uint8Array, muk: Uint8Array): Promise<void> {
    const recoveredBy = recoveryMark(muk);
    await this.cards.run(serial, 'recover', { owner: { verifier: owner, muk } }, async (tx, row) => {
      if (gaveBack(row, recoveredBy)) {
        return { from: 'idle', to: 'idle', detail: 'repeated by the machine that recovered it: already idle', value: undefined };
      }
      if (row.state !== 'in-use') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not in use`);
      if (row.muk === null || !constantTimeEqual(muk, row.muk)) throw new OperationRefused('muk-mismatch', `card ${serial} was not lost by this machine`);
      await tx.updateTable('cards').set({ state: 'idle', ...NO_HOLDER, last_holder_hash: recoveredBy, updated_at: this.cards.now() }).where('serial', '=', serial).where('state', '=', 'in-use').execute();
      return { from: 'in-use', to: 'idle', detail: isServerHeld(row) ? 'server-held: no counter value lost' : `counter floor ${row.window_end}`, value: undefined };
    });
  }

  /**
   * Destroy ([0098]): idle or in-use → destroyed, for good; the sealed information is dropped. A
   * holder of the card is told at its remove that the card was destroyed.
   */
  async destroy(serial: string, by: OwnerProof | 'admin'): Promise<void> {
    await this.cards.run(serial, 'destroy', by === 'admin' ? { by: 'admin' } : { owner: by }, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is already destroyed`);
      await tx.updateTable('cards').set({ ...DESTROYED, last_holder_hash: row.holder_hash, updated_at: this.cards.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: 'destroyed', detail: `by ${by === 'admin' ? 'admin' : 'owner'}`, value: undefined };
    });
  }

  /** A server-held card's SIGN AND INCREMENT for its holder (server-held-signing.ts). */
  sign(serial: string, holder: HolderProof, h: Uint8Array): Promise<HeldSignature> {
    return signForHolder(this.cards, this.requireHeldSeeds(), serial, holder, h);
  }

  private requireHeldSeeds(): HeldSeedSealer {
    if (this.heldSeeds === undefined) throw new OperationRefused('internal', 'this card store was opened without the server\'s keys: it cannot sign for server-held cards');
    return this.heldSeeds;
  }

  /**
   * The owner's recovery code (shown once at enrollment) empties every failure bucket of the card.
   * A wrong code, or a serial without an enrolled card, gets the same refusal.
   */
  async unblockWithRecoveryCode(serial: string, recoveryCode: string): Promise<void> {
    const wrong = (): OperationRefused => new OperationRefused('authentication', `wrong recovery code, or no card ${serial} enrolled on this server`);
    await this.cards.run(serial, 'unblock', { by: 'recovery-code' }, async (tx, row) => {
      const stored = row.recovery_hash ?? new Uint8Array(32);
      if (!constantTimeEqual(hash(utf8(recoveryCode)), stored) || row.recovery_hash === null || row.state === 'destroyed') throw wrong();
      await this.cards.owners.clear(tx, serial);
      return { from: row.state, to: row.state, detail: 'by recovery code', value: undefined };
    }, wrong);
  }
}
