// The administrator's operations on the card store (`vsc admin ...`): create (a server-held card among them,
// patent 003 [0096]), replace ([0062]), copy ([0102]), list, show, events and unblock. Each change is one card
// transaction like a client's.
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { utf8 } from '../bytes/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { DESTROYED, IDLE, checkSerial, hash, newEnrollmentToken, summarise, type CardEvent, type CardSummary, type FailureCounts } from './card-records.js';
import { MAX_BUCKET_FAILURES } from './owner-authentication.js';
import type { CardTransactions } from './card-transaction.js';
import { openCounterRange } from './counter-ranges.js';
import type { CardKind, CardsTable, VscDatabaseSchema } from './database.js';
import type { HeldSeedSealer } from './server-held-seed.js';
import { heldSeedOf } from './server-held-signing.js';

export class CardAdmin {
  constructor(
    private readonly cards: CardTransactions,
    /** Seals server-held cards' seeds; without it such cards cannot be created, copied or replaced. */
    private readonly heldSeeds?: HeldSeedSealer,
  ) {}

  /**
   * A new card record awaiting its owner; returns the one-time enrollment token (shown once). A server-held card
   * gets its signing seed now, generated here and sealed to this server (server-held-seed.ts).
   */
  async create(serial: string, cardId: Uint8Array = new Uint8Array(randomBytes(16)), kind: CardKind = 'software'): Promise<string> {
    checkSerial(serial);
    const token = newEnrollmentToken();
    await this.cards.db.transaction().execute((tx) => this.insertFresh(tx, serial, cardId, token, null, kind));
    return token;
  }

