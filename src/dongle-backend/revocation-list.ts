// The issuing authority's signed revocation list (patent 004 [0007] "invalidate the lost smart card",
// [0107] recover and destroy; DESIGN.md "Dongle-backed card", lost dongle): the dongles a card may no
// longer run from, each with the card's serial, its counter epoch, when and why. The card program refuses
// a revoked dongle whenever it has the list; rental validation refuses records of a revoked epoch signed
// after the revocation; a serial with a "destroyed" entry is never replaced again ([0107] Destroy).
//
// Stored and carried (authority directory, dongle slot `revocations`, a machine's cache) as one line of JSON:
//   { "format": "vsc-revocation-list/1", "authority": hex Ed25519 key (32), "sequence": n, "issuedAt": ISO 8601,
//     "entries": [{ "dongle": hex fingerprint (32), "serial": S, "epoch": e, "revokedAt": ISO 8601,
//                   "reason": "replaced" | "lost" | "destroyed" }], "signature": hex (64) }
// The Ed25519 signature covers a canonical binary encoding of those values, never the JSON text:
//   "vsc-revocation-list/1" ‖ 00 ‖ authority (32) ‖ sequence (8) ‖ issuedAt ms (8) ‖ entry count (4) ‖
//   per entry: fingerprint (32) ‖ serial length (1) ‖ serial (UTF-8) ‖ epoch (4) ‖ revokedAt ms (8) ‖
//   reason (1: 01 replaced, 02 lost, 03 destroyed)
// Times are UTC with milliseconds ("2026-11-28T12:00:00.000Z"), the only form accepted, so each value has one text.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, concatBytes, fromUtf8, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify, type Ed25519SigningKey } from '../crypto/index.js';
import { FINGERPRINT_LENGTH, MAX_EPOCH, type AuthorityReference } from './card-record.js';
import { DongleError } from './dongle.js';

export const REVOCATION_LIST_FORMAT = 'vsc-revocation-list/1';
/** The list's file in the authority's data directory (its escrowDirectory). */
export const REVOCATION_LIST_FILE = 'revocations.list';
/** Far more than a list carried in a dongle slot can hold (64 KiB, about 300 entries); bounds what a parser reads. */
export const MAX_REVOCATION_LIST_BYTES = 4 * 1024 * 1024;
const MAX_SERIAL_BYTES = 64;
const REASONS = ['replaced', 'lost', 'destroyed'] as const;
const ISO_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
const LIST_KEYS = ['authority', 'entries', 'format', 'issuedAt', 'sequence', 'signature'];
const ENTRY_KEYS = ['dongle', 'epoch', 'reason', 'revokedAt', 'serial'];

export type RevocationReason = (typeof REASONS)[number];

export interface RevocationEntry {
  /** The revoked dongle's fingerprint (SHA-256 of its public key). */
  readonly dongle: Uint8Array;
  readonly serial: string;
  /** The counter epoch the card ran in on that dongle. */
  readonly epoch: number;
  /** ISO 8601 UTC with milliseconds. */
  readonly revokedAt: string;
  readonly reason: RevocationReason;
}

/** What the authority signs. */
export interface RevocationListContents {
  readonly sequence: number;
  readonly issuedAt: string;
  readonly entries: readonly RevocationEntry[];
}

export interface RevocationList extends RevocationListContents {
  /** The authority's Ed25519 public key. */
  readonly authority: Uint8Array;
  readonly signature: Uint8Array;
  /** The list as stored and carried: passed on unchanged (to a dongle, to a cache). */
  readonly bytes: Uint8Array;
}

function listError(message: string): DongleError {
  return new DongleError('revocation-list', message);
}

/** Milliseconds since 1970 of an ISO time in the one accepted form, or undefined. */
function timeMs(text: unknown): number | undefined {
  if (typeof text !== 'string' || !ISO_TIME.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) && ms >= 0 && new Date(ms).toISOString() === text ? ms : undefined;
}

/** A serial the binary encoding carries exactly (1..64 bytes of well-formed UTF-8). */
function serialBytes(serial: unknown): Uint8Array | undefined {
  if (typeof serial !== 'string') return undefined;
  const bytes = utf8(serial);
  if (bytes.length === 0 || bytes.length > MAX_SERIAL_BYTES) return undefined;
  return fromUtf8(bytes) === serial ? bytes : undefined; // a lone surrogate would encode as U+FFFD
}

