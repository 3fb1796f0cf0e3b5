// Lock and unlock sequences for tests (Wibu 000 §2.10): the central authority's fixed key, another authority's, and
// sequences signed as the hub signs them.
import { fromHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../../src/crypto/index.js';
import { encodeLockSequence, signLockSequence, type LockBody, type SignedLockSequence } from '../../../src/license/index.js';
import { CARD_SERIAL, T0 } from '../../support/index.js';

/** RFC 8032 section 7.1 TEST SHA(abc) secret key: the central authority's seed (TEST 1 is the card's). */
export const AUTHORITY = ed25519KeyFromSeed(fromHex('833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42'));
export const OTHER_AUTHORITY = ed25519KeyFromSeed(new Uint8Array(32).fill(0xab));

export interface LockInit extends Partial<Omit<LockBody, 'authorityKey'>> {
  readonly authority?: typeof AUTHORITY;
}

/** A sequence signed by `init.authority` (AUTHORITY): a lock of CARD_SERIAL at T0 + 1000 unless told otherwise. */
export function lockSequence(init: LockInit = {}): SignedLockSequence {
  const authority = init.authority ?? AUTHORITY;
  return signLockSequence({
    kind: init.kind ?? 'lock', serial: init.serial ?? CARD_SERIAL, authorityKey: authority.publicKey, time: init.time ?? T0 + 1000,
    reason: init.reason ?? 'reported lost', nonce: init.nonce ?? new Uint8Array(16).fill(init.kind === 'unlock' ? 2 : 1),
  }, authority);
}

export const lockFile = (init: LockInit = {}): string => encodeLockSequence(lockSequence(init));
