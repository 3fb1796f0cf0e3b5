// Server-held cards on the server's side (DESIGN.md "Software rental", trust model; patent 003 [0096]: the card never
// releases its private keying material): the seed generated on and sealed to the server, SIGN AND INCREMENT ([0053]
// step [1]) as one transaction for the holder only, no counter windows, copies and replacements, the event rows, the
// schema brought to version 4, and the server's attestation. A real SQLite database; PostgreSQL in the e2e file.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signedDigest } from '../../src/apdu/index.js';
import { toHex } from '../../src/bytes/index.js';
import { readCardAttestation, verifyCardAttestation } from '../../src/card-attestation/index.js';
import { ed25519KeyFromSeed, ed25519Verify, sha256 } from '../../src/crypto/index.js';
import { generateX25519KeyPair } from '../../src/channel/index.js';
import { OperationRefused } from '../../src/vsc-protocol/index.js';
import {
  CardStore, HeldSeedError, SCHEMA_VERSION, SEALED_SEED_LENGTH, attestCard, heldSeedSealer, openDatabase, serverAttester,
  type Enrollment, type HeldSeedSealer, type ServerAttester, type VscDatabase,
} from '../../src/vsc-server/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const VERIFIER = bytes(1);
const MUK_A = bytes(0xa);
const MUK_B = bytes(0xb);
const HOLDER_A = { muk: MUK_A, holderHash: bytes(0xc) };
const HOLDER_B = { muk: MUK_B, holderHash: bytes(0xd) };
const H = (fill: number): Uint8Array => sha256(Uint8Array.of(fill));

let dir: string;
let database: VscDatabase;
let clock: number;
let seeds: HeldSeedSealer;
let attester: ServerAttester;
let store: CardStore;
let crashBeforeCommit = false;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-held-test-'));
  database = await openDatabase(join(dir, 'vsc.db'));
  clock = 1_700_000_000_000;
  const channel = generateX25519KeyPair();
  seeds = heldSeedSealer({ channelPrivateKey: channel.privateKey });
  attester = serverAttester(bytes(0x5e), channel.publicKey);
  crashBeforeCommit = false;
  store = new CardStore(database, {
    now: () => clock, counterWindow: 100n, heldSeeds: seeds, attester,
    // The in-process stand-in for the server's crash point: the transaction dies after signing, before its commit.
    beforeCommit: (operation) => {
      if (operation === 'sign' && crashBeforeCommit) throw new Error('killed before the commit');
    },
  });
});
afterEach(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  return error as OperationRefused;
}

async function row(serial: string) {
  return database.db.selectFrom('cards').selectAll().where('serial', '=', serial).executeTakeFirstOrThrow();
}

/** `vsc admin enroll --server-held`, then the owner's enrollment naming the server's public key; returns that key. */
async function serverHeldCard(serial = 'HELD-1'): Promise<Uint8Array> {
  const token = await store.create(serial, undefined, { serverHeld: true });
  const publicKey = Uint8Array.from((await row(serial)).public_key!);
  const enrollment: Enrollment = { kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: VERIFIER, sealed: bytes(3, 64), publicKey };
  await store.enroll(serial, token, MUK_A, enrollment);
  return publicKey;
}

/** The seed as only the server can read it. */
async function seedOf(serial: string): Promise<Uint8Array> {
  return seeds.withSeed(serial, Uint8Array.from((await row(serial)).held_seed!), (seed) => seed.slice());
}

