// One-block 3DES and AES-128 for the PIV management key, against published vectors.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { blockCipherBlockLength, blockCipherKeyLength, decryptBlock, encryptBlock, isBlockCipherAlgorithm } from '../../src/crypto/block-cipher.js';
import { fromHex, toHex } from '../../src/bytes/index.js';

describe('block cipher', () => {
  it('AES-128 matches FIPS 197 appendix C.1', () => {
    const key = fromHex('000102030405060708090a0b0c0d0e0f');
    const plain = fromHex('00112233445566778899aabbccddeeff');
    const cipher = encryptBlock('aes128', key, plain);
    expect(toHex(cipher)).toBe('69c4e0d86a7b0430d8cdb78070b4c55a');
    expect(toHex(decryptBlock('aes128', key, cipher))).toBe(toHex(plain));
  });

  it('3DES (three keys) matches the SP 800-67 Rev. 1 example, first block "The qufc"', () => {
    const key = fromHex('0123456789abcdef23456789abcdef01456789abcdef0123');
    const plain = fromHex('5468652071756663');
    const cipher = encryptBlock('3des', key, plain);
    expect(toHex(cipher)).toBe('a826fd8ce53b855f');
    expect(toHex(decryptBlock('3des', key, cipher))).toBe(toHex(plain));
  });

  it('decrypt inverts encrypt for random keys and blocks', () => {
    for (const algorithm of ['3des', 'aes128'] as const) {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: blockCipherKeyLength(algorithm), maxLength: blockCipherKeyLength(algorithm) }),
          fc.uint8Array({ minLength: blockCipherBlockLength(algorithm), maxLength: blockCipherBlockLength(algorithm) }),
          (key, block) => {
            const cipher = encryptBlock(algorithm, key, block);
            expect(cipher).toHaveLength(block.length);
            expect(toHex(decryptBlock(algorithm, key, cipher))).toBe(toHex(block));
          },
        ),
        { numRuns: 50 },
      );
    }
  });

  it('refuses wrong key and block lengths without echoing the key', () => {
    const key = fromHex('0102030405060708010203040506070801020304050607ff');
    expect(() => encryptBlock('3des', key.subarray(0, 16), new Uint8Array(8))).toThrow(/expected a 24-byte 3des key, got 16 bytes/);
    expect(() => encryptBlock('3des', key, new Uint8Array(16))).toThrow(/expected an 8-byte 3des block, got 16 bytes/);
    expect(() => decryptBlock('aes128', new Uint8Array(24), new Uint8Array(16))).toThrow(/expected a 16-byte aes128 key, got 24 bytes/);
    expect(() => decryptBlock('aes128', new Uint8Array(16), new Uint8Array(0))).toThrow(/expected a 16-byte aes128 block, got 0 bytes/);
    expect(() => encryptBlock('des' as never, key, new Uint8Array(8))).toThrow(/expected a block cipher/);
    try {
      encryptBlock('3des', key, new Uint8Array(7));
    } catch (error) {
      expect((error as Error).message).not.toContain('0102');
    }
    expect(isBlockCipherAlgorithm('aes128')).toBe(true);
    expect(isBlockCipherAlgorithm('aes256')).toBe(false);
  });
});
