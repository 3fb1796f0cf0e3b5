// The issuing back end's data directory (`vsc license serve --data DIR`; Wibu 002): the key that seals what the database
// must not hold in clear (licensors' signing seeds, ticket codes), in a 0600 file, and the SQLite database beside it
// by default. Sealing: ChaCha20-Poly1305 under a key derived per purpose from that key, a random 96-bit nonce (a data
// directory seals one value per licensor and per ticket, far below the bound where random nonces could repeat), and
// associated data that binds the sealed value to its row, so a sealed value copied to another row does not open.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { concatBytes, fromHex, toHex, utf8, wipe } from '../../bytes/index.js';
import { AeadAuthenticationError, chacha20Poly1305Decrypt, chacha20Poly1305Encrypt, hmacSha256 } from '../../crypto/index.js';
import { VscError } from '../../errors/index.js';
import { createFileOnce, readPrivateFile } from '../../files/index.js';

export const ISSUING_KEY_FILE = 'issuing-key.json';
export const ISSUING_DATABASE_FILE = 'issuing.db';
const KEY_FORMAT = 'vsc-license-issuing-key/1';
const NONCE_LENGTH = 12;

export type SealPurpose = 'licensor-seed' | 'ticket-code';

/** Seals and opens values under one data directory's key. Keeps only the keys derived from it. */
export interface IssuingSealer {
  seal(purpose: SealPurpose, binding: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** The plaintext; throws IssuingDataError when the value does not open (another directory's key, another row). */
  open(purpose: SealPurpose, binding: Uint8Array, sealed: Uint8Array): Uint8Array;
}

export class IssuingDataError extends VscError {
  override readonly name = 'IssuingDataError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('license.issuing-data', message, options);
  }
}

/** Where the SQLite database of `dir` lives, unless --db names another. */
export const defaultIssuingDatabaseUrl = (dir: string): string => join(resolve(dir), ISSUING_DATABASE_FILE);

/** Creates `dir` 0700 when it is missing (a directory the operator made is left as it is). */
export function ensureIssuingDirectory(dir: string): string {
  const path = resolve(dir);
  if (mkdirSync(path, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(path, 0o700);
  return path;
}

function readKey(path: string): Uint8Array {
  const bytes = readPrivateFile(path); // refused (exit 2, naming chmod 600) when others can read it
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new IssuingDataError(`${path}: not JSON`, { cause: error });
  } finally {
    wipe(bytes);
  }
  const key = typeof root === 'object' && root !== null ? (root as Record<string, unknown>)['key'] : undefined;
  if ((root as Record<string, unknown> | null)?.['format'] !== KEY_FORMAT || typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) {
    throw new IssuingDataError(`${path}: expected {"format": "${KEY_FORMAT}", "key": 64 hex digits}`);
  }
  return fromHex(key);
}

/** Writes a fresh key at `path` once; a key another process wrote first is kept. */
function createKey(path: string): void {
  const key = Uint8Array.from(randomBytes(32));
  const content = utf8(`${JSON.stringify({ format: KEY_FORMAT, key: toHex(key) }, null, 2)}\n`);
  wipe(key);
  createFileOnce(path, content);
}

/** The sealer of data directory `dir`, whose key is created (0600) at the first use. */
export function loadIssuingSealer(dir: string): IssuingSealer {
  const path = join(resolve(dir), ISSUING_KEY_FILE);
  let key: Uint8Array;
  try {
    key = readKey(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    createKey(path);
    key = readKey(path);
  }
  const sealer = issuingSealer(key);
  wipe(key);
  return sealer;
}

/** A sealer under `key` (32 bytes; the caller keeps and wipes its copy). */
export function issuingSealer(key: Uint8Array): IssuingSealer {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new IssuingDataError('expected a 32-byte data directory key');
  const keys = new Map<SealPurpose, Uint8Array>((['licensor-seed', 'ticket-code'] as const).map((purpose) => [purpose, hmacSha256(key, utf8(`vsc-license-issuing-seal/1 ${purpose}`))]));
  const ad = (purpose: SealPurpose, binding: Uint8Array) => concatBytes(utf8(`vsc-license-issuing/1 ${purpose}\0`), binding);
  return Object.freeze({
    seal(purpose: SealPurpose, binding: Uint8Array, plaintext: Uint8Array): Uint8Array {
      const nonce = Uint8Array.from(randomBytes(NONCE_LENGTH));
      return concatBytes(nonce, chacha20Poly1305Encrypt(keys.get(purpose)!, nonce, ad(purpose, binding), plaintext));
    },
    open(purpose: SealPurpose, binding: Uint8Array, sealed: Uint8Array): Uint8Array {
      try {
        return chacha20Poly1305Decrypt(keys.get(purpose)!, sealed.subarray(0, NONCE_LENGTH), ad(purpose, binding), sealed.subarray(NONCE_LENGTH));
      } catch (error) {
        if (!(error instanceof AeadAuthenticationError) && !(error instanceof VscError)) throw error;
        throw new IssuingDataError(`a sealed ${purpose} does not open with this data directory's key`, { cause: error });
      }
    },
  });
}
