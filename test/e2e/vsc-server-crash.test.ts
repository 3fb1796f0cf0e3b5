// Crash injection (issue: the server at scale and under faults): kill -9 the client and, separately,
// the server at every step of insert, remove and recover, the step named by VSC_CRASH_AT
// (src/fault-injection), never by a sleep. After each crash: the card is never usable on two
// machines, the last successful upload is never lost, and over the whole run no counter value is
// signed twice. A real `vsc server start` on SQLite and on PostgreSQL, clients as separate `vsc`
// processes, the card driven by opensc-tool through real pcscd.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseSignAndIncrement, vscCommands } from '../../src/card-client/index.js';
import { CRASH_POINTS, type CrashPoint } from '../../src/fault-injection/index.js';
import {
  freshPostgresDatabase,
  killAllVsc,
  sendApdus,
  spawnVsc as spawnTracked,
  waitForCard,
  type VscProcess,
  type VscRun,
  commandHex,
  SHARED_ADDRESS_SERVER_ARGS,
} from '../support/index.js';

const PORT = 19_000 + (process.pid % 1000);
const READER = 'Virtual PCD 00 00';
const VPCD = ['--vpcd', '127.0.0.1:35963'];
const SERIAL = 'CRASH-1';
const SIGNATURES_PER_INSERT = 3;

let dir = '';
let data = '';
/** --data DIR, and --db URL on PostgreSQL: where the server and the admin commands find the cards. */
let store: string[] = [];
let passwordFile = '';
let serverKey = '';
let server: Spawned | undefined;
/** Every counter value the card signed with over the whole run, in order. */
const signed: bigint[] = [];
/** The sealed version of the last remove that told its client it succeeded. */
let lastUpload = 0n;

type Spawned = VscProcess;

/** A `vsc` process, armed to crash at `crashAt` (VSC_CRASH_AT) or unarmed; killAllVsc() knows it until it ends. */
const spawnVsc = (args: readonly string[], crashAt?: CrashPoint): Spawned => spawnTracked(args, { env: { VSC_CRASH_AT: crashAt } });

const run = async (args: readonly string[], crashAt?: CrashPoint) => spawnVsc(args, crashAt).exited;

/** Resolves once `spawned` printed `pattern`; rejects if it ended first. */
async function printed(spawned: Spawned, pattern: RegExp): Promise<void> {
  await spawned.waitFor(pattern, 120_000);
}

async function startServer(crashAt?: CrashPoint): Promise<void> {
  const started = spawnVsc(['server', 'start', ...store, '--listen', `127.0.0.1:${PORT}`, '--counter-window', '16', ...SHARED_ADDRESS_SERVER_ARGS], crashAt);
  await printed(started, /server public key:\n[0-9a-f]{64}/);
  server = started;
}

async function stopServer(): Promise<void> {
  const running = server;
  server = undefined;
  if (running === undefined || running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill('SIGTERM');
  await running.exited;
}

const client = (): string[] => ['--server', `ws://127.0.0.1:${PORT}`, '--server-key', serverKey, '--master-key-file', join(data, 'master.key'), '--serial', SERIAL, '--password-file', passwordFile];
const machine = (name: string): string[] => ['--state-dir', join(dir, `machine-${name}`), '--machine-id', name];

async function show(): Promise<{ state: string; sealedVersion: string }> {
  const shown = await run(['admin', 'show', ...store, '--serial', SERIAL, '--json']);
  expect(shown.code, shown.stderr).toBe(0);
  return JSON.parse(shown.stdout) as { state: string; sealedVersion: string };
}

/** A running `vsc card insert` on `name`, shown in pcscd; `crashAt` arms it (for its remove). */
async function insert(name: string, crashAt?: CrashPoint): Promise<Spawned> {
  const card = spawnVsc(['card', 'insert', ...client(), ...machine(name), ...VPCD], crashAt);
  await printed(card, /inserted/);
  await waitForCard(READER, true);
  return card;
}

/** SIGN AND INCREMENT a few times; every counter goes into the run's record. */
async function sign(): Promise<void> {
  const hashes = Array.from({ length: SIGNATURES_PER_INSERT }, (_, i) => commandHex(vscCommands.signAndIncrement(new Uint8Array(32).fill(i + 1))));
  const [select, ...signatures] = await sendApdus(READER, [commandHex(vscCommands.select()), ...hashes]);
  expect(select!.sw).toBe(0x9000);
  for (const response of signatures) {
    expect(response.sw).toBe(0x9000);
    signed.push(parseSignAndIncrement(response.data).counter);
  }
}

/** A remove through the running card process; records the upload when it says it succeeded. */
async function remove(name: string, card: Spawned): Promise<VscRun> {
  const removed = await run(['card', 'remove', ...machine(name)]);
  await card.exited;
  await waitForCard(READER, false);
  if (removed.code === 0) lastUpload = BigInt((await show()).sealedVersion);
  return removed;
}

/**
 * After any crash: if the server says in use, another machine is refused and only A (the machine
 * that crashed) can bring it back, by remove if its card still runs or else by recover. Then the
 * last successful upload is still there, and B inserts, signs and removes normally.
 */
async function checkAfterCrash(stillRunning: Spawned | undefined): Promise<void> {
  const { state, sealedVersion } = await show();
  expect(BigInt(sealedVersion), 'the last successful upload is never lost').toBeGreaterThanOrEqual(lastUpload);
  if (state === 'in-use') {
    const other = await run(['card', 'insert', ...client(), ...machine('B')]);
    expect(other.code, `a second machine while the card is in use: ${other.stderr}`).toBe(3);
    expect((await run(['card', 'recover', ...client(), ...machine('B')])).code, 'B cannot recover a card A holds').toBe(5);
    if (stillRunning !== undefined && stillRunning.child.exitCode === null && stillRunning.child.signalCode === null) {
      expect((await remove('A', stillRunning)).code).toBe(0);
    } else {
      const recovered = await run(['card', 'recover', ...client(), ...machine('A')]);
      expect(recovered.code, recovered.stderr).toBe(0);
    }
  } else {
    expect(state).toBe('idle');
    if (stillRunning !== undefined) expect(stillRunning.child.exitCode ?? stillRunning.child.signalCode, 'no card process serves a card the server calls idle').not.toBeNull();
  }
  const b = await insert('B');
  await sign();
  expect((await remove('B', b)).code).toBe(0);
  expect((await show()).state).toBe('idle');
}

/** A fresh server and card on `database`, and a fresh record of what was signed. */
async function setUp(database: 'sqlite' | 'postgres'): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'vsc-e2e-crash-'));
  data = join(dir, 'server');
  store = ['--data', data, ...(database === 'postgres' ? ['--db', await freshPostgresDatabase(inject('postgresUrl'))] : [])];
  signed.length = 0;
  passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, 'crash test password\n', { mode: 0o600 });
  const init = await run(['server', 'init', ...store]);
  expect(init.code, init.stderr).toBe(0);
  serverKey = init.stdout.trim().split('\n').at(-1)!;
  await startServer();
  const created = await run(['admin', 'enroll', ...store, '--serial', SERIAL]);
  expect(created.code, created.stderr).toBe(0);
  const enrolled = await run(['card', 'enroll', ...client(), '--token', created.stdout.trim().split('\n').at(-1)!]);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  lastUpload = BigInt((await show()).sealedVersion);
}

