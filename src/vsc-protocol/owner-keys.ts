// Owner password → auth key and protection key with Argon2id (DESIGN "Keys and secrets"), for every
// backing that opens a card with the owner's password: the VSC client and the dongle.
// Replaces the patent's MD5(password ‖ SALT) of [0021], [0085] by a memory-hard KDF.
import argon2 from 'argon2';
import { wipe } from '../bytes/index.js';
import { VscError } from '../errors/index.js';
import { checkKdfParams, type KdfParams } from './kdf-params.js';

export const KDF_OUTPUT_LENGTH = 64;
export const OWNER_KEY_LENGTH = 32;

export interface OwnerKeys {
  /** Proves knowledge of the password to the server (only a verifier of it is stored there). */
  authKey: Uint8Array;
  /** Seals the protected information; never leaves the client. */
  protectionKey: Uint8Array;
}

/**
 * Argon2id over the password (raw, 64 bytes): the first 32 bytes are the auth key, the last 32 the
 * protection key. The caller owns and should wipe the password and both returned keys.
 */
export async function deriveOwnerKeys(password: Uint8Array, params: KdfParams): Promise<OwnerKeys> {
  if (!(password instanceof Uint8Array)) throw new TypeError(`expected the password as bytes, got ${typeof password}`);
  checkKdfParams(params);
  const passwordCopy = Buffer.from(password);
  let output: Buffer;
  try {
    output = await argon2.hash(passwordCopy, {
      type: argon2.argon2id,
      raw: true,
      hashLength: KDF_OUTPUT_LENGTH,
      salt: Buffer.from(params.salt),
      memoryCost: params.memoryKiB,
      timeCost: params.iterations,
      parallelism: params.parallelism,
    });
  } catch (cause) {
    throw new VscError('kdf.failed', 'Argon2id key derivation failed', { cause });
  } finally {
    wipe(passwordCopy);
  }
  try {
    return {
      authKey: Uint8Array.from(output.subarray(0, OWNER_KEY_LENGTH)),
      protectionKey: Uint8Array.from(output.subarray(OWNER_KEY_LENGTH, KDF_OUTPUT_LENGTH)),
    };
  } finally {
    wipe(output);
  }
}
