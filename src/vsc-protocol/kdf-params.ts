// Argon2id parameters of an owner's password (DESIGN "Keys and secrets"): chosen by the server at
// enrollment, stored per card, sent in every challenge and checked by both sides against KDF_BOUNDS.
import { randomBytes } from 'node:crypto';
import { ExitCode, VscError } from '../errors/index.js';

export const KDF_SALT_LENGTH = 16;

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
 * Bounds on parameters that come from the server. The lower bounds are the design's own (a server
 * cannot make the client derive with less than 64 MiB and t = 3); the upper bounds (1 GiB, t = 64)
 * stop a malicious server from making the client burn unbounded memory or time.
 */
export const KDF_BOUNDS = Object.freeze({
  memoryKiB: Object.freeze({ min: DEFAULT_KDF.memoryKiB, max: 1024 * 1024 }),
  iterations: Object.freeze({ min: DEFAULT_KDF.iterations, max: 64 }),
  parallelism: Object.freeze({ min: 1, max: 16 }),
});

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
