// How a dongle-backed card's information is sealed (DESIGN.md "Dongle-backed card"; patent 004 [0108]-[0110],
// claim 10): opening it needs the dongle's key AND the owner's password.
//   - inner layer: XChaCha20-Poly1305 under a key from the owner's protection key (Argon2id of the password);
//   - outer layer: under a key from the dongle's sealing secret, SHA-256 of the dongle key's deterministic
//     signature over the card's seal salt. Only the dongle can make that signature.
// Two layers rather than one mixed key because of [0107] recover: the escrow holds the inner layer sealed
// to the issuing authority (escrow.ts), and the authority re-wraps it for a new dongle without ever
// learning the password. The patent's master key hard-coded in the executable ([0110]) is public in an
// open-source program and adds nothing; it is not used.
// The counter ([0108], DESIGN.md "Counters that never roll back") is sealed under both secrets together.
import { hkdfSync, randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { bytesToUint, concatBytes, constantTimeEqual, uintToBytes, utf8, wipe } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { ExitCode } from '../errors/index.js';
import type { CardRecordHeader } from './card-record.js';
import { DongleAuthenticationError, DongleError, type Dongle } from './dongle.js';

const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
const KEY_LENGTH = 32;
const COUNTER_LENGTH = 16;
const COUNTER_MAGIC = utf8('VDCC');

function hkdf(ikm: Uint8Array, info: string, context: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), concatBytes(utf8(info), context), KEY_LENGTH));
}

/** nonce (24 random bytes) ‖ XChaCha20-Poly1305 ciphertext and tag. */
export function seal(key: Uint8Array, associatedData: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = Uint8Array.from(randomBytes(NONCE_LENGTH));
  return concatBytes(nonce, xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext));
}

/** Opens what `seal` made, or undefined when it does not open (wrong key, other data, tampering). */
export function tryOpen(key: Uint8Array, associatedData: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) return undefined;
  try {
    return xchacha20poly1305(key, sealed.subarray(0, NONCE_LENGTH), associatedData).decrypt(sealed.subarray(NONCE_LENGTH));
  } catch {
    return undefined;
  }
}

/** [0003]: a secret only the dongle can make, bound to the card and the dongle (fingerprint in the signed message). */
export async function dongleSealingSecret(dongle: Dongle, header: CardRecordHeader): Promise<Uint8Array> {
  const signature = await dongle.sign(concatBytes(utf8('vsc-dongle-seal/1'), header.dongleFingerprint, utf8(header.serial), header.sealSalt));
  try {
    return sha256(utf8('vsc-dongle-secret/1'), signature);
  } finally {
    wipe(signature);
  }
}

function innerAssociatedData(serial: string): Uint8Array {
  return concatBytes(utf8('vsc-dongle-inner/1'), utf8(serial));
}

/** The password layer alone: what the escrow keeps and the authority re-wraps. */
export function sealInner(protectionKey: Uint8Array, serial: string, plaintext: Uint8Array): Uint8Array {
  const key = hkdf(protectionKey, 'vsc-dongle-inner/1', utf8(serial));
  try {
    return seal(key, innerAssociatedData(serial), plaintext);
  } finally {
    wipe(key);
  }
}

export function openInner(protectionKey: Uint8Array, serial: string, inner: Uint8Array): Uint8Array | undefined {
  const key = hkdf(protectionKey, 'vsc-dongle-inner/1', utf8(serial));
  try {
    return tryOpen(key, innerAssociatedData(serial), inner);
  } finally {
    wipe(key);
  }
}

/** The dongle layer over an inner layer, with the record header as associated data. */
export function sealOuter(dongleSecret: Uint8Array, headerBytes: Uint8Array, inner: Uint8Array): Uint8Array {
  const key = hkdf(dongleSecret, 'vsc-dongle-outer/1', new Uint8Array(0));
  try {
    return seal(key, headerBytes, inner);
  } finally {
    wipe(key);
  }
}

export function openOuter(dongleSecret: Uint8Array, headerBytes: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const key = hkdf(dongleSecret, 'vsc-dongle-outer/1', new Uint8Array(0));
  try {
    return tryOpen(key, headerBytes, sealed);
  } finally {
    wipe(key);
  }
}

/** The counter key of one card on one dongle: needs the password's protection key and the dongle's secret. */
export function counterKey(protectionKey: Uint8Array, dongleSecret: Uint8Array, serial: string): Uint8Array {
  const ikm = concatBytes(protectionKey, dongleSecret);
  try {
    return hkdf(ikm, 'vsc-dongle-counter/1', utf8(serial));
  } finally {
    wipe(ikm);
  }
}

function counterAssociatedData(serial: string, epoch: number): Uint8Array {
  return concatBytes(COUNTER_MAGIC, utf8(serial), uintToBytes(BigInt(epoch), 4));
}

/** The counter slot: "VDCC" ‖ epoch (4) ‖ sealed next unused counter value (16). */
export function sealCounter(key: Uint8Array, serial: string, epoch: number, next: bigint): Uint8Array {
  return concatBytes(COUNTER_MAGIC, uintToBytes(BigInt(epoch), 4), seal(key, counterAssociatedData(serial, epoch), uintToBytes(next, COUNTER_LENGTH)));
}

export interface OpenedCounter {
  readonly epoch: number;
  readonly next: bigint;
}

/** Opens the counter slot; a slot that does not open is refused (never silently replaced by a lower value). */
export function openCounter(key: Uint8Array, serial: string, bytes: Uint8Array): OpenedCounter {
  if (bytes.length !== COUNTER_MAGIC.length + 4 + NONCE_LENGTH + COUNTER_LENGTH + TAG_LENGTH || !constantTimeEqual(bytes.subarray(0, 4), COUNTER_MAGIC)) {
    throw new DongleError('counter', 'the counter on the dongle is damaged; the card refuses to run rather than risk signing a counter value twice', { exitCode: ExitCode.refusedByState });
  }
  const epoch = Number(bytesToUint(bytes.subarray(4, 8)));
  const plaintext = tryOpen(key, counterAssociatedData(serial, epoch), bytes.subarray(8));
  if (plaintext === undefined) {
    throw new DongleAuthenticationError('the counter on the dongle does not open with this dongle and password; it was not written for this card');
  }
  return { epoch, next: bytesToUint(plaintext) };
}