describe('[0096] a server-held card\'s key: generated on the server, sealed to it, never in clear', () => {
  it('admin enroll --server-held stores the public key, the kind and only a sealed seed; the seed is the public key\'s', async () => {
    const publicKey = await serverHeldCard();
    const stored = await row('HELD-1');
    expect(stored.kind).toBe('server-held');
    expect(stored.held_seed).toHaveLength(SEALED_SEED_LENGTH);
    const seed = await seedOf('HELD-1');
    expect(ed25519KeyFromSeed(seed).publicKey).toEqual(publicKey);
    const everything = Buffer.from(JSON.stringify(stored, (_, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('hex') : typeof value === 'bigint' ? String(value) : value)));
    expect(everything.includes(Buffer.from(toHex(seed)))).toBe(false);
    expect(Buffer.from(stored.held_seed!).includes(Buffer.from(seed))).toBe(false);
    expect((await store.show('HELD-1')).kind).toBe('server-held');
    expect((await store.events('HELD-1'))[0]).toMatchObject({ operation: 'create', detail: 'server-held' });
  });

  it('a sealed seed opens only for its serial and under this server\'s key; damage is refused, never misread', async () => {
    const { sealed, publicKey } = seeds.generate('S-1');
    expect(seeds.withSeed('S-1', sealed, (seed) => ed25519KeyFromSeed(seed).publicKey)).toEqual(publicKey);
    expect(() => seeds.withSeed('S-2', sealed, () => 0)).toThrow(HeldSeedError);
    expect(() => heldSeedSealer({ channelPrivateKey: bytes(9) }).withSeed('S-1', sealed, () => 0)).toThrow(/does not open with this server's key/);
    for (let at = 0; at < sealed.length; at++) {
      const damaged = sealed.slice();
      damaged[at]! ^= 0x01;
      expect(() => seeds.withSeed('S-1', damaged, () => 0)).toThrow(HeldSeedError);
    }
    expect(() => seeds.withSeed('S-1', sealed.subarray(1), () => 0)).toThrow(`expected a sealed seed of ${SEALED_SEED_LENGTH} bytes, got ${SEALED_SEED_LENGTH - 1}`);
    const resealed = seeds.reseal(sealed, 'S-1', 'S-2');
    expect(seeds.withSeed('S-2', resealed, (seed) => ed25519KeyFromSeed(seed).publicKey)).toEqual(publicKey);
    expect(() => seeds.withSeed('S-1', resealed, () => 0)).toThrow(HeldSeedError);
  });

  it('the seed handed to a use is wiped once it returns or throws', async () => {
    const { sealed } = seeds.generate('S-1');
    let kept: Uint8Array | undefined;
    seeds.withSeed('S-1', sealed, (seed) => (kept = seed));
    expect(kept!.every((byte) => byte === 0)).toBe(true);
    expect(() => seeds.withSeed('S-1', sealed, (seed) => {
      kept = seed;
      throw new Error('use failed');
    })).toThrow('use failed');
    expect(kept!.every((byte) => byte === 0)).toBe(true);
  });

  it('random and mutated sealed seeds only ever give HeldSeedError', () => {
    const { sealed } = seeds.generate('S-1');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (input) => {
      expect(() => seeds.withSeed('S-1', input, () => 0)).toThrow(HeldSeedError);
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.nat(sealed.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
      const input = sealed.slice();
      input[at]! ^= flip;
      expect(() => seeds.withSeed('S-1', input, () => 0)).toThrow(HeldSeedError);
    }), { numRuns: 500 });
  });

  it('without the server\'s key a store refuses to create one (and creates nothing)', async () => {
    const keyless = new CardStore(database);
    expect((await refusal(keyless.create('HELD-X', undefined, { serverHeld: true }))).reason).toBe('internal');
    expect((await refusal(keyless.show('HELD-X'))).reason).toBe('unknown-card');
  });

  it('the owner enrolling with a key of its own is refused: the server\'s key is the card\'s', async () => {
    const token = await store.create('HELD-2', undefined, { serverHeld: true });
    const enrollment: Enrollment = { kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: VERIFIER, sealed: bytes(3, 64), publicKey: bytes(4) };
    expect((await refusal(store.enroll('HELD-2', token, MUK_A, enrollment))).message).toMatch(/server-held: its public key is the one this server generated/);
    expect((await store.show('HELD-2')).enrolled).toBe(false);
  });
});

