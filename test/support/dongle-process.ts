// The test side of dongle-driver.ts: dongles opened in a child process that has the token's environment
// (SOFTHSM2_CONF, TPM2_PKCS11_*), with the Dongle methods as promises. Failures come back as DriverError with the
// child's error name, code and exit code, so tests assert on them as on the real errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes/index.js';
import type { DongleSlot } from '../../src/dongle-backend/index.js';
import { REPO_ROOT } from './vsc-spawn.js';

const DRIVER = fileURLToPath(new URL('./dongle-driver.ts', import.meta.url));

export class DriverError extends Error {
  override readonly name: string;
  constructor(
    name: string,
    message: string,
    readonly code: string | undefined,
    readonly exitCode: number | undefined,
  ) {
    super(message);
    this.name = name;
  }
}

export interface RemoteIdentity {
  readonly kind: string;
  readonly publicKey: Uint8Array;
  readonly fingerprint: Uint8Array;
  readonly description: string;
}

export interface RemoteDongle {
  identify(): Promise<RemoteIdentity>;
  ensureKey(): Promise<RemoteIdentity>;
  sign(message: Uint8Array): Promise<Uint8Array>;
  read(slot: DongleSlot): Promise<Uint8Array | undefined>;
  write(slot: DongleSlot, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
  readonly cardKeys: {
    unsupported(): Promise<string | undefined>;
    generate(serial: string): Promise<Uint8Array>;
    publicKey(serial: string): Promise<Uint8Array>;
    sign(serial: string, message: Uint8Array): Promise<Uint8Array>;
  };
}

export interface DongleProcess {
  open(uri: string): Promise<RemoteDongle>;
  /** How long the child took for the last answered request, in ms (without the pipe's round trip). */
  readonly lastMs: number;
  /** Ends the child (closing its stdin; SIGKILL if it lingers). */
  close(): Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  ms?: number;
  error?: { name: string; message: string; code?: string; exitCode?: number };
}

function identity(value: unknown): RemoteIdentity {
  const raw = value as Record<string, string>;
  return { kind: raw['kind']!, publicKey: fromHex(raw['publicKey']!), fingerprint: fromHex(raw['fingerprint']!), description: raw['description']! };
}

/** Starts dongle-driver.ts (through tsx) with `env` added to this process's environment. */
export function startDongleProcess(env: Readonly<Record<string, string>>): DongleProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', DRIVER], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  let stderr = '';
  let nextId = 1;
  let lastMs = 0;
  let ended = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      return; // not ours: a module printing to stdout
    }
    pending.get(reply.id)?.resolve(reply);
    pending.delete(reply.id);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      ended = true;
      for (const { reject } of pending.values()) reject(new Error(`the dongle driver exited (${code ?? signal}) before answering:\n${stderr}`));
      pending.clear();
      resolve();
    });
  });

  const call = async (op: string, ...args: unknown[]): Promise<unknown> => {
    if (ended) throw new Error(`the dongle driver has exited:\n${stderr}`);
    const id = nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
    lastMs = reply.ms ?? 0;
    if (!reply.ok) {
      const error = reply.error ?? { name: 'Error', message: 'no error given' };
      throw new DriverError(error.name, error.message, error.code, error.exitCode);
    }
    return reply.value;
  };

  return {
    get lastMs() {
      return lastMs;
    },
    async open(uri) {
      const handle = await call('open', uri);
      const hex = async (op: string, ...args: unknown[]): Promise<Uint8Array> => fromHex((await call(op, handle, ...args)) as string);
      return {
        identify: async () => identity(await call('identify', handle)),
        ensureKey: async () => identity(await call('ensureKey', handle)),
        sign: (message) => hex('sign', toHex(message)),
        read: async (slot) => {
          const value = await call('read', handle, slot);
          return value === null ? undefined : fromHex(value as string);
        },
        write: async (slot, bytes) => {
          await call('write', handle, slot, toHex(bytes));
        },
        close: async () => {
          await call('close', handle);
        },
        cardKeys: {
          unsupported: async () => ((await call('cardKeysUnsupported', handle)) as string | null) ?? undefined,
          generate: (serial) => hex('cardKeysGenerate', serial),
          publicKey: (serial) => hex('cardKeysPublicKey', serial),
          sign: (serial, message) => hex('cardKeysSign', serial, toHex(message)),
        },
      };
    },
    async close() {
      if (ended) return;
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
