// A real `vsc server start` child process for the server benchmarks, and its CPU time read from
// /proc/<pid>/stat (utime + stime, all threads) so that the figures count the server alone.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SHARED_ADDRESS_SERVER_ARGS } from '../test/support/index.js';

/** This checkout: the root bin/vsc.js runs from unless a benchmark names another (an older commit's worktree). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLOCK_TICKS = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process used so far, from /proc/<pid>/stat fields 14 and 15. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`expected utime and stime in /proc/${pid}/stat, got ${fields.slice(11, 13).join(' ')}`);
  return (utime + stime) / CLOCK_TICKS;
}

/** Runs `vsc ARGS` of the checkout at `root` to completion (server init) and returns its stdout. */
export function runVsc(args: readonly string[], root: string = REPO_ROOT): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/vsc.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`vsc ${args[0] ?? ''} ${args[1] ?? ''} exited with ${String(code)}: ${err.trim().slice(-2000)}`))));
  });
}

export interface ServerProcess {
  readonly pid: number;
  readonly url: string;
  readonly serverKey: Uint8Array;
  cpuSeconds(): number;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  readonly data: string;
  readonly db?: string;
  /** Extra node flags for the server process (e.g. --cpu-prof --cpu-prof-dir=DIR). */
  readonly nodeArgs?: readonly string[];
  /** Repository root whose bin/vsc.js runs the server (default this checkout; bench/baseline-server.ts makes an older one). */
  readonly root?: string;
}

/** Starts `vsc server start --data DIR [--db URL] --listen 127.0.0.1:0` and waits for its address. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const db = options.db === undefined ? [] : ['--db', options.db];
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), 'bin/vsc.js', 'server', 'start', '--data', options.data, ...db, '--listen', '127.0.0.1:0', ...SHARED_ADDRESS_SERVER_ARGS], {
    cwd: options.root ?? REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  // The server logs one JSON line per operation on stderr: read and keep only the tail for errors.
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-8_192)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const { url, key } = await new Promise<{ url: string; key: string }>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (ws:\/\/[^\s]+)[\s\S]*server public key:\n([0-9a-f]{64})/.exec(out);
      if (match !== null) resolve({ url: match[1]!, key: match[2]! });
    });
    child.once('exit', (code) => reject(new Error(`vsc server start exited with ${String(code)}: ${err.trim().slice(-2000)}`)));
  });
  const pid = child.pid!;
  return {
    pid,
    url,
    serverKey: Uint8Array.from(Buffer.from(key, 'hex')),
    cpuSeconds: () => processCpuSeconds(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
