// Through the CLI only, on three deployments (one server on SQLite, one on PostgreSQL, two server
// processes on one PostgreSQL with the clients spread over both): counters that never roll back
// across kill -9 and recover, replace ([0007], [0062]) and copy ([0102]) with the owner's password
// opening the new serial, remove on a new session after the server dropped every connection, and a
// deployment that demands keyfiles. Inserted cards are driven by opensc-tool through real pcscd.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSignAndIncrement, vscCommands } from '../../src/card-client/index.js';
import { toHex } from '../../src/bytes/index.js';
import { sendApdus, waitForCard, DEPLOYMENTS, startDeployment, type RunningCard, type ServerHarness, runVsc as vsc, commandHex } from '../support/index.js';

const READER_A = 'Virtual PCD 00 00';
const READER_B = 'Virtual PCD 00 01';
const VPCD_A = ['--vpcd', '127.0.0.1:35963'];
const VPCD_B = ['--vpcd', '127.0.0.1:35964'];
const SELECT_VSC = '00A4040006F05653430001';
const GET_PUBLIC_KEY = '8026000020';
/** Counter values granted per insert or extension: small, so the tests cross window ends. */
const WINDOW = 8n;

/** Server process numbers: with one process both name it; with two, they are different processes. */
const [FIRST, SECOND] = [0, 1];

/** The deployment under test; each describe block below starts its own. */
let harness: ServerHarness;

/** SIGN AND INCREMENT `count` times in one card session; the counters the card signed with. */
async function sign(reader: string, count: number): Promise<bigint[]> {
  const hashes = Array.from({ length: count }, (_, i) => commandHex(vscCommands.signAndIncrement(new Uint8Array(32).fill(i + 1))));
  const [select, ...signatures] = await sendApdus(reader, [commandHex(vscCommands.select()), ...hashes]);
  expect(select!.sw).toBe(0x9000);
  return signatures.map((response) => {
    expect(response.sw.toString(16)).toBe('9000');
    return parseSignAndIncrement(response.data).counter;
  });
}

async function publicKey(reader: string): Promise<string> {
  const [, key] = await sendApdus(reader, [SELECT_VSC, GET_PUBLIC_KEY]);
  expect(key!.sw).toBe(0x9000);
  return toHex(key!.data);
}

interface Status {
  inserted: boolean;
  serial?: string;
  nextCounter?: string;
  nextWindow?: [string, string] | null;
}