function checkContents(contents: RevocationListContents, authority: Uint8Array): void {
  if (authority.length !== ED25519_PUBLIC_KEY_LENGTH) throw listError(`expected a ${ED25519_PUBLIC_KEY_LENGTH}-byte authority key, got ${authority.length} bytes`);
  if (!Number.isSafeInteger(contents.sequence) || contents.sequence < 0) throw listError(`expected a sequence number 0..2^53-1, got ${String(contents.sequence)}`);
  if (timeMs(contents.issuedAt) === undefined) throw listError('expected "issuedAt" as an ISO 8601 UTC time with milliseconds');
  const seen = new Set<string>();
  contents.entries.forEach((entry, index) => {
    const where = `entry ${index}`;
    if (!(entry.dongle instanceof Uint8Array) || entry.dongle.length !== FINGERPRINT_LENGTH) throw listError(`${where}: expected a ${FINGERPRINT_LENGTH}-byte dongle fingerprint`);
    if (serialBytes(entry.serial) === undefined) throw listError(`${where}: expected a serial of 1..${MAX_SERIAL_BYTES} bytes of UTF-8`);
    if (!Number.isInteger(entry.epoch) || entry.epoch < 0 || entry.epoch > MAX_EPOCH) throw listError(`${where}: expected an epoch in 0..${MAX_EPOCH}`);
    if (timeMs(entry.revokedAt) === undefined) throw listError(`${where}: expected "revokedAt" as an ISO 8601 UTC time with milliseconds`);
    if (!REASONS.includes(entry.reason)) throw listError(`${where}: expected a reason of ${REASONS.join(', ')}`);
    const name = toHex(entry.dongle);
    if (seen.has(name)) throw listError(`${where}: the dongle ${name.slice(0, 16)}… is listed twice`);
    seen.add(name);
  });
}

/** The bytes the signature covers (see the file's head); the contents were checked. */
function signedBytes(authority: Uint8Array, contents: RevocationListContents): Uint8Array {
  const parts: Uint8Array[] = [
    utf8(REVOCATION_LIST_FORMAT), Uint8Array.of(0), authority, uintToBytes(BigInt(contents.sequence), 8),
    uintToBytes(BigInt(timeMs(contents.issuedAt)!), 8), uintToBytes(BigInt(contents.entries.length), 4),
  ];
  for (const entry of contents.entries) {
    const serial = serialBytes(entry.serial)!;
    parts.push(
      entry.dongle, Uint8Array.of(serial.length), serial, uintToBytes(BigInt(entry.epoch), 4),
      uintToBytes(BigInt(timeMs(entry.revokedAt)!), 8), Uint8Array.of(REASONS.indexOf(entry.reason) + 1),
    );
  }
  return concatBytes(...parts);
}