describe('[0053] step [1] SIGN AND INCREMENT on the server, one transaction per signature', () => {
  it('signs h\' = SHA-256(h ‖ counter) with consecutive counters from the insert\'s value; each verifies with the card\'s key', async () => {
    const publicKey = await serverHeldCard();
    const grant = await store.insert('HELD-1', VERIFIER, HOLDER_A);
    expect(grant.counterWindow).toEqual([0n, 0n]); // no window: the server counts
    for (let i = 0; i < 5; i++) {
      const { counter, signature } = await store.sign('HELD-1', HOLDER_A, H(i));
      expect(counter).toBe(BigInt(i));
      expect(ed25519Verify(publicKey, signedDigest(H(i), counter, 'individual', 'HELD-1'), signature)).toBe(true);
      expect(ed25519Verify(publicKey, signedDigest(H(i + 1), counter, 'individual', 'HELD-1'), signature)).toBe(false);
    }
    const range = await database.db.selectFrom('counter_ranges').select('next_unallocated').executeTakeFirstOrThrow();
    expect(range.next_unallocated).toBe('5');
    expect((await store.show('HELD-1')).counterWindow).toBeNull();
  });

  it('only the holder signs: another machine, another process, a removed or destroyed card are refused, and nothing is counted', async () => {
    await serverHeldCard();
    await store.insert('HELD-1', VERIFIER, HOLDER_A);
    await store.sign('HELD-1', HOLDER_A, H(0));
    expect((await refusal(store.sign('HELD-1', { muk: MUK_B, holderHash: HOLDER_A.holderHash }, H(1)))).reason).toBe('holder-mismatch');
    expect((await refusal(store.sign('HELD-1', { muk: MUK_A, holderHash: bytes(0xe) }, H(1)))).reason).toBe('holder-mismatch');
    expect((await refusal(store.sign('NO-SUCH-CARD', HOLDER_A, H(1)))).reason).toBe('holder-mismatch');
    await store.remove('HELD-1', HOLDER_A, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 0n });
    expect((await refusal(store.sign('HELD-1', HOLDER_A, H(1)))).reason).toBe('holder-mismatch');
    await store.insert('HELD-1', VERIFIER, HOLDER_B);
    await store.destroy('HELD-1', 'admin');
    const destroyed = await refusal(store.sign('HELD-1', HOLDER_B, H(1)));
    expect(destroyed.reason).toBe('wrong-state');
    expect(destroyed.message).toMatch(/destroyed while this machine held it/);
    expect((await row('HELD-1')).held_seed).toBeNull(); // the key is gone with the card
    const range = await database.db.selectFrom('counter_ranges').select('next_unallocated').executeTakeFirstOrThrow();
    expect(range.next_unallocated).toBe('1');
  });

  it('a card whose key its owner\'s machine holds is refused: it signs where it is inserted', async () => {
    const token = await store.create('SOFT-1');
    await store.enroll('SOFT-1', token, MUK_A, { kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: VERIFIER, sealed: bytes(3, 64), publicKey: bytes(4) });
    await store.insert('SOFT-1', VERIFIER, HOLDER_A);
    expect((await refusal(store.sign('SOFT-1', HOLDER_A, H(0)))).message).toMatch(/not server-held/);
  });

  it('a transaction that dies after signing, before its commit, leaves the counter where it was: its value goes to the next signature', async () => {
    const publicKey = await serverHeldCard();
    await store.insert('HELD-1', VERIFIER, HOLDER_A);
    expect((await store.sign('HELD-1', HOLDER_A, H(0))).counter).toBe(0n);
    crashBeforeCommit = true;
    await expect(store.sign('HELD-1', HOLDER_A, H(1))).rejects.toThrow('killed before the commit');
    crashBeforeCommit = false;
    const next = await store.sign('HELD-1', HOLDER_A, H(2));
    expect(next.counter).toBe(1n);
    expect(ed25519Verify(publicKey, signedDigest(H(2), 1n, 'individual', 'HELD-1'), next.signature)).toBe(true);
  });

  it('needs no counter windows: extend is refused, remove ignores the counter a client reports, recover loses no value', async () => {
    await serverHeldCard();
    await store.insert('HELD-1', VERIFIER, HOLDER_A);
    expect((await refusal(store.extend('HELD-1', HOLDER_A))).message).toMatch(/needs no counter windows/);
    for (let i = 0; i < 3; i++) await store.sign('HELD-1', HOLDER_A, H(i));
    await store.remove('HELD-1', HOLDER_A, { sealed: bytes(5, 64), sealedVersion: 2n, nextCounter: 0n });
    expect((await store.insert('HELD-1', VERIFIER, HOLDER_B)).counterWindow).toEqual([3n, 3n]);
    await store.sign('HELD-1', HOLDER_B, H(3));
    await store.recover('HELD-1', VERIFIER, MUK_B);
    expect((await store.events('HELD-1')).at(-1)?.detail).toBe('server-held: no counter value lost');
    // The card comes back at the very next value: the trail needs no bridge over skipped ones.
    expect((await store.insert('HELD-1', VERIFIER, HOLDER_A)).counterWindow).toEqual([4n, 4n]);
    expect((await store.sign('HELD-1', HOLDER_A, H(4))).counter).toBe(4n);
  });

  it('signatures are counted in one event row per hour, naming the last counter, not one row each', async () => {
    await serverHeldCard();
    await store.insert('HELD-1', VERIFIER, HOLDER_A);
    for (let i = 0; i < 7; i++) await store.sign('HELD-1', HOLDER_A, H(i));
    const signs = (await store.events('HELD-1')).filter((event) => event.operation === 'sign');
    expect(signs).toEqual([expect.objectContaining({ outcome: 'ok', count: 7, detail: 'last counter 6', fromState: 'in-use', toState: 'in-use' })]);
    clock += 60 * 60 * 1000;
    await store.sign('HELD-1', HOLDER_A, H(7));
    expect((await store.events('HELD-1')).filter((event) => event.operation === 'sign').map((event) => event.count)).toEqual([7, 1]);
  });

  it('[0102] copies share the key and one counter: interleaved signatures never repeat a value; each copy\'s seed is sealed to its own serial', async () => {
    const publicKey = await serverHeldCard();
    await store.copy('HELD-1', 'HELD-1-COPY');
    const copy = await row('HELD-1-COPY');
    expect(copy.kind).toBe('server-held');
    expect(toHex(copy.held_seed!)).not.toBe(toHex((await row('HELD-1')).held_seed!));
    expect(toHex(await seedOf('HELD-1-COPY'))).toBe(toHex(await seedOf('HELD-1')));
    await store.insert('HELD-1', VERIFIER, HOLDER_A);
    await store.insert('HELD-1-COPY', VERIFIER, HOLDER_B);
    const counters: bigint[] = [];
    for (let i = 0; i < 6; i++) {
      const [serial, holder] = i % 2 === 0 ? ['HELD-1', HOLDER_A] as const : ['HELD-1-COPY', HOLDER_B] as const;
      const { counter, signature } = await store.sign(serial, holder, H(i));
      expect(ed25519Verify(publicKey, signedDigest(H(i), counter, 'individual', serial), signature)).toBe(true);
      counters.push(counter);
    }
    expect(counters).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
  });

  it('[0062] an exact replacement keeps the key under the new serial; a complete one is server-held with a new key', async () => {
    const publicKey = await serverHeldCard();
    await store.replace('HELD-1', 'HELD-2', 'exact');
    expect(Uint8Array.from((await row('HELD-2')).public_key!)).toEqual(publicKey);
    expect(ed25519KeyFromSeed(await seedOf('HELD-2')).publicKey).toEqual(publicKey);
    expect((await row('HELD-1')).held_seed).toBeNull();
    await store.replace('HELD-2', 'HELD-3', 'complete');
    const fresh = await row('HELD-3');
    expect(fresh.kind).toBe('server-held');
    expect(toHex(fresh.public_key!)).not.toBe(toHex(publicKey));
    expect(ed25519KeyFromSeed(await seedOf('HELD-3')).publicKey).toEqual(Uint8Array.from(fresh.public_key!));
  });
});

