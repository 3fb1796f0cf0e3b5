// The escrow a dongle-backed card leaves with its issuing authority (patent 004 [0107] recover; DESIGN.md
// "Dongle-backed card", lost dongle): the card's registration in clear, and its password layer (the INNER
// layer of card-sealing.ts) sealed to the authority's X25519 key. Opening it needs the authority's private
// key AND the owner's password, so the authority re-wraps the inner layer for a new dongle without ever
// learning the password ("the authority that first placed the encryption key on the Dongle remembers").
// A card whose keys live on its token (--keys-on-token) has nothing to escrow: its escrow is the
// registration alone, and a lost dongle means a new card with new keys.
//
// Layout: "VDCE" ‖ 01 ‖ serial length (1) ‖ serial (UTF-8) ‖ key mode (1: 00 individual, 01 universal) ‖
// flags (1: 01 keys on token) ‖ dongle fingerprint (32) ‖ epoch (4) ‖ KDF salt (16) ‖ KDF memory KiB (4) ‖
// KDF iterations (4) ‖ KDF parallelism (1) ‖ escrow directory length (2) ‖ escrow directory (UTF-8) ‖
// [unless keys on token: authority X25519 key (32) ‖ ephemeral X25519 key (32) ‖ sealed length (4) ‖ sealed]
// where sealed = XChaCha20-Poly1305 (card-sealing.ts `seal`: nonce ‖ ciphertext ‖ tag) of the inner layer
// under HKDF-SHA256(X25519(ephemeral, authority), info "vsc-dongle-escrow/1" ‖ ephemeral ‖ authority key),
// with every byte before the sealed length as associated data (ECIES; the escrow names the key it is for).
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VscKeyMode } from '../apdu/index.js';
import { bytesEqual, concatBytes, fromUtf8, toHex, uintToBytes, utf8, wipe } from '../bytes/index.js';
import { generateX25519PrivateKey, x25519PrivateKey, X25519_KEY_LENGTH, type X25519PrivateKey } from '../crypto/index.js';
import { writeFileAtomic } from '../files/index.js';
import { checkKdfParams, type KdfParams } from '../vsc-protocol/index.js';
import { FINGERPRINT_LENGTH, MAX_EPOCH, encodeKdfParams, readKdfParams, type AuthorityReference, type CardRecordHeader } from './card-record.js';
import { seal, tryOpen } from './card-sealing.js';
import { ByteCursor } from './byte-cursor.js';
import { DongleError } from './dongle.js';
import { MAX_SLOT_PAYLOAD_BYTES } from './two-slot-store.js';

const MAGIC = utf8('VDCE');
const VERSION = 0x01;
const MAX_SERIAL_BYTES = 64;
const MAX_DIRECTORY_BYTES = 4096;
const FLAG_KEYS_ON_TOKEN = 0x01;
const HKDF_INFO = utf8('vsc-dongle-escrow/1');
/** Nonce (24) and tag (16) around the inner layer. */
const SEAL_OVERHEAD = 24 + 16;
/** The inner layer fits a dongle slot with its record header: anything larger did not come from a card. */
const MAX_INNER_BYTES = MAX_SLOT_PAYLOAD_BYTES;
/** Where, in the authority's data directory, the escrows are (one file per card). */
export const ESCROW_FOLDER = 'escrow';
export const ESCROW_SUFFIX = '.escrow';

/** What the escrow says in clear: the card, the dongle it was last seen on, its epoch, its password's KDF. */
export interface EscrowRegistration {
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  readonly keysOnToken: boolean;
  readonly dongleFingerprint: Uint8Array;
  readonly epoch: number;
  readonly kdf: KdfParams;
  /** The escrow directory as the card's record names it (kept in a replacement's record). */
  readonly escrowDirectory: string;
  /** The authority X25519 key the inner layer is sealed to; undefined with keys on the token. */
  readonly recipient: Uint8Array | undefined;
}

