// A remove that fails loses nothing (issue 13): the card's sealed upload waits in the machine's state
// directory until the server takes it. Real `vsc server start` on a PostgreSQL cluster of its own,
// which the test kills (pg_ctl -m immediate) and restarts; a real row lock held by another
// connection for `busy`; real `vsc card insert` processes, PIV commands through real pcscd and vpcd.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  runVsc as vsc, sendApdus, startPostgresCluster, startServerHarness, waitForCard, type PostgresCluster, type ServerHarness,
} from '../support/index.js';

const READER = 'Virtual PCD 00 00';
const PASSWORD = 'failures password';
const PIV_SELECT = '00A4040009A00000030800001000';
/** VERIFY the PIV PIN (P2 80) with a wrong PIN, padded with FF to 8 bytes. */
const WRONG_PIN = '0020008008303030303030FFFF';
/** VERIFY without data: the tries left, as 63Cx. */
const PIN_TRIES = '00200080';

describe('a remove that fails loses nothing', { timeout: 180_000 }, () => {
  let cluster: PostgresCluster;
  let harness: ServerHarness;
  beforeAll(async () => {
    cluster = await startPostgresCluster({ durable: true }); // it is killed mid-test: what was committed must survive
    harness = await startServerHarness({ port: 19_000 + (process.pid % 1000), db: cluster.url });
  }, 120_000);
  afterEach(() => harness.killCards());
  afterAll(async () => {
    await harness?.close();
    await cluster?.stop();
  });

  const pendingFile = (machine: string, serial: string): string => join(harness.dir, `machine-${machine}`, 'pending', `${serial}.upload`);
  const sealedVersion = async (serial: string): Promise<string> => {
    const shown = await vsc(['admin', 'show', ...harness.admin, '--serial', serial, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    return (JSON.parse(shown.stdout) as { sealedVersion: string }).sealedVersion;
  };

  it('a stopped database: the upload is kept, "vsc card status" shows it waiting, and delivers it once the database is back', async () => {
    await harness.enroll('F1', PASSWORD);
    const card = await harness.startInsert('F1', PASSWORD, 'A', ['--give-up-after', '2']);
    expect(card.child.exitCode).toBeNull();
    await cluster.halt();
    try {
      const removed = await vsc(['card', 'remove', ...harness.machine('A')]);
      expect(removed.code).not.toBe(0);
      expect(removed.stderr).toMatch(/did not take card F1 back .*kept in .*F1\.upload/);
      expect((await card.exited).code).not.toBe(0);
      expect(existsSync(pendingFile('A', 'F1'))).toBe(true);
      const waiting = await vsc(['card', 'status', ...harness.machine('A'), '--json']);
      expect(waiting.code, waiting.stderr).toBe(0);
      const status = JSON.parse(waiting.stdout.trim().split('\n').at(-1)!) as { inserted: boolean; waiting: { serial: string; outcome: string }[] };
      expect(status).toMatchObject({ inserted: false, waiting: [{ serial: 'F1', outcome: 'waiting' }] });
    } finally {
      await cluster.restart();
    }
    const delivered = await vsc(['card', 'status', ...harness.machine('A')]);
    expect(delivered.code, delivered.stderr).toBe(0);
    expect(delivered.stdout).toMatch(/card F1: the changes kept on this machine were delivered/);
    expect(existsSync(pendingFile('A', 'F1'))).toBe(false);
    expect(await harness.state('F1')).toBe('idle');
    expect(await sealedVersion('F1')).toBe('2');
  });

  it('busy (another connection holds the card row): the remove is tried again and completes once the lock goes', async () => {
    await harness.enroll('F2', PASSWORD);
    const card = await harness.startInsert('F2', PASSWORD, 'B');
    expect(card.child.exitCode).toBeNull();
    const locker = new pg.Client({ connectionString: harness.database });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT serial FROM cards WHERE serial = $1 FOR UPDATE', ['F2']);
      const removing = vsc(['card', 'remove', ...harness.machine('B')]);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await locker.query('COMMIT');
      const removed = await removing;
      expect(removed.code, removed.stderr).toBe(0);
    } finally {
      await locker.end();
    }
    expect((await card.exited).code).toBe(0);
    expect(await harness.state('F2')).toBe('idle');
    expect(existsSync(pendingFile('B', 'F2'))).toBe(false);
    const events = await vsc(['admin', 'events', ...harness.admin, '--serial', 'F2']);
    expect(events.stdout).toMatch(/remove\s+refused: busy/);
    expect(events.stdout).toMatch(/remove\s+ok in-use -> idle/);
  });

  it('a crash keeps the PIN retry counter: the next "vsc card status" gives the card back with its tries, not the enrolled ones', async () => {
    await harness.enroll('F3', PASSWORD);
    const card = await harness.startInsert('F3', PASSWORD, 'C', ['--vpcd', '127.0.0.1:35963']);
    expect(card.child.exitCode).toBeNull();
    await waitForCard(READER, true);
    const answers = await sendApdus(READER, [PIV_SELECT, WRONG_PIN, WRONG_PIN, PIN_TRIES]);
    expect(answers.map((answer) => answer.sw.toString(16))).toEqual(['9000', '63c2', '63c1', '63c1']);
    card.child.kill('SIGKILL');
    await card.exited;
    await waitForCard(READER, false);
    expect(await harness.state('F3')).toBe('in-use');
    expect(existsSync(pendingFile('C', 'F3'))).toBe(true);
    const status = await vsc(['card', 'status', ...harness.machine('C')]);
    expect(status.code, status.stderr).toBe(0);
    expect(await harness.state('F3')).toBe('idle');
    const again = await harness.startInsert('F3', PASSWORD, 'D', ['--vpcd', '127.0.0.1:35963']);
    expect(again.child.exitCode).toBeNull();
    await waitForCard(READER, true);
    const [, tries] = await sendApdus(READER, [PIV_SELECT, PIN_TRIES]);
    expect(tries!.sw.toString(16)).toBe('63c1'); // one try left, as before the crash
    expect((await vsc(['card', 'remove', ...harness.machine('D')])).code).toBe(0);
    await again.exited;
  });
});
