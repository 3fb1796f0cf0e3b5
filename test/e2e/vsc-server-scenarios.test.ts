// Scenarios through the CLI only (patent 004 Fig. 4, [0074]) on three deployments: one server on
// SQLite, one on PostgreSQL, two server processes on one PostgreSQL with the clients spread over both
// (issue 6). Clients are separate processes simulating machines with --state-dir/--machine-id, the
// inserted card is driven by opensc-tool through real pcscd. Every refusal is checked by its exit code.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSignAndIncrement, vscCommands } from '../../src/card-client/index.js';
import { utf8 } from '../../src/bytes/index.js';
import { deriveOwnerKeys, openProtectedInformation } from '../../src/vsc-client/index.js';
import { decodeProtectedInformation } from '../../src/card/index.js';
import {
  sendApdus, waitForCard, DEPLOYMENTS, databaseBytes, holdsSecret, readTables, startDeployment, type ServerHarness,
  runVsc as vsc, commandHex,
} from '../support/index.js';

const READER = 'Virtual PCD 00 00';
const PASSWORDS: Record<string, string> = { S1: 'first password', S2: 'second password', S3: 'third password', S4: 'fourth password' };

describe.each(DEPLOYMENTS)('VSC server and client through the CLI on $name', { timeout: 120_000 }, (deployment) => {
  let harness: ServerHarness;
  // Server process numbers: with one process both name it; with two, 0 and 1 are different processes.
  const [FIRST, SECOND] = [0, 1];
  beforeAll(async () => {
    harness = await startDeployment(deployment, { port: 17_000 + (process.pid % 2000) + 2 * DEPLOYMENTS.indexOf(deployment) });
  }, 60_000);
  afterEach(() => harness.killCards()); // a failed test must not leave a card running for the next one
  afterAll(() => harness.close());

  const client = (serial: string, password: string, server?: number) => harness.client(serial, password, server);
  const machine = (name: string) => harness.machine(name);
  const state = (serial: string) => harness.state(serial);
  const events = async (serial: string): Promise<string> => {
    const run = await vsc(['admin', 'events', ...harness.admin, '--serial', serial]);
    expect(run.code, run.stderr).toBe(0);
    return run.stdout;
  };

  it('insert on A shows the card in pcscd; B is refused (3) and cannot recover (5); remove; B inserts', async () => {
    await harness.enroll('S1', PASSWORDS['S1']!);
    const a = await harness.startInsert('S1', PASSWORDS['S1']!, 'A', ['--vpcd', '127.0.0.1:35963'], FIRST);
    expect(await state('S1')).toBe('in-use');
    await waitForCard(READER, true);
    const [select, sign] = await sendApdus(READER, [commandHex(vscCommands.select()), commandHex(vscCommands.signAndIncrement(new Uint8Array(32)))]);
    expect(select!.sw).toBe(0x9000);
    expect(sign!.sw).toBe(0x9000);
    expect(parseSignAndIncrement(sign!.data).signature).toHaveLength(64);

    // B asks the other server process: the check-and-set and the recorded MUK hold across processes.
    expect((await vsc(['card', 'insert', ...client('S1', PASSWORDS['S1']!, SECOND), ...machine('B')])).code).toBe(3);
    expect((await vsc(['card', 'recover', ...client('S1', PASSWORDS['S1']!, SECOND), ...machine('B')])).code).toBe(5);
    const second = await vsc(['card', 'insert', ...client('S1', PASSWORDS['S1']!), ...machine('A2'), '--state-dir', join(harness.dir, 'machine-A')]);
    expect(second.code, 'a second card process on machine A').toBe(3);
    expect(second.stderr).toMatch(/another virtual card already runs on this machine/);

    expect((await vsc(['card', 'remove', ...machine('A')])).code).toBe(0);
    expect((await a.exited).code).toBe(0);
    await waitForCard(READER, false);
    expect(await state('S1')).toBe('idle');
    const b = await harness.startInsert('S1', PASSWORDS['S1']!, 'B', [], SECOND);
    expect(b.child.exitCode).toBeNull();
    expect(await state('S1')).toBe('in-use');
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    expect(await state('S1')).toBe('idle');
    const history = await events('S1');
    expect(history).toMatch(/insert\s+refused: wrong-state/);
    expect(history).toMatch(/recover\s+refused: muk-mismatch/);
    expect(history).toMatch(/remove\s+ok in-use -> idle/);
  });

  it('a crash (kill -9) leaves the card in use; only the machine that lost it recovers it', async () => {
    await harness.enroll('S2', PASSWORDS['S2']!);
    const b = await harness.startInsert('S2', PASSWORDS['S2']!, 'B', [], FIRST);
    expect(b.child.exitCode).toBeNull();
    b.child.kill('SIGKILL');
    await b.exited;
    expect(await state('S2')).toBe('in-use');
    expect((await vsc(['card', 'remove', ...machine('B')])).code).toBe(3);
    // Recover goes to the process that did not see the insert: it reads the MUK the insert recorded.
    expect((await vsc(['card', 'recover', ...client('S2', PASSWORDS['S2']!, SECOND), ...machine('A')])).code).toBe(5);
    expect((await vsc(['card', 'recover', ...client('S2', PASSWORDS['S2']!, SECOND), ...machine('B')])).code).toBe(0);
    expect(await state('S2')).toBe('idle');
    expect(await events('S2')).toMatch(/recover\s+ok in-use -> idle/);
  });

  it('a stranger\'s wrong passwords (exit 4, then 3 while backed off) delay neither the owner on machine A nor the holder; the recovery code lifts them', async () => {
    const enrolled = await harness.enroll('S3', PASSWORDS['S3']!);
    const { recoveryCode } = JSON.parse(enrolled.stdout) as { recoveryCode: string };
    expect(recoveryCode).toMatch(/^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    const codes: number[] = [];
    for (let i = 1; i <= 20; i++) codes.push((await vsc(['card', 'insert', ...client('S3', `wrong ${i}`), ...machine('X')])).code);
    expect(codes[0]).toBe(4);
    expect(codes.slice(1).every((code) => code === 3 || code === 4)).toBe(true);
    expect(codes.filter((code) => code === 3).length).toBeGreaterThan(0); // refused within the back-off, unread
    const shown = await vsc(['admin', 'show', ...harness.admin, '--serial', 'S3', '--json']);
    expect((JSON.parse(shown.stdout) as { authFailures: number }).authFailures).toBeGreaterThan(0);
    // The owner on machine A, which enrolled the card, is not held up; nor are the holder's own operations.
    const a = await harness.startInsert('S3', PASSWORDS['S3']!, 'A');
    expect(a.child.exitCode).toBeNull();
    expect((await vsc(['card', 'insert', ...client('S3', 'wrong again'), ...machine('X')])).code).toBeGreaterThanOrEqual(3);
    expect((await vsc(['card', 'remove', ...machine('A')])).code).toBe(0);
    expect((await a.exited).code).toBe(0);
    // Machine X is backed off even with the right password; the owner's recovery code lifts it.
    expect((await vsc(['card', 'insert', ...client('S3', PASSWORDS['S3']!), ...machine('X')])).code).toBe(3);
    const codeFile = join(harness.dir, 'recovery-code');
    writeFileSync(codeFile, `${recoveryCode.toLowerCase()}\n`, { mode: 0o600 });
    // The server flags of a card command, without the password: unblock needs none, and takes no --password-file.
    const withoutPassword = harness.client('S3', 'unused').filter((arg, i, all) => arg !== '--password-file' && all[i - 1] !== '--password-file');
    const unblocked = await vsc(['card', 'unblock', ...withoutPassword, '--recovery-code-file', codeFile, ...machine('X')]);
    expect(unblocked.code, unblocked.stderr).toBe(0);
    const x = await harness.startInsert('S3', PASSWORDS['S3']!, 'X');
    expect(x.child.exitCode).toBeNull();
    x.child.kill('SIGTERM');
    expect((await x.exited).code).toBe(0);
    expect(await events('S3')).toMatch(/unblock\s+ok/);
  }, 300_000);

  it('destroy is owner-authenticated and terminal', async () => {
    await harness.enroll('S4', PASSWORDS['S4']!);
    expect((await vsc(['card', 'destroy', ...client('S4', 'not it'), ...machine('X')])).code).toBe(4);
    expect((await vsc(['card', 'destroy', ...client('S4', PASSWORDS['S4']!), ...machine('A')])).code).toBe(0);
    expect(await state('S4')).toBe('destroyed');
    for (const operation of ['insert', 'recover', 'destroy']) expect((await vsc(['card', operation, ...client('S4', PASSWORDS['S4']!), ...machine('A')])).code).toBe(3);
  });

  it('admin list shows every card with its state and failure count (a success empties only its own machine\'s bucket)', async () => {
    const list = await vsc(['admin', 'list', ...harness.admin, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { serial: string; state: string; authFailures: number }[]).map((card) => `${card.serial}:${card.state}:${card.authFailures}`)).toEqual([
      // S3: the recovery code emptied every bucket. S4: machine X's wrong password stays in the strangers' bucket; A's success emptied A's.
      'S1:idle:0', 'S2:idle:0', 'S3:idle:0', 'S4:destroyed:1',
    ]);
  });

  it('the server database holds neither the password, nor the auth or protection key, nor any card private key', async () => {
    const dump = await databaseBytes(harness);
    const rows = (await readTables(harness)).get('cards') as {
      serial: string; card_id: Buffer; kdf_salt: Buffer; kdf_memory_kib: number; kdf_iterations: number; kdf_parallelism: number; sealed: Buffer | null; sealed_version: number | string;
    }[];
    expect(rows.map((row) => row.serial).sort()).toEqual(Object.keys(PASSWORDS));
    let opened = 0;
    for (const row of rows) {
      const password = PASSWORDS[row.serial]!;
      expect(holdsSecret(dump, password), `password of ${row.serial}`).toBe(false);
      const keys = await deriveOwnerKeys(utf8(password), { algorithm: 'argon2id', salt: new Uint8Array(row.kdf_salt), memoryKiB: row.kdf_memory_kib, iterations: row.kdf_iterations, parallelism: row.kdf_parallelism });
      expect(holdsSecret(dump, keys.authKey), `auth key of ${row.serial}`).toBe(false);
      expect(holdsSecret(dump, keys.protectionKey), `protection key of ${row.serial}`).toBe(false);
      if (row.sealed === null) continue; // destroyed
      const info = decodeProtectedInformation(openProtectedInformation(keys.protectionKey, new Uint8Array(row.card_id), BigInt(row.sealed_version), new Uint8Array(row.sealed)));
      expect(holdsSecret(dump, info.signingSeed), `signing key of ${row.serial}`).toBe(false);
      for (const pair of info.piv.keys.values()) expect(holdsSecret(dump, pair.privateKey), `PIV key of ${row.serial}`).toBe(false);
      opened++;
    }
    expect(opened).toBe(3);
  });
});
