// The card id in an enroll challenge, wrapped under the one-time enrollment token (issue: nothing is
// learned before the owner is proven). The server fixed the card id when the card was created and
// stores only SHA-256 of the token; it wraps the card id under a key derived from that hash, bound to
// the serial and to this challenge's nonce ri1. Only a client that holds the token can unwrap it; for
// a serial that awaits no enrollment (unknown, or already enrolled) the server sends random bytes of
// the same length, which no token opens. A peer without the token learns nothing from the challenge.
// The card's key kind (a server-held card's public key, patent 003 [0096]) is wrapped the same way under
// a key of its own, so that the client seals no signing seed for a card whose key stays on its server.
import { randomBytes } from 'node:crypto';
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { AeadAuthenticationError, CHACHA20_POLY1305_NONCE_LENGTH, CHACHA20_POLY1305_TAG_LENGTH, chacha20Poly1305Decrypt, chacha20Poly1305Encrypt, sha256 } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { ProtocolError } from './protocol-error.js';

const CARD_ID_LENGTH = 16;
export const WRAPPED_CARD_ID_LENGTH = CARD_ID_LENGTH + CHACHA20_POLY1305_TAG_LENGTH;
const DOMAIN = utf8('vsc-enroll-card-id/1\0');
const PUBLIC_KEY_LENGTH = 32;
/** Kind byte (00 the client generates the key, 01 server-held) ‖ public key (zeros for 00). */
const CARD_KEY_LENGTH = 1 + PUBLIC_KEY_LENGTH;
export const WRAPPED_CARD_KEY_LENGTH = CARD_KEY_LENGTH + CHACHA20_POLY1305_TAG_LENGTH;
const CARD_KEY_DOMAIN = utf8('vsc-enroll-card-key/1\0');

/** Whose key signs SIGN AND INCREMENT: one the client generates at enrollment, or one sealed to the server. */
export type EnrolledCardKey = { readonly kind: 'software' } | { readonly kind: 'server-held'; readonly publicKey: Uint8Array };

/** SHA-256 of the token, as the server stores it. */
export const enrollmentTokenHash = (token: string): Uint8Array => sha256(utf8(token));

function wrapKey(tokenHash: Uint8Array, domain: Uint8Array = DOMAIN): Uint8Array {
  const input = concatBytes(domain, tokenHash);
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

/**
 * Server side: the card's key kind for whoever holds the token. Its own key (domain-separated from the card
 * id's), so that the one nonce ri1 never serves one key twice.
 */
export function wrapCardKey(tokenHash: Uint8Array, serial: string, ri1: Uint8Array, cardKey: EnrolledCardKey): Uint8Array {
  const plain = new Uint8Array(CARD_KEY_LENGTH);
  if (cardKey.kind === 'server-held') {
    if (!(cardKey.publicKey instanceof Uint8Array) || cardKey.publicKey.length !== PUBLIC_KEY_LENGTH) throw new TypeError(`expected a ${PUBLIC_KEY_LENGTH}-byte public key of the server-held card`);
    plain[0] = 1;
    plain.set(cardKey.publicKey, 1);
  }
  const key = wrapKey(tokenHash, CARD_KEY_DOMAIN);
  try {
    return chacha20Poly1305Encrypt(key, nonceOf(ri1), utf8(serial), plain);
  } finally {
    wipe(key);
  }
}

/** Server side: random bytes of the same length, for a serial that awaits no enrollment. */
export const noCardKeyToWrap = (): Uint8Array => new Uint8Array(randomBytes(WRAPPED_CARD_KEY_LENGTH));

/** Client side: the card's key kind; a wrong token is refused as for the card id. */
export function unwrapCardKey(token: string, serial: string, ri1: Uint8Array, wrapped: Uint8Array): EnrolledCardKey {
  const key = wrapKey(enrollmentTokenHash(token), CARD_KEY_DOMAIN);
  let plain: Uint8Array;
  try {
    plain = chacha20Poly1305Decrypt(key, nonceOf(ri1), utf8(serial), wrapped);
  } catch (error) {
    if (!(error instanceof AeadAuthenticationError)) throw error;
    throw new VscError('enroll.token', `wrong enrollment token, or card ${serial} awaits no enrollment`, { exitCode: ExitCode.authenticationFailed });
  } finally {
    wipe(key);
  }
  const publicKey = plain.slice(1);
  if (plain.length === CARD_KEY_LENGTH && plain[0] === 0 && publicKey.every((byte) => byte === 0)) return { kind: 'software' };
  if (plain.length === CARD_KEY_LENGTH && plain[0] === 1) return { kind: 'server-held', publicKey };
  throw new ProtocolError(`expected the card's key kind as 00 (client-generated) or 01 (server-held) with a ${PUBLIC_KEY_LENGTH}-byte public key, got ${plain.length} bytes starting ${plain[0] ?? 'nothing'}`);
}
