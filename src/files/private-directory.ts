// A directory only its user can enter (DESIGN.md "Command line"): where the machine lock and the
// control socket of a running card live. Checked the way tmux checks its socket directory.
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { ExitCode, VscError } from '../errors/index.js';

export class UnsafeDirectoryError extends VscError {
  override readonly name = 'UnsafeDirectoryError';
  constructor(readonly path: string, problem: string, fix: string) {
    super('directory.unsafe', `${path} ${problem}; ${fix}`, { exitCode: ExitCode.refusedByState });
  }
}

/**
 * Creates `path` with mode 0700 (parents too, when missing) or checks the one there: a real
 * directory, not a symlink, owned by this process's uid, mode exactly 0700. Anything else is
 * refused, never repaired: another user could have made it to squat or watch the name.
 */
export function ensurePrivateDirectory(path: string): string {
  let created: string | undefined;
  try {
    created = mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Something else is at `path` (a file, a dangling link): the checks below say what.
    if (!exists(path)) {
      throw new VscError('directory.create', `cannot create the directory ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  }
  // What this call made is ours: make the mode exact whatever the umask.
  if (created !== undefined) chmodSync(path, 0o700);
  const stat = lstatSync(path);
  const uid = process.getuid?.();
  if (stat.isSymbolicLink()) throw new UnsafeDirectoryError(path, 'is a symbolic link', 'remove it (it may have been planted by another user)');
  if (!stat.isDirectory()) throw new UnsafeDirectoryError(path, 'is not a directory', 'remove it');
  if (uid !== undefined && stat.uid !== uid) {
    throw new UnsafeDirectoryError(path, `is owned by uid ${stat.uid}, not by this user (uid ${uid})`, 'another user may have created it: remove it as root, or check who owns it');
  }
  const mode = stat.mode & 0o7777;
  if (mode !== 0o700) throw new UnsafeDirectoryError(path, `has mode ${mode.toString(8).padStart(4, '0')}, expected 0700`, `run "chmod 700 ${path}"`);
  return path;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
