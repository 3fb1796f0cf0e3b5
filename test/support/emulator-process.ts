// End-to-end helper: runs `vsc card emulate` as a child process (through vsc-spawn) and stops it like a user would (SIGTERM).
import { spawnVsc } from './vsc-spawn.js';

export interface EmulatorOptions {
  /** vpcd port: 35963 is "Virtual PCD 00 00", 35964 "Virtual PCD 00 01". */
  readonly port: number;
  readonly stateFile: string;
  readonly host?: string;
  /** How long to wait for the "inserted" line. */
  readonly readyTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

export interface EmulatorProcess {
  readonly pid: number | undefined;
  /** Everything the process wrote so far (for failure messages). */
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM (the card is removed) and resolves with the exit code; SIGKILL after the timeout. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Starts `node bin/vsc.js card emulate --vpcd HOST:PORT --state FILE` and waits until it says "inserted". */
export async function startEmulator(options: EmulatorOptions): Promise<EmulatorProcess> {
  const { port, stateFile, host = '127.0.0.1', readyTimeoutMs = 30_000, extraArgs = [] } = options;
  const child = spawnVsc(['card', 'emulate', '--vpcd', `${host}:${port}`, '--state', stateFile, ...extraArgs]);
  try {
    await child.waitFor(/inserted/i, readyTimeoutMs);
  } catch (error) {
    await child.stop().catch(() => null);
    throw error;
  }
  return {
    pid: child.pid,
    stdout: () => child.stdout(),
    stderr: () => child.stderr(),
    async stop(timeoutMs = 10_000) {
      await child.stop('SIGTERM', timeoutMs);
      return child.child.exitCode;
    },
  };
}
