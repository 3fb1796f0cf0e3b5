// The owner's recovery code (DESIGN.md "Keys and secrets": the PUK of a virtual card): 160 random
// bits in RFC 4648 base32, chosen by the server at enrollment and shown to the owner once. It lifts
// the card's password back-off and block; the server keeps only its hash.
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors/index.js';
import { RECOVERY_CODE_PATTERN } from './operation-messages.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 20 random bytes as 32 base32 characters. */
export function newRecoveryCode(): string {
  const bytes = randomBytes(20);
  let bits = 0;
  let value = 0;
  let code = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      code += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  bytes.fill(0);
  return code;
}

/** How the code is shown: groups of four, easier to copy by hand. */
export const formatRecoveryCode = (code: string): string => code.replace(/(.{4})(?=.)/g, '$1-');

/** What the owner typed (any case, with or without dashes and spaces) as the code the protocol carries. */
export function parseRecoveryCode(text: string): string {
  const code = text.replace(/[\s-]/g, '').toUpperCase();
  if (!RECOVERY_CODE_PATTERN.test(code)) throw new UsageError('expected the recovery code shown at enrollment: 32 letters and digits 2-7, in groups of four');
  return code;
}