describe('the server\'s attestation of a server-held card ([0096]: "validate the smart card ... personalizer")', () => {
  it('admin attest and the insert carry one that verifies with the attestation key; a modified one fails', async () => {
    const publicKey = await serverHeldCard();
    for (const file of [await attestCard(database, attester, 'HELD-1', clock), (await store.insert('HELD-1', VERIFIER, HOLDER_A)).attestation!]) {
      const attestation = readCardAttestation(file);
      expect(attestation).toMatchObject({ serial: 'HELD-1', keyMode: 'individual', kind: 'server-held', attester: attester.attester });
      expect(attestation.publicKey).toEqual(publicKey);
      verifyCardAttestation(attestation, [attester.publicKey]);
      expect(() => verifyCardAttestation({ ...attestation, publicKey: randomBytes(32) }, [attester.publicKey])).toThrow(/forged or modified/);
      expect(() => verifyCardAttestation({ ...attestation, serial: 'HELD-9' }, [attester.publicKey])).toThrow(/forged or modified/);
      expect(() => verifyCardAttestation(attestation, [bytes(7)])).toThrow(/not among the trusted attester keys/);
    }
  });

  it('refuses a card whose key its owner\'s machine generated, a destroyed card and an unknown serial (exit 3)', async () => {
    await store.create('SOFT-1');
    await serverHeldCard('HELD-9');
    await store.destroy('HELD-9', 'admin');
    expect((await refusal(attestCard(database, attester, 'SOFT-1'))).message).toMatch(/not server-held/);
    expect((await refusal(attestCard(database, attester, 'HELD-9'))).message).toMatch(/destroyed/);
    const unknown = await refusal(attestCard(database, attester, 'NOPE'));
    expect([unknown.reason, unknown.exitCode]).toEqual(['unknown-card', 3]);
  });
});

