// The card id in an enroll challenge, wrapped under the one-time enrollment token (issue: nothing is
// learned before the owner is proven). The server fixed the card id when the card was created and
// stores only SHA-256 of the token; it wraps the card id under a key derived from that hash, bound to
// the serial and to this challenge's nonce ri1. Only a client that holds the token can unwrap it; for
// a serial that awaits no enrollment (unknown, or already enrolled) the server sends random bytes of
// the same length, which no token opens. A peer without the token learns nothing from the challenge.
import { randomBytes } from 'node:crypto';
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { AeadAuthenticationError, CHACHA20_POLY1305_NONCE_LENGTH, CHACHA20_POLY1305_TAG_LENGTH, chacha20Poly1305Decrypt, chacha20Poly1305Encrypt, sha256 } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';

const CARD_ID_LENGTH = 16;
export const WRAPPED_CARD_ID_LENGTH = CARD_ID_LENGTH + CHACHA20_POLY1305_TAG_LENGTH;
const DOMAIN = utf8('vsc-enroll-card-id/1\0');

/** SHA-256 of the token, as the server stores it. */
export const enrollmentTokenHash = (token: string): Uint8Array => sha256(utf8(token));

function wrapKey(tokenHash: Uint8Array): Uint8Array {
  const input = concatBytes(DOMAIN, tokenHash);
  try {
    return sha256(input);
  } finally {
    wipe(input);
  }
}

const nonceOf = (ri1: Uint8Array): Uint8Array => ri1.subarray(0, CHACHA20_POLY1305_NONCE_LENGTH);

/** Server side: the card id wrapped for whoever holds the token whose hash is `tokenHash`. */
export function wrapCardId(tokenHash: Uint8Array, serial: string, ri1: Uint8Array, cardId: Uint8Array): Uint8Array {
  const key = wrapKey(tokenHash);
  try {
    return chacha20Poly1305Encrypt(key, nonceOf(ri1), utf8(serial), cardId);
  } finally {
    wipe(key);
  }
}

/** Server side: what a serial awaiting no enrollment gets instead, indistinguishable without a token. */
export const noCardIdToWrap = (): Uint8Array => new Uint8Array(randomBytes(WRAPPED_CARD_ID_LENGTH));

/** Client side: the card id, or a refusal when the token is wrong or the serial awaits no enrollment. */
export function unwrapCardId(token: string, serial: string, ri1: Uint8Array, wrapped: Uint8Array): Uint8Array {
  const key = wrapKey(enrollmentTokenHash(token));
  try {
    return chacha20Poly1305Decrypt(key, nonceOf(ri1), utf8(serial), wrapped);
  } catch (error) {
    if (!(error instanceof AeadAuthenticationError)) throw error;
    throw new VscError('enroll.token', `wrong enrollment token, or card ${serial} awaits no enrollment`, { exitCode: ExitCode.authenticationFailed });
  } finally {
    wipe(key);
  }
}
