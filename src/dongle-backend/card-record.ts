// The card record a dongle holds in its second storage location ([0108]; DESIGN.md "Dongle-backed card"):
// a clear header naming the card, the dongle it is sealed to, its counter epoch and where its escrow goes,
// then the protected information sealed twice (card-sealing.ts): inside under the owner's password,
// outside under a secret only this dongle's key can make. The header is the outer layer's associated
// data, so none of it can be changed without the dongle noticing.
//
// Layout: "VDCR" ‖ 01 ‖ serial length (1) ‖ serial (UTF-8) ‖ key mode (1: 00 individual, 01 universal) ‖
// flags (1: 01 keys on token, 02 fresh) ‖ dongle fingerprint (32) ‖ epoch (4) ‖ seal salt (16) ‖
// KDF salt (16) ‖ KDF memory KiB (4) ‖ KDF iterations (4) ‖ KDF parallelism (1) ‖
// authority present (1) ‖ [authority Ed25519 key (32) ‖ authority X25519 key (32) ‖ escrow directory length (2) ‖ directory (UTF-8)] ‖
// sealed length (4) ‖ sealed.
import type { VscKeyMode } from '../apdu/index.js';
import { concatBytes, constantTimeEqual, uintToBytes, utf8 } from '../bytes/index.js';
import { KDF_SALT_LENGTH, checkKdfParams, type KdfParams } from '../vsc-protocol/index.js';
import { ByteCursor } from './byte-cursor.js';
import { DongleError } from './dongle.js';

const MAGIC = utf8('VDCR');
const VERSION = 0x01;
export const FINGERPRINT_LENGTH = 32;
export const SEAL_SALT_LENGTH = 16;
const AUTHORITY_KEY_LENGTH = 32;
const MAX_SERIAL_BYTES = 64;
const MAX_DIRECTORY_BYTES = 4096;

/** Epoch e owns the counter values e·2^96 ≤ v < (e+1)·2^96 (DESIGN.md "Dongle-backed card"). */
export const EPOCH_SHIFT = 96n;
export const MAX_EPOCH = 0xffffffff;

export function epochStart(epoch: number): bigint {
  return BigInt(epoch) << EPOCH_SHIFT;
}

export function epochEnd(epoch: number): bigint {
  return BigInt(epoch + 1) << EPOCH_SHIFT;
}

export function epochOf(counter: bigint): number {
  return Number(counter >> EPOCH_SHIFT);
}

/** The issuing authority a card escrows its information with ([0107] recover). */
export interface AuthorityReference {
  /** Verifies the authority's revocation lists. */
  readonly signingKey: Uint8Array;
  /** Escrows are sealed to it. */
  readonly escrowKey: Uint8Array;
  /** Where the card program leaves a fresh escrow at each sync ("" when it is handed over by other means). */
  readonly escrowDirectory: string;
}

export interface CardRecordHeader {
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  /** The card's signing key was generated on the dongle and never leaves it: no escrow is possible. */
  readonly keysOnToken: boolean;
  /** Written by `vsc dongle init` or a replacement and not yet opened: the counter slot may be absent. */
  readonly fresh: boolean;
  readonly dongleFingerprint: Uint8Array;
  readonly epoch: number;
  /** Fixed while the card stays on this dongle: what the dongle signs to make the sealing secret. */
  readonly sealSalt: Uint8Array;
  /** The owner's password parameters (Argon2id, DESIGN.md "Keys and secrets"). */
  readonly kdf: KdfParams;
  readonly authority: AuthorityReference | undefined;
}

export interface CardRecord {
  readonly header: CardRecordHeader;
  /** The encoded header: the outer layer's associated data. */
  readonly headerBytes: Uint8Array;
  readonly sealed: Uint8Array;
}

const enum Flag { keysOnToken = 0x01, fresh = 0x02 }

export function encodeCardRecordHeader(header: CardRecordHeader): Uint8Array {
  const serial = utf8(header.serial);
  if (serial.length === 0 || serial.length > MAX_SERIAL_BYTES) throw new DongleError('record', `expected a serial of 1..${MAX_SERIAL_BYTES} bytes, got ${serial.length}`);
  if (header.dongleFingerprint.length !== FINGERPRINT_LENGTH || header.sealSalt.length !== SEAL_SALT_LENGTH) throw new DongleError('record', 'expected a 32-byte fingerprint and a 16-byte seal salt');
  if (!Number.isInteger(header.epoch) || header.epoch < 0 || header.epoch > MAX_EPOCH) throw new DongleError('record', `expected an epoch in 0..${MAX_EPOCH}, got ${header.epoch}`);
  checkKdfParams(header.kdf);
  const authority = header.authority;
  let authorityPart: Uint8Array = Uint8Array.of(0);
  if (authority !== undefined) {
    const directory = utf8(authority.escrowDirectory);
    if (directory.length > MAX_DIRECTORY_BYTES) throw new DongleError('record', `expected an escrow directory of at most ${MAX_DIRECTORY_BYTES} bytes`);
    authorityPart = concatBytes(Uint8Array.of(1), authority.signingKey, authority.escrowKey, uintToBytes(BigInt(directory.length), 2), directory);
  }
  return concatBytes(
    MAGIC, Uint8Array.of(VERSION, serial.length), serial,
    Uint8Array.of(header.keyMode === 'universal' ? 1 : 0, (header.keysOnToken ? Flag.keysOnToken : 0) | (header.fresh ? Flag.fresh : 0)),
    header.dongleFingerprint, uintToBytes(BigInt(header.epoch), 4), header.sealSalt,
    encodeKdfParams(header.kdf),
    authorityPart,
  );
}

