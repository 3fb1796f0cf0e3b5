// Test helper: the one way tests start the `vsc` command (bin/vsc.js, which runs the compiled CLI in dist/) as a child
// process: arguments and environment in, stdout/stderr collected, exit awaited, printed lines waited for, and every
// process still running known to killAllVsc() so that a failed test leaves none behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository root, where bin/vsc.js lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled CLI that bin/vsc.js runs; built by `npm run build` (the test setup builds it, test/support/build-setup.ts). */
export const COMPILED_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** Output kept per stream: the tail, enough for any failure message. */
const MAX_CAPTURE = 1024 * 1024;

export interface VscSpawnOptions {
  /**
   * Variables set (a string) or removed (undefined) over this process's environment and SIMULATED_MACHINES.
   * A test of the real machine lock removes the switch: `env: { VSC_SIMULATE_MACHINES: undefined }`.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Arguments for node before bin/vsc.js (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

export interface VscRun {
  /** Exit code; -1 when a signal ended the process. */
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface VscProcess {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** The command line, for failure messages. */
  readonly command: string;
  /** Resolves once the process ended and its output streams closed. */
  readonly exited: Promise<VscRun>;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Both streams, labelled, for failure messages. */
  output(): string;
  running(): boolean;
  /** Resolves with the match once stdout matches `pattern`; rejects if the process ends first or the time runs out. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends `signal` (SIGTERM) and resolves with how it ended; SIGKILL, then a rejection, if it outlives `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<VscRun>;
  /** SIGKILL, and resolves once it ended. */
  kill(): Promise<VscRun>;
}

const live = new Set<VscProcess>();
let checkedBuild = false;

function assertBuilt(): void {
  if (checkedBuild) return;
  if (!existsSync(COMPILED_CLI)) {
    throw new Error(`expected the compiled CLI at ${COMPILED_CLI}, got none; run \`npm run build\` (the vitest setup does it)`);
  }
  checkedBuild = true;
}

/** Starts `node bin/vsc.js ...args` in the repository root. */
export function spawnVsc(args: readonly string[], options: VscSpawnOptions = {}): VscProcess {
  assertBuilt();
  return spawnNode(['bin/vsc.js', ...args], options);
}

/**
 * Starts a test's own TypeScript helper program (through tsx) the same way, e.g. a second process holding a lock:
 * `spawnTsScript(fileURLToPath(new URL('./hold-emulated-card.ts', import.meta.url)), [path])`.
 */
export function spawnTsScript(path: string, args: readonly string[], options: VscSpawnOptions = {}): VscProcess {
  return spawnNode(['--import', 'tsx', path, ...args], options);
}

/**
 * Tests simulate several machines on one host with --state-dir and --machine-id, which `vsc` honours only under
 * this switch (DESIGN.md "Command line"): every process the tests start has it unless a test removes it.
 */
export const SIMULATED_MACHINES = { VSC_SIMULATE_MACHINES: '1' } as const;

function spawnNode(script: readonly string[], options: VscSpawnOptions): VscProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...SIMULATED_MACHINES };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const argv = [...(options.nodeArgs ?? []), ...script];
  const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const command = `node ${argv.join(' ')}`;
  let out = '';
  let err = '';
  /** Waiters on stdout, checked on every chunk. */
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out = (out + chunk).slice(-MAX_CAPTURE);
    for (const watch of [...watchers]) watch();
  });
  child.stderr!.on('data', (chunk: string) => {
    err = (err + chunk).slice(-MAX_CAPTURE);
  });
  let ended = false;
  const exited = new Promise<VscRun>((resolve) => {
    child.once('close', (code, signal) => {
      ended = true;
      resolve({ code: code ?? -1, signal, stdout: out, stderr: err });
    });
    child.once('error', (error) => {
      err += `\nspawn failed: ${error.message}`;
      ended = true;
      resolve({ code: -1, signal: null, stdout: out, stderr: err });
    });
  });

  const handle: VscProcess = {
    child,
    pid: child.pid,
    command,
    exited,
    stdout: () => out,
    stderr: () => err,
    output: () => `stdout:\n${out}\nstderr:\n${err}`,
    running: () => !ended && child.exitCode === null && child.signalCode === null,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          pattern.lastIndex = 0;
          const match = pattern.exec(out);
          if (match !== null) {
            finish();
            resolve(match);
          }
        };
        const finish = (): void => {
          watchers.delete(check);
          clearTimeout(timer);
        };
        watchers.add(check);
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`expected "${command}" to print ${String(pattern)} within ${timeoutMs} ms, got\n${handle.output()}`));
        }, timeoutMs);
        check();
        void exited.then(() => {
          if (!watchers.has(check)) return;
          check(); // the last chunk may have come with the end
          if (!watchers.has(check)) return;
          finish();
          reject(new Error(`expected "${command}" to print ${String(pattern)}, but it ended (${describeEnd(child)}); ${handle.output()}`));
        });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (handle.running()) {
        child.kill(signal);
        const done = await Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)]);
        if (!done) {
          child.kill('SIGKILL');
          await exited;
          throw new Error(`expected "${command}" to exit within ${timeoutMs} ms of ${signal}, got none; killed it. ${handle.output()}`);
        }
      }
      return exited;
    },
    async kill() {
      if (handle.running()) child.kill('SIGKILL');
      return exited;
    },
  };
  live.add(handle);
  void exited.then(() => live.delete(handle));
  return handle;
}

function describeEnd(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${String(child.exitCode)}`;
}

/** Runs `node bin/vsc.js ...args` to its end, as a user runs one command, and collects its output. */
export function runVsc(args: readonly string[], options: VscSpawnOptions = {}): Promise<VscRun> {
  return spawnVsc(args, options).exited;
}

/** The `vsc` processes started by this test file that still run. */
export function runningVsc(): VscProcess[] {
  return [...live];
}

/** SIGKILLs every `vsc` process this test file started that still runs, and waits until they ended. */
export async function killAllVsc(): Promise<void> {
  await Promise.all([...live].map((spawned) => spawned.kill()));
}
