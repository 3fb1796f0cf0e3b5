// One machine, one card process, whatever the environment (issue 13, DESIGN.md "Command line"): without
// VSC_SIMULATE_MACHINES the machine lock and control socket live in the uid's 0700 directory, so
// `HOME=/elsewhere vsc card recover` cannot run beside the card ([0060]), another uid cannot reach the
// card's control socket, and kill -9 frees the lock. Real `vsc` processes against a real server.
// This file uses the real per-uid directory: the e2e project runs its files one at a time.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { machineDirectory } from '../../src/vsc-client/index.js';
import { runVsc, spawnVsc, startServerHarness, type ServerHarness, type VscProcess } from '../support/index.js';

const PASSWORD = 'one machine password';
/**
 * As a user runs `vsc`: no simulation switch, and whatever $HOME says. The user's persistent data
 * (uploads waiting, what the machine remembers of its cards) goes to a directory of this run's own
 * through XDG_STATE_HOME, so no earlier run's memory of a card named LOCAL-1 leaks in; the lock and
 * the control socket, which this file is about, stay in the real uid directory.
 */
const asUser = (home = process.env['HOME']) => ({ env: { VSC_SIMULATE_MACHINES: undefined, VSC_STATE_DIR: undefined, VSC_MACHINE_ID: undefined, HOME: home, XDG_STATE_HOME: xdgState } });

let harness: ServerHarness;
let elsewhere: string;
const xdgState = mkdtempSync(join(tmpdir(), 'vsc-xdg-state-'));
const cards = new Set<VscProcess>();

/** `vsc card insert` as a user runs it; resolves once it says "inserted". */
async function insert(serial: string, home?: string): Promise<VscProcess> {
  const card = spawnVsc(['card', 'insert', ...harness.client(serial, PASSWORD), '--json'], asUser(home));
  cards.add(card);
  await card.waitFor(/"event":"inserted"/, 60_000);
  return card;
}

