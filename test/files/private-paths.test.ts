// Private directories (the 0700 home of the machine lock and control socket, checked as tmux does),
// secret files refused when others can read them, and temp files that never follow a planted link.
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExclusiveFile, ensurePrivateDirectory, ExposedFileError, readPrivateFile, UnsafeDirectoryError, writeFileAtomic } from '../../src/files/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-private-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ensurePrivateDirectory', () => {
  it('creates the directory (and missing parents) with mode exactly 0700, whatever the umask', () => {
    const path = join(dir, 'a', 'vsc');
    const previous = process.umask(0o002);
    try {
      expect(ensurePrivateDirectory(path)).toBe(path);
    } finally {
      process.umask(previous);
    }
    expect(statSync(path).mode & 0o7777).toBe(0o700);
    expect(ensurePrivateDirectory(path)).toBe(path); // and accepts it the next time
  });

  it('refuses a directory with mode 0755 and names the fix', () => {
    const path = join(dir, 'open');
    mkdirSync(path, { mode: 0o755 });
    chmodSync(path, 0o755);
    expect(() => ensurePrivateDirectory(path)).toThrow(UnsafeDirectoryError);
    expect(() => ensurePrivateDirectory(path)).toThrow(`${path} has mode 0755, expected 0700; run "chmod 700 ${path}"`);
    expect(statSync(path).mode & 0o777).toBe(0o755); // refused, not repaired
  });

  it('refuses a directory another uid owns', () => {
    let path: string;
    if (process.getuid!() === 0) {
      path = join(dir, 'squatted');
      mkdirSync(path, { mode: 0o700 });
      chownSync(path, 65534, 65534); // nobody
    } else {
      path = '/'; // root's, and this is not root
    }
    expect(() => ensurePrivateDirectory(path)).toThrow(/is owned by uid \d+, not by this user/);
  });

  it('refuses a symlink to a good directory, and a file in its place', () => {
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(dir, 'link');
    symlinkSync(real, link);
    expect(() => ensurePrivateDirectory(link)).toThrow(`${link} is a symbolic link`);
    const file = join(dir, 'file');
    writeFileSync(file, '');
    expect(() => ensurePrivateDirectory(file)).toThrow(`${file} is not a directory`);
  });
});

describe('readPrivateFile', () => {
  it('reads a 0600 file and refuses one the group or the world can read, naming chmod 600 (exit 2)', () => {
    const path = join(dir, 'master.key');
    writeFileSync(path, 'secret', { mode: 0o600 });
    expect(new TextDecoder().decode(readPrivateFile(path))).toBe('secret');
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o601]) {
      chmodSync(path, mode);
      let caught: unknown;
      try {
        readPrivateFile(path);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ExposedFileError);
      expect(caught).toMatchObject({ exitCode: 2, message: `${path} is readable by other users (mode 0${mode.toString(8)}): run "chmod 600 ${path}"` });
    }
  });
});

describe('temp files', () => {
  it('createExclusiveFile refuses a planted symlink and leaves its target alone', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const planted = join(dir, 'temp');
    symlinkSync(victim, planted);
    expect(() => createExclusiveFile(planted)).toThrow(expect.objectContaining({ code: 'EEXIST' }) as Error);
    // A dangling link too: O_EXCL with O_NOFOLLOW never creates the file it points to.
    const dangling = join(dir, 'dangling');
    symlinkSync(join(dir, 'would-be-created'), dangling);
    expect(() => createExclusiveFile(dangling)).toThrow(expect.objectContaining({ code: 'EEXIST' }) as Error);
    expect(existsSync(join(dir, 'would-be-created'))).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    const fresh = join(dir, 'fresh');
    closeSync(createExclusiveFile(fresh));
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
  });

  it('writeFileAtomic writes 0600 through an unpredictable temp name, replaces a link rather than writing through it, and leaves no temp file', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const target = join(dir, 'state.json');
    symlinkSync(victim, target);
    // Links planted at the names a pid-based scheme would pick are never used.
    symlinkSync(victim, join(dir, `.state.json.${process.pid}.tmp`));
    writeFileAtomic(target, new TextEncoder().encode('new'));
    expect(lstatSync(target).isFile()).toBe(true);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readdirSync(dir).sort()).toEqual([`.state.json.${process.pid}.tmp`, 'state.json', 'victim']);
  });
});
