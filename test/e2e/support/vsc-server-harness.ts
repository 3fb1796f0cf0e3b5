// End-to-end helper: a real `vsc server start` on SQLite in a temp dir (or on --db URL), and clients as separate
// `vsc` processes that simulate machines with --state-dir/--machine-id.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT, runVsc, type VscRun } from './vsc-process.js';

export interface RunningCard {
  readonly child: ChildProcess;
  readonly exited: Promise<VscRun>;
}

export interface ServerHarness {
  readonly dir: string;
  readonly data: string;
  readonly port: number;
  /** --data DIR, and --db URL when the cards live elsewhere: what every admin command needs. */
  readonly admin: string[];
  serverKey(): string;
  /** The flags every card command needs, for one card and password. */
  client(serial: string, password: string): string[];
  /** --state-dir and --machine-id of one simulated machine. */
  machine(name: string): string[];
  /** A running `vsc card insert`; resolves once it says "inserted" (or exited). */
  startInsert(serial: string, password: string, machineName: string, extra?: string[]): Promise<RunningCard>;
  /** `admin enroll` then `card enroll`; returns the enrollment output. */
  enroll(serial: string, password: string, extra?: string[]): Promise<VscRun>;
  state(serial: string): Promise<string>;
  /** Starts (or restarts) the server process. */
  start(): Promise<void>;
  /** Stops the server process (SIGTERM). */
  stop(): Promise<void>;
  /** Stops the server and removes the temp dir. */
  close(): Promise<void>;
}

export async function startServerHarness(options: { port: number; serverArgs?: string[]; clientArgs?: string[]; db?: string }): Promise<ServerHarness> {
  const { port, serverArgs = [], clientArgs = [] } = options;
  /** Where the server and the admin commands keep the cards: --db URL, or the data directory's SQLite. */
  const db = options.db === undefined ? [] : ['--db', options.db];
  const dir = mkdtempSync(join(tmpdir(), 'vsc-e2e-server-'));
  const data = join(dir, 'server');
  let server: ChildProcess | undefined;
  let serverKey = '';
  const passwordFiles = new Map<string, string>();

  const passwordFile = (password: string): string => {
    let path = passwordFiles.get(password);
    if (path === undefined) {
      path = join(dir, `password-${passwordFiles.size}`);
      writeFileSync(path, `${password}\n`, { mode: 0o600 });
      passwordFiles.set(password, path);
    }
    return path;
  };
  const client = (serial: string, password: string): string[] => [
    '--server', `ws://127.0.0.1:${port}`, '--server-key', serverKey, '--master-key-file', join(data, 'master.key'), '--serial', serial, '--password-file', passwordFile(password), ...clientArgs,
  ];
  const machine = (name: string): string[] => ['--state-dir', join(dir, `machine-${name}`), '--machine-id', name];

  const harness: ServerHarness = {
    dir,
    data,
    port,
    admin: ['--data', data, ...db],
    serverKey: () => serverKey,
    client,
    machine,
    async startInsert(serial, password, machineName, extra = []) {
      const child = spawn(process.execPath, ['bin/vsc.js', 'card', 'insert', ...client(serial, password), ...machine(machineName), ...extra], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const exited = new Promise<VscRun>((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
      await new Promise<void>((resolve) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('inserted')) resolve();
        });
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        void exited.then(() => resolve());
      });
      return { child, exited };
    },
    async enroll(serial, password, extra = []) {
      const created = await runVsc(['admin', 'enroll', ...harness.admin, '--serial', serial]);
      expect(created.code, created.stderr).toBe(0);
      const token = created.stdout.trim().split('\n').at(-1)!;
      const enrolled = await runVsc(['card', 'enroll', ...client(serial, password), '--token', token, ...extra]);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      return enrolled;
    },
    async state(serial) {
      return (JSON.parse((await runVsc(['admin', 'show', ...harness.admin, '--serial', serial, '--json'])).stdout) as { state: string }).state;
    },
    async start() {
      const child = spawn(process.execPath, ['bin/vsc.js', 'server', 'start', '--data', data, ...db, '--listen', `127.0.0.1:${port}`, ...serverArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      server = child;
      let out = '';
      let err = '';
      child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const key = /server public key:\n([0-9a-f]{64})/.exec(out);
          if (key !== null) {
            serverKey = key[1]!;
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`vsc server start exited with ${String(code)}: ${err}`)));
      });
    },
    async stop() {
      const child = server;
      server = undefined;
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
    async close() {
      await harness.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const init = await runVsc(['server', 'init', '--data', data, ...db]);
  expect(init.code, init.stderr).toBe(0);
  await harness.start();
  return harness;
}
