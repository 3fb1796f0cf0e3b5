// A server-held card end to end (DESIGN.md "Software rental", trust model; patent 003 [0096]: the vendor trusts the
// card "to avoid releasing the private keying material"), on SQLite and on PostgreSQL: `vsc server init` and `start`
// as separate processes, `vsc admin enroll --server-held`, `vsc card enroll`, and `vsc card insert` (the compiled CLI)
// showing the card in the real pcscd through vpcd. This process reaches it as an application does: the libpcsclite
// binding and the typed VSC applet client. The seed is read back from the server's side only, to look for it where it
// must not be: the card process's whole memory and the database's dump. The server is killed by SIGKILL inside a
// signature's transaction at the crash point of src/fault-injection, never by a sleep.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { CardStatusError, ConditionsNotSatisfiedError, VscAppletClient, verifySignAndIncrement } from '../../src/card-client/index.js';
import { readCardAttestation, verifyCardAttestation, type CardAttestation } from '../../src/card-attestation/index.js';
import { ed25519KeyFromSeed, sha256 } from '../../src/crypto/index.js';
import { CRASH_POINTS, type CrashPoint } from '../../src/fault-injection/index.js';
import { connectPcscd } from '../../src/reader-driver/index.js';
import { Rental, TrailFile, verifyRecord } from '../../src/rental/index.js';
import { OperationRefused, mukFromOverride, signOnServer, type ServerEndpoint } from '../../src/vsc-client/index.js';
import { CardStore, SCHEMA_VERSION, heldSeedSealer, loadServerKeys, openDatabase } from '../../src/vsc-server/index.js';
import { SHARED_ADDRESS_SERVER_ARGS, freshPostgresDatabase, killAllVsc, runVsc, spawnVsc, waitForCard, type VscProcess } from '../support/index.js';
import { searchProcessMemory } from '../support/server-held-memory.js';

const READER = 'Virtual PCD 00 00';
const VPCD = ['--vpcd', '127.0.0.1:35963'];
const SERIAL = 'HELD-E2E-1';
const SIGN_CRASH: CrashPoint = 'server.sign.in-transaction' as CrashPoint;
const H = (i: number): Uint8Array => sha256(utf8(`rental record ${i}`));

