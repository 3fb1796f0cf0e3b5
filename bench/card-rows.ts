// Enrolled cards for the server benchmarks, written straight into the database `vsc server init`
// created: the rows an enrollment would leave (Argon2id parameters, owner verifier, sealed
// information bound to the card id, version 1), without an Argon2id derivation per card.
// Only the columns an enrolled idle card needs are named; the schema's defaults fill the rest.
import { randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { ed25519KeyFromSeed } from '../src/crypto/index.js';
import { deriveOwnerKeys, newKdfParams, sealProtectedInformation, type KdfParams, type OwnerKeys } from '../src/vsc-client/index.js';
import { encodeProtectedInformation, newProtectedInformation } from '../src/card/index.js';
import { authVerifier } from '../src/vsc-protocol/index.js';

export interface WorkingCard {
  readonly serial: string;
  readonly cardId: Uint8Array;
  readonly sealed: Uint8Array;
}

export interface BenchCards {
  /** The owner keys of every bench card, derived once from one password. */
  readonly keys: OwnerKeys;
  /** Wall time of that one Argon2id derivation (client side, outside every server figure). */
  readonly argon2Ms: number;
  readonly kdf: KdfParams;
  readonly verifier: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly cards: readonly WorkingCard[];
  /** A sealed blob of the same size, shared by filler rows that are never inserted. */
  readonly fillerSealed: Uint8Array;
}

const CARD_COLUMNS = 'serial, card_id, state, enrolled, kdf_salt, kdf_memory_kib, kdf_iterations, kdf_parallelism, auth_verifier, sealed, sealed_version, public_key, created_at, updated_at';

/** `count` working cards sharing one password; each has its own card id and sealed information. */
export async function makeBenchCards(count: number): Promise<BenchCards> {
  const kdf = newKdfParams();
  const password = new TextEncoder().encode(`bench password ${randomBytes(8).toString('hex')}`);
  const started = performance.now();
  const keys = await deriveOwnerKeys(password, kdf);
  const argon2Ms = performance.now() - started;
  password.fill(0);
  const info = newProtectedInformation();
  const plaintext = encodeProtectedInformation(info);
  const cards = Array.from({ length: count }, (_, i): WorkingCard => {
    const cardId = new Uint8Array(randomBytes(16));
    return { serial: `bench-${String(i).padStart(4, '0')}`, cardId, sealed: sealProtectedInformation(keys.protectionKey, cardId, 1n, plaintext) };
  });
  const fillerSealed = sealProtectedInformation(keys.protectionKey, new Uint8Array(16), 1n, plaintext);
  plaintext.fill(0);
  return {
    keys, argon2Ms, kdf, verifier: authVerifier(keys.authKey), publicKey: ed25519KeyFromSeed(info.signingSeed).publicKey, cards, fillerSealed,
  };
}

/** The values after serial and card id, in CARD_COLUMNS order. */
function enrolledValues(bench: BenchCards, sealed: Uint8Array, now: number): unknown[] {
  const { kdf } = bench;
  return ['idle', 1, Buffer.from(kdf.salt), kdf.memoryKiB, kdf.iterations, kdf.parallelism, Buffer.from(bench.verifier), Buffer.from(sealed), 1, Buffer.from(bench.publicKey), now, now];
}

/** Writes the working cards into a SQLite database (one transaction). */
export function loadSqliteCards(path: string, bench: BenchCards): void {
  const db = new SQLite(path);
  try {
    const card = db.prepare(`INSERT INTO cards (${CARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const range = db.prepare("INSERT INTO counter_ranges (card_id, next_unallocated) VALUES (?, '0')");
    const now = Date.now();
    db.transaction(() => {
      for (const c of bench.cards) {
        card.run(c.serial, Buffer.from(c.cardId), ...enrolledValues(bench, c.sealed, now));
        range.run(Buffer.from(c.cardId));
      }
    })();
  } finally {
    db.close();
  }
}

/**
 * Adds filler cards `fill-<from>` .. `fill-<to - 1>` in one transaction, generated inside SQLite
 * (a recursive CTE), each with a random card id and its counter range row.
 */
export function loadSqliteFiller(path: string, bench: BenchCards, from: number, to: number): void {
  const db = new SQLite(path);
  try {
    // Random card ids land all over the card_id index: give this connection a cache that holds it.
    // A rollback journal instead of WAL while loading writes the new pages once instead of twice;
    // the server finds the database in WAL mode again, as `vsc server init` left it.
    db.pragma('cache_size = -524288');
    db.pragma('journal_mode = DELETE');
    const serial = (i: number): string => `fill-${String(i).padStart(7, '0')}`;
    const values = enrolledValues(bench, bench.fillerSealed, Date.now());
    db.transaction(() => {
      db.prepare(
        `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
         INSERT INTO cards (${CARD_COLUMNS}) SELECT printf('fill-%07d', i), randomblob(16), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM n`,
      ).run(from, to, ...values);
      db.prepare("INSERT INTO counter_ranges (card_id, next_unallocated) SELECT card_id, '0' FROM cards WHERE serial >= ? AND serial <= ?").run(serial(from), serial(to - 1));
    })();
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
}

/** Writes the working cards into a PostgreSQL database: one multi-row INSERT per table. */
export async function loadPostgresCards(url: string, bench: BenchCards): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const now = Date.now();
    const params: unknown[] = [];
    const rows = bench.cards.map((c) => {
      const values = [c.serial, Buffer.from(c.cardId), ...enrolledValues(bench, c.sealed, now)];
      const first = params.length;
      params.push(...values);
      return `(${values.map((_, k) => `$${first + k + 1}`).join(', ')})`;
    });
    await client.query('BEGIN');
    await client.query(`INSERT INTO cards (${CARD_COLUMNS}) VALUES ${rows.join(', ')}`, params);
    await client.query(
      `INSERT INTO counter_ranges (card_id, next_unallocated) VALUES ${bench.cards.map((_, i) => `($${i + 1}, '0')`).join(', ')}`,
      bench.cards.map((c) => Buffer.from(c.cardId)),
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}
