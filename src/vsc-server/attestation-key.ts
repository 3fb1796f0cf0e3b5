// The server's attestation key (DESIGN.md "Software rental", trust model): an Ed25519 key in the data directory,
// 0600 and in clear like the server's other keys (server-data.ts), that signs attestations of server-held cards
// (server-attestation.ts). Made at `server init`; a data directory made before it gets one at its first start.
// Several server processes on one data directory agree on one key: the first to create it wins.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fromHex, toHex, utf8 } from '../bytes/index.js';
import { ED25519_SEED_LENGTH } from '../crypto/index.js';
import { VscError } from '../errors/index.js';
import { createFileOnce, readPrivateFile } from '../files/index.js';

export const ATTESTATION_KEY_FILE = 'attestation-key.json';
const FORMAT = 'vsc-server-attestation-key/1';

/** The attestation key of data directory `dir`, created (0600) when it has none yet. */
export function loadOrCreateAttestationKey(dir: string): Uint8Array {
  const path = join(dir, ATTESTATION_KEY_FILE);
  try {
    return readAttestationKey(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  createAttestationKey(path);
  return readAttestationKey(path);
}

function readAttestationKey(path: string): Uint8Array {
  const bytes = readPrivateFile(path); // refused (exit 2, naming chmod 600) when others can read it
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new VscError('server.data', `${path}: not JSON`, { cause: error });
  } finally {
    bytes.fill(0);
  }
  const seed = typeof root === 'object' && root !== null ? (root as Record<string, unknown>)['seed'] : undefined;
  if ((root as Record<string, unknown> | null)?.['format'] !== FORMAT || typeof seed !== 'string' || !/^[0-9a-f]{64}$/.test(seed)) {
    throw new VscError('server.data', `${path}: expected {"format": "${FORMAT}", "seed": 64 hex digits}`);
  }
  return fromHex(seed);
}

/**
 * Writes a fresh key to a temporary file, then links it into place: link fails when another process linked
 * one first, and that key is kept. A crash leaves either no key file or a whole one.
 */
function createAttestationKey(path: string): void {
  const seed = new Uint8Array(randomBytes(ED25519_SEED_LENGTH));
  const content = utf8(`${JSON.stringify({ format: FORMAT, seed: toHex(seed) }, null, 2)}\n`);
  seed.fill(0);
  createFileOnce(path, content);
}
