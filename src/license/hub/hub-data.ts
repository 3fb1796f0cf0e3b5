// The restore hub's data directory (`vsc license hub serve --data DIR`; Wibu 000 §2.10 the central locking instance):
// DIR/authority.key, the central authority's Ed25519 seed that signs lock and unlock sequences; DIR/admin.token, the
// bearer token of the administrator's routes ("only the central authority unlocks"); DIR/hub.sqlite. Both files are
// created once, 0600 (createFileOnce: a crash leaves no file or a whole one), and refused when others can read them.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constantTimeEqual, fromHex, fromUtf8, toHex, utf8, wipe } from '../../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256, type Ed25519SigningKey } from '../../crypto/index.js';
import { VscError } from '../../errors/index.js';
import { createFileOnce, readPrivateFile } from '../../files/index.js';

export const HUB_AUTHORITY_KEY_FILE = 'authority.key';
export const HUB_ADMIN_TOKEN_FILE = 'admin.token';
export const HUB_DATABASE_FILE = 'hub.sqlite';
const KEY_FORMAT = 'vsc-license-hub-authority/1';
const TOKEN = /^vschub_[0-9a-f]{64}$/;

export class HubDataError extends VscError {
  override readonly name = 'HubDataError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('license.hub-data', message, options);
  }
}

export interface HubData {
  readonly dir: string;
  readonly databaseUrl: string;
  /** Signs lock and unlock sequences; its public key is what containers take as their lock authority. */
  readonly authority: Ed25519SigningKey;
  /** SHA-256 of the admin token: the token itself is not kept in memory. */
  readonly adminTokenHash: Uint8Array;
}

function readOrCreate(path: string, make: () => Uint8Array): Uint8Array {
  try {
    return readPrivateFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  createFileOnce(path, make()); // another process that wrote it first wins; its file is read below
  return readPrivateFile(path);
}

function loadAuthority(path: string): Ed25519SigningKey {
  const bytes = readOrCreate(path, () => {
    const seed = generateEd25519Seed();
    const content = utf8(`${JSON.stringify({ format: KEY_FORMAT, seed: toHex(seed) })}\n`);
    wipe(seed);
    return content;
  });
  let root: unknown;
  try {
    root = JSON.parse(fromUtf8(bytes));
  } catch (error) {
    throw new HubDataError(`${path}: not JSON`, { cause: error });
  } finally {
    wipe(bytes);
  }
  const fields = typeof root === 'object' && root !== null ? (root as Record<string, unknown>) : {};
  if (fields['format'] !== KEY_FORMAT || typeof fields['seed'] !== 'string' || !/^[0-9a-f]{64}$/.test(fields['seed'])) {
    throw new HubDataError(`${path}: expected {"format": "${KEY_FORMAT}", "seed": 64 hex digits}`);
  }
  const seed = fromHex(fields['seed']);
  try {
    return ed25519KeyFromSeed(seed);
  } finally {
    wipe(seed);
  }
}

function loadAdminTokenHash(path: string): Uint8Array {
  const bytes = readOrCreate(path, () => utf8(`vschub_${toHex(Uint8Array.from(randomBytes(32)))}\n`));
  const token = fromUtf8(bytes).trim();
  wipe(bytes);
  if (!TOKEN.test(token)) throw new HubDataError(`${path}: expected one line "vschub_" and 64 hex digits`);
  return sha256(utf8(token));
}

/** Opens data directory `dir` (made 0700 when missing), creating its authority key and admin token at the first use. */
export function loadHubData(dir: string): HubData {
  const path = resolve(dir);
  if (mkdirSync(path, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(path, 0o700);
  return Object.freeze({
    dir: path,
    databaseUrl: join(path, HUB_DATABASE_FILE),
    authority: loadAuthority(join(path, HUB_AUTHORITY_KEY_FILE)),
    adminTokenHash: loadAdminTokenHash(join(path, HUB_ADMIN_TOKEN_FILE)),
  });
}

/** Whether `authorization` is "Bearer <the admin token>" (compared as SHA-256 digests, in constant time). */
export function isAdminAuthorization(data: Pick<HubData, 'adminTokenHash'>, authorization: string | undefined): boolean {
  const match = typeof authorization === 'string' ? /^Bearer (\S{1,200})$/.exec(authorization) : null;
  const given = sha256(utf8(match === null ? '' : match[1]!));
  return constantTimeEqual(given, data.adminTokenHash) && match !== null;
}
