// What every server-backed card command needs: the server endpoint, the owner's password, this
// machine's MUK and its state directory (machine lock, control socket of the running card).
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fromHex, utf8 } from '../bytes/index.js';
import { parseServerPublicKey } from '../channel/index.js';
import { ExitCode, UsageError, VscError } from '../errors/index.js';
import { acquireFileLock, ensurePrivateDirectory, ExposedFileError, readPrivateFile, type FileLock } from '../files/index.js';
import { computeMuk, mukFromOverride, readMachineFacts } from './muk.js';
import type { ServerEndpoint } from './server-operations.js';

export interface ClientFlags {
  readonly server?: string;
  readonly serverKey?: string;
  readonly masterKeyFile?: string;
  readonly keyfile?: string;
  readonly stateDir?: string;
  readonly machineId?: string;
}

/** Set to 1 where several simulated machines share one host (the tests): only then do the overrides below count. */
export const SIMULATE_MACHINES_VARIABLE = 'VSC_SIMULATE_MACHINES';

/**
 * --state-dir and --machine-id (VSC_STATE_DIR, VSC_MACHINE_ID), honoured only under
 * VSC_SIMULATE_MACHINES=1 (DESIGN.md "Command line"). Without the switch a flag is a usage error and
 * a variable is refused too: a real machine is never told by its environment which lock it holds.
 */
function machineOverrides(flags: ClientFlags): { stateDir?: string; machineId?: string } {
  const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);
  if (process.env[SIMULATE_MACHINES_VARIABLE] !== '1') {
    for (const [flag, value] of [['--state-dir', flags.stateDir], ['--machine-id', flags.machineId]] as const) {
      if (value !== undefined) throw new UsageError(`${flag} simulates a machine and works only with ${SIMULATE_MACHINES_VARIABLE}=1 (tests); a real machine needs neither`);
    }
    for (const name of ['VSC_STATE_DIR', 'VSC_MACHINE_ID']) {
      if (env(name) !== undefined) {
        throw new VscError('usage.simulation', `${name} is set, but it is honoured only with ${SIMULATE_MACHINES_VARIABLE}=1 (tests): unset it`, { exitCode: ExitCode.usage });
      }
    }
    return {};
  }
  const stateDir = flags.stateDir ?? env('VSC_STATE_DIR');
  const machineId = flags.machineId ?? env('VSC_MACHINE_ID');
  return { ...(stateDir === undefined ? {} : { stateDir }), ...(machineId === undefined ? {} : { machineId }) };
}

/**
 * This user's directory on this machine, keyed by the uid the OS reports (never $HOME): where the
 * machine lock and the control socket live. /run/user/UID (per-login tmpfs, 0700) when it exists.
 */
export function machineDirectory(): string {
  const uid = process.getuid?.();
  if (uid === undefined) throw new VscError('platform', `the machine lock needs a POSIX uid; this is ${process.platform}`);
  const runtime = `/run/user/${uid}`;
  return existsSync(runtime) ? join(runtime, 'vsc') : `/tmp/vsc-${uid}`;
}

/**
 * The state directory to use, created 0700 and checked (ensurePrivateDirectory): machineDirectory(),
 * or --state-dir of a simulated machine.
 */
export function stateDirectory(flags: ClientFlags): string {
  const { stateDir } = machineOverrides(flags);
  return ensurePrivateDirectory(stateDir === undefined ? machineDirectory() : resolve(stateDir));
}

/**
 * Where this user keeps what must outlive a reboot or a logout (/run/user is a tmpfs): the uploads
 * waiting for the server and what this machine remembers of its cards. $XDG_STATE_HOME/vsc (default
 * ~/.local/state/vsc), created 0700 and checked like the state directory; a simulated machine keeps
 * them in its --state-dir.
 */
export function dataDirectory(flags: ClientFlags): string {
  const { stateDir } = machineOverrides(flags);
  if (stateDir !== undefined) return ensurePrivateDirectory(resolve(stateDir));
  const xdg = process.env['XDG_STATE_HOME'];
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state');
  mkdirSync(base, { recursive: true, mode: 0o700 });
  return ensurePrivateDirectory(join(base, 'vsc'));
}

/**
 * Takes this machine's lock ([0054], [0089]): one card process per user and machine. Refused with
 * LockHeldError (exit 3) while another process, or this one, holds it.
 */
export function acquireMachineLock(stateDir: string): Promise<FileLock> {
  const path = join(stateDir, 'machine.lock');
  return acquireFileLock(path, `the machine lock ${path}`);
}

