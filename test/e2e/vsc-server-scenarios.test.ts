// Scenarios through the CLI only (patent 004 Fig. 4, [0074]): a real `vsc server start` on SQLite,
// clients as separate processes simulating machines with --state-dir/--machine-id, the inserted
// card driven by opensc-tool through real pcscd. Every refusal is checked by its exit code.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { deriveOwnerKeys } from '../../src/vsc-client/key-derivation.js';
import { decodeProtectedInformation } from '../../src/vsc-client/protected-information.js';
import { openProtectedInformation } from '../../src/vsc-client/sealing.js';
import { sendApdus, waitForCard } from './support/opensc.js';
import { startServerHarness, type ServerHarness } from './support/vsc-server-harness.js';
import { runVsc as vsc } from './support/vsc-process.js';

const READER = 'Virtual PCD 00 00';
let harness: ServerHarness;
let data = '';
let dir = '';
const client = (serial: string, password: string) => harness.client(serial, password);
const machine = (name: string) => harness.machine(name);
const startInsert = (serial: string, password: string, name: string, extra: string[] = []) => harness.startInsert(serial, password, name, extra);
const enroll = async (serial: string, password: string): Promise<void> => void (await harness.enroll(serial, password));
const state = (serial: string) => harness.state(serial);

beforeAll(async () => {
  harness = await startServerHarness({ port: 17_000 + (process.pid % 2000) });
  ({ data, dir } = harness);
}, 60_000);

afterAll(() => harness.close());

