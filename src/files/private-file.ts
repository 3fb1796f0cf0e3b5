// Secrets read from files (master key, keyfile, password, server keys) are refused when other users
// could read them too, as ssh refuses a private key with loose permissions.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ExitCode, VscError } from '../errors/index.js';

export class ExposedFileError extends VscError {
  override readonly name = 'ExposedFileError';
  constructor(readonly path: string, mode: number) {
    super('file.exposed', `${path} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): run "chmod 600 ${path}"`, { exitCode: ExitCode.usage });
  }
}

/**
 * The content of `path`, after checking that neither its group nor the world has any access
 * (mode & 077 == 0). The check is made on the opened descriptor, so a file swapped in between
 * cannot slip past it. Errors of the file system (ENOENT, EACCES) are thrown as they are.
 */
export function readPrivateFile(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const { mode } = fstatSync(fd);
    if ((mode & 0o077) !== 0) throw new ExposedFileError(path, mode);
    return new Uint8Array(readFileSync(fd));
  } finally {
    closeSync(fd);
  }
}