export interface OpenedEscrow extends EscrowRegistration {
  /** The password layer (card-sealing.ts `sealInner`); undefined with keys on the token. */
  readonly inner: Uint8Array | undefined;
}

function escrowError(message: string, cause?: unknown): DongleError {
  return new DongleError('escrow', message, cause === undefined ? {} : { cause });
}

function damaged(why: string): DongleError {
  return escrowError(`the escrow is damaged or not an escrow: ${why}`);
}

/** The AEAD key of one escrow: bound to both public keys, so it serves for this pair only. */
function escrowKey(shared: Uint8Array, ephemeral: Uint8Array, recipient: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', shared, new Uint8Array(0), concatBytes(HKDF_INFO, ephemeral, recipient), 32));
}

function encodeClear(header: CardRecordHeader, escrowDirectory: string): Uint8Array {
  const serial = utf8(header.serial);
  if (serial.length === 0 || serial.length > MAX_SERIAL_BYTES) throw escrowError(`expected a serial of 1..${MAX_SERIAL_BYTES} bytes, got ${serial.length}`);
  if (header.dongleFingerprint.length !== FINGERPRINT_LENGTH) throw escrowError(`expected a ${FINGERPRINT_LENGTH}-byte dongle fingerprint, got ${header.dongleFingerprint.length} bytes`);
  if (!Number.isInteger(header.epoch) || header.epoch < 0 || header.epoch > MAX_EPOCH) throw escrowError(`expected an epoch in 0..${MAX_EPOCH}, got ${header.epoch}`);
  checkKdfParams(header.kdf);
  const directory = utf8(escrowDirectory);
  if (directory.length > MAX_DIRECTORY_BYTES) throw escrowError(`expected an escrow directory of at most ${MAX_DIRECTORY_BYTES} bytes, got ${directory.length}`);
  return concatBytes(
    MAGIC, Uint8Array.of(VERSION, serial.length), serial,
    Uint8Array.of(header.keyMode === 'universal' ? 1 : 0, header.keysOnToken ? FLAG_KEYS_ON_TOKEN : 0),
    header.dongleFingerprint, uintToBytes(BigInt(header.epoch), 4),
    encodeKdfParams(header.kdf),
    uintToBytes(BigInt(directory.length), 2), directory,
  );
}

/**
 * The escrow of a card at `header` (its dongle and epoch) for `authority`. `inner` is the password layer,
 * undefined exactly when the card keeps its keys on its token (then nothing secret is kept).
 */
export function sealEscrow(authority: AuthorityReference, header: CardRecordHeader, inner: Uint8Array | undefined): Uint8Array {
  if (header.keysOnToken !== (inner === undefined)) {
    throw escrowError(header.keysOnToken ? 'a card with its keys on its token has no information to escrow' : 'expected the inner layer of the card\'s information to escrow');
  }
  const clear = encodeClear(header, authority.escrowDirectory);
  if (inner === undefined) return clear;
  if (inner.length > MAX_INNER_BYTES) throw escrowError(`expected an inner layer of at most ${MAX_INNER_BYTES} bytes, got ${inner.length}`);
  if (authority.escrowKey.length !== X25519_KEY_LENGTH) throw escrowError(`expected a ${X25519_KEY_LENGTH}-byte authority escrow key, got ${authority.escrowKey.length} bytes`);
  const ephemeral = generateX25519PrivateKey();
  let shared: Uint8Array;
  try {
    shared = ephemeral.sharedSecret(authority.escrowKey);
  } catch (error) {
    throw escrowError('the authority\'s escrow key is not a usable X25519 key', error);
  }
  const key = escrowKey(shared, ephemeral.publicKey, authority.escrowKey);
  try {
    const associated = concatBytes(clear, authority.escrowKey, ephemeral.publicKey);
    const sealed = seal(key, associated, inner);
    return concatBytes(associated, uintToBytes(BigInt(sealed.length), 4), sealed);
  } finally {
    wipe(shared, key);
  }
}

