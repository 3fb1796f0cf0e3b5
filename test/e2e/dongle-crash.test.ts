// Crash injection on a dongle-backed card (DESIGN.md "Dongle-backed card", "Counters that never roll back"):
// `vsc card insert --dongle` is killed by SIGKILL at every named step of insert, a signature, a change and
// remove, and at a torn write of each slot. After each crash the dongle holds the old or the new version,
// never a torn one (the card opens and answers), a PIN try is either counted or not, and no counter value
// is ever signed twice.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import { CRASH_POINTS, type CrashPoint } from '../../src/fault-injection/index.js';
import {
  commandHex, emulatedDongleFixture, softHsmDongleFixture, runVsc, sendApdus, spawnVsc, vpcdHostWithQuickack, waitForCard, type DongleFixture, type VpcdHost, type VscProcess,
} from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const SELECT_VSC = '00 A4 04 00 06 F0 56 53 43 00 01';
const SELECT_PIV = '00 A4 04 00 09 A0 00 00 03 08 00 00 10 00';
/** VERIFY of the PIV PIN with a wrong PIN: counts one try, a change the card writes to the dongle before it answers. */
const WRONG_PIN = '00 20 00 80 08 39 39 39 39 39 39 FF FF';
/** VERIFY without data: the tries left, 63Cx. */
const PIN_TRIES = '00 20 00 80 00';

let dir: string;
let vpcd: VpcdHost;
let fixture: DongleFixture;
let passwordFile: string;
let signed: bigint[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-dongle-crash-'));
  passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'crash test password\n', { mode: 0o600 });
  await waitForCard(READER, false, 5_000);
  vpcd = await vpcdHostWithQuickack();
});

afterAll(async () => {
  await vpcd?.release();
  await rm(dir, { recursive: true, force: true });
});

const insertArgs = () => ['card', 'insert', '--dongle', fixture.uri, '--password-file', passwordFile, '--vpcd', `${vpcd.host}:${PORT}`, '--state-dir', join(dir, 'state'), '--json'];

function start(crashAt?: CrashPoint): VscProcess {
  return spawnVsc(insertArgs(), { env: { ...env, ...(crashAt === undefined ? {} : { VSC_CRASH_AT: crashAt }) } });
}

async function sign(): Promise<bigint> {
  const [, result] = await sendApdus(READER, [SELECT_VSC, commandHex(vscCommands.signAndIncrement(randomBytes(32)))]);
  expect(result!.sw.toString(16)).toBe('9000');
  const counter = BigInt(`0x${toHex(result!.data.subarray(0, 16))}`);
  signed.push(counter);
  return counter;
}

async function pinTries(): Promise<number> {
  const [, tries] = await sendApdus(READER, [SELECT_PIV, PIN_TRIES]);
  expect(tries!.sw & 0xfff0).toBe(0x63c0);
  return tries!.sw & 0x0f;
}

/** What reaches `point`: the steps a user takes with the card until the process dies there. */
async function driveTo(point: CrashPoint, card: VscProcess): Promise<void> {
  if (point === 'dongle.insert.opened') return;
  await card.waitFor(/"event":"inserted"/, 60_000);
  await waitForCard(READER, true);
  if (point === 'dongle.grant.counter-written' || point === 'dongle.counter.torn') {
    await sendApdus(READER, [SELECT_VSC, commandHex(vscCommands.signAndIncrement(randomBytes(32)))]).catch(() => undefined);
    return;
  }
  await sign();
  if (point === 'dongle.save.written' || point === 'dongle.card.torn') {
    await sendApdus(READER, [SELECT_PIV, WRONG_PIN]).catch(() => undefined);
    return;
  }
  // dongle.remove.record-written
  await runVsc(['card', 'remove', '--state-dir', join(dir, 'state')], { env });
}

/** The emulated stick (files replaced by rename) and a SoftHSM2 token (data objects created, then the old one destroyed). */
const KINDS = [
  { kind: 'an emulated dongle', make: () => emulatedDongleFixture('crash') },
  { kind: 'a SoftHSM2 token', make: () => softHsmDongleFixture('crash') },
];

describe.each(KINDS)('kill -9 of a dongle-backed card on $kind at every named step', ({ make }) => {
  const points = CRASH_POINTS.filter((point): point is CrashPoint => point.startsWith('dongle.'));

  beforeAll(async () => {
    fixture = await make();
    signed = [];
    env = { ...fixture.env, XDG_STATE_HOME: join(dir, 'data') };
    const init = await runVsc(['dongle', 'init', '--dongle', fixture.uri, '--serial', 'DG-CRASH', '--password-file', passwordFile], { env });
    expect(init.code, init.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('names the steps of insert, a signature, a change, remove, and torn writes of both slots', () => {
    expect(points).toEqual([
      'dongle.insert.opened', 'dongle.grant.counter-written', 'dongle.save.written', 'dongle.remove.record-written', 'dongle.card.torn', 'dongle.counter.torn',
    ]);
  });

  it.each(points)('%s: the dongle holds the old or the new version, and the card goes on past every signed value', { timeout: 120_000 }, async (point) => {
    const triesBefore = await (async () => {
      const card = start();
      await card.waitFor(/"event":"inserted"/, 60_000);
      await waitForCard(READER, true);
      const tries = await pinTries();
      await runVsc(['card', 'remove', '--state-dir', join(dir, 'state')], { env });
      await card.exited;
      await waitForCard(READER, false);
      return tries;
    })();

    const dying = start(point);
    await driveTo(point, dying);
    const died = await dying.exited;
    expect(died.signal, dying.output()).toBe('SIGKILL');
    expect(died.stderr).toContain(`crash point ${point}`);
    await waitForCard(READER, false);

    const card = start();
    await card.waitFor(/"event":"inserted"/, 60_000);
    await waitForCard(READER, true);
    const tries = await pinTries();
    // A PIN try the card was killed while recording is counted or not: never anything else.
    const changing = point === 'dongle.save.written' || point === 'dongle.card.torn';
    expect(changing ? [triesBefore, triesBefore - 1] : [triesBefore]).toContain(tries);
    await sign();
    if (tries < 3) {
      // Put the tries back for the next point: VERIFY with the right PIN resets them.
      const [, verified] = await sendApdus(READER, [SELECT_PIV, '00 20 00 80 08 31 32 33 34 35 36 FF FF']);
      expect(verified!.sw.toString(16)).toBe('9000');
    }
    await runVsc(['card', 'remove', '--state-dir', join(dir, 'state')], { env });
    expect((await card.exited).code, card.output()).toBe(0);
    await waitForCard(READER, false);
  });

  it('never signed a counter value twice, and every signature came after every earlier one', () => {
    expect(signed.length).toBeGreaterThanOrEqual(points.length);
    expect(new Set(signed.map(String)).size).toBe(signed.length);
    for (let i = 1; i < signed.length; i++) expect(signed[i]!, `signature ${i}`).toBeGreaterThan(signed[i - 1]!);
  });
});
