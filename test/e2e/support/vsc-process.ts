// End-to-end helper: runs `vsc card emulate` as a child process and stops it like a user would (SIGTERM).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository root, where bin/vsc.js lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAX_CAPTURE = 256 * 1024;

export interface EmulatorOptions {
  /** vpcd port: 35963 is "Virtual PCD 00 00", 35964 "Virtual PCD 00 01". */
  readonly port: number;
  readonly stateFile: string;
  readonly host?: string;
  /** How long to wait for the "inserted" line (tsx compiles the sources on first start). */
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

function capture(stream: NodeJS.ReadableStream | null, sink: { text: string }): void {
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    sink.text = (sink.text + chunk).slice(-MAX_CAPTURE);
  });
}

function describeExit(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${String(child.exitCode)}`;
}

/** Starts `node bin/vsc.js card emulate --vpcd HOST:PORT --state FILE` and waits until it says "inserted". */
export async function startEmulator(options: EmulatorOptions): Promise<EmulatorProcess> {
  const { port, stateFile, host = '127.0.0.1', readyTimeoutMs = 30_000, extraArgs = [] } = options;
  const args = ['bin/vsc.js', 'card', 'emulate', '--vpcd', `${host}:${port}`, '--state', stateFile, ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  const err = { text: '' };
  capture(child.stdout, out);
  capture(child.stderr, err);
  let ended = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      ended = true;
      resolve();
    });
    child.once('error', (error) => {
      err.text += `\nspawn failed: ${error.message}`;
      ended = true;
      resolve();
    });
  });
  const command = `node ${args.join(' ')}`;

  const handle: EmulatorProcess = {
    pid: child.pid,
    stdout: () => out.text,
    stderr: () => err.text,
    async stop(timeoutMs = 10_000) {
      if (!ended) {
        child.kill('SIGTERM');
        const done = await Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)]);
        if (!done) {
          child.kill('SIGKILL');
          await exited;
          throw new Error(`expected "${command}" to exit within ${timeoutMs} ms of SIGTERM, got none; killed it. stderr:\n${err.text}`);
        }
      }
      await exited;
      return child.exitCode;
    },
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (!/inserted/i.test(out.text)) {
    if (ended) {
      throw new Error(`expected "${command}" to print "inserted", but it ended (${describeExit(child)}); stderr:\n${err.text}\nstdout:\n${out.text}`);
    }
    if (Date.now() > deadline) {
      await handle.stop().catch(() => null);
      throw new Error(`expected "${command}" to print "inserted" within ${readyTimeoutMs} ms, got stdout:\n${out.text}\nstderr:\n${err.text}`);
    }
    await sleep(50);
  }
  return handle;
}

export interface VscRun {
  /** Exit code; -1 when a signal ended the process. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node bin/vsc.js ...args` to its end, as a user runs one command, and collects its output. */
export function runVsc(args: readonly string[]): Promise<VscRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/vsc.js', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { text: '' };
    const err = { text: '' };
    capture(child.stdout, out);
    capture(child.stderr, err);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout: out.text, stderr: err.text }));
  });
}
