// Where a machine keeps its lock and control socket (DESIGN.md "Command line"): the uid's 0700 directory,
// overridden only for simulated machines under VSC_SIMULATE_MACHINES=1; secret files read as one line.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/errors/index.js';
import { controlSocketPath, machineDirectory, machineUniqueKey, readSecretLine, serverEndpoint, stateDirectory } from '../../src/vsc-client/client-config.js';
import { mukFromOverride } from '../../src/vsc-client/muk.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-client-config-'));
  for (const name of ['VSC_SIMULATE_MACHINES', 'VSC_STATE_DIR', 'VSC_MACHINE_ID']) vi.stubEnv(name, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe('without VSC_SIMULATE_MACHINES=1', () => {
  it('keys the state directory by the uid the OS reports, never by $HOME', () => {
    const uid = process.getuid!();
    const expected = machineDirectory();
    expect([`/run/user/${uid}/vsc`, `/tmp/vsc-${uid}`]).toContain(expected);
    vi.stubEnv('HOME', '/elsewhere');
    expect(machineDirectory()).toBe(expected);
  });

  it.each([
    ['--state-dir', { stateDir: '/tmp/x' }],
    ['--machine-id', { machineId: 'A' }],
  ])('refuses %s as a usage error (exit 2) naming the switch, in every command\'s first step', async (flag, flags) => {
    for (const use of [() => stateDirectory(flags), () => machineUniqueKey(flags), () => serverEndpoint(flags)]) {
      const refused = (async () => use())();
      await expect(refused).rejects.toThrow(UsageError);
      await expect(refused).rejects.toThrow(`${flag} simulates a machine and works only with VSC_SIMULATE_MACHINES=1 (tests); a real machine needs neither`);
    }
  });

  it.each(['VSC_STATE_DIR', 'VSC_MACHINE_ID'])('refuses %s in the environment (exit 2, one line)', (name) => {
    vi.stubEnv(name, '/tmp/x');
    expect(() => stateDirectory({})).toThrow(expect.objectContaining({ exitCode: 2, message: `${name} is set, but it is honoured only with VSC_SIMULATE_MACHINES=1 (tests): unset it` }) as Error);
  });

  it('refuses the switch set to anything but 1', () => {
    vi.stubEnv('VSC_SIMULATE_MACHINES', 'yes');
    expect(() => stateDirectory({ stateDir: dir })).toThrow(UsageError);
  });
});

describe('with VSC_SIMULATE_MACHINES=1', () => {
  beforeEach(() => vi.stubEnv('VSC_SIMULATE_MACHINES', '1'));

  it('uses --state-dir (else VSC_STATE_DIR), created 0700', () => {
    const flagged = join(dir, 'machine-A');
    expect(stateDirectory({ stateDir: flagged })).toBe(flagged);
    expect(statSync(flagged).mode & 0o7777).toBe(0o700);
    const fromEnv = join(dir, 'machine-B');
    vi.stubEnv('VSC_STATE_DIR', fromEnv);
    expect(stateDirectory({})).toBe(fromEnv);
    expect(stateDirectory({ stateDir: flagged })).toBe(flagged);
  });

  it('refuses a state directory with mode 0755 or owned by another uid, as the real one is', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(() => stateDirectory({ stateDir: open })).toThrow(`${open} has mode 0755, expected 0700; run "chmod 700 ${open}"`);
    let foreign = '/'; // root's, when this is not root
    if (process.getuid!() === 0) {
      foreign = join(dir, 'foreign');
      mkdirSync(foreign, { mode: 0o700 });
      chownSync(foreign, 65534, 65534); // nobody
    }
    expect(() => stateDirectory({ stateDir: foreign })).toThrow(expect.objectContaining({ code: 'directory.unsafe', exitCode: 3, message: expect.stringMatching(/is owned by uid \d+, not by this user/) as string }) as Error);
  });

  it('takes the MUK from --machine-id (else VSC_MACHINE_ID)', async () => {
    expect(await machineUniqueKey({ machineId: 'A' })).toEqual(mukFromOverride('A'));
    vi.stubEnv('VSC_MACHINE_ID', 'B');
    expect(await machineUniqueKey({})).toEqual(mukFromOverride('B'));
  });
});

describe('controlSocketPath', () => {
  it('is control.sock in the state directory', () => {
    expect(controlSocketPath('/run/user/1000/vsc')).toBe('/run/user/1000/vsc/control.sock');
  });

  it('refuses a path over the 107 bytes of a Unix socket address, naming it', () => {
    const fits = `/${'d'.repeat(107 - '/control.sock'.length - 1)}`;
    expect(controlSocketPath(fits)).toHaveLength(107);
    expect(() => controlSocketPath(`${fits}d`)).toThrow(/is 108 bytes, over the 107 a Unix socket allows: use a shorter --state-dir/);
    expect(() => controlSocketPath(`/${'é'.repeat(50)}`)).toThrow(/is 114 bytes/); // bytes, not characters
  });
});

describe('readSecretLine', () => {
  it('reads the first line of a 0600 file', () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'tok-en\nsecond line\n', { mode: 0o600 });
    expect(readSecretLine(path, '--token-file')).toBe('tok-en');
  });

  it.each([
    ['readable by others', 'x\n', 0o644, /--token-file: .* is readable by other users \(mode 0644\): run "chmod 600 /],
    ['with an empty first line', '\nx\n', 0o600, /has an empty first line/],
    ['not UTF-8', '\xff\n', 0o600, /is not UTF-8 text/],
  ])('refuses a file %s (exit 2)', (_, content, mode, message) => {
    const path = join(dir, 'token');
    writeFileSync(path, Buffer.from(content, 'latin1'), { mode });
    chmodSync(path, mode);
    expect(() => readSecretLine(path, '--token-file')).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(message) as string }) as Error);
  });

  it('names a missing file', () => {
    expect(() => readSecretLine(join(dir, 'missing'), '--password-file')).toThrow(/--password-file: cannot read .*missing: ENOENT/);
  });
});
