// A VSC server's data directory: its keys (channel key pair, keyfile signing seed, keyfile secret,
// implementation master key) in one 0600 file, the attestation key in another (attestation-key.ts), and
// the SQLite database beside it by default.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fromHex, toHex } from '../bytes/index.js';
import { generateX25519KeyPair, x25519PublicKey } from '../channel/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { createExclusiveFile, readPrivateFile, writeFileAtomic } from '../files/index.js';
import { loadOrCreateAttestationKey } from './attestation-key.js';
import type { VscDatabase } from './database.js';

const KEYS_FORMAT = 'vsc-server-keys/1';
const KEYS_FILE = 'server-keys.json';
const DATABASE_FILE = 'vsc.db';
/** The master key alone, for distribution to client installs (--master-key-file). */
export const MASTER_KEY_FILE = 'master.key';

export interface ServerKeys {
  /** X25519 static key of the protected channel; clients pin its public half. */
  readonly channelPrivateKey: Uint8Array;
  readonly channelPublicKey: Uint8Array;
  /** Ed25519 seed that signs keyfiles. */
  readonly signingSeed: Uint8Array;
  /** Derives each install's keyfile secret as1, so the server never stores one. */
  readonly keyfileSecret: Uint8Array;
  /** Implementation master key shared with genuine clients ([0042], [0087]). */
  readonly masterKey: Uint8Array;
}

export class ServerDataError extends VscError {
  override readonly name = 'ServerDataError';
  constructor(message: string, options: { cause?: unknown; exitCode?: ExitCode } = {}) {
    super('server.data', message, options);
  }
}

/** Where the SQLite database of `dir` lives, unless --db names another. */
export const defaultDatabaseUrl = (dir: string): string => join(resolve(dir), DATABASE_FILE);

/** Creates `dir` with fresh keys and an empty database; refuses to overwrite an existing server. */
export async function initServerData(dir: string, databaseUrl = defaultDatabaseUrl(dir)): Promise<ServerKeys> {
  const keysPath = join(dir, KEYS_FILE);
  if (existsSync(keysPath)) throw new ServerDataError(`${dir} already holds a VSC server; its keys are not overwritten`, { exitCode: ExitCode.refusedByState });
  // 0700 whatever the umask when this call makes it; a directory the operator made is left as it is.
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700);
  const channel = generateX25519KeyPair();
  const keys: ServerKeys = {
    channelPrivateKey: channel.privateKey,
    channelPublicKey: channel.publicKey,
    signingSeed: new Uint8Array(randomBytes(32)),
    keyfileSecret: new Uint8Array(randomBytes(32)),
    masterKey: new Uint8Array(randomBytes(32)),
  };
  const database = await openDatabaseLazily(databaseUrl);
  await database.close();
  // The key that attests server-held cards (attestation-key.ts), beside the others.
  loadOrCreateAttestationKey(dir).fill(0);
  const text = JSON.stringify(
    {
      format: KEYS_FORMAT,
      channelPrivateKey: toHex(keys.channelPrivateKey),
      signingSeed: toHex(keys.signingSeed),
      keyfileSecret: toHex(keys.keyfileSecret),
      masterKey: toHex(keys.masterKey),
    },
    null,
    2,
  );
  writeFileAtomic(keysPath, new TextEncoder().encode(`${text}\n`), 0o600);
  // The implementation key genuine clients carry ([0042]): handed to client installs as a file.
  writeFileAtomic(join(dir, MASTER_KEY_FILE), new TextEncoder().encode(`${toHex(keys.masterKey)}\n`), 0o600);
  return keys;
}

function hexField(root: Record<string, unknown>, name: string, path: string): Uint8Array {
  const value = root[name];
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new ServerDataError(`${path}: expected "${name}" as 64 hex digits`);
  return fromHex(value);
}

export function loadServerKeys(dir: string): ServerKeys {
  const path = join(dir, KEYS_FILE);
  let root: unknown;
  try {
    // Refused (exit 2, naming chmod 600) when the group or the world can read it.
    root = JSON.parse(new TextDecoder().decode(readPrivateFile(path)));
  } catch (error) {
    if (error instanceof VscError) throw error;
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ServerDataError(missing ? `no VSC server in ${dir}; run "vsc server init --data ${dir}" first` : `${path}: ${(error as Error).message}`, { cause: error });
  }
  if (typeof root !== 'object' || root === null || (root as Record<string, unknown>)['format'] !== KEYS_FORMAT) {
    throw new ServerDataError(`${path}: expected "format": "${KEYS_FORMAT}"`);
  }
  const fields = root as Record<string, unknown>;
  const channelPrivateKey = hexField(fields, 'channelPrivateKey', path);
  return {
    channelPrivateKey,
    channelPublicKey: x25519PublicKey(channelPrivateKey),
    signingSeed: hexField(fields, 'signingSeed', path),
    keyfileSecret: hexField(fields, 'keyfileSecret', path),
    masterKey: hexField(fields, 'masterKey', path),
  };
}

/** The database of an initialised data directory (checked by loading its keys first). */
export async function openServerDatabase(dir: string, databaseUrl?: string): Promise<VscDatabase> {
  loadServerKeys(dir);
  return openDatabaseLazily(databaseUrl ?? defaultDatabaseUrl(dir));
}

/**
 * The database code (kysely, drivers) loads only when a database is opened: client commands, which
 * run once per card operation, never pay for it.
 */
async function openDatabaseLazily(url: string): Promise<VscDatabase> {
  if (!/^postgres(ql)?:\/\//.test(url)) createPrivateFile(url);
  const { openDatabase } = await import('./database.js');
  return openDatabase(url);
}

/**
 * Creates a missing SQLite file 0600 (exclusively, never through a symlink) before SQLite opens it:
 * SQLite creates its -wal and -shm files with the database file's mode.
 */
function createPrivateFile(path: string): void {
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  try {
    closeSync(createExclusiveFile(path, 0o600));
  } catch (error) {
    // EEXIST: it is there already; ENOENT (no such directory): SQLite's open says so next.
    if (!['EEXIST', 'ENOENT'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      throw new ServerDataError(`cannot create the SQLite database ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  }
}