describe('schema version 4 on an existing database', () => {
  it('a version 3 SQLite database gains the kind and sealed-seed columns at open; its cards stay software cards', async () => {
    const path = join(dir, 'old.db');
    const old = await openDatabase(path);
    await sql.raw('ALTER TABLE cards DROP COLUMN kind').execute(old.db);
    await sql.raw('ALTER TABLE cards DROP COLUMN held_seed').execute(old.db);
    await old.db.updateTable('schema_version').set({ version: 3 }).execute();
    // A card as the version 3 code wrote it: no kind, no sealed seed.
    await old.db.insertInto('cards').values({
      serial: 'OLD-1', card_id: bytes(6, 16), state: 'idle', enrollment_token: bytes(7), enrolled: 0, kdf_salt: null, kdf_memory_kib: null, kdf_iterations: null, kdf_parallelism: null,
      auth_verifier: null, recovery_hash: null, sealed: null, sealed_version: 0, public_key: null, muk: null, holder_hash: null, window_start: null, window_end: null,
      last_holder_hash: null, created_at: 1, updated_at: 1,
    }).execute();
    await old.close();

    const migrated = await openDatabase(path);
    expect(await migrated.db.selectFrom('schema_version').select('version').execute()).toEqual([{ version: SCHEMA_VERSION }]);
    expect(SCHEMA_VERSION).toBe(4);
    expect(await migrated.db.selectFrom('cards').select(['serial', 'kind', 'held_seed']).execute()).toEqual([{ serial: 'OLD-1', kind: 'software', held_seed: null }]);
    await new CardStore(migrated, { heldSeeds: seeds }).create('NEW-1', undefined, { serverHeld: true });
    await migrated.close();
    // Opening again applies nothing twice.
    const again = await openDatabase(path);
    expect((await again.db.selectFrom('cards').select(['serial', 'kind']).orderBy('serial').execute()).map((card) => `${card.serial}:${card.kind}`)).toEqual(['NEW-1:server-held', 'OLD-1:software']);
    await again.close();
  });

  it('the database refuses a kind it does not know', async () => {
    await store.create('S-1');
    await expect(sql.raw("UPDATE cards SET kind = 'dongle' WHERE serial = 'S-1'").execute(database.db)).rejects.toThrow(/CHECK constraint/);
    expect((await row('S-1')).kind).toBe('software');
  });
});