describe('VSC server and client through the CLI', { timeout: 120_000 }, () => {
  it('insert on A shows the card in pcscd; B is refused (3) and cannot recover (5); remove; B inserts', async () => {
    await enroll('S1', 'first password');
    const a = await startInsert('S1', 'first password', 'A', ['--vpcd', '127.0.0.1:35963']);
    expect(await state('S1')).toBe('in-use');
    await waitForCard(READER, true);
    const [select, sign] = await sendApdus(READER, ['00A4040006F05653430001', `8024000020${'00'.repeat(32)}`]);
    expect(select!.sw).toBe(0x9000);
    expect(sign!.sw).toBe(0x9000);
    expect(sign!.data).toHaveLength(16 + 64);

    expect((await vsc(['card', 'insert', ...client('S1', 'first password'), ...machine('B')])).code).toBe(3);
    expect((await vsc(['card', 'recover', ...client('S1', 'first password'), ...machine('B')])).code).toBe(5);
    const second = await vsc(['card', 'insert', ...client('S1', 'first password'), ...machine('A2'), '--state-dir', join(dir, 'machine-A')]);
    expect(second.code, 'a second card process on machine A').toBe(3);
    expect(second.stderr).toMatch(/another virtual card already runs on this machine/);

    expect((await vsc(['card', 'remove', ...machine('A')])).code).toBe(0);
    expect((await a.exited).code).toBe(0);
    await waitForCard(READER, false);
    expect(await state('S1')).toBe('idle');
    const b = await startInsert('S1', 'first password', 'B');
    expect(await state('S1')).toBe('in-use');
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    expect(await state('S1')).toBe('idle');
  });

  it('a crash (kill -9) leaves the card in use; only the machine that lost it recovers it', async () => {
    await enroll('S2', 'second password');
    const b = await startInsert('S2', 'second password', 'B');
    b.child.kill('SIGKILL');
    await b.exited;
    expect(await state('S2')).toBe('in-use');
    expect((await vsc(['card', 'remove', ...machine('B')])).code).toBe(3);
    expect((await vsc(['card', 'recover', ...client('S2', 'second password'), ...machine('A')])).code).toBe(5);
    expect((await vsc(['card', 'recover', ...client('S2', 'second password'), ...machine('B')])).code).toBe(0);
    expect(await state('S2')).toBe('idle');
  });

  it('wrong password exits 4 and counts; 10 failures block until admin unblock', async () => {
    await enroll('S3', 'third password');
    for (let i = 1; i <= 10; i++) expect((await vsc(['card', 'insert', ...client('S3', `wrong ${i}`), ...machine('A')])).code).toBe(4);
    expect(JSON.parse((await vsc(['admin', 'show', '--data', data, '--serial', 'S3', '--json'])).stdout)).toMatchObject({ blocked: true, authFailures: 10 });
    expect((await vsc(['card', 'insert', ...client('S3', 'third password'), ...machine('A')])).code).toBe(4);
    expect((await vsc(['admin', 'unblock', '--data', data, '--serial', 'S3'])).code).toBe(0);
    const a = await startInsert('S3', 'third password', 'A');
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });

  it('destroy is owner-authenticated and terminal', async () => {
    await enroll('S4', 'fourth password');
    expect((await vsc(['card', 'destroy', ...client('S4', 'not it'), ...machine('A')])).code).toBe(4);
    expect((await vsc(['card', 'destroy', ...client('S4', 'fourth password'), ...machine('A')])).code).toBe(0);
    expect(await state('S4')).toBe('destroyed');
    for (const operation of ['insert', 'recover', 'destroy']) expect((await vsc(['card', operation, ...client('S4', 'fourth password'), ...machine('A')])).code).toBe(3);
  });

  it('race: 16 machines insert one idle card at once, 50 rounds: exactly one winner each round, the others exit 3', { timeout: 900_000 }, async () => {
    await enroll('RACE', 'race password');
    for (let round = 0; round < 50; round++) {
      const contenders = Array.from({ length: 16 }, (_, i) => startInsert('RACE', 'race password', `race-${i}`));
      const started = await Promise.all(contenders);
      const outcomes = await Promise.all(started.map(async ({ child, exited }) => (child.exitCode === null && child.signalCode === null ? 'running' : (await exited).code)));
      const winners = started.filter((_, i) => outcomes[i] === 'running');
      expect(winners, `round ${round}: ${JSON.stringify(outcomes)}`).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome !== 'running' && outcome !== 3), `round ${round}`).toEqual([]);
      winners[0]!.child.kill('SIGTERM');
      expect((await winners[0]!.exited).code).toBe(0);
    }
    expect(await state('RACE')).toBe('idle');
  });

  it('the server database holds neither the password, nor the auth or protection key, nor any card private key', async () => {
    const files = [join(data, 'vsc.db'), join(data, 'vsc.db-wal')].filter((path) => existsSync(path));
    const dump = Buffer.concat(files.map((path) => readFileSync(path)));
    const database = new Database(join(data, 'vsc.db'), { readonly: true });
    const rows = database.prepare('SELECT serial, card_id, kdf_salt, kdf_memory_kib, kdf_iterations, kdf_parallelism, sealed, sealed_version FROM cards').all() as {
      serial: string; card_id: Buffer; kdf_salt: Buffer; kdf_memory_kib: number; kdf_iterations: number; kdf_parallelism: number; sealed: Buffer | null; sealed_version: number;
    }[];
    database.close();
    const passwords: Record<string, string> = { S1: 'first password', S2: 'second password', S3: 'third password', S4: 'fourth password', RACE: 'race password' };
    let opened = 0;
    for (const row of rows) {
      const password = passwords[row.serial]!;
      expect(dump.includes(Buffer.from(password))).toBe(false);
      const keys = await deriveOwnerKeys(utf8(password), { algorithm: 'argon2id', salt: new Uint8Array(row.kdf_salt), memoryKiB: row.kdf_memory_kib, iterations: row.kdf_iterations, parallelism: row.kdf_parallelism });
      expect(dump.includes(Buffer.from(keys.authKey)), `auth key of ${row.serial}`).toBe(false);
      expect(dump.includes(Buffer.from(keys.protectionKey)), `protection key of ${row.serial}`).toBe(false);
      if (row.sealed === null) continue; // destroyed
      const info = decodeProtectedInformation(openProtectedInformation(keys.protectionKey, new Uint8Array(row.card_id), BigInt(row.sealed_version), new Uint8Array(row.sealed)));
      expect(dump.includes(Buffer.from(info.signingSeed)), `signing key of ${row.serial}`).toBe(false);
      for (const pair of info.piv.keys.values()) expect(dump.includes(Buffer.from(pair.privateKey)), `PIV key of ${row.serial}`).toBe(false);
      opened++;
    }
    expect(opened).toBe(4);
  });
});
