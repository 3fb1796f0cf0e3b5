// The keyfile of patent 004 [0044]-[0047]: it carries the install's secret as1 and the card's public key
// (and serial), signed by the server's Ed25519 key and encrypted under a key every implementation can
// derive; the client refuses a keyfile that names another card. Format 1 keyfiles (before they named
// their card) still open, and the card check refuses them clearly.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import { ExitCode, VscError } from '../../src/errors/index.js';
import {
  checkKeyfileCard, issueKeyfile, keyfileProof, keyfileSecretFor, openKeyfile, verifyProof, type KeyfileContents,
} from '../../src/vsc-protocol/index.js';

const bytes = (length: number, start: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
const masterKey = bytes(32, 0x10);
const keyfileSecret = bytes(32, 0x40);
const signingSeed = bytes(32, 0x70);
const otherSeed = bytes(32, 0x90);
const serverPublicKey = ed25519KeyFromSeed(signingSeed).publicKey;
const cardA = { serial: 'CARD-A', publicKey: ed25519KeyFromSeed(bytes(32, 0xc0)).publicKey };
const cardB = { serial: 'CARD-B', publicKey: ed25519KeyFromSeed(bytes(32, 0xd0)).publicKey };
const server = { masterKey, serverSigningPublicKey: serverPublicKey };
const ri1 = bytes(32, 1);
const ri2 = bytes(32, 101);

/**
 * Format 1 keyfiles as the code before this format issued them, with the keys above and install id
 * "laptop-1": one naming no card, one with the 32-byte public key of bytes(32, 0xc0) (and no serial).
 */
const V1_BARE = fromHex(
  '56534b46013d4f949671e75acb76b923d1ba98111334e6f5601accec85372053da274f7106af57f3b4df3788149ab1b07a237068cf19daffc24ceecd7a01cb3ba61c1ae6e628817c608cf82b4c4a7dc0969172b06ec1736ee932f571906d51cf38a74e2d90fd488fb6771a92c16cb4b7508e0916fcf5c811d441f524eef64d6fe8925bd3ccfa9f15',
);
const V1_KEYED = fromHex(
  '56534b4601b822268dc4fc7c897471c26a66900a767937c50399e89322e37caa34271b40323e6007e7704da655eea351f8b997695ac70e6b014685c221e7ceef00a3e410e6ea9eacba82732e80b6a49f5cac7ae5639f2368c6140a46162d68ad9831b1abc8807b5a733a1e76f959269e0da3ad188c7d7eaf56c9185d0e15268354c00022c4a616a99ca8984b4ae1306496c892d472dec3e55bc872d2806e17f397673cce15ca9fa7',
);

function refusal(fn: () => unknown): VscError {
  let error: unknown;
  try {
    fn();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(VscError);
  const vscError = error as VscError;
  expect(vscError.exitCode).toBe(ExitCode.authenticationFailed);
  expect(vscError.message).not.toContain(toHex(masterKey));
  return vscError;
}
const expectInvalid = (fn: () => unknown): VscError => {
  const error = refusal(fn);
  expect(error.code).toBe('keyfile.invalid');
  return error;
};

/** What anyone holding the master key (every install) can do: open the AEAD layer and seal it again. */
const encryptionKey = () => hkdf(nobleSha256, masterKey, undefined, utf8('vsc-keyfile-encryption/1'), 32);
function decryptLayer(file: Uint8Array): Uint8Array {
  return xchacha20poly1305(encryptionKey(), file.subarray(5, 29), file.subarray(0, 5)).decrypt(file.subarray(29));
}
function encryptLayer(header: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = Uint8Array.from(randomBytes(24));
  return concatBytes(header, nonce, xchacha20poly1305(encryptionKey(), nonce, header).encrypt(plaintext));
}

describe('keyfiles', () => {
  it('carry the install, as1 and the card: its serial and public key ([0044])', () => {
    const file = issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA });
    expect(toHex(file.subarray(0, 5))).toBe('56534b4602'); // "VSKF", format 2
    const opened = openKeyfile(file, server);
    expect(opened.format).toBe(2);
    expect(opened.installId).toBe('install-1');
    expect(toHex(opened.as1)).toBe(toHex(keyfileSecretFor(keyfileSecret, 'install-1')));
    expect(opened.card?.serial).toBe('CARD-A');
    expect(toHex(opened.card!.publicKey)).toBe(toHex(cardA.publicKey));
    // The server checks the keyfile proof from its one secret, storing nothing per install ([0046]).
    const proof = keyfileProof(opened.as1, ri1, ri2, 'CARD-A');
    expect(verifyProof(keyfileProof(keyfileSecretFor(keyfileSecret, 'install-1'), ri1, ri2, 'CARD-A'), proof)).toBe(true);
  });

  it('for enrollment name no card', () => {
    const opened = openKeyfile(issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'installé-2' }), server);
    expect(opened).toEqual({ format: 2, installId: 'installé-2', as1: keyfileSecretFor(keyfileSecret, 'installé-2') });
  });

  it('are encrypted: neither as1, the install id, the serial nor the card key appears in the file', () => {
    const file = toHex(issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA }));
    for (const secret of [keyfileSecretFor(keyfileSecret, 'install-1'), utf8('install-1'), utf8('CARD-A'), cardA.publicKey]) expect(file).not.toContain(toHex(secret));
  });

  it('are refused under a wrong master key, another server key, or signed by another server', () => {
    const file = issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA });
    expectInvalid(() => openKeyfile(file, { masterKey: bytes(32, 0x11), serverSigningPublicKey: serverPublicKey }));
    expect(expectInvalid(() => openKeyfile(file, { masterKey, serverSigningPublicKey: ed25519KeyFromSeed(otherSeed).publicKey })).message).toMatch(/not signed/);
    const forged = issueKeyfile({ signingSeed: otherSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA });
    expectInvalid(() => openKeyfile(forged, server));
  });

  it('are refused when someone with the master key swaps in another card: the server signature binds the card', () => {
    const file = issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA });
    const plaintext = decryptLayer(file);
    const swapped = plaintext.slice();
    const keyAt = toHex(plaintext).indexOf(toHex(cardA.publicKey)) / 2;
    expect(keyAt).toBeGreaterThan(0);
    swapped.set(cardB.publicKey, keyAt);
    expect(expectInvalid(() => openKeyfile(encryptLayer(file.subarray(0, 5), swapped), server)).message).toMatch(/not signed by this server/);
    // The same body re-sealed as format 1 fails too: each format signs under its own domain.
    expectInvalid(() => openKeyfile(encryptLayer(Uint8Array.of(0x56, 0x53, 0x4b, 0x46, 0x01), plaintext), server));
    // Untouched, the re-sealed file opens: the check above is the signature's, not the encryption's.
    expect(openKeyfile(encryptLayer(file.subarray(0, 5), plaintext), server).card?.serial).toBe('CARD-A');
  });

  it('are refused after any flipped bit, truncation or extension', () => {
    const file = issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'install-1', card: cardA });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: file.length * 8 - 1 }), (bit) => {
        const tampered = file.slice();
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expectInvalid(() => openKeyfile(tampered, server));
      }),
      { numRuns: 200 },
    );
    for (const length of [0, 5, 29, 100, file.length - 1]) expectInvalid(() => openKeyfile(file.subarray(0, length), server));
    expectInvalid(() => openKeyfile(concatBytes(file, Uint8Array.of(0)), server));
  });

  it('check their inputs', () => {
    expect(() => issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: '' })).toThrow(/non-empty install id/);
    expect(() => issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'x'.repeat(257) })).toThrow(/at most 256 bytes/);
    expect(() => issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'i', card: { serial: 'S', publicKey: new Uint8Array(31) } })).toThrow(/32-byte card public key/);
    expect(() => issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'i', card: { serial: 'no spaces', publicKey: cardA.publicKey } })).toThrow(/card serial/);
    expect(() => issueKeyfile({ signingSeed, keyfileSecret: new Uint8Array(16), masterKey, installId: 'i' })).toThrow(/32-byte keyfile secret/);
    expect(() => issueKeyfile({ signingSeed: new Uint8Array(8), keyfileSecret, masterKey, installId: 'i' })).toThrow(/Ed25519 seed/);
    const file = issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'i' });
    expect(() => openKeyfile(file, { masterKey, serverSigningPublicKey: new Uint8Array(31) })).toThrow(/server signing public key/);
  });
});

