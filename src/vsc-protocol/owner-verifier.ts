// The server-side verifier of an owner's auth key (DESIGN "Keys and secrets"): a hash, compared in
// constant time, so a database leak does not hand out the auth key itself.
import { concatBytes, constantTimeEqual, utf8, wipe } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { assertBytes } from '../errors/index.js';

const DOMAIN = utf8('vsc-auth-verifier/1');
export const AUTH_KEY_LENGTH = 32;
export const VERIFIER_LENGTH = 32;

/** SHA-256(utf8('vsc-auth-verifier/1') ‖ authKey). */
export function authVerifier(authKey: Uint8Array): Uint8Array {
  assertBytes('auth key', authKey, AUTH_KEY_LENGTH);
  const input = concatBytes(DOMAIN, authKey);
  try {
    return sha256(input);
  } finally {
    wipe(input);
  }
}

/** Whether `authKey` matches a stored verifier; the comparison does not leak where they differ. */
export function verifierMatches(authKey: Uint8Array, stored: Uint8Array): boolean {
  const candidate = authVerifier(authKey);
  if (!(stored instanceof Uint8Array) || stored.length !== VERIFIER_LENGTH) return false;
  return constantTimeEqual(candidate, stored);
}
