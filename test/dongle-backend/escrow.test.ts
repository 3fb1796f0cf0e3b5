// The escrow of a dongle-backed card (patent 004 [0107] recover; DESIGN.md "Dongle-backed card"): it opens
// only with the authority's X25519 key, and what it holds opens only with the owner's password.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { generateX25519KeyPair } from '../../src/crypto/index.js';
import { deriveOwnerKeys, newKdfParams } from '../../src/vsc-protocol/index.js';
import type { AuthorityReference, CardRecordHeader } from '../../src/dongle-backend/card-record.js';
import { openInner, sealInner } from '../../src/dongle-backend/card-sealing.js';
import { DongleError } from '../../src/dongle-backend/dongle.js';
import {
  escrowPath, inspectEscrow, mayReplaceEscrow, openEscrow, sealEscrow, serialOfEscrowFile, writeEscrow,
} from '../../src/dongle-backend/escrow.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-escrow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const authorityKeys = generateX25519KeyPair();
const otherKeys = generateX25519KeyPair();
const authority: AuthorityReference = { signingKey: new Uint8Array(32).fill(7), escrowKey: authorityKeys.publicKey, escrowDirectory: join(dir, 'authority') };
const kdf = newKdfParams();
const password = utf8('correct horse battery staple');
const plaintext = utf8('the protected information of card E-1');

const header = (overrides: Partial<CardRecordHeader> = {}): CardRecordHeader => ({
  serial: 'E-1', keyMode: 'individual', keysOnToken: false, fresh: false, dongleFingerprint: new Uint8Array(32).fill(0xd1), epoch: 0,
  sealSalt: new Uint8Array(16).fill(5), kdf, authority, ...overrides,
});

let protectionKey: Uint8Array;
let inner: Uint8Array;
let escrow: Uint8Array;

beforeAll(async () => {
  ({ protectionKey } = await deriveOwnerKeys(password, kdf));
  inner = sealInner(protectionKey, 'E-1', plaintext);
  escrow = sealEscrow(authority, header(), inner);
});