describe('the client\'s card check (checkKeyfileCard)', () => {
  const forA = (): KeyfileContents => openKeyfile(issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'laptop-1', card: cardA }), server);

  it('accepts the card the keyfile names', () => {
    expect(() => checkKeyfileCard(forA(), cardA)).not.toThrow();
  });

  it('refuses a keyfile for card A on card B (exit 4), naming both and what to do', () => {
    const error = refusal(() => checkKeyfileCard(forA(), cardB));
    expect(error.code).toBe('keyfile.wrong-card');
    expect(error.message).toMatch(/issued for card CARD-A, not CARD-B/);
    expect(error.message).toMatch(/vsc admin keyfile --serial CARD-B/);
  });

  it('refuses a keyfile whose serial matches but whose public key is another card\'s (a replaced or re-enrolled card)', () => {
    const error = refusal(() => checkKeyfileCard(forA(), { serial: 'CARD-A', publicKey: cardB.publicKey }));
    expect(error.code).toBe('keyfile.wrong-card');
    expect(error.message).toMatch(/another public key/);
  });

  it('refuses a keyfile for enrollment only', () => {
    const enrollment = openKeyfile(issueKeyfile({ signingSeed, keyfileSecret, masterKey, installId: 'laptop-1' }), server);
    const error = refusal(() => checkKeyfileCard(enrollment, cardA));
    expect(error.code).toBe('keyfile.no-card');
    expect(error.message).toMatch(/only to enroll/);
  });

  it('checks its card argument', () => {
    expect(() => checkKeyfileCard(forA(), { serial: 'CARD-A', publicKey: new Uint8Array(31) })).toThrow(/32-byte card public key/);
  });
});

describe('format 1 keyfiles (before keyfiles named their card)', () => {
  it('still open, and their proof still counts at the server', () => {
    const bare = openKeyfile(V1_BARE, server);
    expect(bare).toEqual({ format: 1, installId: 'laptop-1', as1: keyfileSecretFor(keyfileSecret, 'laptop-1') });
    const keyed = openKeyfile(V1_KEYED, server);
    expect(keyed.format).toBe(1);
    expect(keyed.card?.serial).toBeUndefined();
    expect(toHex(keyed.card!.publicKey)).toBe(toHex(cardA.publicKey));
  });

  it('are refused by the card check with a clear word: they name no serial', () => {
    for (const file of [V1_BARE, V1_KEYED]) {
      const error = refusal(() => checkKeyfileCard(openKeyfile(file, server), cardA));
      expect(error.code).toBe('keyfile.no-card');
      expect(error.message).toMatch(/predates keyfiles that name their card.*vsc admin keyfile --serial CARD-A/);
    }
  });

  it('are refused after a flipped bit like format 2', () => {
    const tampered = V1_KEYED.slice();
    tampered[60]! ^= 0x01;
    expectInvalid(() => openKeyfile(tampered, server));
  });
});
