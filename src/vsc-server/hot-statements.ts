// The statements of insert, remove and extend and the KDF parameters' read, prepared once per card store
// (prepared-query.ts) and run on the operation's own transaction: the hot path of a server under load.
// Every other statement stays an ordinary kysely query.
import type { Kysely, Transaction } from 'kysely';
import { NO_HOLDER } from './card-records.js';
import type { CardsTable, VscDatabaseSchema } from './database.js';
import type { CardLock } from './dialect/index.js';
import { prepare } from './prepared-query.js';

type Db = Kysely<VscDatabaseSchema>;
type Tx = Transaction<VscDatabaseSchema>;
type Bytes = Uint8Array;

export interface KdfRow {
  readonly enrolled: number;
  readonly kdf_salt: Uint8Array | null;
  readonly kdf_memory_kib: number | null;
  readonly kdf_iterations: number | null;
  readonly kdf_parallelism: number | null;
}

export class HotStatements {
  readonly #lockCard;
  readonly #lockRange;
  readonly #kdf;
  readonly #knownMachine;
  readonly #failures;
  readonly #rememberMachine;
  readonly #moveRange;
  readonly #markInUse;
  readonly #markIdle;
  readonly #newWindow;
  readonly #event;

  constructor(db: Db, lock: CardLock) {
    this.#lockCard = prepare((slot) => lock.lockCardQuery(db, slot<string>(0)));
    this.#lockRange = prepare((slot) => lock.lockCounterRangeQuery(db, slot<Bytes>(0)));
    this.#kdf = prepare((slot) => db.selectFrom('cards').select(['enrolled', 'kdf_salt', 'kdf_memory_kib', 'kdf_iterations', 'kdf_parallelism']).where('serial', '=', slot<string>(0)));
    this.#knownMachine = prepare((slot) => db.selectFrom('card_machines').select('serial').where('serial', '=', slot<string>(0)).where('machine', '=', slot<Bytes>(1)));
    this.#failures = prepare((slot) => db.selectFrom('auth_failures').select(['failures', 'last_failure_at']).where('serial', '=', slot<string>(0)).where('bucket', '=', slot<Bytes>(1)));
    this.#rememberMachine = prepare((slot) =>
      db.insertInto('card_machines').values({ serial: slot<string>(0), machine: slot<Bytes>(1), since: slot<number>(2) }).onConflict((conflict) => conflict.columns(['serial', 'machine']).doNothing()),
    );
    this.#moveRange = prepare((slot) => db.updateTable('counter_ranges').set({ next_unallocated: slot<string>(0) }).where('card_id', '=', slot<Bytes>(1)).where('next_unallocated', '=', slot<string>(2)));
    this.#markInUse = prepare((slot) =>
      db.updateTable('cards').set({ state: 'in-use', muk: slot<Bytes>(0), holder_hash: slot<Bytes>(1), window_start: slot<string | null>(2), window_end: slot<string | null>(3), updated_at: slot<number>(4) }).where('serial', '=', slot<string>(5)).where('state', '=', 'idle'),
    );
    this.#markIdle = prepare((slot) =>
      db.updateTable('cards').set({ state: 'idle', ...NO_HOLDER, last_holder_hash: slot<Bytes>(0), sealed: slot<Bytes>(1), sealed_version: slot<string>(2), updated_at: slot<number>(3) }).where('serial', '=', slot<string>(4)).where('state', '=', 'in-use'),
    );
    this.#newWindow = prepare((slot) => db.updateTable('cards').set({ window_start: slot<string>(0), window_end: slot<string>(1), updated_at: slot<number>(2) }).where('serial', '=', slot<string>(3)).where('state', '=', 'in-use'));
    this.#event = prepare((slot) => db.insertInto('events').values({ serial: slot<string>(0), at: slot<number>(1), operation: slot<string>(2), outcome: 'ok', from_state: slot<string>(3), to_state: slot<string>(4), detail: slot<string | null>(5) }));
  }

  /** The card row, locked for the rest of the transaction (the dialect's CardLock); undefined when there is no such serial. */
  lockCard(tx: Tx, serial: string): Promise<CardsTable | undefined> {
    return this.#lockCard.first(tx, serial);
  }

  /** The card id's counter range, locked like the card row; every enrolled card id has one. */
  async lockCounterRange(tx: Tx, cardId: Bytes): Promise<{ next_unallocated: string }> {
    const range = await this.#lockRange.first(tx, cardId);
    if (range === undefined) throw new Error('expected a counter range for the card id, found none');
    return range;
  }

  kdfParameters(db: Db, serial: string): Promise<KdfRow | undefined> {
    return this.#kdf.first(db, serial);
  }

  async knownMachine(tx: Tx, serial: string, machine: Bytes): Promise<boolean> {
    return (await this.#knownMachine.first(tx, serial, machine)) !== undefined;
  }

  failures(tx: Tx, serial: string, bucket: Bytes): Promise<{ failures: number; last_failure_at: number | string | bigint } | undefined> {
    return this.#failures.first(tx, serial, bucket);
  }

  async rememberMachine(tx: Tx, serial: string, machine: Bytes, since: number): Promise<void> {
    await this.#rememberMachine.run(tx, serial, machine, since);
  }

  /** Moves the range's next value from `expected` to `next`; returns whether it was still `expected`. */
  async moveRange(tx: Tx, cardId: Bytes, expected: string, next: string): Promise<boolean> {
    return (await this.#moveRange.changed(tx, next, cardId, expected)) === 1n;
  }

  /** idle → in-use for a holder and its window; false when the card was no longer idle. */
  async markInUse(tx: Tx, serial: string, holder: { muk: Bytes; holderHash: Bytes }, window: readonly [string | null, string | null], now: number): Promise<boolean> {
    return (await this.#markInUse.changed(tx, holder.muk, holder.holderHash, window[0], window[1], now, serial)) === 1n;
  }

  /** in-use → idle with the holder's upload. */
  async markIdle(tx: Tx, serial: string, lastHolderHash: Bytes, sealed: Bytes, sealedVersion: bigint, now: number): Promise<void> {
    await this.#markIdle.run(tx, lastHolderHash, sealed, sealedVersion.toString(), now, serial);
  }

  async newWindow(tx: Tx, serial: string, window: readonly [bigint, bigint], now: number): Promise<void> {
    await this.#newWindow.run(tx, window[0].toString(), window[1].toString(), now, serial);
  }

  /** An operation's 'ok' event row. */
  async event(tx: Tx, serial: string, at: number, operation: string, from: string, to: string, detail: string | null): Promise<void> {
    await this.#event.run(tx, serial, at, operation, from, to, detail);
  }
}