/** Signs a list with the authority's key: what the authority stores and hands to dongles. */
export function signRevocationList(signingKey: Ed25519SigningKey, contents: RevocationListContents): RevocationList {
  const authority = signingKey.publicKey;
  checkContents(contents, authority);
  const signature = signingKey.sign(signedBytes(authority, contents));
  const entries = contents.entries.map((entry) => ({ dongle: toHex(entry.dongle), serial: entry.serial, epoch: entry.epoch, revokedAt: entry.revokedAt, reason: entry.reason }));
  const json = { format: REVOCATION_LIST_FORMAT, authority: toHex(authority), sequence: contents.sequence, issuedAt: contents.issuedAt, entries, signature: toHex(signature) };
  return {
    authority: authority.slice(), sequence: contents.sequence, issuedAt: contents.issuedAt,
    entries: contents.entries.map((entry) => ({ ...entry, dongle: entry.dongle.slice() })),
    signature, bytes: utf8(`${JSON.stringify(json)}\n`),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasExactly(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value).sort();
  return own.length === keys.length && own.every((key, index) => key === keys[index]);
}

function hexField(value: unknown, length: number, what: string): Uint8Array {
  if (typeof value !== 'string' || value.length !== 2 * length || !/^[0-9a-f]*$/.test(value)) throw listError(`expected ${what} as ${2 * length} lower-case hex digits`);
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

function parseEntry(value: unknown, index: number): RevocationEntry {
  if (!isRecord(value) || !hasExactly(value, ENTRY_KEYS)) throw listError(`entry ${index}: expected exactly the fields ${ENTRY_KEYS.join(', ')}`);
  const { serial, epoch, revokedAt, reason } = value;
  if (typeof serial !== 'string' || typeof epoch !== 'number' || typeof revokedAt !== 'string' || typeof reason !== 'string') {
    throw listError(`entry ${index}: expected a string serial, a number epoch, a string revokedAt and a string reason`);
  }
  return { dongle: hexField(value['dongle'], FINGERPRINT_LENGTH, `entry ${index}'s dongle`), serial, epoch, revokedAt, reason: reason as RevocationReason };
}

/**
 * Parses and verifies a list: strict schema, the signature, and the signer being `expectedAuthorityKey`
 * (the authority a card record names). Throws DongleError('revocation-list', ...) on anything else.
 */
export function parseRevocationList(bytes: Uint8Array, expectedAuthorityKey: Uint8Array): RevocationList {
  if (!(bytes instanceof Uint8Array)) throw listError('expected the revocation list as bytes');
  if (bytes.length > MAX_REVOCATION_LIST_BYTES) throw listError(`expected a revocation list of at most ${MAX_REVOCATION_LIST_BYTES} bytes, got ${bytes.length}`);
  let root: unknown;
  try {
    root = JSON.parse(fromUtf8(bytes));
  } catch {
    throw listError('the revocation list is not JSON text');
  }
  if (!isRecord(root) || root['format'] !== REVOCATION_LIST_FORMAT) throw listError(`expected a revocation list with "format": "${REVOCATION_LIST_FORMAT}"`);
  if (!hasExactly(root, LIST_KEYS)) throw listError(`expected exactly the fields ${LIST_KEYS.join(', ')}`);
  const authority = hexField(root['authority'], ED25519_PUBLIC_KEY_LENGTH, 'the authority key');
  if (!(expectedAuthorityKey instanceof Uint8Array) || !bytesEqual(authority, expectedAuthorityKey)) {
    throw listError(`the revocation list is signed by authority ${toHex(authority).slice(0, 16)}…, not by the card's authority`);
  }
  const signature = hexField(root['signature'], ED25519_SIGNATURE_LENGTH, 'the signature');
  const { sequence, issuedAt, entries } = root;
  if (typeof sequence !== 'number' || typeof issuedAt !== 'string' || !Array.isArray(entries)) {
    throw listError('expected a number sequence, a string issuedAt and an array of entries');
  }
  const contents: RevocationListContents = { sequence, issuedAt, entries: entries.map(parseEntry) };
  checkContents(contents, authority);
  if (!ed25519Verify(authority, signedBytes(authority, contents), signature)) throw listError('the revocation list\'s signature does not verify: it was altered');
  return { ...contents, authority, signature, bytes: Uint8Array.from(bytes) }; // a copy even of a Buffer
}

/** The entry revoking the dongle with `fingerprint`, if any. */
export function revokedEntry(list: RevocationList, fingerprint: Uint8Array): RevocationEntry | undefined {
  return list.entries.find((entry) => bytesEqual(entry.dongle, fingerprint));
}

/** [0107] Destroy: whether the card `serial` was destroyed; destroyed is terminal. */
export function isSerialDestroyed(list: RevocationList, serial: string): boolean {
  return list.entries.some((entry) => entry.serial === serial && entry.reason === 'destroyed');
}

/** The newer of two lists of one authority (the higher sequence; `a` when they tie). */
export function newer(a: RevocationList, b: RevocationList): RevocationList {
  return b.sequence > a.sequence ? b : a;
}

/**
 * The authority's current list from `<escrowDirectory>/revocations.list`: undefined when the directory cannot
 * be reached (no directory named, unmounted, unreadable, no list); throws DongleError when a list is there but
 * is not a valid one of this authority.
 */
export function readAuthorityRevocationList(authority: AuthorityReference): RevocationList | undefined {
  if (authority.escrowDirectory === '') return undefined;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(join(authority.escrowDirectory, REVOCATION_LIST_FILE));
  } catch (error) {
    if (typeof (error as NodeJS.ErrnoException).code === 'string') return undefined;
    throw error;
  }
  return parseRevocationList(Uint8Array.from(bytes), authority.signingKey);
}