interface Decoded {
  readonly registration: EscrowRegistration;
  /** With the inner layer sealed: the associated data, the ephemeral key and the sealed bytes. */
  readonly sealed?: { readonly associated: Uint8Array; readonly ephemeral: Uint8Array; readonly bytes: Uint8Array };
}

function decode(input: Uint8Array): Decoded {
  if (!(input instanceof Uint8Array)) throw escrowError('expected the escrow as bytes');
  const bytes = Uint8Array.from(input); // a Buffer's slice() would be a view, not a copy
  const cursor = new ByteCursor(bytes, damaged);
  if (!bytesEqual(cursor.take(MAGIC.length, 'magic'), MAGIC)) throw damaged('wrong magic (expected "VDCE")');
  const version = cursor.byte('version');
  if (version !== VERSION) throw damaged(`unknown version ${version}`);
  const serialLength = cursor.byte('serial length');
  if (serialLength === 0 || serialLength > MAX_SERIAL_BYTES) throw damaged(`expected a serial of 1..${MAX_SERIAL_BYTES} bytes, got ${serialLength}`);
  const serial = cursor.text(serialLength, 'serial');
  const keyMode = cursor.byte('key mode');
  if (keyMode > 1) throw damaged(`unknown key mode ${keyMode}`);
  const flags = cursor.byte('flags');
  if ((flags & ~FLAG_KEYS_ON_TOKEN) !== 0) throw damaged(`unknown flags ${flags}`);
  const dongleFingerprint = cursor.take(FINGERPRINT_LENGTH, 'dongle fingerprint').slice();
  const epoch = cursor.uint(4, 'epoch');
  const kdf = readKdfParams(cursor, damaged);
  const directoryLength = cursor.uint(2, 'escrow directory length');
  if (directoryLength > MAX_DIRECTORY_BYTES) throw damaged(`expected an escrow directory of at most ${MAX_DIRECTORY_BYTES} bytes, got ${directoryLength}`);
  const escrowDirectory = cursor.text(directoryLength, 'escrow directory');
  const keysOnToken = (flags & FLAG_KEYS_ON_TOKEN) !== 0;
  const common = { serial, keyMode: keyMode === 1 ? 'universal' : 'individual', keysOnToken, dongleFingerprint, epoch, kdf, escrowDirectory } as const;
  if (keysOnToken) {
    if (cursor.offset !== bytes.length) throw damaged('a card with its keys on its token escrows nothing, but bytes follow its registration');
    return { registration: { ...common, recipient: undefined } };
  }
  const recipient = cursor.take(X25519_KEY_LENGTH, 'authority escrow key').slice();
  const ephemeral = cursor.take(X25519_KEY_LENGTH, 'ephemeral key').slice();
  const associated = bytes.slice(0, cursor.offset);
  const sealedLength = cursor.uint(4, 'sealed length');
  if (sealedLength < SEAL_OVERHEAD || sealedLength > MAX_INNER_BYTES + SEAL_OVERHEAD) throw damaged(`expected a sealed inner layer of ${SEAL_OVERHEAD}..${MAX_INNER_BYTES + SEAL_OVERHEAD} bytes, got ${sealedLength}`);
  const sealed = cursor.take(sealedLength, 'sealed information').slice();
  if (cursor.offset !== bytes.length) throw damaged('bytes after the sealed information');
  return { registration: { ...common, recipient }, sealed: { associated, ephemeral, bytes: sealed } };
}

/** The clear part of an escrow, without any key: which card, dongle and epoch it is for. */
export function inspectEscrow(bytes: Uint8Array): EscrowRegistration {
  return decode(bytes).registration;
}