/** After a failed test: no process left, the server up and unarmed, the card idle again. */
afterEach(async (context) => {
  if (context.task.result?.state !== 'fail') return;
  await killAllVsc();
  server = undefined;
  await startServer();
  for (const name of ['A', 'B']) await run(['card', 'recover', ...client(), ...machine(name)]);
});

async function tearDown(): Promise<void> {
  await stopServer();
  rmSync(dir, { recursive: true, force: true });
}

const points = (side: 'client' | 'server', operation: string) => CRASH_POINTS.filter((point) => point.startsWith(`${side}.${operation}.`));

describe.each(['sqlite', 'postgres'] as const)('kill -9 at every step of insert, remove and recover, on %s', { timeout: 120_000 }, (database) => {
  beforeAll(() => setUp(database), 60_000);
  afterAll(tearDown);

  describe.each(['insert', 'remove', 'recover'] as const)('%s', (operation) => {
    it.each(points('client', operation))('the client dies at %s', async (point) => {
      if (operation === 'insert') {
        const card = spawnVsc(['card', 'insert', ...client(), ...machine('A'), ...VPCD], point);
        const ended = await card.exited;
        expect(ended.signal, card.output()).toBe('SIGKILL');
        expect(ended.stderr).toContain(`crash point ${point}`);
      } else if (operation === 'remove') {
        const card = await insert('A', point);
        await sign();
        const removed = await remove('A', card);
        expect(removed.code, 'the remove command sees its card process die').not.toBe(0);
        expect(removed.stderr).toMatch(/ended without answering/);
        expect((await card.exited).signal).toBe('SIGKILL');
      } else {
        const card = await insert('A');
        await sign();
        card.child.kill('SIGKILL'); // machine A loses the card
        await card.exited;
        await waitForCard(READER, false);
        const recovered = await run(['card', 'recover', ...client(), ...machine('A')], point);
        expect(recovered.signal, recovered.stderr).toBe('SIGKILL');
      }
      await checkAfterCrash(undefined);
    });

    it.each(points('server', operation))('the server dies at %s and comes back', async (point) => {
      let card: Spawned | undefined;
      if (operation !== 'insert') {
        card = await insert('A');
        await sign();
        if (operation === 'recover') {
          card.child.kill('SIGKILL');
          await card.exited;
          await waitForCard(READER, false);
          card = undefined;
        }
      }
      await stopServer();
      await startServer(point);
      const dying = server!;
      // The client's operation; it retries on new sessions while the server is away.
      let operationDone: Promise<number>;
      if (operation === 'insert') {
        card = spawnVsc(['card', 'insert', ...client(), ...machine('A'), ...VPCD]);
        operationDone = printed(card, /inserted/).then(() => 0);
      } else if (operation === 'remove') {
        operationDone = remove('A', card!).then((removed) => removed.code);
      } else {
        operationDone = run(['card', 'recover', ...client(), ...machine('A')]).then((recovered) => recovered.code);
      }
      const died = await dying.exited;
      expect(died.signal, dying.output()).toBe('SIGKILL');
      expect(died.stderr).toContain(`crash point ${point}`);
      await startServer();
      expect(await operationDone, 'the client retried on a new session and the operation completed once').toBe(0);
      if (operation === 'insert') {
        await waitForCard(READER, true);
        await sign();
        expect((await show()).state).toBe('in-use');
      }
      await checkAfterCrash(operation === 'insert' ? card : undefined);
    });
  });

  it('no counter value was ever signed twice, and every insert signed past every earlier value', () => {
    // Every server and client point crashed one insert, remove or recover above (the dongle's points have their own test).
    const exercised = CRASH_POINTS.filter((point) => point.startsWith('server.') || point.startsWith('client.'));
    expect(signed.length).toBeGreaterThan(exercised.length * SIGNATURES_PER_INSERT);
    expect(new Set(signed.map(String)).size, 'distinct counter values').toBe(signed.length);
    for (let i = 1; i < signed.length; i++) expect(signed[i]!, `signature ${i}`).toBeGreaterThan(signed[i - 1]!);
  });
});