describe.each(['sqlite', 'postgres'] as const)('a server-held card on %s', { timeout: 120_000 }, (database) => {
  const port = 21_000 + (process.pid % 1000) * 2 + (database === 'postgres' ? 1 : 0);
  let dir = '';
  let data = '';
  let store: string[] = [];
  let dbUrl = '';
  let passwordFile = '';
  let serverKey = '';
  let attestationKey: Uint8Array = new Uint8Array(0);
  let server: VscProcess | undefined;
  let card: VscProcess | undefined;
  let attestation: CardAttestation;
  /** Every counter value a signature was answered with, over the whole file. */
  const answered: bigint[] = [];

  const machine = (name: string): string[] => ['--state-dir', join(dir, `machine-${name}`), '--machine-id', name];
  const client = (): string[] => ['--server', `ws://127.0.0.1:${port}`, '--server-key', serverKey, '--master-key-file', join(data, 'master.key'), '--serial', SERIAL, '--password-file', passwordFile];
  const endpoint = (): ServerEndpoint => ({ url: `ws://127.0.0.1:${port}`, serverKey: fromHex(serverKey), masterKey: loadServerKeys(data).masterKey, retryMs: 0 });

  async function startServer(crashAt?: CrashPoint): Promise<VscProcess> {
    const started = spawnVsc(['server', 'start', ...store, '--listen', `127.0.0.1:${port}`, ...SHARED_ADDRESS_SERVER_ARGS], { env: { VSC_CRASH_AT: crashAt } });
    const printed = await started.waitFor(/attestation public key: ([0-9a-f]{64})\nVSC server listening on \S+\nserver public key:\n([0-9a-f]{64})/, 30_000);
    expect(printed[1], 'start prints the same attestation key as init').toBe(toHex(attestationKey));
    expect(printed[2]).toBe(serverKey);
    server = started;
    return started;
  }

  async function stopServer(): Promise<void> {
    const running = server;
    server = undefined;
    if (running?.running() === true) await running.stop('SIGTERM');
  }

  /** SIGN AND INCREMENT through pcscd, as an application: the answer, checked against the attested key. */
  async function signThroughPcscd(i: number): Promise<bigint> {
    const connection = await connectPcscd(READER);
    try {
      const applet = new VscAppletClient(connection);
      await applet.select();
      const answer = await applet.signAndIncrement(H(i));
      expect(verifySignAndIncrement(answer, H(i), { publicKey: attestation.publicKey, serial: SERIAL }), `signature of counter ${answer.counter} verifies with the attested key`).toBe(true);
      expect(await applet.counter()).toBe(answer.counter + 1n);
      answered.push(answer.counter);
      return answer.counter;
    } finally {
      connection.disconnect();
    }
  }

  /** The card's seed, as only the server can read it: its sealed column opened with the data directory's keys. */
  async function seedFromServerSide(): Promise<Uint8Array> {
    let sealed: Uint8Array;
    if (database === 'postgres') {
      const connection = new pg.Client({ connectionString: dbUrl });
      await connection.connect();
      try {
        sealed = Uint8Array.from((await connection.query<{ held_seed: Buffer }>('SELECT held_seed FROM cards WHERE serial = $1', [SERIAL])).rows[0]!.held_seed);
      } finally {
        await connection.end();
      }
    } else {
      const sqlite = new Database(join(data, 'vsc.db'), { readonly: true });
      try {
        sealed = Uint8Array.from((sqlite.prepare('SELECT held_seed FROM cards WHERE serial = ?').get(SERIAL) as { held_seed: Buffer }).held_seed);
      } finally {
        sqlite.close();
      }
    }
    return heldSeedSealer(loadServerKeys(data)).withSeed(SERIAL, sealed, (seed) => seed.slice());
  }

  /** Everything the database holds, as a dump: SQLite's file and WAL bytes and its `.dump` text, or pg_dump's. */
  function databaseDump(): Buffer {
    if (database === 'postgres') return execFileSync('pg_dump', ['--data-only', '--inserts', dbUrl], { maxBuffer: 64 * 1024 * 1024 });
    const file = join(data, 'vsc.db');
    const bytes = [file, `${file}-wal`].flatMap((path) => {
      try {
        return [readFileSync(path)];
      } catch {
        return [];
      }
    });
    return Buffer.concat([...bytes, execFileSync('sqlite3', [file, '.dump'], { maxBuffer: 64 * 1024 * 1024 })]);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `vsc-e2e-held-${database}-`));
    data = join(dir, 'server');
    dbUrl = database === 'postgres' ? await freshPostgresDatabase(inject('postgresUrl')) : '';
    store = ['--data', data, ...(database === 'postgres' ? ['--db', dbUrl] : [])];
    passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'server-held e2e password\n', { mode: 0o600 });
    await waitForCard(READER, false);
    const init = await runVsc(['server', 'init', ...store]);
    expect(init.code, init.stderr).toBe(0);
    const lines = init.stdout.trim().split('\n');
    serverKey = lines.at(-1)!;
    // The attestation key comes on a line before the server public key, which stays the last line.
    const key = /^attestation public key: ([0-9a-f]{64})$/m.exec(init.stdout);
    expect(key, init.stdout).not.toBeNull();
    expect(lines.indexOf(key![0])).toBeLessThan(lines.length - 2);
    attestationKey = fromHex(key![1]!);
    await startServer();
    const created = await runVsc(['admin', 'enroll', ...store, '--serial', SERIAL, '--server-held']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/server-held/);
    const enrolled = await runVsc(['card', 'enroll', ...client(), ...machine('A'), '--token', created.stdout.trim().split('\n').at(-1)!]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toMatch(/server-held: the key stays on the server/);
    const shown = JSON.parse((await runVsc(['admin', 'show', ...store, '--serial', SERIAL, '--json'])).stdout) as { kind: string; enrolled: boolean };
    expect(shown).toMatchObject({ kind: 'server-held', enrolled: true });
  });

  afterAll(async () => {
    await killAllVsc();
    await waitForCard(READER, false).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows in pcscd through vpcd; SIGN AND INCREMENT through pcscd gives consecutive counters that verify with the attested key', async () => {
    const attestationFile = join(dir, 'attestation.json');
    card = spawnVsc(['card', 'insert', ...client(), ...machine('A'), ...VPCD, '--attestation-out', attestationFile]);
    await card.waitFor(/inserted/, 60_000);
    expect(card.stdout()).toContain(`attestation of card ${SERIAL} written to ${attestationFile}`);
    await waitForCard(READER, true);

    // The attestation the insert wrote verifies with the key init printed, and names the key the card shows.
    attestation = readCardAttestation(readFileSync(attestationFile));
    verifyCardAttestation(attestation, [attestationKey]);
    expect(attestation).toMatchObject({ serial: SERIAL, kind: 'server-held', keyMode: 'individual' });
    const connection = await connectPcscd(READER);
    try {
      const applet = new VscAppletClient(connection);
      await applet.select();
      expect(await applet.serialNumber()).toBe(SERIAL);
      expect(toHex(await applet.publicKey())).toBe(toHex(attestation.publicKey));
      expect(await applet.counter()).toBe(0n);
    } finally {
      connection.disconnect();
    }
    for (let i = 0; i < 4; i++) expect(await signThroughPcscd(i)).toBe(BigInt(i));
  });

  it('`vsc admin attest` writes the same claims; a modified attestation file fails verifyCardAttestation', async () => {
    const out = join(dir, 'admin-attestation.json');
    const attested = await runVsc(['admin', 'attest', ...store, '--serial', SERIAL, '--out', out]);
    expect(attested.code, attested.stderr).toBe(0);
    const file = readFileSync(out, 'utf8');
    const fromAdmin = readCardAttestation(utf8(file));
    verifyCardAttestation(fromAdmin, [attestationKey]);
    expect(toHex(fromAdmin.publicKey)).toBe(toHex(attestation.publicKey));
    const otherKey = toHex(ed25519KeyFromSeed(new Uint8Array(32).fill(3)).publicKey);
    for (const modified of [file.replace(toHex(fromAdmin.publicKey), otherKey), file.replace(`"serial":"${SERIAL}"`, '"serial":"HELD-E2E-2"')]) {
      expect(modified).not.toBe(file);
      expect(() => verifyCardAttestation(readCardAttestation(utf8(modified)), [attestationKey])).toThrow(/forged or modified/);
    }
    // Refused for a card whose key its owner generated, and never overwriting a file.
    expect((await runVsc(['admin', 'enroll', ...store, '--serial', 'SOFT-E2E-1'])).code).toBe(0);
    const soft = await runVsc(['admin', 'attest', ...store, '--serial', 'SOFT-E2E-1', '--out', join(dir, 'soft.json')]);
    expect([soft.code, soft.stderr]).toEqual([3, expect.stringMatching(/not server-held/)]);
    expect((await runVsc(['admin', 'attest', ...store, '--serial', SERIAL, '--out', out])).code).toBe(3);
  });

  it('the key never reaches the client: not in the card process\'s memory, raw or hex, nor in a dump of the database', async () => {
    const seed = await seedFromServerSide();
    expect(toHex(ed25519KeyFromSeed(seed).publicKey), 'the seed read on the server side is the card\'s').toBe(toHex(attestation.publicKey));
    const needles = [seed, utf8(toHex(seed)), utf8(toHex(seed).toUpperCase()), attestation.publicKey];
    const memory = searchProcessMemory(card!.pid!, needles);
    expect(memory.bytesRead).toBeGreaterThan(10 * 1024 * 1024);
    expect(memory.found.slice(0, 3), 'the seed, raw or as hex, in the memory of `vsc card insert`').toEqual([0, 0, 0]);
    // The control: the same search finds what must be there, the card's public key (GET PUBLIC KEY answers it).
    expect(memory.found[3], 'the card\'s public key in the memory of `vsc card insert`').toBeGreaterThan(0);

    const dump = databaseDump();
    for (const form of [Buffer.from(seed), Buffer.from(toHex(seed)), Buffer.from(toHex(seed).toUpperCase()), Buffer.from(seed).toString('base64')]) {
      expect(dump.includes(form), 'the seed in the database dump').toBe(false);
    }
    // The control: the dump shows the card's public key (as hex in the text dump), and the sealed seed.
    expect(dump.includes(Buffer.from(toHex(attestation.publicKey))) || dump.includes(Buffer.from(toHex(attestation.publicKey).toUpperCase()))).toBe(true);
    seed.fill(0);
  });

  it('rents software (patent 003): a keyfile of kind server-held from the attestation, without --accept-software-keys; the rental server signs on it', async () => {
    const vendor = await runVsc(['vendor', 'init', '--data', join(dir, 'vendor'), '--name', 'Example Software', '--password-file', passwordFile]);
    expect(vendor.code, vendor.stderr).toBe(0);
    const vendorKey = /([0-9a-f]{64})\s*$/.exec(vendor.stdout)![1]!;
    const keyfilePath = join(dir, 'wp.keyfile');
    const created = await runVsc([
      'keyfile', 'create', '--vendor', join(dir, 'vendor'), '--password-file', passwordFile, '--reader', READER, '--program', 'WP', '--threshold', 'executions<=2',
      '--attestation', join(dir, 'attestation.json'), '--trust-attester', toHex(attestationKey), '--out', keyfilePath, '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse((await runVsc(['keyfile', 'inspect', '--keyfile', keyfilePath, '--vendor-key', vendorKey, '--json'])).stdout)).toMatchObject({ card: { serial: SERIAL, kind: 'server-held' } });
    const socket = join(dir, 'run', 'rental.sock');
    const rentalServer = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'trail'), '--socket', socket, '--json']);
    try {
      await rentalServer.waitFor(/"event":"serving"/, 30_000);
      const rental = await Rental.open({ keyfile: readFileSync(keyfilePath), vendorKey, socket });
      try {
        expect((await rental.charge('execution')).allowed).toBe(true);
        expect((await rental.charge('execution')).allowed).toBe(true);
        expect(await rental.charge('execution')).toMatchObject({ allowed: false, denial: 'threshold' });
      } finally {
        await rental.close();
      }
    } finally {
      await rentalServer.kill();
    }
    // Every record the rental server wrote was a signature the server answered: they join the file's count.
    const records = new TrailFile(join(dir, 'trail', 'trail.jsonl')).readAll();
    expect(records.filter((record) => record.text.startsWith('WP execution '))).toHaveLength(2);
    for (const record of records) expect(verifyRecord(record, { publicKey: attestation.publicKey, serial: SERIAL, keyMode: 'individual' })).toBe(true);
    answered.push(...records.map((record) => record.counter));
  });

  it('only the holder signs: another machine cannot insert it, and its signature requests are refused', async () => {
    const other = await runVsc(['card', 'insert', ...client(), ...machine('B')]);
    expect(other.code, other.stderr).toBe(3);
    for (const stranger of [{ muk: mukFromOverride('B'), holderSecret: new Uint8Array(32).fill(1) }, { muk: mukFromOverride('A'), holderSecret: new Uint8Array(32).fill(1) }]) {
      const refused = await signOnServer(endpoint(), SERIAL, stranger, H(99)).then(() => undefined, (error: unknown) => error);
      expect(refused).toBeInstanceOf(OperationRefused);
      expect((refused as OperationRefused).reason).toBe('holder-mismatch');
    }
    // The holder goes on from where it was: the refused requests took no counter value.
    const last = answered.at(-1)!;
    expect(await signThroughPcscd(10)).toBe(last + 1n);
  });

  it('kill -9 of the server between signing and its commit answers nothing and repeats no counter', async () => {
    expect(CRASH_POINTS, 'src/fault-injection/crash-point.ts must name the server.sign.* crash points (add \'sign\' to its OPERATIONS)').toContain(SIGN_CRASH);
    await stopServer();
    const armed = await startServer(SIGN_CRASH);
    const before = answered.at(-1)!;
    const failed = await signThroughPcscd(20).then(() => undefined, (error: unknown) => error);
    expect(failed, 'the application gets no signature').toBeInstanceOf(CardStatusError);
    expect((failed as CardStatusError).sw).toBe(0x6581);
    const ended = await armed.exited;
    expect(ended.signal, armed.output()).toBe('SIGKILL');
    expect(ended.stderr).toContain(`crash point ${SIGN_CRASH}`);
    await startServer();
    // The value the dead transaction signed was never answered: it goes to the next signature, once.
    expect(await signThroughPcscd(21)).toBe(before + 1n);
    expect(await signThroughPcscd(22)).toBe(before + 2n);
    expect(new Set(answered).size, `counters answered: ${answered.join(', ')}`).toBe(answered.length);
    expect(answered).toEqual(answered.map((_, i) => BigInt(i)));
  });

  it('a destroyed card answers 6985 through pcscd; removed, it leaves the reader and the server keeps its counter', async () => {
    const removed = await runVsc(['card', 'remove', ...machine('A')]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await card!.exited).code).toBe(0);
    await waitForCard(READER, false);
    expect(JSON.parse((await runVsc(['admin', 'show', ...store, '--serial', SERIAL, '--json'])).stdout)).toMatchObject({ state: 'idle', counterWindow: null });

    card = spawnVsc(['card', 'insert', ...client(), ...machine('A'), ...VPCD]);
    await card.waitFor(/inserted/, 60_000);
    await waitForCard(READER, true);
    const last = answered.at(-1)!;
    expect(await signThroughPcscd(30)).toBe(last + 1n); // the counter went on where it was
    expect((await runVsc(['admin', 'destroy', ...store, '--serial', SERIAL])).code).toBe(0);
    const connection = await connectPcscd(READER);
    try {
      const applet = new VscAppletClient(connection);
      await applet.select();
      await expect(applet.signAndIncrement(H(31))).rejects.toBeInstanceOf(ConditionsNotSatisfiedError);
    } finally {
      connection.disconnect();
    }
    const gone = await runVsc(['admin', 'attest', ...store, '--serial', SERIAL, '--out', join(dir, 'destroyed.json')]);
    expect([gone.code, gone.stderr]).toEqual([3, expect.stringMatching(/destroyed/)]);
    // Its holder is told at remove that the card was destroyed.
    const ended = await card!.stop('SIGTERM', 30_000);
    expect(ended.code, card!.output()).not.toBe(0);
    expect(card!.output()).toMatch(/destroyed while this machine held it/);
    await waitForCard(READER, false);
    await stopServer();
  });
});

