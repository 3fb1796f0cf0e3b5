// The audit record of patent 003 [0056] (DESIGN.md "Software rental"): nonce, text, counter, signature; the hash h1
// of [0059] step [2], the digest the card signs ([0053], and [0098]-[0100] for a universal key), and the trail line:
// one JSON object per line, {"nonce","text","counter","signature"} in that order, bytes as lowercase hex.
import { COUNTER_LENGTH, COUNTER_MAX, signedDigest, type VscKeyMode } from '../apdu/index.js';
import { fromHex, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { verifySignAndIncrement } from '../card-client/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, sha256 } from '../crypto/index.js';
import { RentalError } from './rental-error.js';

export const NONCE_LENGTH = 16;
/** Enough for any usage text ([0046]-[0047] give one-line strings); bounds what a trail line may make us hold. */
export const MAX_TEXT_BYTES = 16 * 1024;
/** The longest canonical line: every text byte escaped as \uXXXX (6 characters) plus the fixed fields. */
export const MAX_LINE_LENGTH = MAX_TEXT_BYTES * 6 + 256;

export interface AuditRecord {
  /** [0059] step [1]: 16 random bytes. */
  readonly nonce: Uint8Array;
  /** [0056] "string": what the rented program logs, e.g. "WP 15 minutes public key 9828…". */
  readonly text: string;
  /** The card's counter value the signature binds (0 .. 2^128-2). */
  readonly counter: bigint;
  /** Ed25519 signature of SHA-256(h1 ‖ [serial ‖] counter), 64 bytes. */
  readonly signature: Uint8Array;
}

/**
 * What a trail is checked against ([0059] step [7], [0060] steps [4], [6.2]): the keyfile's card public key, its
 * serial and key mode, never the card's own GET PUBLIC KEY. The serial enters the digest only in universal mode.
 */
export interface TrustRoot {
  readonly publicKey: Uint8Array;
  readonly serial: string;
  readonly keyMode: VscKeyMode;
}

// Lone surrogates cannot be written as UTF-8: utf8() would turn them into U+FFFD and sign a different text.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `text` cannot be a record's text, or undefined when it can. */
export function recordTextProblem(text: unknown): string | undefined {
  if (typeof text !== 'string') return `expected the text as a string, got ${typeof text}`;
  if (LONE_SURROGATE.test(text)) return 'expected the text as valid Unicode, got a lone surrogate';
  // A JavaScript string needs at most 3 UTF-8 bytes per UTF-16 unit: only long ones need encoding to measure.
  const bytes = text.length * 3 <= MAX_TEXT_BYTES ? 0 : utf8(text).length;
  if (bytes > MAX_TEXT_BYTES) return `expected a text of at most ${MAX_TEXT_BYTES} UTF-8 bytes, got ${bytes}`;
  return undefined;
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array[] {
  return [uintToBytes(BigInt(bytes.length), 4), bytes];
}

/** [0059] step [2]: h1 = SHA-256(len(nonce) ‖ nonce ‖ len(text) ‖ text), lengths 4 bytes big-endian, text UTF-8. */
export function recordHash(nonce: Uint8Array, text: string): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) {
    throw new RentalError('input', `expected a ${NONCE_LENGTH}-byte nonce, got ${nonce instanceof Uint8Array ? `${nonce.length} bytes` : typeof nonce}`);
  }
  const problem = recordTextProblem(text);
  if (problem !== undefined) throw new RentalError('input', problem);
  return sha256(...lengthPrefixed(nonce), ...lengthPrefixed(utf8(text)));
}

/** [0056]: the digest the card signed for `record`, hash(hash(nonce, string), [serial,] counter) ([0100]). */
export function recordDigest(record: AuditRecord, root: TrustRoot): Uint8Array {
  return signedDigest(recordHash(record.nonce, record.text), record.counter, root.keyMode, root.serial);
}

/** [0060] steps [4], [6.2]: the record's signature, recomputing the digest from the record itself ([0061]). */
export function verifyRecord(record: AuditRecord, root: TrustRoot): boolean {
  if (record.counter < 0n || record.counter >= COUNTER_MAX) return false;
  return verifySignAndIncrement(record, recordHash(record.nonce, record.text), root);
}

/** Checks a trust root handed to a public function (bad input: exit 2). */
export function assertTrustRoot(root: TrustRoot): void {
  if (typeof root !== 'object' || root === null) throw new RentalError('input', 'expected a trust root { publicKey, serial, keyMode }');
  if (!(root.publicKey instanceof Uint8Array) || root.publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) {
    throw new RentalError('input', `expected the trust root's public key as ${ED25519_PUBLIC_KEY_LENGTH} bytes`);
  }
  if (typeof root.serial !== 'string' || root.serial.length === 0) throw new RentalError('input', 'expected the trust root\'s serial as a non-empty string');
  if (root.keyMode !== 'individual' && root.keyMode !== 'universal') throw new RentalError('input', 'expected the trust root\'s key mode individual or universal');
}

