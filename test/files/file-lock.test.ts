// The machine lock's primitive (DESIGN.md "Command line"): an fcntl lock through SQLite that one
// holder gets, any second one (same process or another) is refused, and the kernel frees at death.
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireFileLock, LockHeldError } from '../../src/files/index.js';
import { spawnTsScript } from '../support/index.js';

const HOLD_FILE_LOCK = fileURLToPath(new URL('../support/hold-file-lock.ts', import.meta.url));

describe('acquireFileLock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vsc-file-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the lock file 0600, refuses a second holder in the same process, and frees it on release', async () => {
    const path = join(dir, 'machine.lock');
    const first = await acquireFileLock(path, 'the machine lock');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const refused = acquireFileLock(path, 'the machine lock');
    await expect(refused).rejects.toThrow(LockHeldError);
    await expect(refused).rejects.toMatchObject({ exitCode: 3, message: 'the machine lock is in use by another process' });
    // The refused attempt closed its descriptor: that must not have dropped the first holder's lock.
    await expect(acquireFileLock(path)).rejects.toThrow(LockHeldError);
    first.release();
    first.release();
    (await acquireFileLock(path)).release();
  });

  it('refuses while another process holds it, and is free once that process is killed -9', async () => {
    const path = join(dir, 'machine.lock');
    const holder = spawnTsScript(HOLD_FILE_LOCK, [path]);
    try {
      await holder.waitFor(/^locked\n/);
      await expect(acquireFileLock(path)).rejects.toThrow(LockHeldError);
    } finally {
      expect((await holder.kill()).signal).toBe('SIGKILL');
    }
    const after = await acquireFileLock(path);
    // And now this process holds it: a new process is refused.
    const second = spawnTsScript(HOLD_FILE_LOCK, [path]);
    const ended = await second.exited;
    expect(ended.code).not.toBe(0);
    expect(ended.stderr).toMatch(/in use by another process/);
    after.release();
  });

  it('never follows a symlink planted at the lock path', async () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'precious');
    const path = join(dir, 'machine.lock');
    symlinkSync(target, path);
    await expect(acquireFileLock(path)).rejects.toMatchObject({ code: 'lock.unsafe' });
    expect(statSync(target).size).toBe(8);
  });
});