describe('schema version 4 on an existing PostgreSQL database', () => {
  it('a version 3 database gains the kind and sealed-seed columns at open; its cards stay software cards; opening again changes nothing', async () => {
    const url = await freshPostgresDatabase(inject('postgresUrl'));
    const old = await openDatabase(url);
    await sql.raw('ALTER TABLE cards DROP COLUMN kind').execute(old.db);
    await sql.raw('ALTER TABLE cards DROP COLUMN held_seed').execute(old.db);
    await old.db.updateTable('schema_version').set({ version: 3 }).execute();
    // A card as the version 3 code wrote it.
    await old.db.insertInto('cards').values({
      serial: 'OLD-1', card_id: new Uint8Array(16).fill(6), state: 'idle', enrollment_token: new Uint8Array(32).fill(7), enrolled: 0, kdf_salt: null, kdf_memory_kib: null,
      kdf_iterations: null, kdf_parallelism: null, auth_verifier: null, recovery_hash: null, sealed: null, sealed_version: 0, public_key: null, muk: null, holder_hash: null,
      window_start: null, window_end: null, last_holder_hash: null, created_at: 1, updated_at: 1,
    }).execute();
    await old.close();
    const migrated = await openDatabase(url);
    try {
      expect(await migrated.db.selectFrom('schema_version').select('version').execute()).toEqual([{ version: SCHEMA_VERSION }]);
      expect(await migrated.db.selectFrom('cards').select(['serial', 'kind', 'held_seed']).execute()).toEqual([{ serial: 'OLD-1', kind: 'software', held_seed: null }]);
      await new CardStore(migrated, { heldSeeds: heldSeedSealer({ channelPrivateKey: new Uint8Array(32).fill(9) }) }).create('NEW-1', undefined, { serverHeld: true });
    } finally {
      await migrated.close();
    }
    const again = await openDatabase(url);
    try {
      expect((await again.db.selectFrom('cards').select(['serial', 'kind']).orderBy('serial').execute()).map((card) => `${card.serial}:${card.kind}`)).toEqual(['NEW-1:server-held', 'OLD-1:software']);
      await expect(sql.raw("UPDATE cards SET kind = 'dongle' WHERE serial = 'OLD-1'").execute(again.db)).rejects.toThrow(/check constraint/);
    } finally {
      await again.close();
    }
  });
});