async function status(machineName: string): Promise<Status> {
  const run = await vsc(['card', 'status', ...harness.machine(machineName), '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Status;
}

async function inserted(serial: string, password: string, machineName: string, vpcd: string[], reader: string, server: number): Promise<RunningCard> {
  const card = await harness.startInsert(serial, password, machineName, vpcd, server);
  if (card.child.exitCode !== null) throw new Error(`vsc card insert ${serial} exited ${card.child.exitCode}: ${(await card.exited).stderr}`);
  await waitForCard(reader, true);
  return card;
}

async function removed(card: RunningCard, reader: string): Promise<void> {
  card.child.kill('SIGTERM');
  const end = await card.exited;
  expect(end.code, end.stderr).toBe(0);
  await waitForCard(reader, false);
}

async function crashed(card: RunningCard, reader: string): Promise<void> {
  card.child.kill('SIGKILL');
  await card.exited;
  await waitForCard(reader, false);
}

function expectStrictlyIncreasing(values: readonly bigint[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]! > values[i - 1]!, `counter ${values[i]} after ${values[i - 1]}`).toBe(true);
}

describe.each(DEPLOYMENTS)('server-backed cards through the CLI on $name', { timeout: 120_000 }, (deployment) => {
  const slot = DEPLOYMENTS.indexOf(deployment);
  beforeAll(async () => {
    harness = await startDeployment(deployment, { port: 19_000 + (process.pid % 2000) + 2 * slot, serverArgs: ['--counter-window', String(WINDOW)] });
  }, 60_000);
  afterEach(() => harness.killCards()); // a failed test must not leave a card running for the next one
  afterAll(() => harness.close());

  it('counters never roll back: windows extend while online, and kill -9 then recover from an older upload never signs a value twice', async () => {
    await harness.enroll('CTR', 'counter password');
    const seen: bigint[] = [];
    const a = await inserted('CTR', 'counter password', 'A', VPCD_A, READER_A, FIRST);
    seen.push(...(await sign(READER_A, 7))); // 0..6: a quarter of the window is left, the card asks for the next one
    for (let tries = 0; (await status('A')).nextWindow === null; tries++) expect(tries).toBeLessThan(100);
    expect(await status('A')).toMatchObject({ inserted: true, serial: 'CTR', nextCounter: '7', nextWindow: [String(WINDOW), String(2n * WINDOW)] });
    seen.push(...(await sign(READER_A, 4))); // 7, then on into the extension
    expect(seen).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n]);
    await crashed(a, READER_A); // nothing uploaded: the server still holds the enrollment's counter 0
    expect(await harness.state('CTR')).toBe('in-use');
    expect((await vsc(['card', 'recover', ...harness.client('CTR', 'counter password', SECOND), ...harness.machine('A')])).code).toBe(0);

    const b = await inserted('CTR', 'counter password', 'B', VPCD_B, READER_B, SECOND);
    seen.push(...(await sign(READER_B, 2)));
    await removed(b, READER_B);
    const again = await inserted('CTR', 'counter password', 'A', VPCD_A, READER_A, FIRST);
    seen.push(...(await sign(READER_A, 2)));
    await removed(again, READER_A);

    expectStrictlyIncreasing(seen);
    expect(seen.slice(11)).toEqual([2n * WINDOW, 2n * WINDOW + 1n, 2n * WINDOW + 2n, 2n * WINDOW + 3n]);
    const events = (await vsc(['admin', 'events', ...harness.admin, '--serial', 'CTR'])).stdout;
    expect(events).toMatch(/extend\s+ok in-use -> in-use\s+\(window 8\.\.16\)/);
    expect(events).toMatch(/recover\s+ok in-use -> idle\s+\(counter floor 16\)/);
  });

  it('exact replace: the lost card\'s password opens the new serial, same key, counter past every value the old one was granted', async () => {
    await harness.enroll('LOST', 'replace password');
    const lost = await inserted('LOST', 'replace password', 'A', VPCD_A, READER_A, FIRST);
    const oldKey = await publicKey(READER_A);
    const [oldCounter] = await sign(READER_A, 1);
    await crashed(lost, READER_A); // the machine is gone for good

    const replaced = await vsc(['admin', 'replace', ...harness.admin, '--serial', 'LOST', '--new-serial', 'FOUND', '--json']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(replaced.stdout)).toEqual({ serial: 'LOST', newSerial: 'FOUND', mode: 'exact' });
    expect(await harness.state('LOST')).toBe('destroyed');
    expect((await vsc(['admin', 'events', ...harness.admin, '--serial', 'LOST'])).stdout).toMatch(/replace\s+ok in-use -> destroyed\s+\(replaced by FOUND \(exact\)\)/);
    expect((await vsc(['card', 'recover', ...harness.client('LOST', 'replace password', SECOND), ...harness.machine('A')])).code).toBe(3);
    expect((await vsc(['admin', 'replace', ...harness.admin, '--serial', 'LOST', '--new-serial', 'AGAIN'])).code).toBe(3);

    const found = await inserted('FOUND', 'replace password', 'B', VPCD_B, READER_B, SECOND);
    expect(await publicKey(READER_B)).toBe(oldKey);
    const [newCounter] = await sign(READER_B, 1);
    expect(newCounter! >= WINDOW && newCounter! > oldCounter!).toBe(true);
    await removed(found, READER_B);
  });

  it('complete replace: a fresh card the owner enrolls anew; the old password does not open it', async () => {
    const first = await harness.enroll('OLD-C', 'old password');
    const replaced = await vsc(['admin', 'replace', ...harness.admin, '--serial', 'OLD-C', '--new-serial', 'NEW-C', '--complete']);
    expect(replaced.code, replaced.stderr).toBe(0);
    const token = replaced.stdout.trim().split('\n').at(-1)!;
    expect(await harness.state('OLD-C')).toBe('destroyed');
    // Not enrolled yet: before the owner is proven it answers like a wrong password (exit 4).
    expect((await vsc(['card', 'insert', ...harness.client('NEW-C', 'old password'), ...harness.machine('X')])).code).toBe(4);
    // Enrolled from machine A, which gets a failure bucket of its own.
    const enrolled = await vsc(['card', 'enroll', ...harness.client('NEW-C', 'new password'), `--token=${token}`, ...harness.machine('A'), '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const { publicKey: newKey } = JSON.parse(enrolled.stdout) as { publicKey: string };
    expect(newKey).toMatch(/^[0-9a-f]{64}$/);
    expect(first.stdout).not.toContain(newKey); // new keys, generated on the owner's machine
    expect((await vsc(['card', 'insert', ...harness.client('NEW-C', 'old password'), ...harness.machine('A')])).code).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // machine A's back-off after one wrong password: 1 s
    const fresh = await harness.startInsert('NEW-C', 'new password', 'A');
    expect(fresh.child.exitCode).toBeNull();
    fresh.child.kill('SIGTERM');
    expect((await fresh.exited).code).toBe(0);
  });

  it('copies ([0102]) run at once on two machines with one key and never sign the same counter value', async () => {
    await harness.enroll('ORIG', 'copy password');
    const copied = await vsc(['admin', 'copy', ...harness.admin, '--serial', 'ORIG', '--new-serial', 'COPY']);
    expect(copied.code, copied.stderr).toBe(0);
    expect((await vsc(['admin', 'copy', ...harness.admin, '--serial', 'ORIG', '--new-serial', 'COPY'])).code).toBe(3);
    const original = await inserted('ORIG', 'copy password', 'A', VPCD_A, READER_A, FIRST);
    const copy = await inserted('COPY', 'copy password', 'B', VPCD_B, READER_B, SECOND);
    expect(await publicKey(READER_B)).toBe(await publicKey(READER_A));
    const counters: bigint[] = [];
    for (let round = 0; round < 3; round++) counters.push(...(await sign(READER_A, 3)), ...(await sign(READER_B, 3)));
    expect(new Set(counters).size).toBe(counters.length);
    await removed(original, READER_A);
    await removed(copy, READER_B);
    const again = await inserted('COPY', 'copy password', 'A', VPCD_A, READER_A, FIRST);
    const later = await sign(READER_A, 2);
    await removed(again, READER_A);
    for (const value of later) expect(counters).not.toContain(value);
    expect(await harness.state('ORIG')).toBe('idle');
  });

  it('after a server process dropped every connection, remove opens a new session and works for the holder only', async () => {
    await harness.enroll('DROP', 'drop password');
    const a = await harness.startInsert('DROP', 'drop password', 'A', [], FIRST);
    expect(a.child.exitCode).toBeNull();
    await harness.stop(FIRST); // every connection to it is gone; the card keeps working from memory
    if (harness.servers > 1) {
      // The other process serves on, from the state the stopped one wrote.
      expect((await vsc(['card', 'recover', ...harness.client('DROP', 'drop password', SECOND), ...harness.machine('B')])).code).toBe(5);
      expect(await harness.state('DROP')).toBe('in-use');
    }
    await harness.start(FIRST);
    expect(await status('A')).toMatchObject({ inserted: true, serial: 'DROP' });
    expect(await status('B')).toEqual({ inserted: false, waiting: [] });
    const other = await vsc(['card', 'remove', ...harness.machine('B')]);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(/no card is inserted on this machine/);
    expect((await vsc(['card', 'recover', ...harness.client('DROP', 'drop password'), ...harness.machine('B')])).code).toBe(5);
    expect((await vsc(['card', 'recover', ...harness.client('DROP', 'drop password'), ...harness.machine('A')])).code).toBe(3); // the card process holds the machine lock
    expect((await vsc(['card', 'remove', ...harness.machine('A')])).code).toBe(0);
    expect((await a.exited).code).toBe(0);
    expect(await harness.state('DROP')).toBe('idle');
  });

  describe('a deployment that demands a keyfile besides the master key', () => {
    let strict: ServerHarness;
    beforeAll(async () => {
      strict = await startDeployment(deployment, { port: 21_000 + (process.pid % 2000) + 2 * slot, serverArgs: ['--implementation-proofs', 'both'] });
    }, 60_000);
    afterAll(() => strict.close());

    it('accepts only clients with a keyfile it issued (exit 4 otherwise); the keyfile names the card once it is enrolled', async () => {
      const enrollmentKeyfile = join(strict.dir, 'laptop-1.enroll.keyfile');
      const issued = await vsc(['admin', 'keyfile', ...strict.admin, '--install-id', 'laptop-1', '--enrollment', '--out', enrollmentKeyfile]);
      expect(issued.code, issued.stderr).toBe(0);
      expect((await vsc(['admin', 'keyfile', ...strict.admin, '--install-id', 'laptop-1', '--enrollment', '--out', enrollmentKeyfile])).code).toBe(3);
      expect((await vsc(['admin', 'keyfile', ...strict.admin, '--install-id', 'laptop-1', '--out', join(strict.dir, 'neither.keyfile')])).code).toBe(2);
      const created = await vsc(['admin', 'enroll', ...strict.admin, '--serial', 'KF']);
      expect(created.code, created.stderr).toBe(0);
      const token = created.stdout.trim().split('\n').at(-1)!;
      // No public key yet: a keyfile naming the card waits for its enrollment.
      const early = await vsc(['admin', 'keyfile', ...strict.admin, '--install-id', 'laptop-1', '--serial', 'KF', '--out', join(strict.dir, 'early.keyfile')]);
      expect(early.code, early.stderr).toBe(3);
      expect(early.stderr).toMatch(/not enrolled yet/);
      const without = await vsc(['card', 'enroll', ...strict.client('KF', 'keyfile password'), `--token=${token}`]);
      expect(without.code, without.stderr).toBe(4);
      expect(without.stderr).toMatch(/requires a keyfile/);
      const foreign = join(harness.dir, 'foreign.keyfile');
      expect((await vsc(['admin', 'keyfile', ...harness.admin, '--install-id', 'laptop-1', '--enrollment', '--out', foreign])).code).toBe(0);
      const forged = await vsc(['card', 'enroll', ...strict.client('KF', 'keyfile password'), `--token=${token}`, '--keyfile', foreign]);
      expect(forged.code, forged.stderr).toBe(4);
      const enrolled = await vsc(['card', 'enroll', ...strict.client('KF', 'keyfile password'), `--token=${token}`, '--keyfile', enrollmentKeyfile]);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      const keyfile = join(strict.dir, 'laptop-1.KF.keyfile');
      const named = await vsc(['admin', 'keyfile', ...strict.admin, '--install-id', 'laptop-1', '--serial', 'KF', '--out', keyfile, '--json']);
      expect(named.code, named.stderr).toBe(0);
      expect(JSON.parse(named.stdout)).toMatchObject({ installId: 'laptop-1', serial: 'KF' });
      const card = await strict.startInsert('KF', 'keyfile password', 'A', ['--keyfile', keyfile]);
      expect(card.child.exitCode).toBeNull();
      expect(await strict.state('KF')).toBe('in-use');
      card.child.kill('SIGTERM');
      expect((await card.exited).code).toBe(0);
    });
  });
});
