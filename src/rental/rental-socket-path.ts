// Where the rental server listens (DESIGN.md "Software rental": "serves rented programs on a local socket in a 0700
// directory"): rental.sock in this user's machine directory (the machine lock's, keyed by the uid the OS reports), or
// a path the user names, whose directory is created 0700 or must already be this user's and 0700.
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors/index.js';
import { ensurePrivateDirectory } from '../files/index.js';

export const RENTAL_SOCKET_NAME = 'rental.sock';
/** sun_path holds 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/** This user's machine directory; loaded on use, so that a rented program naming its socket never loads the card client. */
async function machineDirectory(): Promise<string> {
  return (await import('../vsc-client/index.js')).machineDirectory();
}

/** The socket path without touching the file system: `--socket PATH` resolved, or the machine directory's. */
export async function rentalSocketPath(override?: string): Promise<string> {
  const path = override === undefined ? join(await machineDirectory(), RENTAL_SOCKET_NAME) : resolve(override);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new UsageError(`the rental socket path ${path} is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows: use a shorter --socket`);
  }
  if (override !== undefined && override.endsWith('/')) throw new UsageError(`--socket: expected the path of a socket file, got the directory ${override}`);
  return path;
}

/**
 * The socket path with its directory made ready: created 0700 when missing, else checked to be a real directory of
 * this uid with mode 0700 (refused otherwise, never repaired: another user may have made it). Node cannot read a
 * peer's uid, so the directory is what keeps other users off the socket.
 */
export async function prepareRentalSocketPath(override?: string): Promise<string> {
  const path = await rentalSocketPath(override);
  ensurePrivateDirectory(dirname(path));
  return path;
}
