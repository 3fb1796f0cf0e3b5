// An exclusive lock owned by a live process: a lock file created with O_EXCL holding the owner's
// PID. A lock whose process has died is stale and is taken over, so a crash never strands it.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { VscError, ExitCode } from '../errors/index.js';

export class LockHeldError extends VscError {
  override readonly name = 'LockHeldError';
  constructor(readonly path: string, readonly ownerPid: number) {
    super('lock.held', `${path} is locked by running process ${ownerPid}`, { exitCode: ExitCode.refusedByState });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export interface PidLock {
  readonly path: string;
  release(): void;
}

export function acquirePidLock(path: string): PidLock {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release: () => {
          if (released) return;
          released = true;
          if (readOwner(path) === process.pid) unlinkSync(path);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = readOwner(path);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) throw new LockHeldError(path, owner);
      // Stale (owner dead, or the file was left half-written): remove it and try again.
      try {
        unlinkSync(path);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkError;
      }
    }
  }
  throw new VscError('lock.contended', `could not take the lock ${path}: another process keeps taking it`);
}
