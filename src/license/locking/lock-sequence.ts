// Lock and unlock sequences of the central locking authority (Wibu 000 §2.10 "Broken or Lost CM-Boxes can be Locked":
// the Locking Sequence sent to a box declared lost, broken or stolen; unlocking "handled exclusively" by the central
// service). File and wire form, UTF-8 JSON:  {"format": "vsc-license-lock/1", "body": BODY-TEXT, "signature": 128 hex}
// BODY-TEXT  {"kind": "lock" | "unlock", "serial", "authorityKey": 64 hex, "time", "reason": ≤128 bytes, "nonce": 32 hex}
// kept as the exact string the authority signed: Ed25519 over  "vsc-license-lock/1\n" ‖ UTF-8(BODY-TEXT).
import { bytesEqual, concatBytes, toHex, utf8 } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify, sha256, type Ed25519SigningKey } from '../../crypto/index.js';
import { JsonFields, jsonInput, parseJsonText } from '../license-json-fields.js';
import { MAX_TEXT_BYTES, type UnixSeconds } from '../license-model.js';
import { MAX_LICENSE_TIME } from '../license-container-limits.js';

export const LOCK_FORMAT = 'vsc-license-lock/1';
/** The whole file: a body of bounded fields and its signature fit well inside. */
export const MAX_LOCK_SEQUENCE_BYTES = 4 * 1024;
export const LOCK_NONCE_LENGTH = 16;
export const MAX_LOCK_SERIAL_BYTES = 128;
export const MAX_LOCK_REASON_BYTES = MAX_TEXT_BYTES;
const SIGNING_PREFIX = utf8(`${LOCK_FORMAT}\n`);
const WHERE = 'lock sequence';

export type LockKind = 'lock' | 'unlock';

export interface LockBody {
  readonly kind: LockKind;
  /** The card (container) to lock or unlock. */
  readonly serial: string;
  /** The central authority's Ed25519 public key: the container's lockAuthority must be this key. */
  readonly authorityKey: Uint8Array;
  readonly time: UnixSeconds;
  /** Why, for people (the user's claim "lost", "stolen", ...). */
  readonly reason: string;
  readonly nonce: Uint8Array;
}

/** A parsed, not yet verified, signed body with the exact text that was signed. */
export interface SignedLockSequence {
  readonly body: LockBody;
  readonly bodyText: string;
  readonly signature: Uint8Array;
}

function signedBytes(bodyText: string): Uint8Array {
  return concatBytes(SIGNING_PREFIX, utf8(bodyText));
}

function parseBodyText(bodyText: string): LockBody {
  const where = `${WHERE} body`;
  const fields = new JsonFields(parseJsonText(bodyText, where, MAX_LOCK_SEQUENCE_BYTES), where, ['kind', 'serial', 'authorityKey', 'time', 'reason', 'nonce']);
  return {
    kind: fields.constant('kind', 'lock', 'unlock'),
    serial: fields.text('serial', MAX_LOCK_SERIAL_BYTES, 1),
    authorityKey: fields.hex('authorityKey', ED25519_PUBLIC_KEY_LENGTH),
    time: fields.integer('time', 0, MAX_LICENSE_TIME),
    reason: fields.text('reason', MAX_LOCK_REASON_BYTES),
    nonce: fields.hex('nonce', LOCK_NONCE_LENGTH),
  };
}

function bodyText(body: LockBody): string {
  if (typeof body !== 'object' || body === null) throw jsonInput(WHERE, 'expected a lock body { kind, serial, authorityKey, time, reason, nonce }');
  const text = JSON.stringify({
    kind: body.kind, serial: body.serial, authorityKey: body.authorityKey instanceof Uint8Array ? toHex(body.authorityKey) : undefined, time: body.time,
    reason: body.reason, nonce: body.nonce instanceof Uint8Array ? toHex(body.nonce) : undefined,
  });
  parseBodyText(text); // every field checked exactly as a reader will check it
  return text;
}

/** Signs `body` with the authority's key, which must be the body's authorityKey. */
export function signLockSequence(body: LockBody, key: Ed25519SigningKey): SignedLockSequence {
  const text = bodyText(body);
  if (!bytesEqual(key.publicKey, body.authorityKey)) throw jsonInput(WHERE, 'expected the signing key to be the body\'s authorityKey');
  return { body: parseBodyText(text), bodyText: text, signature: key.sign(signedBytes(text)) };
}

/** The file (and wire) form. */
export function encodeLockSequence(signed: SignedLockSequence): string {
  return JSON.stringify({ format: LOCK_FORMAT, body: signed.bodyText, signature: toHex(signed.signature) });
}

/** Parses the file (and wire) form strictly; the signature is checked by verifyLockSequence or by the card. */
export function parseLockSequence(bytes: Uint8Array | string): SignedLockSequence {
  const file = new JsonFields(parseJsonText(bytes, WHERE, MAX_LOCK_SEQUENCE_BYTES), WHERE, ['format', 'body', 'signature']);
  file.constant('format', LOCK_FORMAT);
  const text = file.string('body', MAX_LOCK_SEQUENCE_BYTES);
  return { body: parseBodyText(text), bodyText: text, signature: file.hex('signature', ED25519_SIGNATURE_LENGTH) };
}

/** Whether the signature verifies under the body's own authorityKey (the card checks that key is its lock authority). */
export function verifyLockSequence(signed: SignedLockSequence): boolean {
  if (signed.signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  return ed25519Verify(signed.body.authorityKey, signedBytes(signed.bodyText), signed.signature);
}

/** SHA-256 over what was signed and its signature: names one sequence in the container's lock and in records. */
export function lockSequenceDigest(signed: SignedLockSequence): Uint8Array {
  return sha256(signedBytes(signed.bodyText), signed.signature);
}
