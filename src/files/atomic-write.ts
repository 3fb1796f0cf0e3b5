// Durable, all-or-nothing file replacement: write a temporary file, fsync it, rename it over the
// target, fsync the directory. A crash leaves either the old or the new content, never a mix.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
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
