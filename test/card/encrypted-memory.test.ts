// Secrets held encrypted under a per-instance key while a card is in use (patent [0027]-[0030], [0100]).
import { describe, expect, it } from 'vitest';
import { EncryptedMemory } from '../../src/card/encrypted-memory.js';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { VscError } from '../../src/errors/index.js';

const secret = (): Uint8Array => utf8('card private key d = 0x1d2c3b4a5968778695a4b3c2d1e0f; PIN 123456');

function containsWindow(haystack: Uint8Array, needle: Uint8Array, window: number): boolean {
  const hay = toHex(haystack);
  for (let i = 0; i + window <= needle.length; i++) {
    const piece = toHex(needle.subarray(i, i + window));
    for (let at = hay.indexOf(piece); at !== -1; at = hay.indexOf(piece, at + 1)) if (at % 2 === 0) return true;
  }
  return false;
}

describe('EncryptedMemory', () => {
  it('wipes the input, hands out the plaintext and zeroes it after use', () => {
    const input = secret();
    const memory = EncryptedMemory.seal(input);
    expect(input.every((byte) => byte === 0)).toBe(true);
    let seen: Uint8Array | undefined;
    const length = memory.use((plaintext) => {
      seen = plaintext;
      expect(toHex(plaintext)).toBe(toHex(secret()));
      return plaintext.length;
    });
    expect(length).toBe(secret().length);
    expect(seen!.every((byte) => byte === 0)).toBe(true);
    // Each use gets a fresh copy.
    expect(memory.use((plaintext) => toHex(plaintext))).toBe(toHex(secret()));
  });

  it('zeroes the plaintext when fn throws, and passes the error on', () => {
    const memory = EncryptedMemory.seal(secret());
    let seen: Uint8Array | undefined;
    expect(() =>
      memory.use((plaintext) => {
        seen = plaintext;
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(seen!.every((byte) => byte === 0)).toBe(true);
    expect(memory.use((plaintext) => toHex(plaintext))).toBe(toHex(secret()));
  });

  it('refuses an async function, whose plaintext would be wiped after its first await', () => {
    const memory = EncryptedMemory.seal(secret());
    expect(() => memory.use(async () => 1)).toThrow(/synchronous/);
    expect(() => memory.update((() => Promise.resolve(undefined)) as unknown as () => undefined)).toThrow(/synchronous/);
  });

  it('does not keep the plaintext in its ciphertext', () => {
    const memory = EncryptedMemory.seal(secret());
    const ciphertext = memory.ciphertextForTesting();
    expect(ciphertext).toHaveLength(secret().length);
    expect(containsWindow(ciphertext, secret(), 6)).toBe(false);
    // Another instance uses another key: the same plaintext encrypts differently.
    expect(toHex(EncryptedMemory.seal(secret()).ciphertextForTesting())).not.toBe(toHex(ciphertext));
  });

  it('replaces the content when update returns bytes and wipes both plaintexts', () => {
    const memory = EncryptedMemory.seal(secret());
    const before = memory.ciphertextForTesting();
    let old: Uint8Array | undefined;
    const replacement = utf8('new secret state');
    memory.update((plaintext) => {
      old = plaintext;
      return replacement;
    });
    expect(old!.every((byte) => byte === 0)).toBe(true);
    expect(replacement.every((byte) => byte === 0)).toBe(true);
    expect(memory.use((plaintext) => new TextDecoder().decode(plaintext))).toBe('new secret state');
    expect(toHex(memory.ciphertextForTesting())).not.toBe(toHex(before));
  });

  it('keeps the content when update returns undefined, and never reuses a nonce for changed content', () => {
    const memory = EncryptedMemory.seal(Uint8Array.of(1, 2, 3));
    memory.update(() => undefined);
    expect(memory.use((plaintext) => Array.from(plaintext))).toEqual([1, 2, 3]);
    // The same content stored twice gives two different ciphertexts: the counter nonce moved on.
    memory.update(() => Uint8Array.of(9, 9, 9));
    const first = toHex(memory.ciphertextForTesting());
    memory.update(() => Uint8Array.of(9, 9, 9));
    expect(toHex(memory.ciphertextForTesting())).not.toBe(first);
    for (let i = 0; i < 100; i++) memory.update((plaintext) => Uint8Array.of(plaintext[0]! + 1));
    expect(memory.use((plaintext) => plaintext[0])).toBe(109);
  });

  it('refuses an update that returns something other than bytes', () => {
    const memory = EncryptedMemory.seal(Uint8Array.of(1));
    expect(() => memory.update(() => 'x' as unknown as Uint8Array)).toThrow(/bytes or undefined, got string/);
    expect(memory.use((plaintext) => Array.from(plaintext))).toEqual([1]);
  });

  it('refuses every call once destroyed', () => {
    const memory = EncryptedMemory.seal(secret());
    memory.destroy();
    expect(memory.destroyed).toBe(true);
    expect(memory.ciphertextForTesting()).toHaveLength(0);
    for (const call of [() => memory.use(() => 0), () => memory.update(() => undefined)]) {
      expect(call).toThrow(VscError);
      expect(call).toThrow(/destroyed/);
    }
    expect(() => memory.destroy()).not.toThrow();
  });

  it('accepts empty content and refuses non-bytes', () => {
    expect(EncryptedMemory.seal(new Uint8Array(0)).use((plaintext) => plaintext.length)).toBe(0);
    expect(() => EncryptedMemory.seal('x' as unknown as Uint8Array)).toThrow(/plaintext as bytes, got string/);
  });
});
