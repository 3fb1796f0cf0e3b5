// Seals the card's protected information under the owner's protection key (DESIGN "Keys and
// secrets"): XChaCha20-Poly1305 with the card id and version as associated data, in the sealed form
// of src/vsc-protocol/sealed-format.ts.
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concatBytes, uintToBytes, utf8 } from '../bytes/index.js';
import { ExitCode, VscError, assertBytes } from '../errors/index.js';
import { SEAL_NONCE_LENGTH, SEAL_TAG_LENGTH } from '../vsc-protocol/index.js';

export const PROTECTION_KEY_LENGTH = 32;
export const CARD_ID_LENGTH = 16;
const DOMAIN = utf8('vsc-sealed/1');

/** The sealed information does not open: wrong password, wrong card, wrong version or tampering. */
export class SealError extends VscError {
  override readonly name = 'SealError';
  constructor(message = 'the protected information does not open with this password for this card and version') {
    super('seal.open', message, { exitCode: ExitCode.authenticationFailed });
  }
}

function associatedData(cardId: Uint8Array, version: bigint): Uint8Array {
  assertBytes('card id', cardId, CARD_ID_LENGTH);
  if (typeof version !== 'bigint') throw new TypeError(`expected the version as a bigint, got ${typeof version}`);
  return concatBytes(DOMAIN, cardId, uintToBytes(version, 8));
}

/** nonce (24 random bytes) ‖ XChaCha20-Poly1305 ciphertext and tag. */
export function sealProtectedInformation(
  protectionKey: Uint8Array,
  cardId: Uint8Array,
  version: bigint,
  plaintext: Uint8Array,
): Uint8Array {
  assertBytes('protection key', protectionKey, PROTECTION_KEY_LENGTH);
  // A key of zeros is a key already wiped: sealing under it would upload information nobody can open.
  if (protectionKey.every((byte) => byte === 0)) throw new VscError('seal.wiped-key', 'refusing to seal under a protection key of zeros (a key already wiped)');
  if (!(plaintext instanceof Uint8Array)) throw new TypeError(`expected the plaintext as bytes, got ${typeof plaintext}`);
  const ad = associatedData(cardId, version);
  const nonce = Uint8Array.from(randomBytes(SEAL_NONCE_LENGTH));
  const ciphertext = xchacha20poly1305(protectionKey, nonce, ad).encrypt(plaintext);
  return concatBytes(nonce, ciphertext);
}

/** Opens what sealProtectedInformation made; throws SealError on any mismatch. */
export function openProtectedInformation(
  protectionKey: Uint8Array,
  cardId: Uint8Array,
  version: bigint,
  sealed: Uint8Array,
): Uint8Array {
  assertBytes('protection key', protectionKey, PROTECTION_KEY_LENGTH);
  const ad = associatedData(cardId, version);
  if (!(sealed instanceof Uint8Array)) throw new TypeError(`expected the sealed information as bytes, got ${typeof sealed}`);
  if (sealed.length < SEAL_NONCE_LENGTH + SEAL_TAG_LENGTH) {
    throw new SealError(
      `expected sealed information of at least ${SEAL_NONCE_LENGTH + SEAL_TAG_LENGTH} bytes, got ${sealed.length}`,
    );
  }
  const nonce = sealed.subarray(0, SEAL_NONCE_LENGTH);
  try {
    return xchacha20poly1305(protectionKey, nonce, ad).decrypt(sealed.subarray(SEAL_NONCE_LENGTH));
  } catch {
    // The cause is not kept: noble's message says nothing useful and the reason must stay generic.
    throw new SealError();
  }
}