  /**
   * Replace ([0007], [0062]): the card under `serial` is destroyed and `newSerial` takes its place.
   * `exact` is an identical copy (same card id, sealed information, owner verifier and counter
   * range, so the old password opens it and its counter goes on past every value ever granted);
   * `complete` is a fresh card with a new card id that the owner enrolls anew (token returned); a server-held
   * card's replacement is server-held too, exactly with the same key, completely with a new one.
   * A card in use on a lost machine can be replaced; whatever that machine did not upload is lost.
   */
  async replace(serial: string, newSerial: string, mode: 'exact' | 'complete'): Promise<{ token?: string }> {
    checkSerial(newSerial);
    return this.cards.run(serial, 'replace', { by: 'admin' }, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed; its information is gone: enroll a new card`);
      if (mode === 'exact' && row.enrolled !== 1) throw new OperationRefused('not-enrolled', `card ${serial} was never enrolled: there is nothing to duplicate`);
      let token: string | undefined;
      if (mode === 'exact') {
        await this.insertCopy(tx, row, newSerial, `exact duplicate of ${serial}`);
      } else {
        token = newEnrollmentToken();
        await this.insertFresh(tx, newSerial, new Uint8Array(randomBytes(16)), token, `complete replacement of ${serial}`, row.kind ?? 'software');
      }
      await tx.updateTable('cards').set({ ...DESTROYED, last_holder_hash: row.holder_hash, updated_at: this.cards.now() }).where('serial', '=', serial).execute();
      return { from: row.state, to: 'destroyed', detail: `replaced by ${newSerial} (${mode})`, value: token === undefined ? {} : { token } };
    });
  }

  /**
   * Copy ([0102]): a new serial with the same information; both stay usable. Copies share the card
   * id and so one counter range: no counter value is ever granted to two of them.
   */
  async copy(serial: string, newSerial: string): Promise<void> {
    checkSerial(newSerial);
    await this.cards.run(serial, 'copy', { by: 'admin' }, async (tx, row) => {
      if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed`);
      if (row.enrolled !== 1) throw new OperationRefused('not-enrolled', `card ${serial} was never enrolled: there is nothing to copy`);
      await this.insertCopy(tx, row, newSerial, `copy of ${serial}`);
      return { from: row.state, to: row.state, detail: `copied to ${newSerial}`, value: undefined };
    });
  }

  async list(): Promise<CardSummary[]> {
    const rows = await this.cards.db.selectFrom('cards').selectAll().orderBy('serial').execute();
    const failures = await this.failureCounts();
    return rows.map((row) => summarise(row, failures.get(row.serial)));
  }

  async show(serial: string): Promise<CardSummary> {
    const row = await this.cards.row(serial);
    return summarise(row, (await this.failureCounts(serial)).get(serial));
  }

  /** Failures per serial over all its buckets, and whether one of them blocks. */
  private async failureCounts(serial?: string): Promise<Map<string, FailureCounts>> {
    let query = this.cards.db.selectFrom('auth_failures').select(['serial', 'failures']);
    if (serial !== undefined) query = query.where('serial', '=', serial);
    const counts = new Map<string, FailureCounts>();
    for (const row of await query.execute()) {
      const before = counts.get(row.serial) ?? { total: 0, blocked: false };
      counts.set(row.serial, { total: before.total + Number(row.failures), blocked: before.blocked || Number(row.failures) >= MAX_BUCKET_FAILURES });
    }
    return counts;
  }

  async events(serial: string): Promise<CardEvent[]> {
    const rows = await this.cards.db.selectFrom('events').selectAll().where('serial', '=', serial).orderBy('id').execute();
    return rows.map((row) =>
      Object.freeze({
        id: Number(row.id), serial: row.serial, at: new Date(Number(row.at)), operation: row.operation, outcome: row.outcome, fromState: row.from_state, toState: row.to_state, detail: row.detail,
        count: Number(row.count),
      }),
    );
  }

  async unblock(serial: string): Promise<void> {
    await this.cards.run(serial, 'unblock', { by: 'admin' }, async (tx, row) => {
      await this.cards.owners.clear(tx, serial);
      return { from: row.state, to: row.state, detail: 'by admin', value: undefined };
    });
  }

  private async checkNewSerial(tx: Transaction<VscDatabaseSchema>, serial: string): Promise<void> {
    const existing = await tx.selectFrom('cards').select('serial').where('serial', '=', serial).executeTakeFirst();
    if (existing !== undefined) throw new OperationRefused('wrong-state', `card ${serial} already exists`);
  }

  /** A row awaiting enrollment, with its counter range and creation event; a server-held one with its sealed seed. */
  private async insertFresh(tx: Transaction<VscDatabaseSchema>, serial: string, cardId: Uint8Array, token: string, detail: string | null, kind: CardKind): Promise<void> {
    await this.checkNewSerial(tx, serial);
    const at = this.cards.now();
    const held = kind === 'server-held' ? this.requireHeldSeeds().generate(serial) : undefined;
    await tx
      .insertInto('cards')
      .values({
        serial, card_id: cardId, state: 'idle', enrollment_token: hash(utf8(token)), enrolled: 0,
        kdf_salt: null, kdf_memory_kib: null, kdf_iterations: null, kdf_parallelism: null, auth_verifier: null, recovery_hash: null,
        sealed: null, sealed_version: 0, public_key: held?.publicKey ?? null, kind, held_seed: held?.sealed ?? null, ...IDLE, created_at: at, updated_at: at,
      })
      .execute();
    await openCounterRange(tx, cardId);
    const said = [detail, kind === 'server-held' ? 'server-held' : null].filter((part) => part !== null).join('; ');
    await tx.insertInto('events').values({ serial, at, operation: 'create', outcome: 'ok', from_state: null, to_state: 'idle', detail: said === '' ? null : said }).execute();
  }

  /** An idle row carrying `source`'s card id, owner verifier and sealed information; a server-held seed sealed anew for `serial`. */
  private async insertCopy(tx: Transaction<VscDatabaseSchema>, source: CardsTable, serial: string, detail: string): Promise<void> {
    await this.checkNewSerial(tx, serial);
    const at = this.cards.now();
    const kind = source.kind ?? 'software';
    const heldSeed = kind === 'server-held' ? this.requireHeldSeeds().reseal(heldSeedOf(source.serial, source), source.serial, serial) : null;
    await tx
      .insertInto('cards')
      .values({
        serial, card_id: source.card_id, state: 'idle', enrollment_token: null, enrolled: 1,
        kdf_salt: source.kdf_salt, kdf_memory_kib: source.kdf_memory_kib, kdf_iterations: source.kdf_iterations, kdf_parallelism: source.kdf_parallelism,
        auth_verifier: source.auth_verifier, recovery_hash: source.recovery_hash, sealed: source.sealed, sealed_version: source.sealed_version, public_key: source.public_key,
        kind, held_seed: heldSeed, ...IDLE, created_at: at, updated_at: at,
      })
      .execute();
    await tx.insertInto('events').values({ serial, at, operation: 'create', outcome: 'ok', from_state: null, to_state: 'idle', detail }).execute();
  }

  private requireHeldSeeds(): HeldSeedSealer {
    if (this.heldSeeds === undefined) throw new OperationRefused('internal', 'this card store was opened without the server\'s keys: it cannot seal a server-held card\'s key');
    return this.heldSeeds;
  }
}
