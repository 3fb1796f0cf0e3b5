// Argon2id owner-key derivation (DESIGN "Keys and secrets"): a fixed vector, cross-checked with @noble.
import { describe, expect, it } from 'vitest';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { DEFAULT_KDF, checkKdfParams, deriveOwnerKeys, newKdfParams, type KdfParams } from '../../src/vsc-protocol/index.js';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { ExitCode, VscError } from '../../src/errors/index.js';

// The smallest parameters a client accepts are the design's own (m = 64 MiB, t = 3, p = 1).
const SMALL = { memoryKiB: 65536, iterations: 3, parallelism: 1 } as const;
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
    expect(() => checkKdfParams({ ...smallParams(), memoryKiB: 65536, iterations: 3, parallelism: 1 })).not.toThrow();
    expect(() => checkKdfParams({ ...smallParams(), memoryKiB: 1024 * 1024, iterations: 64, parallelism: 16 })).not.toThrow();
  });

  const bad: [string, Partial<Record<keyof KdfParams, unknown>>, RegExp][] = [
    ['other algorithm', { algorithm: 'argon2i' }, /algorithm "argon2id", got "argon2i"/],
    ['short salt', { salt: new Uint8Array(15) }, /16-byte KDF salt, got 15 bytes/],
    ['long salt', { salt: new Uint8Array(17) }, /16-byte KDF salt, got 17 bytes/],
    ['salt as string', { salt: 'abc' }, /16-byte KDF salt, got string/],
    ['memory below the design\'s 64 MiB (a server weakening the KDF)', { memoryKiB: 65535 }, /memoryKiB to be an integer in 65536\.\.1048576, got 65535/],
    ['memory above 1 GiB', { memoryKiB: 1024 * 1024 + 1 }, /memoryKiB .* got 1048577/],
    ['fractional memory', { memoryKiB: 65536.5 }, /memoryKiB/],
    ['memory NaN', { memoryKiB: Number.NaN }, /memoryKiB .* got NaN/],
    ['fewer iterations than the design\'s 3', { iterations: 2 }, /iterations to be an integer in 3\.\.64, got 2/],
    ['zero iterations', { iterations: 0 }, /iterations .* got 0/],
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
    //   salt: 00..0f, memoryCost: 65536, timeCost: 3, parallelism: 1 }), split 32 | 32.
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

const VECTOR_AUTH = 'f583c66eb0c983f6be0f1801d34580dba6ce391a35def61fed043c365dc37c52';
const VECTOR_PROTECTION = 'f1c2815097615f218797ed574c7084ed21fd2609b8d0b3706bffd4dec7e6aeb8';
