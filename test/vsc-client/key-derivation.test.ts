// Argon2id owner-key derivation (DESIGN "Keys and secrets"): a fixed vector, cross-checked with @noble.
import { describe, expect, it } from 'vitest';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { DEFAULT_KDF, checkKdfParams, deriveOwnerKeys, newKdfParams, type KdfParams } from '../../src/vsc-client/key-derivation.js';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { ExitCode, VscError } from '../../src/errors/index.js';

// Small parameters keep the tests fast; they are inside the bounds a client accepts.
const SMALL = { memoryKiB: 8192, iterations: 1, parallelism: 1 } as const;
const SALT = fromHex('000102030405060708090a0b0c0d0e0f');
const smallParams = (salt: Uint8Array = SALT): KdfParams => ({ algorithm: 'argon2id', salt, ...SMALL });

describe('KDF parameters', () => {
  it('defaults to m = 64 MiB, t = 3, p = 1 with a fresh 16-byte salt', () => {
    expect(DEFAULT_KDF).toEqual({ memoryKiB: 65536, iterations: 3, parallelism: 1 });
    const a = newKdfParams();
    const b = newKdfParams();
    expect(a).toMatchObject({ algorithm: 'argon2id', ...DEFAULT_KDF });
    expect(a.salt).toHaveLength(16);
    expect(toHex(a.salt)).not.toBe(toHex(b.salt));
    expect(() => checkKdfParams(a)).not.toThrow();
  });

  it('accepts the bounds themselves', () => {
    expect(() => checkKdfParams({ ...smallParams(), memoryKiB: 8192, iterations: 1, parallelism: 1 })).not.toThrow();
    expect(() => checkKdfParams({ ...smallParams(), memoryKiB: 4 * 1024 * 1024, iterations: 64, parallelism: 16 })).not.toThrow();
  });

  const bad: [string, Partial<Record<keyof KdfParams, unknown>>, RegExp][] = [
    ['other algorithm', { algorithm: 'argon2i' }, /algorithm "argon2id", got "argon2i"/],
    ['short salt', { salt: new Uint8Array(15) }, /16-byte KDF salt, got 15 bytes/],
    ['long salt', { salt: new Uint8Array(17) }, /16-byte KDF salt, got 17 bytes/],
    ['salt as string', { salt: 'abc' }, /16-byte KDF salt, got string/],
    ['memory below 8 MiB', { memoryKiB: 8191 }, /memoryKiB to be an integer in 8192\.\.4194304, got 8191/],
    ['memory above 4 GiB', { memoryKiB: 4 * 1024 * 1024 + 1 }, /memoryKiB .* got 4194305/],
    ['fractional memory', { memoryKiB: 8192.5 }, /memoryKiB/],
    ['memory NaN', { memoryKiB: Number.NaN }, /memoryKiB .* got NaN/],
    ['zero iterations', { iterations: 0 }, /iterations to be an integer in 1\.\.64, got 0/],
    ['65 iterations', { iterations: 65 }, /iterations .* got 65/],
    ['zero parallelism', { parallelism: 0 }, /parallelism to be an integer in 1\.\.16, got 0/],
    ['17 lanes', { parallelism: 17 }, /parallelism .* got 17/],
    ['parallelism as string', { parallelism: '1' }, /parallelism .* got 1/],
  ];
  it.each(bad)('refuses %s with a readable VscError', (_name, change, message) => {
    const params = { ...smallParams(), ...change } as KdfParams;
    let error: unknown;
    try {
      checkKdfParams(params);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(VscError);
    expect((error as VscError).code).toBe('kdf.params');
    expect((error as VscError).message).toMatch(message);
  });

  it('refuses bad parameters before running Argon2 (a malicious server cannot make it burn memory)', async () => {
    await expect(deriveOwnerKeys(utf8('pw'), { ...smallParams(), memoryKiB: 64 * 1024 * 1024 })).rejects.toMatchObject({
      code: 'kdf.params',
      exitCode: ExitCode.other,
    });
  });
});

describe('deriveOwnerKeys', () => {
  it('matches a fixed vector (computed once with the argon2 package) and @noble/hashes argon2id', async () => {
    const password = utf8('correct horse battery staple');
    const keys = await deriveOwnerKeys(password, smallParams());
    // argon2.hash('correct horse battery staple', { type: argon2id, raw: true, hashLength: 64,
    //   salt: 00..0f, memoryCost: 8192, timeCost: 1, parallelism: 1 }), split 32 | 32.
    expect(toHex(keys.authKey)).toBe(VECTOR_AUTH);
    expect(toHex(keys.protectionKey)).toBe(VECTOR_PROTECTION);
    const noble = nobleArgon2id(password, SALT, { m: SMALL.memoryKiB, t: SMALL.iterations, p: SMALL.parallelism, dkLen: 64 });
    expect(toHex(noble)).toBe(VECTOR_AUTH + VECTOR_PROTECTION);
    // The caller's password is left alone; the caller wipes it.
    expect(new TextDecoder().decode(password)).toBe('correct horse battery staple');
  });

  it('gives different keys for another password or another salt', async () => {
    const base = await deriveOwnerKeys(utf8('pw-1'), smallParams());
    const otherPassword = await deriveOwnerKeys(utf8('pw-2'), smallParams());
    const otherSalt = await deriveOwnerKeys(utf8('pw-1'), smallParams(fromHex('ff'.repeat(16))));
    for (const other of [otherPassword, otherSalt]) {
      expect(toHex(other.authKey)).not.toBe(toHex(base.authKey));
      expect(toHex(other.protectionKey)).not.toBe(toHex(base.protectionKey));
    }
    expect(base.authKey).toHaveLength(32);
    expect(base.protectionKey).toHaveLength(32);
    expect(toHex(base.authKey)).not.toBe(toHex(base.protectionKey));
  });

  it('refuses a password that is not bytes', async () => {
    await expect(deriveOwnerKeys('pw' as unknown as Uint8Array, smallParams())).rejects.toThrow(/expected the password as bytes, got string/);
  });
});

const VECTOR_AUTH = '95796a82db1837b4ce7c31f0656c9cfd1f8e940f744c287103e030751432a1b0';
const VECTOR_PROTECTION = 'b104ee0b108a4fe663104004d2673253782e86327f59e7a73eaabd2fdaf06925';