/** Only returns or throws DongleError('escrow'): never another exception. */
function openOrEscrowError(bytes: Uint8Array): void {
  try {
    openEscrow(authorityKeys.privateKey, bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(DongleError);
    expect((error as DongleError).code).toBe('dongle.escrow');
  }
}

describe('sealEscrow / openEscrow', () => {
  it('round trips the registration and the inner layer, which opens with the password only', async () => {
    const opened = openEscrow(authorityKeys.privateKey, escrow);
    expect(opened).toMatchObject({ serial: 'E-1', keyMode: 'individual', keysOnToken: false, epoch: 0, escrowDirectory: authority.escrowDirectory });
    expect(opened.dongleFingerprint).toEqual(new Uint8Array(32).fill(0xd1));
    expect(opened.kdf).toEqual(kdf);
    expect(opened.recipient).toEqual(authorityKeys.publicKey);
    expect(opened.inner).toEqual(inner);
    expect(openInner(protectionKey, 'E-1', opened.inner!)).toEqual(plaintext);
    const wrong = await deriveOwnerKeys(utf8('wrong password'), kdf);
    expect(openInner(wrong.protectionKey, 'E-1', opened.inner!)).toBeUndefined();
  });

  it('is refused with another authority\'s key, naming the key it is for', () => {
    expect(() => openEscrow(otherKeys.privateKey, escrow)).toThrow(/sealed to another authority's key/);
  });

  it('keeps nothing secret for a card with its keys on its token: the registration alone', () => {
    const registration = sealEscrow(authority, header({ keysOnToken: true }), undefined);
    expect(openEscrow(authorityKeys.privateKey, registration)).toMatchObject({ serial: 'E-1', keysOnToken: true, inner: undefined, recipient: undefined });
    expect(registration.length).toBeLessThan(120);
    expect(() => sealEscrow(authority, header({ keysOnToken: true }), inner)).toThrow(/keys on its token has no information/);
    expect(() => sealEscrow(authority, header(), undefined)).toThrow(/expected the inner layer/);
  });

  it('seals each escrow afresh (ephemeral key and nonce): two escrows of one state differ', () => {
    expect(toHex(sealEscrow(authority, header(), inner))).not.toBe(toHex(escrow));
  });

  it.each([
    ['an empty serial', { serial: '' }, /serial of 1..64 bytes/],
    ['a 65-byte serial', { serial: 'x'.repeat(65) }, /serial of 1..64 bytes/],
    ['a short fingerprint', { dongleFingerprint: new Uint8Array(31) }, /32-byte dongle fingerprint/],
    ['a negative epoch', { epoch: -1 }, /epoch in 0\.\./],
    ['an epoch past 2^32-1', { epoch: 2 ** 32 }, /epoch in 0\.\./],
  ])('refuses to seal %s', (_, overrides, message) => {
    expect(() => sealEscrow(authority, header(overrides), inner)).toThrow(message);
  });

  it('refuses a low-order authority key (the shared secret would be zero)', () => {
    expect(() => sealEscrow({ ...authority, escrowKey: new Uint8Array(32) }, header(), inner)).toThrow(/not a usable X25519 key/);
  });
});

describe('decoding is strict', () => {
  it('refuses every flipped bit, clear part and ciphertext alike (the clear part is associated data)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: escrow.length * 8 - 1 }), (bit) => {
        const bytes = escrow.slice();
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        expect(() => openEscrow(authorityKeys.privateKey, bytes)).toThrow(DongleError);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses every truncation and an extra byte', () => {
    for (let length = 0; length < escrow.length; length++) expect(() => openEscrow(authorityKeys.privateKey, escrow.subarray(0, length))).toThrow(DongleError);
    expect(() => openEscrow(authorityKeys.privateKey, Uint8Array.of(...escrow, 0))).toThrow(/bytes after the sealed information/);
  });

  it.each([
    ['wrong magic', (b: Uint8Array) => { b[0] = 0x58; }, /wrong magic/],
    ['version 2', (b: Uint8Array) => { b[4] = 2; }, /unknown version 2/],
    ['a zero serial length', (b: Uint8Array) => { b[5] = 0; }, /serial of 1\.\.64 bytes, got 0/],
    ['key mode 2', (b: Uint8Array) => { b[9] = 2; }, /unknown key mode 2/],
    ['an unknown flag', (b: Uint8Array) => { b[10] = 0x80; }, /unknown flags/],
    ['a serial that is not UTF-8', (b: Uint8Array) => { b[6] = 0xff; }, /serial is not UTF-8/],
  ])('names what is wrong: %s', (_, mutate, message) => {
    const bytes = escrow.slice();
    mutate(bytes);
    expect(() => inspectEscrow(bytes)).toThrow(message);
  });

  it('fuzz: random bytes, with or without a valid prefix, only ever give an escrow or DongleError', () => {
    const prefix = escrow.subarray(0, 11);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (tail, withPrefix) => {
        openOrEscrowError(withPrefix ? Uint8Array.of(...prefix, ...tail) : tail);
      }),
      { numRuns: 1000 },
    );
  });

  it('fuzz: a valid escrow with bytes overwritten anywhere only ever gives an escrow or DongleError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: escrow.length - 1 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), (offset, patch) => {
        const bytes = escrow.slice();
        bytes.set(patch.subarray(0, bytes.length - offset), offset);
        openOrEscrowError(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

describe('writeEscrow (the card program\'s side)', () => {
  const escrowDir = join(authority.escrowDirectory, 'escrow');
  mkdirSync(escrowDir, { recursive: true, mode: 0o700 });

  it('writes <dir>/escrow/<serial hex>.escrow, 0600, readable by the authority', () => {
    expect(writeEscrow(authority, header(), inner)).toBe(true);
    const path = escrowPath(authority.escrowDirectory, 'E-1');
    expect(path).toBe(join(escrowDir, `${toHex(utf8('E-1'))}.escrow`));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(openEscrow(authorityKeys.privateKey, readFileSync(path)).inner).toEqual(inner);
  });

  it('returns false, never throws, when the authority cannot be reached', () => {
    expect(writeEscrow({ ...authority, escrowDirectory: join(dir, 'unmounted') }, header(), inner)).toBe(false);
    writeFileSync(join(dir, 'a-file'), 'not a directory');
    expect(writeEscrow({ ...authority, escrowDirectory: join(dir, 'a-file') }, header(), inner)).toBe(false); // ENOTDIR
    expect(writeEscrow({ ...authority, escrowDirectory: '' }, header(), inner)).toBe(false);
  });

  it('never lets an older epoch, or another dongle in the same epoch, overwrite the escrow there', () => {
    const replaced = header({ serial: 'E-2', epoch: 3, dongleFingerprint: new Uint8Array(32).fill(0xd3) });
    const innerE2 = sealInner(protectionKey, 'E-2', plaintext);
    expect(writeEscrow(authority, replaced, innerE2)).toBe(true);
    expect(writeEscrow(authority, header({ serial: 'E-2', epoch: 2 }), innerE2)).toBe(false);
    expect(writeEscrow(authority, header({ serial: 'E-2', epoch: 3 }), innerE2)).toBe(false);
    expect(writeEscrow(authority, replaced, innerE2)).toBe(true);
    expect(writeEscrow(authority, header({ serial: 'E-2', epoch: 4 }), innerE2)).toBe(true);
    expect(inspectEscrow(readFileSync(escrowPath(authority.escrowDirectory, 'E-2'))).epoch).toBe(4);
    expect(mayReplaceEscrow(undefined, header())).toBe(true);
  });

  it('overwrites a damaged escrow file', () => {
    writeFileSync(escrowPath(authority.escrowDirectory, 'E-3'), 'garbage', { mode: 0o600 });
    expect(writeEscrow(authority, header({ serial: 'E-3' }), sealInner(protectionKey, 'E-3', plaintext))).toBe(true);
  });

  it('names files only by serials: the file name maps back, anything else is not an escrow', () => {
    for (const serial of ['E-1', 'ÄÖ/../x', '🔑']) {
      expect(serialOfEscrowFile(escrowPath('', serial).slice(`escrow/`.length))).toBe(serial);
    }
    expect(serialOfEscrowFile('.452d31.escrow.1a2b.tmp')).toBeUndefined();
    expect(serialOfEscrowFile('ff.escrow')).toBeUndefined();
    expect(serialOfEscrowFile('452D31.escrow')).toBeUndefined();
    expect(fromHex('452d31')).toEqual(utf8('E-1'));
  });
});
