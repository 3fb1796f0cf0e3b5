// An exclusive lock on a file that the kernel releases when its holder dies, however it dies (kill -9
// included): the machine lock of DESIGN.md "Command line" ([0054], [0089]), in the user's 0700 directory,
// and the lock of an emulated card's state file. Not a name in Linux's abstract socket namespace (the
// earlier design): any local user can take such a name first and keep another user's card from starting.
//
// Why SQLite: Node has no flock()/fcntl(). better-sqlite3 (already a dependency) takes POSIX fcntl
// locks on its database file, and a process's fcntl locks end with the process. SQLite also handles
// the two traps of fcntl locks: a lock is per process, not per descriptor (SQLite keeps per-inode
// lock state, so a second connection in the same process is refused too), and closing any
// descriptor of the file drops all of the process's locks on it (SQLite defers such closes while
// a lock is held). `BEGIN EXCLUSIVE` with no busy timeout takes the lock or fails at once with
// SQLITE_BUSY. Nothing is written: the file stays an empty database, and no journal is created.
import { closeSync, lstatSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { ExitCode, VscError } from '../errors/index.js';
import { createExclusiveFile } from './atomic-write.js';

export class LockHeldError extends VscError {
  override readonly name = 'LockHeldError';
  constructor(readonly resource: string) {
    super('lock.held', `${resource} is in use by another process`, { exitCode: ExitCode.refusedByState });
  }
}

export interface FileLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the lock of `path` (created 0600 if missing; it must be a regular file of this uid) or throws
 * LockHeldError if any process, this one included, holds it. `resource` names what the lock protects
 * in the error message.
 */
export async function acquireFileLock(path: string, resource = path): Promise<FileLock> {
  createLockFile(path);
  const { default: Database } = await import('better-sqlite3');
  let db: BetterSqlite3.Database;
  try {
    // timeout 0: a held lock is an answer, not something to wait for.
    db = new Database(path, { timeout: 0 });
  } catch (error) {
    throw new VscError('lock.failed', `cannot open the lock file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new LockHeldError(resource);
    throw new VscError('lock.failed', `cannot lock ${path}: ${(error as Error).message}`, { cause: error });
  }
  let released = false;
  return {
    path,
    release: () => {
      if (released) return;
      released = true;
      db.close(); // closing ends the transaction and drops the fcntl lock
    },
  };
}

/**
 * Creates the lock file without following a symlink. An existing file is never opened here: closing
 * a descriptor of it would drop a lock this process may already hold on it (see above).
 */
function createLockFile(path: string): void {
  try {
    closeSync(createExclusiveFile(path, 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new VscError('lock.failed', `cannot create the lock file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  }
  const stat = lstatSync(path);
  const uid = process.getuid?.();
  if (!stat.isFile() || (uid !== undefined && stat.uid !== uid)) {
    throw new VscError('lock.unsafe', `${path} is not a regular file owned by uid ${String(uid)}; remove it and try again`);
  }
}
