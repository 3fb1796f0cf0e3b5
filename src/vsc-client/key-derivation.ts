// Owner password → auth key and protection key with Argon2id (DESIGN "Keys and secrets").
// Replaces the patent's MD5(password ‖ SALT) of [0021], [0085] by a memory-hard KDF.
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { wipe } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';

export const KDF_SALT_LENGTH = 16;
export const KDF_OUTPUT_LENGTH = 64;
export const OWNER_KEY_LENGTH = 32;

export interface KdfParams {
  algorithm: 'argon2id';
  salt: Uint8Array;
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** The parameters DESIGN.md fixes for new cards: m = 64 MiB, t = 3, p = 1. */
export const DEFAULT_KDF = Object.freeze({ memoryKiB: 65536, iterations: 3, parallelism: 1 });

/**
 * Bounds on parameters that come from the server. The upper bounds stop a malicious server from
 * making the client burn unbounded memory or time; the lower bounds stop it from weakening the KDF.
 */
export const KDF_BOUNDS = Object.freeze({
  memoryKiB: Object.freeze({ min: 8 * 1024, max: 4 * 1024 * 1024 }),
  iterations: Object.freeze({ min: 1, max: 64 }),
  parallelism: Object.freeze({ min: 1, max: 16 }),
});

export interface OwnerKeys {
  /** Proves knowledge of the password to the server (only a verifier of it is stored there). */
  authKey: Uint8Array;
  /** Seals the protected information; never leaves the client. */
  protectionKey: Uint8Array;
}

export function newKdfParams(): KdfParams {
  return { algorithm: 'argon2id', salt: Uint8Array.from(randomBytes(KDF_SALT_LENGTH)), ...DEFAULT_KDF };
}

function kdfError(message: string): VscError {
  return new VscError('kdf.params', message, { exitCode: ExitCode.other });
}

function checkInteger(name: keyof typeof KDF_BOUNDS, value: unknown): void {
  const { min, max } = KDF_BOUNDS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw kdfError(`expected KDF ${name} to be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

/** Validates parameters received from a server (or read from storage); throws a readable VscError. */
export function checkKdfParams(params: KdfParams): void {
  if (typeof params !== 'object' || params === null) throw kdfError(`expected KDF parameters, got ${String(params)}`);
  if (params.algorithm !== 'argon2id') {
    throw kdfError(`expected KDF algorithm "argon2id", got ${JSON.stringify(String(params.algorithm))}`);
  }
  if (!(params.salt instanceof Uint8Array) || params.salt.length !== KDF_SALT_LENGTH) {
    const got = params.salt instanceof Uint8Array ? `${params.salt.length} bytes` : typeof params.salt;
    throw kdfError(`expected a ${KDF_SALT_LENGTH}-byte KDF salt, got ${got}`);
  }
  checkInteger('memoryKiB', params.memoryKiB);
  checkInteger('iterations', params.iterations);
  checkInteger('parallelism', params.parallelism);
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
