// The vendor's universal key file (patent 003 [0098]-[0102]) as `vsc dongle init --universal-key FILE` reads it:
// the PKCS#8 PEM of `openssl genpkey -algorithm ed25519` (RFC 8410 §7) or 64 hex digits; refused when others may
// read it; malformed files (a table, then random and mutated bytes) refused with exit 2, never quoting the key.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import { DongleError, parseUniversalKey, readUniversalKeyFile } from '../../src/dongle-backend/index.js';
import { ExitCode, VscError } from '../../src/errors/index.js';
import { E2E_INSTALL_COMMAND } from '../support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-universal-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | Uint8Array, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode); // whatever the umask (the CLI's main() sets 077)
  return path;
}

/** A fresh Ed25519 key as Node writes it: PKCS#8 PEM, and its public key. */
function newKey(): { pem: string; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey: Uint8Array.from(spki.subarray(spki.length - 32)) };
}

/** The error `run` throws, which must be the file's own refusal: exit 2, code dongle.universal-key. */
function refusal(run: () => unknown): DongleError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DongleError);
  expect((caught as DongleError).code).toBe('dongle.universal-key');
  expect((caught as DongleError).exitCode).toBe(ExitCode.usage);
  return caught as DongleError;
}

describe('readUniversalKeyFile', () => {
  it('reads the PEM that openssl genpkey -algorithm ed25519 writes: the same key openssl derives', () => {
    const path = join(dir, 'openssl.pem');
    let publicPem: string;
    try {
      execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path], { stdio: 'ignore' });
      publicPem = execFileSync('openssl', ['pkey', '-in', path, '-pubout', '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('hex');
    } catch (error) {
      throw new Error(`expected openssl to be installed: ${E2E_INSTALL_COMMAND}`, { cause: error });
    }
    const seed = readUniversalKeyFile(path);
    expect(seed).toHaveLength(32);
    expect(publicPem.slice(-64)).toBe(toHex(ed25519KeyFromSeed(seed).publicKey));
  });

  it('reads Node\'s PKCS#8 PEM, with CRLF line ends and surrounding blank lines too', () => {
    const { pem, publicKey } = newKey();
    expect(toHex(ed25519KeyFromSeed(readUniversalKeyFile(write('node.pem', pem))).publicKey)).toBe(toHex(publicKey));
    const crlf = `\r\n\r\n${pem.replace(/\n/g, '\r\n')}\r\n`;
    expect(toHex(ed25519KeyFromSeed(readUniversalKeyFile(write('crlf.pem', crlf))).publicKey)).toBe(toHex(publicKey));
  });

  it('reads the 32 bytes as 64 hex digits, either case, with a line end', () => {
    const hex = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'; // RFC 8032 §7.1 TEST 1 secret key
    const publicKey = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'; // ... and its public key
    expect(toHex(ed25519KeyFromSeed(readUniversalKeyFile(write('key.hex', `${hex}\n`))).publicKey)).toBe(publicKey);
    expect(toHex(readUniversalKeyFile(write('upper.hex', hex.toUpperCase())))).toBe(hex);
  });

  it('refuses a file other users may read, naming chmod 600 (exit 2), and a missing one', () => {
    const open = write('open.pem', newKey().pem, 0o644);
    let caught: unknown;
    try {
      readUniversalKeyFile(open);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(VscError);
    expect((caught as VscError).exitCode).toBe(ExitCode.usage);
    expect((caught as Error).message).toMatch(/readable by other users .*chmod 600/);
    expect(refusal(() => readUniversalKeyFile(join(dir, 'absent.pem'))).message).toMatch(/cannot read .*absent\.pem: ENOENT/);
  });

  const pem = newKey().pem;
  const body = pem.split('\n')[1]!;
  it.each([
    ['an empty file', ''],
    ['63 hex digits', 'a'.repeat(63)],
    ['65 hex digits', 'a'.repeat(65)],
    ['a non-hex digit', `${'a'.repeat(63)}g`],
    ['two hex lines', `${'a'.repeat(32)}\n${'a'.repeat(32)}`],
    ['a PEM without its end line', pem.split('\n').slice(0, 2).join('\n')],
    ['a PEM with bytes after its end line', `${pem}trailing`],
    ['a PEM body that is not base64', pem.replace(body, `${body.slice(0, 10)}*${body.slice(11)}`)],
    ['a PEM body with data after its padding', pem.replace(body, `${body}=A`)],
    ['a PEM cut short', pem.replace(body, body.slice(0, 40))],
    ['an X25519 key', generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['a P-256 key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['an RSA key in PKCS#1', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string],
  ])('refuses %s (exit 2), saying what it expected', (_, content) => {
    expect(refusal(() => readUniversalKeyFile(write('malformed', content))).message).toMatch(/^--universal-key: expected an Ed25519 private key as PKCS#8 PEM/);
  });

  it('fuzzed: random bytes and mutated keys give a 32-byte key or the file\'s own refusal, and a refusal never quotes the key', () => {
    const { pem: valid } = newKey();
    const validHex = toHex(readUniversalKeyFile(write('valid.pem', valid)));
    const secretParts = [validHex.slice(0, 16), validHex.slice(16, 32), valid.split('\n')[1]!.slice(0, 16)];
    const check = (bytes: Uint8Array): void => {
      let seed: Uint8Array;
      try {
        seed = parseUniversalKey(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(DongleError);
        expect((error as DongleError).code).toBe('dongle.universal-key');
        for (const part of secretParts) expect((error as Error).message).not.toContain(part);
        return;
      }
      expect(seed).toHaveLength(32);
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(bytes)), { numRuns: 500 });
    const sources = [utf8(valid), utf8(validHex)];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (which, edits, cut) => {
        const bytes = sources[which]!.slice(0, sources[which]!.length - (cut % 3));
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        check(bytes);
      }),
      { numRuns: 1000 },
    );
    expect(toHex(readUniversalKeyFile(write('still-valid.pem', readFileSync(join(dir, 'valid.pem')))))).toBe(validHex);
  });
});