export function encodeCardRecord(headerBytes: Uint8Array, sealed: Uint8Array): Uint8Array {
  return concatBytes(headerBytes, uintToBytes(BigInt(sealed.length), 4), sealed);
}

function damaged(why: string): DongleError {
  return new DongleError('record', `the card record on the dongle is damaged or not a card record: ${why}`);
}

export function decodeCardRecord(bytes: Uint8Array): CardRecord {
  const cursor = new ByteCursor(bytes, damaged);
  if (!constantTimeEqual(cursor.take(MAGIC.length, 'magic'), MAGIC)) throw damaged('wrong magic');
  if (cursor.byte('version') !== VERSION) throw damaged('unknown version');
  const serialLength = cursor.byte('serial length');
  if (serialLength === 0 || serialLength > MAX_SERIAL_BYTES) throw damaged('bad serial length');
  const serial = cursor.text(serialLength, 'serial');
  const keyModeByte = cursor.byte('key mode');
  if (keyModeByte > 1) throw damaged('unknown key mode');
  const flags = cursor.byte('flags');
  if ((flags & ~(Flag.keysOnToken | Flag.fresh)) !== 0) throw damaged('unknown flags');
  const dongleFingerprint = cursor.take(FINGERPRINT_LENGTH, 'dongle fingerprint').slice();
  const epoch = cursor.uint(4, 'epoch');
  const sealSalt = cursor.take(SEAL_SALT_LENGTH, 'seal salt').slice();
  const kdf = readKdfParams(cursor, damaged);
  let authority: AuthorityReference | undefined;
  const hasAuthority = cursor.byte('authority flag');
  if (hasAuthority > 1) throw damaged('bad authority flag');
  if (hasAuthority === 1) {
    const signingKey = cursor.take(AUTHORITY_KEY_LENGTH, 'authority key').slice();
    const escrowKey = cursor.take(AUTHORITY_KEY_LENGTH, 'authority escrow key').slice();
    const directoryLength = cursor.uint(2, 'escrow directory length');
    if (directoryLength > MAX_DIRECTORY_BYTES) throw damaged('escrow directory too long');
    const escrowDirectory = cursor.text(directoryLength, 'escrow directory');
    authority = { signingKey, escrowKey, escrowDirectory };
  }
  const headerBytes = bytes.slice(0, cursor.offset);
  const sealedLength = cursor.uint(4, 'sealed length');
  const sealed = cursor.take(sealedLength, 'sealed information').slice();
  if (!cursor.done) throw damaged('bytes after the sealed information');
  return {
    header: {
      serial, keyMode: keyModeByte === 1 ? 'universal' : 'individual', keysOnToken: (flags & Flag.keysOnToken) !== 0, fresh: (flags & Flag.fresh) !== 0,
      dongleFingerprint, epoch, sealSalt, kdf, authority,
    },
    headerBytes,
    sealed,
  };
}

/** Who holds a dongle already: "card S", or "a card" when its record is damaged (it still occupies the dongle). */
export function describeHolder(recordBytes: Uint8Array): string {
  try {
    return `card ${decodeCardRecord(recordBytes).header.serial}`;
  } catch {
    return 'a card';
  }
}

/** The owner's Argon2id parameters as card records and escrows store them: salt (16) ‖ memory KiB (4) ‖ iterations (4) ‖ parallelism (1). */
export function encodeKdfParams(kdf: KdfParams): Uint8Array {
  return concatBytes(kdf.salt, uintToBytes(BigInt(kdf.memoryKiB), 4), uintToBytes(BigInt(kdf.iterations), 4), Uint8Array.of(kdf.parallelism));
}

export function readKdfParams(cursor: ByteCursor, damaged: (why: string) => Error): KdfParams {
  const kdf: KdfParams = {
    algorithm: 'argon2id',
    salt: cursor.take(KDF_SALT_LENGTH, 'KDF salt').slice(),
    memoryKiB: cursor.uint(4, 'KDF memory'),
    iterations: cursor.uint(4, 'KDF iterations'),
    parallelism: cursor.byte('KDF parallelism'),
  };
  try {
    checkKdfParams(kdf);
  } catch (error) {
    throw damaged((error as Error).message);
  }
  return kdf;
}