/** Opens an escrow with the authority's X25519 private key (32 bytes): the registration and the inner layer. */
export function openEscrow(escrowPrivateKey: Uint8Array, bytes: Uint8Array): OpenedEscrow {
  const { registration, sealed } = decode(bytes);
  if (sealed === undefined) return { ...registration, inner: undefined };
  let privateKey: X25519PrivateKey;
  try {
    privateKey = x25519PrivateKey(escrowPrivateKey);
  } catch (error) {
    throw escrowError(`expected the authority's ${X25519_KEY_LENGTH}-byte X25519 private key`, error);
  }
  if (!bytesEqual(privateKey.publicKey, registration.recipient!)) {
    throw escrowError(`the escrow of card ${registration.serial} is sealed to another authority's key (${toHex(registration.recipient!).slice(0, 16)}…), not this one`);
  }
  let shared: Uint8Array;
  try {
    shared = privateKey.sharedSecret(sealed.ephemeral);
  } catch {
    throw damaged('its ephemeral key is not a usable X25519 key');
  }
  const key = escrowKey(shared, sealed.ephemeral, privateKey.publicKey);
  try {
    const inner = tryOpen(key, sealed.associated, sealed.bytes);
    if (inner === undefined) throw escrowError(`the escrow of card ${registration.serial} does not open with this authority's key: it was altered`);
    return { ...registration, inner };
  } finally {
    wipe(shared, key);
  }
}

/** Where the escrow of `serial` lives under an authority's directory: the serial's UTF-8 in hex, safe as a file name. */
export function escrowPath(escrowDirectory: string, serial: string): string {
  return join(escrowDirectory, ESCROW_FOLDER, `${toHex(utf8(serial))}${ESCROW_SUFFIX}`);
}

/** The serial an escrow file name stands for, or undefined when the name is not one escrowPath makes. */
export function serialOfEscrowFile(name: string): string | undefined {
  const match = /^((?:[0-9a-f]{2}){1,64})\.escrow$/.exec(name);
  if (match === null) return undefined;
  try {
    return fromUtf8(Uint8Array.from(Buffer.from(match[1]!, 'hex')));
  } catch {
    return undefined; // not UTF-8: no serial makes this name
  }
}

/**
 * Whether an escrow for `header` may replace `existing`: never one of an older epoch (a replaced dongle's card
 * must not overwrite its successor's escrow), nor one of the same epoch from another dongle (a second card
 * claiming the serial must not erase the first one's).
 */
export function mayReplaceEscrow(existing: EscrowRegistration | undefined, header: Pick<CardRecordHeader, 'epoch' | 'dongleFingerprint'>): boolean {
  if (existing === undefined) return true;
  if (existing.epoch > header.epoch) return false;
  return existing.epoch < header.epoch || bytesEqual(existing.dongleFingerprint, header.dongleFingerprint);
}

/** The registration in the escrow file at `path`, undefined when there is none or it is unreadable or damaged. */
export function readEscrowRegistration(path: string): EscrowRegistration | undefined {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  try {
    return inspectEscrow(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The card program's side ([0107] recover): leaves a fresh escrow at `<escrowDirectory>/escrow/<serial hex>.escrow`,
 * atomically. Returns false, never throws, when the authority's directory cannot be reached (unmounted,
 * unreadable, not initialised) or when the escrow there is newer (see mayReplaceEscrow): the authority then
 * keeps the previous one. Throws only for a header or inner layer that cannot be escrowed at all.
 */
export function writeEscrow(authority: AuthorityReference, header: CardRecordHeader, inner: Uint8Array | undefined): boolean {
  if (authority.escrowDirectory === '') return false;
  const bytes = sealEscrow(authority, header, inner);
  const path = escrowPath(authority.escrowDirectory, header.serial);
  if (!mayReplaceEscrow(readEscrowRegistration(path), header)) return false;
  try {
    writeFileAtomic(path, bytes);
    return true;
  } catch (error) {
    if (typeof (error as NodeJS.ErrnoException).code === 'string') return false; // ENOENT, EACCES, EROFS, ENOSPC...
    throw error;
  }
}
