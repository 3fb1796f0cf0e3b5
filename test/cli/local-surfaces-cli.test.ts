// Issue 13 "Local surfaces", as a user runs `vsc`: simulation flags refused without the switch, no
// database password in argv, secret files refused when others can read them, private server data.
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runVsc } from '../support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-local-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** As a user runs it: without VSC_SIMULATE_MACHINES (the test spawner sets it unless told otherwise). */
const asUser = (...args: string[]) => runVsc(args, { env: { VSC_SIMULATE_MACHINES: undefined } });

/** A secret file with `mode`. */
function secret(name: string, content: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  return path;
}

describe('simulated machines only under VSC_SIMULATE_MACHINES=1', { timeout: 60_000 }, () => {
  it.each([
    ['status', '--state-dir', join(dir, 'machine-A')],
    ['remove', '--state-dir', join(dir, 'machine-A')],
    ['status', '--machine-id', 'A'],
  ])('vsc card %s %s exits 2 without the switch', async (command, flag, value) => {
    const run = await asUser('card', command, flag, value);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`vsc: ${flag} simulates a machine and works only with VSC_SIMULATE_MACHINES=1 (tests); a real machine needs neither`);
  });

  it('refuses VSC_STATE_DIR and VSC_MACHINE_ID without the switch, in one line (exit 2)', async () => {
    for (const name of ['VSC_STATE_DIR', 'VSC_MACHINE_ID']) {
      const run = await runVsc(['card', 'status'], { env: { VSC_SIMULATE_MACHINES: undefined, [name]: join(dir, 'machine-A') } });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`vsc: ${name} is set, but it is honoured only with VSC_SIMULATE_MACHINES=1 (tests): unset it\n`);
    }
  });

  it('honours --state-dir with the switch, and --help says where the flags work', async () => {
    const run = await runVsc(['card', 'status', '--state-dir', join(dir, 'machine-A'), '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ inserted: false, waiting: [] });
    expect(statSync(join(dir, 'machine-A')).mode & 0o7777).toBe(0o700);
    const help = await asUser('card', 'insert', '--help');
    expect(help.stdout).toMatch(/--state-dir DIR .*only with VSC_SIMULATE_MACHINES=1, refused otherwise/);
    expect(help.stdout).toMatch(/--machine-id ID .*only with VSC_SIMULATE_MACHINES=1, refused otherwise/);
  });
});

describe('database passwords never in argv', { timeout: 60_000 }, () => {
  it.each([
    ['server', 'init'],
    ['server', 'start'],
    ['admin', 'list'],
  ])('vsc %s %s --db with a password exits 2 and points to PGPASSWORD or ~/.pgpass', async (group, command) => {
    for (const url of ['postgres://vsc:hunter2@127.0.0.1:5432/vsc', 'postgresql://vsc@127.0.0.1/vsc?password=hunter2', 'postgres://:hunter2@db.example/vsc']) {
      const data = join(dir, `db-${group}-${command}`);
      const run = await runVsc([group, command, '--data', data, '--db', url]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toBe('vsc: --db: the URL holds a password, which any local user can read in the command line: remove it and set PGPASSWORD or a ~/.pgpass entry (node-postgres reads both)\n');
      expect(() => statSync(data)).toThrow(/ENOENT/); // refused before anything was made
    }
  });
});

describe('private files', { timeout: 60_000 }, () => {
  const data = join(dir, 'server');

  it('server init makes the data directory 0700 and every file in it 0600, whatever the caller\'s umask', async () => {
    const init = await runVsc(['server', 'init', '--data', data]);
    expect(init.code, init.stderr).toBe(0);
    expect((await runVsc(['admin', 'enroll', '--data', data, '--serial', 'S-1'])).code).toBe(0); // writes the database
    expect(statSync(data).mode & 0o7777).toBe(0o700);
    const files = readdirSync(data);
    expect(files).toEqual(expect.arrayContaining(['master.key', 'server-keys.json', 'vsc.db']));
    for (const file of files) expect([file, statSync(join(data, file)).mode & 0o777]).toEqual([file, 0o600]);
  });

  it('refuses server keys the group or the world can read (exit 2, naming chmod 600)', async () => {
    const keys = join(data, 'server-keys.json');
    chmodSync(keys, 0o644);
    try {
      const run = await runVsc(['admin', 'list', '--data', data]);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`vsc: ${keys} is readable by other users (mode 0644): run "chmod 600 ${keys}"\n`);
    } finally {
      chmodSync(keys, 0o600);
    }
  });

  const client = (masterKey: string, password: string): string[] => [
    'card', 'enroll', '--server', 'ws://127.0.0.1:9', '--server-key', '11'.repeat(32), '--master-key-file', masterKey, '--serial', 'S-1', '--token', 'T', '--password-file', password,
  ];

  it.each([
    ['--master-key-file', 'master key', 0o644, 0o600],
    ['--password-file', 'password', 0o600, 0o640],
  ])('refuses a %s the group or the world can read (exit 2), before any connection', async (flag, _, masterMode, passwordMode) => {
    const masterKey = secret(`master-${masterMode.toString(8)}`, `${'ab'.repeat(32)}\n`, masterMode);
    const password = secret(`password-${passwordMode.toString(8)}`, 'correct horse\n', passwordMode);
    const exposed = flag === '--master-key-file' ? masterKey : password;
    const run = await runVsc(client(masterKey, password));
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`vsc: ${flag}: ${exposed} is readable by other users (mode 0${(flag === '--master-key-file' ? masterMode : passwordMode).toString(8)}): run "chmod 600 ${exposed}"\n`);
  });

  it('card enroll takes exactly one of --token and --token-file', async () => {
    const masterKey = secret('master-ok', `${'ab'.repeat(32)}\n`, 0o600);
    const password = secret('password-ok', 'correct horse\n', 0o600);
    const token = secret('token', 'T\n', 0o600);
    const both = await runVsc([...client(masterKey, password), '--token-file', token]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^vsc: give exactly one of --token and --token-file$/m);
    const neither = await runVsc(client(masterKey, password).filter((arg, i, all) => arg !== '--token' && all[i - 1] !== '--token'));
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/^vsc: give exactly one of --token and --token-file$/m);
    const exposed = secret('token-open', 'T\n', 0o644);
    const open = await runVsc([...client(masterKey, password).filter((arg, i, all) => arg !== '--token' && all[i - 1] !== '--token'), '--token-file', exposed]);
    expect(open.code).toBe(2);
    expect(open.stderr).toBe(`vsc: --token-file: ${exposed} is readable by other users (mode 0644): run "chmod 600 ${exposed}"\n`);
  });
});
