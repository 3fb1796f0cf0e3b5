// Durable, all-or-nothing file replacement: write a temporary file, fsync it, rename it over the
// target, fsync the directory. A crash leaves either the old or the new content, never a mix.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/**
 * The temporary file gets an unpredictable name and is created exclusively without following a
 * symlink (O_CREAT | O_EXCL | O_NOFOLLOW): a file or link planted in the directory is never written
 * through. Its mode is `mode` (0600 unless asked otherwise) from the start.
 */
export function writeFileAtomic(path: string, content: Uint8Array, mode = 0o600): void {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = createExclusiveFile(temporary, mode);
  try {
    let offset = 0;
    while (offset < content.length) offset += writeSync(fd, content, offset, content.length - offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw error;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Opens a new file for writing: fails with EEXIST if anything, a symlink included, is already at
 * `path` (O_EXCL; O_NOFOLLOW as well, so no link is ever followed). Returns the descriptor.
 */
export function createExclusiveFile(path: string, mode = 0o600): number {
  return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
}

/**
 * Creates the file at `path` with `content` once, whole or not at all: written to a temporary file (0600, exclusive),
 * fsynced, then hard-linked into place, so a crash leaves no file or a whole one, and a process that linked one first
 * wins (its file is kept; returns false). The directory is fsynced so the new name is durable. Zeroes `content`.
 */
export function createFileOnce(path: string, content: Uint8Array): boolean {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = createExclusiveFile(temporary, 0o600);
  let created = false;
  try {
    try {
      let offset = 0;
      while (offset < content.length) offset += writeSync(fd, content, offset, content.length - offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      content.fill(0);
    }
    try {
      linkSync(temporary, path);
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  } finally {
    unlinkSync(temporary);
  }
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
  return created;
}