/** Connects to `path` as the user nobody; what happened: CONNECTED or the error code. */
function connectAsNobody(path: string): Promise<string> {
  if (process.getuid!() !== 0) throw new Error(`this test switches to the user nobody with runuser and must run as root; it runs as uid ${process.getuid!()}`);
  const script = `require('net').createConnection(${JSON.stringify(path)}).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
  return new Promise((resolve, reject) => {
    execFile('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script], { timeout: 15_000 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout.trim()) : reject(new Error(`runuser failed: ${stderr}`, { cause: error })),
    );
  });
}

beforeAll(async () => {
  elsewhere = mkdtempSync(join(tmpdir(), 'vsc-elsewhere-'));
  harness = await startServerHarness({ port: 25_000 + (process.pid % 2000) });
  await harness.enroll('LOCAL-1', PASSWORD);
  // No card may already run for this uid (a crashed earlier run): this file owns the real directory now.
  const before = await runVsc(['card', 'status', '--json'], asUser());
  expect(before.code, before.stderr).toBe(0);
  expect(JSON.parse(before.stdout), `a card process of this uid already runs (${machineDirectory()}); remove it first`).toEqual({ inserted: false, waiting: [] });
}, 60_000);
afterEach(async () => {
  await Promise.all([...cards].map((card) => card.kill()));
  cards.clear();
});
afterAll(async () => {
  await harness?.close();
  rmSync(elsewhere, { recursive: true, force: true });
  rmSync(xdgState, { recursive: true, force: true });
});

describe('one machine, one card process, without VSC_SIMULATE_MACHINES', { timeout: 120_000 }, () => {
  it('refuses --state-dir and --machine-id (exit 2)', async () => {
    for (const args of [['--state-dir', join(elsewhere, 'x')], ['--machine-id', 'A']]) {
      const run = await runVsc(['card', 'status', ...args], asUser());
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/simulates a machine and works only with VSC_SIMULATE_MACHINES=1/);
    }
  });

  it('with a card inserted, recover and a second insert under another $HOME are refused (3); the one card process still answers; another uid cannot reach it', async () => {
    const card = await insert('LOCAL-1');
    const dir = machineDirectory();
    expect(statSync(dir).mode & 0o7777).toBe(0o700);
    expect(statSync(join(dir, 'control.sock')).mode & 0o777).toBe(0o600);

    const recover = await runVsc(['card', 'recover', ...harness.client('LOCAL-1', PASSWORD)], asUser(elsewhere));
    expect(recover.code, recover.stderr).toBe(3);
    expect(recover.stderr).toMatch(/a card process runs on this machine: remove that card instead of recovering/);
    const second = spawnVsc(['card', 'insert', ...harness.client('LOCAL-1', PASSWORD)], asUser(elsewhere));
    cards.add(second);
    const refused = await second.exited;
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/another virtual card already runs on this machine/);

    // Still one process uses the card: the one that inserted it, and the server still has it in use.
    expect(card.running()).toBe(true);
    const status = await runVsc(['card', 'status', '--json'], asUser(elsewhere));
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ inserted: true, serial: 'LOCAL-1', pid: card.pid, removing: false });
    expect(await harness.state('LOCAL-1')).toBe('in-use');

    // The directory's owner and mode are the uid check: another user is refused by the kernel.
    expect(await connectAsNobody(join(dir, 'control.sock'))).toBe('EACCES');

    const removed = await runVsc(['card', 'remove'], asUser(elsewhere));
    expect(removed.code, removed.stderr).toBe(0);
    expect((await card.exited).code).toBe(0);
    expect(await harness.state('LOCAL-1')).toBe('idle');
  });

  it('kill -9 of the card process frees the machine lock: recover then runs, and the next insert replaces the stale socket', async () => {
    const card = await insert('LOCAL-1');
    expect((await card.kill()).signal).toBe('SIGKILL');
    expect(statSync(join(machineDirectory(), 'control.sock')).isSocket()).toBe(true); // left behind, stale
    const status = await runVsc(['card', 'status', '--json'], asUser());
    expect(JSON.parse(status.stdout)).toEqual({ inserted: false, waiting: [] });
    const recover = await runVsc(['card', 'recover', ...harness.client('LOCAL-1', PASSWORD)], asUser(elsewhere));
    expect(recover.code, recover.stderr).toBe(0);
    expect(await harness.state('LOCAL-1')).toBe('idle');

    const again = await insert('LOCAL-1');
    const removed = await runVsc(['card', 'remove'], asUser());
    expect(removed.code, removed.stderr).toBe(0);
    expect((await again.exited).code).toBe(0);
    expect(await harness.state('LOCAL-1')).toBe('idle');
  });
});

describe('the card process when its control socket cannot listen', { timeout: 120_000 }, () => {
  it('gives the card back and exits with a line naming the socket', async () => {
    const stateDir = join(elsewhere, 'machine-L');
    mkdirSync(join(stateDir, 'control.sock', 'occupied'), { recursive: true, mode: 0o700 });
    const card = spawnVsc(['card', 'insert', ...harness.client('LOCAL-1', PASSWORD), ...harness.machine('L'), '--state-dir', stateDir]);
    cards.add(card);
    const ended = await card.exited;
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toContain(`vsc: cannot listen on the control socket ${join(stateDir, 'control.sock')}: EADDRINUSE`);
    expect(ended.stdout).toMatch(/card LOCAL-1 removed \(the control socket could not listen\)/);
    expect(await harness.state('LOCAL-1')).toBe('idle');
  });
});

describe('card enroll --token-file', { timeout: 120_000 }, () => {
  it('enrolls with the token from the first line of a 0600 file', async () => {
    const created = await runVsc(['admin', 'enroll', ...harness.admin, '--serial', 'LOCAL-2']);
    expect(created.code, created.stderr).toBe(0);
    const tokenFile = join(elsewhere, 'token');
    writeFileSync(tokenFile, `${created.stdout.trim().split('\n').at(-1)!}\n`, { mode: 0o600 });
    const enrolled = await runVsc(['card', 'enroll', ...harness.client('LOCAL-2', PASSWORD), '--token-file', tokenFile]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const shown = await runVsc(['admin', 'show', ...harness.admin, '--serial', 'LOCAL-2', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ enrolled: true, state: 'idle' });
  });
});