function assertRecord(record: AuditRecord): void {
  if (typeof record !== 'object' || record === null) throw new RentalError('input', 'expected an audit record { nonce, text, counter, signature }');
  if (!(record.nonce instanceof Uint8Array) || record.nonce.length !== NONCE_LENGTH) throw new RentalError('input', `expected a ${NONCE_LENGTH}-byte nonce`);
  const problem = recordTextProblem(record.text);
  if (problem !== undefined) throw new RentalError('input', problem);
  if (typeof record.counter !== 'bigint' || record.counter < 0n || record.counter > COUNTER_MAX) throw new RentalError('input', 'expected a counter in 0..2^128-1');
  if (!(record.signature instanceof Uint8Array) || record.signature.length !== ED25519_SIGNATURE_LENGTH) {
    throw new RentalError('input', `expected a ${ED25519_SIGNATURE_LENGTH}-byte signature`);
  }
}

/** The record as one trail line, without the newline: the only form parseRecordLine accepts. */
export function encodeRecordLine(record: AuditRecord): string {
  assertRecord(record);
  return JSON.stringify({
    nonce: toHex(record.nonce),
    text: record.text,
    counter: toHex(uintToBytes(record.counter, COUNTER_LENGTH)),
    signature: toHex(record.signature),
  });
}

const KEYS = ['nonce', 'text', 'counter', 'signature'] as const;
const NONCE_HEX = new RegExp(`^[0-9a-f]{${NONCE_LENGTH * 2}}$`);

/**
 * Whether `value` is a nonce as the trail and the rental protocol write it: NONCE_LENGTH bytes, lowercase hex. A
 * function, so other modules need no pattern of their own built from NONCE_LENGTH when they load: they may load
 * before this one inside the import cycle apdu → license → rental (the license applet signs rental records).
 */
export function isNonceHex(value: unknown): value is string {
  return typeof value === 'string' && NONCE_HEX.test(value);
}
const COUNTER_HEX = new RegExp(`^[0-9a-f]{${COUNTER_LENGTH * 2}}$`);
const SIGNATURE_HEX = new RegExp(`^[0-9a-f]{${ED25519_SIGNATURE_LENGTH * 2}}$`);

function describe(value: unknown): string {
  if (typeof value === 'string') return `${value.length} characters`;
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * Parses one trail line strictly: a JSON object with exactly the four keys in order, lowercase hex of the exact
 * lengths, a text of valid Unicode of at most MAX_TEXT_BYTES, and nothing else, not even spacing: the line must be
 * the one encodeRecordLine writes. Anything else is RentalError `malformed` (`input` for a non-string), whose one-line
 * message names the line and what was expected, never quoting the line.
 */
export function parseRecordLine(line: string, lineNumber?: number): AuditRecord {
  const where = lineNumber === undefined ? 'trail line' : `trail line ${lineNumber}`;
  const malformed = (why: string) => new RentalError('malformed', `${where}: ${why}`, { line: lineNumber });
  if (typeof line !== 'string') throw new RentalError('input', `${where}: expected a string, got ${typeof line}`, { line: lineNumber });
  if (line.length > MAX_LINE_LENGTH) throw malformed(`expected at most ${MAX_LINE_LENGTH} characters, got ${line.length}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed(line.length === 0 ? 'expected a record, got an empty line' : 'expected a JSON object, got text that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`expected a JSON object, got ${describe(value)}`);
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields);
  if (keys.length !== KEYS.length || KEYS.some((key, i) => keys[i] !== key)) {
    throw malformed(`expected the keys ${KEYS.join(', ')} in that order, got ${keys.length > 8 ? `${keys.length} keys` : keys.map((key) => JSON.stringify(key.slice(0, 20))).join(', ')}`);
  }
  const { nonce, text, counter, signature } = fields;
  if (typeof nonce !== 'string' || !NONCE_HEX.test(nonce)) throw malformed(`expected "nonce" as ${NONCE_LENGTH * 2} lowercase hex digits, got ${describe(nonce)}`);
  if (typeof counter !== 'string' || !COUNTER_HEX.test(counter)) throw malformed(`expected "counter" as ${COUNTER_LENGTH * 2} lowercase hex digits, got ${describe(counter)}`);
  if (typeof signature !== 'string' || !SIGNATURE_HEX.test(signature)) {
    throw malformed(`expected "signature" as ${ED25519_SIGNATURE_LENGTH * 2} lowercase hex digits, got ${describe(signature)}`);
  }
  const problem = recordTextProblem(text);
  if (problem !== undefined) throw malformed(problem);
  const record: AuditRecord = { nonce: fromHex(nonce), text: text as string, counter: BigInt(`0x${counter}`), signature: fromHex(signature) };
  // Duplicate keys, spacing and needless escapes all parse to the same fields: one record has one line.
  if (encodeRecordLine(record) !== line) throw malformed('expected the canonical form (no spacing, no duplicate keys, only the escapes JSON requires)');
  return record;
}
