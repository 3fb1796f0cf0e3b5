// An exclusive lock that the operating system releases when its owner dies, however it dies
// (kill -9 included): a listening Unix socket in Linux's abstract namespace, named after what it
// protects. Nothing is left on disk to go stale, and a recycled PID cannot fake ownership.
import { createServer, type Server } from 'node:net';
import { createHash } from 'node:crypto';
import { VscError, ExitCode } from '../errors/index.js';

export class LockHeldError extends VscError {
  override readonly name = 'LockHeldError';
  constructor(readonly resource: string) {
    super('lock.held', `${resource} is in use by another process`, { exitCode: ExitCode.refusedByState });
  }
}

export interface ProcessLock {
  readonly resource: string;
  release(): Promise<void>;
}

function socketName(resource: string): string {
  const digest = createHash('sha256').update(resource).digest('hex').slice(0, 40);
  return `\0vsc-lock-${digest}`;
}

/**
 * Takes the lock named by `resource` (e.g. the absolute path of a state file) or throws
 * LockHeldError if any process, this one included, holds it. Linux only (abstract sockets).
 */
export async function acquireProcessLock(resource: string): Promise<ProcessLock> {
  if (process.platform !== 'linux') {
    throw new VscError('lock.unsupported', `process locks need Linux abstract sockets; this is ${process.platform}`);
  }
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new LockHeldError(resource) : new VscError('lock.failed', `cannot lock ${resource}: ${error.message}`, { cause: error }));
    });
    server.listen({ path: socketName(resource), exclusive: true }, () => resolve());
  });
  server.unref(); // holding a lock must not keep the process alive
  let released: Promise<void> | undefined;
  return {
    resource,
    release: () => (released ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}