/** sun_path holds 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * The Unix socket where the running card of `stateDir` takes `vsc card remove|status`. It lives in
 * the 0700 state directory: Node cannot read a peer's uid (no SO_PEERCRED), so the directory's
 * owner and mode are the uid check: no other user can reach the socket.
 */
export function controlSocketPath(stateDir: string): string {
  const path = join(stateDir, 'control.sock');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new UsageError(`the control socket path ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH} a Unix socket allows: use a shorter --state-dir`);
  }
  return path;
}

export async function machineUniqueKey(flags: ClientFlags): Promise<Uint8Array> {
  const { machineId } = machineOverrides(flags);
  return machineId !== undefined ? mukFromOverride(machineId) : computeMuk(await readMachineFacts());
}

/** A secret file's content (refused when others can read it: exit 2, naming chmod 600); `flag` names it in errors. */
function readSecretFile(path: string, flag: string): Uint8Array {
  try {
    return readPrivateFile(path);
  } catch (error) {
    if (error instanceof ExposedFileError) throw new VscError(error.code, `${flag}: ${error.message}`, { exitCode: error.exitCode, cause: error });
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The first line of a secret file (--password-file, --token-file); an empty one is a usage error. */
export function readSecretLine(path: string, flag: string): string {
  const bytes = readSecretFile(path, flag);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${flag}: ${path} is not UTF-8 text`);
  } finally {
    bytes.fill(0);
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line.length === 0) throw new UsageError(`${flag}: ${path} has an empty first line`);
  return line;
}

export function serverEndpoint(flags: ClientFlags): ServerEndpoint {
  machineOverrides(flags); // every command refuses a simulation flag without the switch, not only those that use it
  if (flags.server === undefined) throw new UsageError('--server is required (ws://HOST:PORT)');
  if (!/^wss?:\/\/[^\s]+$/.test(flags.server)) throw new UsageError(`--server: expected ws://HOST:PORT or wss://HOST:PORT, got ${JSON.stringify(flags.server)}`);
  if (flags.serverKey === undefined) throw new UsageError('--server-key is required (the 64 hex digits "vsc server init" printed)');
  let serverKey: Uint8Array;
  try {
    serverKey = parseServerPublicKey(flags.serverKey);
  } catch (error) {
    throw new UsageError(`--server-key: ${(error as Error).message}`);
  }
  const masterKeyFile = flags.masterKeyFile ?? process.env['VSC_MASTER_KEY_FILE'];
  if (masterKeyFile === undefined) throw new UsageError('--master-key-file (or VSC_MASTER_KEY_FILE) is required: the implementation key of this deployment');
  const raw = readSecretFile(masterKeyFile, '--master-key-file');
  const text = new TextDecoder().decode(raw).trim();
  raw.fill(0);
  if (!/^[0-9a-f]{64}$/.test(text)) throw new UsageError(`--master-key-file: expected 64 hex digits in ${masterKeyFile}`);
  const keyfilePath = flags.keyfile ?? process.env['VSC_KEYFILE'];
  let keyfile: Uint8Array | undefined;
  if (keyfilePath !== undefined && keyfilePath !== '') {
    keyfile = readSecretFile(keyfilePath, '--keyfile');
  }
  return {
    url: flags.server, serverKey, masterKey: fromHex(text), masterKeyFile: resolve(masterKeyFile),
    ...(keyfile === undefined ? {} : { keyfile, keyfilePath: resolve(keyfilePath!) }),
  };
}

/** The first line of --password-file, or a no-echo prompt on a terminal ([0019]). */
export async function readPassword(passwordFile: string | undefined, prompt = 'Card password: '): Promise<Uint8Array> {
  if (passwordFile !== undefined) return utf8(readSecretLine(passwordFile, '--password-file'));
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password: use --password-file');
  return promptNoEcho(prompt);
}

function promptNoEcho(prompt: string): Promise<Uint8Array> {
  return new Promise((resolvePassword, reject) => {
    const input = process.stdin;
    process.stderr.write(prompt);
    input.setRawMode(true);
    input.resume();
    const chars: number[] = [];
    const finish = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (error !== undefined) reject(error);
      else resolvePassword(utf8(Buffer.from(chars).toString('utf8')));
      chars.fill(0);
    };
    const onData = (data: Buffer) => {
      for (const byte of data) {
        if (byte === 0x0d || byte === 0x0a) return finish();
        if (byte === 0x03) return finish(new UsageError('cancelled'));
        if (byte === 0x7f || byte === 0x08) chars.pop();
        else chars.push(byte);
      }
      data.fill(0);
    };
    input.on('data', onData);
  });
}
