// The server's options (src/vsc-server/server-options.ts): merged over SERVER_DEFAULTS, validated with
// "expected X, got Y" messages, frozen.
import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../src/errors/index.js';
import {
  DEFAULT_COUNTER_WINDOW, NO_OBSERVER, SERVER_DEFAULTS, resolveServerOptions, type ServerKeys, type VscDatabase,
  type VscServerOptions,
} from '../../src/vsc-server/index.js';

const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const keys: ServerKeys = { channelPrivateKey: key(1), channelPublicKey: key(2), signingSeed: key(3), keyfileSecret: key(4), masterKey: key(5) };
// Only its presence is checked here; no query runs.
const database = { db: {}, dialect: 'sqlite' } as unknown as VscDatabase;

describe('resolveServerOptions', () => {
  it('fills every default and freezes the result', () => {
    const resolved = resolveServerOptions({ keys, database });
    expect(resolved).toMatchObject({ host: '127.0.0.1', port: 0, implementationProofs: 'master', counterWindow: DEFAULT_COUNTER_WINDOW, now: Date.now, observer: NO_OBSERVER });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(SERVER_DEFAULTS)).toBe(true);
  });

  it('keeps what was given, and takes undefined for "use the default"', () => {
    const now = (): number => 7;
    const resolved = resolveServerOptions({ keys, database, host: '::1', implementationProofs: 'both', counterWindow: 5n, now, port: undefined });
    expect(resolved).toMatchObject({ host: '::1', port: 0, implementationProofs: 'both', counterWindow: 5n, now });
    expect(resolveServerOptions({ keys, database, port: 65535 }).port).toBe(65535);
  });

  const bad: [string, Partial<Record<keyof VscServerOptions, unknown>>, RegExp][] = [
    ['no keys', { keys: undefined }, /expected the server keys, got undefined/],
    ['a short master key', { keys: { ...keys, masterKey: key(5).subarray(1) } }, /expected server key masterKey of 32 bytes, got 31 bytes/],
    ['no database', { database: null }, /expected an open server database, got null/],
    ['an empty host', { host: '' }, /expected a host name or address to listen on, got ""/],
    ['a negative port', { port: -1 }, /expected a port in 0\.\.65535, got -1/],
    ['a port too high', { port: 65536 }, /expected a port in 0\.\.65535, got 65536/],
    ['a fractional port', { port: 1.5 }, /expected a port in 0\.\.65535, got 1\.5/],
    ['unknown implementation proofs', { implementationProofs: 'none' }, /expected implementation proofs to be one of master, keyfile, both, got "none"/],
    ['an empty counter window', { counterWindow: 0n }, /expected a counter window in 1\.\.2\^128-1, got 0/],
    ['a counter window as a number', { counterWindow: 10 }, /expected a counter window in 1\.\.2\^128-1, got 10/],
    ['a clock that is not a function', { now: 5 }, /expected a clock function, got number/],
    ['no observer', { observer: null }, /expected an observer, got null/],
  ];

  it.each(bad)('refuses %s as a usage error', (_, change, expected) => {
    const options = { keys, database, ...change } as VscServerOptions;
    const keysBefore = keys.masterKey.slice();
    let error: unknown;
    try {
      resolveServerOptions(options);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(ExitCode.usage);
    expect((error as UsageError).message).toMatch(expected);
    expect(keys.masterKey).toEqual(keysBefore);
  });
});
