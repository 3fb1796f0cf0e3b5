// The dongle of patent 004 claim 10 and Fig. 14/15 ([0003]-[0004], [0104]-[0110]; DESIGN.md "Dongle-backed
// card"): duplication-protected hardware that authorises a virtual card instead of the VSC server. One
// interface for every kind (a PKCS#11 token, the machine's TPM through tpm2-pkcs11, an emulated directory):
//   - presence and challenge-response: `sign` with the dongle key, which never leaves the dongle (Fig. 14);
//   - the two storage locations of [0108]: the dongle key, and named slots holding the card's sealed
//     protected information and its SIGN AND INCREMENT counter, each written so that a reader sees the old
//     or the new bytes, never a torn mix (two-slot-store.ts);
//   - optionally, card keys generated on the dongle and never leaving it (`--keys-on-token`).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ExitCode, VscError } from '../errors/index.js';
import { sha256 } from '../crypto/index.js';
import { toHex } from '../bytes/index.js';

/** What a slot holds. `card`: the sealed card record; `counter`: the sealed counter; `revocations`: the authority's newest signed list. */
export type DongleSlot = 'card' | 'counter' | 'revocations';
export const DONGLE_SLOTS: readonly DongleSlot[] = ['card', 'counter', 'revocations'];

export type DongleKind = 'emulated' | 'pkcs11';

export interface DongleIdentity {
  readonly kind: DongleKind;
  /** The dongle key's public key as SubjectPublicKeyInfo DER: what verifies `sign`. */
  readonly publicKey: Uint8Array;
  /** SHA-256 of `publicKey`: the name a card record and a revocation list give this dongle. */
  readonly fingerprint: Uint8Array;
  /** For people: "SoftHSM2 token vsc-a (serial 1a2b…)", "emulated dongle /media/stick". */
  readonly description: string;
}

/**
 * What a token says about the private key object of a card (PKCS#11 v2.40 §4.9, common private key attributes): what
 * the issuing authority checks before it attests that the key is out of the card owner's reach (token-key-check.ts).
 */
export interface CardKeyFacts {
  /** CKA_SENSITIVE: the token never reveals the key's value in plaintext. */
  readonly sensitive: boolean;
  /** CKA_EXTRACTABLE: the key may leave the token wrapped under another key. */
  readonly extractable: boolean;
  /** CKA_NEVER_EXTRACTABLE: the key has never been extractable. */
  readonly neverExtractable: boolean;
  /** CKA_LOCAL: the key was generated on the token (not imported). */
  readonly local: boolean;
  /** CKA_EC_PARAMS names Ed25519 (not another Edwards curve). */
  readonly ed25519: boolean;
  /** The 32-byte point of the card's public key object. */
  readonly publicKey: Uint8Array;
}

/** A card signing key generated on the dongle (`--keys-on-token`): only its public half ever leaves. */
export interface DongleCardKeys {
  /** The mechanism the token lacks, or undefined when it can hold the card's Ed25519 signing key. */
  unsupported(): Promise<string | undefined>;
  /** Generates the Ed25519 signing key of card `serial` on the dongle, non-extractable; returns its 32-byte public key. */
  generate(serial: string): Promise<Uint8Array>;
  /**
   * Imports the Ed25519 private key `seed` (32 bytes; the caller wipes it) as card `serial`'s signing key, sensitive
   * and not extractable, and checks that the token signs with it; returns its 32-byte public key. For the universal
   * key of patent 003 [0098]-[0102], which the vendor shares among all cards and so cannot be generated on one.
   */
  importKey(serial: string, seed: Uint8Array): Promise<Uint8Array>;
  /** The attributes of card `serial`'s private key object and its public key (exactly one of each, or it throws). */
  inspect(serial: string): Promise<CardKeyFacts>;
  /** The 32-byte public key of card `serial`'s signing key on the dongle. */
  publicKey(serial: string): Promise<Uint8Array>;
  /** Ed25519 signature (64 bytes) of `message` by card `serial`'s key on the dongle. */
  sign(serial: string, message: Uint8Array): Promise<Uint8Array>;
}

export interface Dongle {
  /** The URI the dongle was opened from, without secrets (for messages). */
  readonly uri: string;
  /** Who the dongle is; throws DongleAbsentError when it is not attached or does not answer. */
  identify(): Promise<DongleIdentity>;
  /** Creates the dongle key when the dongle has none yet (`vsc dongle init`), then identifies the dongle. */
  ensureKey(): Promise<DongleIdentity>;
  /**
   * Signs `message` with the dongle key. Deterministic: the same message always gets the same signature
   * (RSASSA-PKCS1-v1_5 on a token, Ed25519 on the emulated dongle), because the card's sealing key is
   * derived from one (dongle-card-record.ts). Throws DongleAbsentError when the dongle is gone.
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** The newest complete contents of `slot`, or undefined when it was never written. */
  read(slot: DongleSlot): Promise<Uint8Array | undefined>;
  /** Replaces the contents of `slot` durably: a crash leaves the old or the new bytes, never a mix. */
  write(slot: DongleSlot, bytes: Uint8Array): Promise<void>;
  /** Card keys on the dongle, where the kind of dongle can hold them at all. */
  readonly cardKeys?: DongleCardKeys;
  /** Releases the dongle (PKCS#11 session, lock); forgets its PIN. */
  close(): Promise<void>;
}

/** Where a dongle's PIN or passphrase comes from: `pin-source` of its URI (RFC 7512 "file:/path"), else the caller's. */
export interface DongleSecrets {
  /** The PIN (caller of the dongle wipes it after login); `what` names it in a prompt or an error. */
  pin(source: string | undefined, what: string): Promise<Uint8Array>;
}

/** The dongle is not attached or does not answer ([0106] idle, [0107] remove). */
export class DongleAbsentError extends VscError {
  override readonly name = 'DongleAbsentError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('dongle.absent', message, { ...options, exitCode: ExitCode.refusedByState });
  }
}

/** The dongle answered but is not the one expected, or refused its PIN or passphrase. */
export class DongleAuthenticationError extends VscError {
  override readonly name = 'DongleAuthenticationError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('dongle.authentication', message, { ...options, exitCode: ExitCode.authenticationFailed });
  }
}

/** The dongle's name or contents are malformed: a bad URI, a damaged slot, an unsupported mechanism. */
export class DongleError extends VscError {
  override readonly name = 'DongleError';
  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: ExitCode } = {}) {
    super(`dongle.${code}`, message, options);
  }
}

export function dongleFingerprint(publicKeyDer: Uint8Array): Uint8Array {
  return sha256(publicKeyDer);
}

/** The short form of a fingerprint people compare: its first 8 bytes in hex. */
export function shortFingerprint(fingerprint: Uint8Array): string {
  return toHex(fingerprint.subarray(0, 8));
}

/** The public key of a dongle identity as a node:crypto key (RSA or Ed25519). */
export function donglePublicKeyObject(publicKeyDer: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
}

/** Checks a dongle signature with its public key: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519. */
export function verifyDongleSignature(publicKeyDer: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  let key: KeyObject;
  try {
    key = donglePublicKeyObject(publicKeyDer);
  } catch {
    return false;
  }
  const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  if (key.asymmetricKeyType !== 'ed25519' && key.asymmetricKeyType !== 'rsa') return false;
  try {
    return verify(algorithm, message, key, signature);
  } catch {
    return false;
  }
}
