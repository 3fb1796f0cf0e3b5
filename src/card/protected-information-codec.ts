// The binary codec of a card's protected information (DESIGN.md "Keys and secrets", "What backs a running
// card"): signing seed, counter and PIV state as tagged, length-prefixed fields, no hex, no JSON.
// Layout: format byte 01, then fields tag (1) ‖ length (4, big-endian) ‖ value, in this fixed order:
//   01 signing seed (32), or 03 public key of a server-held card (32), whose seed never leaves its VSC server
//   (patent 003 [0096]) · 02 counter (16) · 10 PIV part, itself fields in this order:
//   01 PIN (8) · 02 PUK (8) · 03 PIN retries (1) · 04 PUK retries (1) · 05 management key algorithm (1: 01 3DES, 02 AES-128)
//   · 06 management key · 07 key pair* (slot 1 ‖ private 32 ‖ public 65) · 08 data object* (tag 3 ‖ content);
//   then, optionally, 20 license container (src/license/license-container-codec.ts; DESIGN.md "License containers"):
//   absent while the container is empty (EMPTY_CONTAINER), so information from before it still opens unchanged.
// Field readers open one field without decoding the rest (a signature opens only the seed).
import {
  MAX_DATA_OBJECT_LENGTH, PIN_MAX_RETRIES, PUK_MAX_RETRIES, PivTag, REFERENCE_DATA_LENGTH, isPivKeySlot,
  isValidPinReference, isValidPukReference, isWholeDiscoveryObject, type ManagementKeyAlgorithm, type PivKeyPair,
  type PivKeySlot, type PivState, formatTag, isValidTag,
} from '../apdu/index.js';
import { bytesEqual, bytesToUint, concatBytes, uintToBytes, wipe } from '../bytes/index.js';
import { blockCipherKeyLength, ed25519KeyFromSeed, isValidP256PrivateKey, p256DerivePublicKey, P256_PRIVATE_KEY_LENGTH, P256_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { decodeLicenseContainer, EMPTY_CONTAINER, encodeLicenseContainer, isEmptyLicenseContainer, type LicenseContainer } from '../license/index.js';

export const PROTECTED_INFORMATION_FORMAT = 0x01;
export const SIGNING_SEED_LENGTH = 32;
export const COUNTER_LENGTH = 16;
/** A server-held card's Ed25519 public key, in place of the seed (the same length, so sizes do not change). */
export const SERVER_HELD_KEY_LENGTH = 32;

const enum Field { seed = 0x01, counter = 0x02, serverHeldKey = 0x03, piv = 0x10, license = 0x20 }
const enum PivField { pin = 0x01, puk = 0x02, pinRetries = 0x03, pukRetries = 0x04, algorithm = 0x05, managementKey = 0x06, keyPair = 0x07, dataObject = 0x08 }
const ALGORITHM_CODES: ReadonlyArray<[number, ManagementKeyAlgorithm]> = [[0x01, '3des'], [0x02, 'aes128']];
const KEY_PAIR_LENGTH = 1 + P256_PRIVATE_KEY_LENGTH + P256_PUBLIC_KEY_LENGTH;
/** Every field: tag (1) ‖ length (4). */
const FIELD_HEADER_LENGTH = 5;
const DATA_OBJECT_TAG_LENGTH = 3;

export interface ProtectedInformation {
  /** Ed25519 seed of the SIGN AND INCREMENT key; empty (0 bytes) for a server-held card. */
  readonly signingSeed: Uint8Array;
  /**
   * A server-held card's Ed25519 public key: its seed is sealed to the VSC server, which runs SIGN AND
   * INCREMENT itself, and the information carries no seed.
   */
  readonly serverHeldPublicKey?: Uint8Array;
  /** The next counter value this card would sign with. */
  readonly counter: bigint;
  readonly piv: PivState;
  /** The license container; absent means the empty container. */
  readonly license?: LicenseContainer;
}

/** Protected information that fails validation; the message names the field, never its value. */
export class ProtectedInformationError extends VscError {
  override readonly name = 'ProtectedInformationError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('card.protected-information', message, { ...options, exitCode: ExitCode.other });
  }
}

function field(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(FIELD_HEADER_LENGTH + value.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, value.length);
  out.set(value, FIELD_HEADER_LENGTH);
  return out;
}

/** Concatenates and zeroes the parts: they hold secrets. */
function join(parts: Uint8Array[]): Uint8Array {
  const out = concatBytes(...parts);
  wipe(...parts);
  return out;
}

export function encodePivPart(piv: PivState): Uint8Array {
  const code = ALGORITHM_CODES.find(([, algorithm]) => algorithm === piv.managementKey.algorithm)?.[0];
  if (code === undefined) throw new ProtectedInformationError('expected the management key algorithm to be 3des or aes128');
  const parts = [
    field(PivField.pin, piv.pin), field(PivField.puk, piv.puk), field(PivField.pinRetries, Uint8Array.of(piv.pinRetriesLeft)),
    field(PivField.pukRetries, Uint8Array.of(piv.pukRetriesLeft)), field(PivField.algorithm, Uint8Array.of(code)), field(PivField.managementKey, piv.managementKey.key),
  ];
  for (const slot of [...piv.keys.keys()].sort((a, b) => a - b)) {
    const pair = piv.keys.get(slot)!;
    parts.push(field(PivField.keyPair, concatBytes(Uint8Array.of(slot), pair.privateKey, pair.publicKey)));
  }
  for (const tag of [...piv.dataObjects.keys()].sort((a, b) => a - b)) {
    parts.push(field(PivField.dataObject, concatBytes(uintToBytes(BigInt(tag), 3), piv.dataObjects.get(tag)!)));
  }
  return join(parts);
}

export function encodeProtectedInformation(info: ProtectedInformation): Uint8Array {
  return join([
    Uint8Array.of(PROTECTED_INFORMATION_FORMAT), cardKeyField(info), field(Field.counter, counterBytes(info.counter)), field(Field.piv, encodePivPart(info.piv)),
    ...licenseField(info.license),
  ]);
}

/** The license container's field, none for the empty container. */
function licenseField(license: LicenseContainer | undefined): Uint8Array[] {
  return license === undefined || isEmptyLicenseContainer(license) ? [] : [field(Field.license, encodeLicenseContainer(license))];
}

/** The first field: the signing seed, or a server-held card's public key (and then no seed). */
function cardKeyField(info: ProtectedInformation): Uint8Array {
  if (info.serverHeldPublicKey === undefined) {
    if (info.signingSeed.length !== SIGNING_SEED_LENGTH) throw new ProtectedInformationError(`expected a ${SIGNING_SEED_LENGTH}-byte signing seed, got ${info.signingSeed.length}`);
    return field(Field.seed, info.signingSeed);
  }
  if (info.signingSeed.length !== 0) throw new ProtectedInformationError(`expected no signing seed beside a server-held card's public key, got ${info.signingSeed.length} bytes`);
  if (info.serverHeldPublicKey.length !== SERVER_HELD_KEY_LENGTH) throw new ProtectedInformationError(`expected a ${SERVER_HELD_KEY_LENGTH}-byte server-held public key, got ${info.serverHeldPublicKey.length}`);
  return field(Field.serverHeldKey, info.serverHeldPublicKey);
}

/**
 * The length encodeProtectedInformation gives for information whose PIV part is `piv` and whose license container
 * takes `licenseFieldLength` bytes (readLicenseFieldLength; 0 for none), counted from the lengths alone, without
 * copying a secret: the card checks it before every change, so PIV and licenses together stay within its room.
 */
export function encodedProtectedInformationLength(piv: PivState, licenseFieldLength = 0): number {
  // PIN, PUK, the two retry counters, the management key's algorithm and the key itself.
  const fixed = [piv.pin.length, piv.puk.length, 1, 1, 1, piv.managementKey.key.length];
  let pivPart = fixed.reduce((sum, length) => sum + FIELD_HEADER_LENGTH + length, 0);
  pivPart += piv.keys.size * (FIELD_HEADER_LENGTH + KEY_PAIR_LENGTH);
  for (const content of piv.dataObjects.values()) pivPart += FIELD_HEADER_LENGTH + DATA_OBJECT_TAG_LENGTH + content.length;
  return 1 + FIELD_HEADER_LENGTH + SIGNING_SEED_LENGTH + FIELD_HEADER_LENGTH + COUNTER_LENGTH + FIELD_HEADER_LENGTH + pivPart + licenseFieldLength;
}

function counterBytes(counter: bigint): Uint8Array {
  if (counter < 0n || counter >= 1n << 128n) throw new ProtectedInformationError('expected the counter in 0..2^128-1');
  return uintToBytes(counter, COUNTER_LENGTH);
}

interface RawField { readonly tag: number; readonly start: number; readonly end: number }

/** Splits a field list, checking every length against what is there. */
function fields(bytes: Uint8Array, start: number, where: string): RawField[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: RawField[] = [];
  let offset = start;
  while (offset < bytes.length) {
    if (bytes.length - offset < 5) throw new ProtectedInformationError(`${where}: expected a 5-byte field header, got ${bytes.length - offset} bytes`);
    const length = view.getUint32(offset + 1);
    if (length > bytes.length - offset - 5) throw new ProtectedInformationError(`${where}: field ${bytes[offset]!.toString(16).padStart(2, '0')} claims ${length} bytes, ${bytes.length - offset - 5} remain`);
    out.push({ tag: bytes[offset]!, start: offset + 5, end: offset + 5 + length });
    offset += 5 + length;
  }
  return out;
}

/** The card key, counter and PIV part, and the license container's field if there is one. */
function topFields(bytes: Uint8Array): [RawField, RawField, RawField, RawField | undefined] {
  if (bytes.length === 0 || bytes[0] !== PROTECTED_INFORMATION_FORMAT) throw new ProtectedInformationError(`expected protected information of format ${PROTECTED_INFORMATION_FORMAT}, got ${bytes.length === 0 ? 'no bytes' : `format ${bytes[0]}`}`);
  const list = fields(bytes, 1, 'protected information');
  const want = [[Field.seed, Field.serverHeldKey], [Field.counter], [Field.piv], [Field.license]] as const;
  if (list.length < 3 || list.length > want.length || list.some((entry, i) => !(want[i] as readonly number[]).includes(entry.tag))) {
    throw new ProtectedInformationError('expected the fields signing seed, counter, PIV part in that order, then at most the license container (a server-held public key in place of the seed)');
  }
  const keyName = list[0]!.tag === Field.seed ? 'the signing seed' : 'the server-held public key';
  if (list[0]!.end - list[0]!.start !== SIGNING_SEED_LENGTH) throw new ProtectedInformationError(`expected ${keyName} to be ${SIGNING_SEED_LENGTH} bytes, got ${list[0]!.end - list[0]!.start}`);
  if (list[1]!.end - list[1]!.start !== COUNTER_LENGTH) throw new ProtectedInformationError(`expected the counter to be ${COUNTER_LENGTH} bytes, got ${list[1]!.end - list[1]!.start}`);
  return [list[0]!, list[1]!, list[2]!, list[3]];
}

/** Only the signing seed, as a fresh copy the caller zeroes; a server-held card has none. */
export function readSigningSeed(bytes: Uint8Array): Uint8Array {
  const [seed] = topFields(bytes);
  if (seed.tag !== Field.seed) throw new ProtectedInformationError('the card is server-held: its signing seed stays on its VSC server, which signs for it');
  return bytes.slice(seed.start, seed.end);
}

/** Whether the card signs with the seed in its information, or its server holds the key (no copy of a secret made). */
export function readCardKind(bytes: Uint8Array): 'software' | 'server-held' {
  return topFields(bytes)[0].tag === Field.seed ? 'software' : 'server-held';
}

/** Whose key signs SIGN AND INCREMENT: the seed in the information (a copy the caller zeroes), or the server's. */
export type CardKey = { readonly kind: 'software'; readonly seed: Uint8Array } | { readonly kind: 'server-held'; readonly publicKey: Uint8Array };

export function readCardKey(bytes: Uint8Array): CardKey {
  const [key] = topFields(bytes);
  const value = bytes.slice(key.start, key.end);
  return key.tag === Field.seed ? { kind: 'software', seed: value } : { kind: 'server-held', publicKey: value };
}

/** The Ed25519 public key of the card's signing key, whichever kind it is (no seed copy outlives the call). */
export function readCardPublicKey(bytes: Uint8Array): Uint8Array {
  const key = readCardKey(bytes);
  if (key.kind === 'server-held') return key.publicKey;
  try {
    return ed25519KeyFromSeed(key.seed).publicKey;
  } finally {
    wipe(key.seed);
  }
}

export function readCounter(bytes: Uint8Array): bigint {
  const [, counter] = topFields(bytes);
  return bytesToUint(bytes.subarray(counter.start, counter.end));
}

/** Only the PIV part, decoded and checked; its buffers are fresh copies the caller wipes. */
export function readPivState(bytes: Uint8Array): PivState {
  const [, , piv] = topFields(bytes);
  return decodePivPart(bytes.subarray(piv.start, piv.end));
}

/** The license container (EMPTY_CONTAINER when the information carries none), decoded and checked. */
export function readLicenseContainer(bytes: Uint8Array): LicenseContainer {
  const [, , , license] = topFields(bytes);
  return license === undefined ? EMPTY_CONTAINER : decodeLicense(bytes, license);
}

function decodeLicense(bytes: Uint8Array, license: RawField): LicenseContainer {
  try {
    return decodeLicenseContainer(bytes.subarray(license.start, license.end));
  } catch (error) {
    throw new ProtectedInformationError(`the license container: ${(error as Error).message}`, { cause: error });
  }
}

/** The bytes the license container's field takes (header included), 0 when there is none: for capacity checks. */
export function readLicenseFieldLength(bytes: Uint8Array): number {
  const [, , , license] = topFields(bytes);
  return license === undefined ? 0 : FIELD_HEADER_LENGTH + license.end - license.start;
}

/** The bytes the field of `license` would take in the information (0 for the empty container). */
export function licenseFieldLength(license: LicenseContainer): number {
  return isEmptyLicenseContainer(license) ? 0 : FIELD_HEADER_LENGTH + encodeLicenseContainer(license).length;
}

/** The same information with the PIV part, the counter or the license container replaced; the other fields are copied unopened. */
export function updateProtectedInformation(bytes: Uint8Array, update: { readonly piv?: PivState; readonly counter?: bigint; readonly license?: LicenseContainer }): Uint8Array {
  const [key, counter, piv, license] = topFields(bytes);
  return join([
    Uint8Array.of(PROTECTED_INFORMATION_FORMAT), field(key.tag, bytes.subarray(key.start, key.end)),
    field(Field.counter, update.counter === undefined ? bytes.slice(counter.start, counter.end) : counterBytes(update.counter)),
    field(Field.piv, update.piv === undefined ? bytes.slice(piv.start, piv.end) : encodePivPart(update.piv)),
    ...(update.license !== undefined ? licenseField(update.license) : license === undefined ? [] : [field(Field.license, bytes.slice(license.start, license.end))]),
  ]);
}

/** Decodes the binary form only; decodeProtectedInformation (protected-information.ts) also reads the legacy JSON. */
export function decodeBinaryProtectedInformation(bytes: Uint8Array): ProtectedInformation {
  const [key, counter, piv, license] = topFields(bytes);
  // The container first: a refusal then leaves no copy of a PIV secret behind.
  const licensePart = license === undefined ? {} : { license: decodeLicense(bytes, license) };
  const decoded = { counter: bytesToUint(bytes.subarray(counter.start, counter.end)), piv: decodePivPart(bytes.subarray(piv.start, piv.end)), ...licensePart };
  if (key.tag === Field.seed) return { signingSeed: bytes.slice(key.start, key.end), ...decoded };
  return { signingSeed: new Uint8Array(0), serverHeldPublicKey: bytes.slice(key.start, key.end), ...decoded };
}

function exact(bytes: Uint8Array, entry: RawField | undefined, tag: number, name: string, length: number): Uint8Array {
  if (entry === undefined || entry.tag !== tag) throw new ProtectedInformationError(`PIV part: expected ${name} (field ${tag.toString(16).padStart(2, '0')}) next`);
  if (entry.end - entry.start !== length) throw new ProtectedInformationError(`PIV part: expected ${name} to be ${length} bytes, got ${entry.end - entry.start}`);
  return bytes.slice(entry.start, entry.end);
}

/** Parses and checks the PIV part as strictly as the applet needs it: lengths, PIN format, keys, tags, sizes. */
export function decodePivPart(bytes: Uint8Array): PivState {
  const list = fields(bytes, 0, 'PIV part');
  const secrets: Uint8Array[] = [];
  try {
    const pin = exact(bytes, list[0], PivField.pin, 'pin', REFERENCE_DATA_LENGTH);
    secrets.push(pin);
    if (!isValidPinReference(pin)) throw new ProtectedInformationError('PIV part: expected pin to be 6 to 8 digits padded with FF');
    const puk = exact(bytes, list[1], PivField.puk, 'puk', REFERENCE_DATA_LENGTH);
    secrets.push(puk);
    if (!isValidPukReference(puk)) throw new ProtectedInformationError('PIV part: expected puk to be 6 to 8 bytes padded with FF');
    const pinRetriesLeft = exact(bytes, list[2], PivField.pinRetries, 'pinRetriesLeft', 1)[0]!;
    if (pinRetriesLeft > PIN_MAX_RETRIES) throw new ProtectedInformationError(`PIV part: expected pinRetriesLeft to be 0..${PIN_MAX_RETRIES}, got ${pinRetriesLeft}`);
    const pukRetriesLeft = exact(bytes, list[3], PivField.pukRetries, 'pukRetriesLeft', 1)[0]!;
    if (pukRetriesLeft > PUK_MAX_RETRIES) throw new ProtectedInformationError(`PIV part: expected pukRetriesLeft to be 0..${PUK_MAX_RETRIES}, got ${pukRetriesLeft}`);
    const code = exact(bytes, list[4], PivField.algorithm, 'managementKey.algorithm', 1)[0]!;
    const algorithm = ALGORITHM_CODES.find(([known]) => known === code)?.[1];
    if (algorithm === undefined) throw new ProtectedInformationError(`PIV part: expected managementKey.algorithm 01 (3des) or 02 (aes128), got ${code}`);
    const key = exact(bytes, list[5], PivField.managementKey, 'managementKey.key', blockCipherKeyLength(algorithm));
    secrets.push(key);

    const keys = new Map<PivKeySlot, PivKeyPair>();
    const dataObjects = new Map<number, Uint8Array>();
    let index = 6;
    for (; index < list.length && list[index]!.tag === PivField.keyPair; index++) {
      const value = exact(bytes, list[index], PivField.keyPair, 'a key pair', KEY_PAIR_LENGTH);
      const slot = value[0]!;
      const privateKey = value.slice(1, 1 + P256_PRIVATE_KEY_LENGTH);
      wipe(value);
      secrets.push(privateKey);
      const publicKey = bytes.slice(list[index]!.start + 1 + P256_PRIVATE_KEY_LENGTH, list[index]!.end);
      if (!isPivKeySlot(slot)) throw new ProtectedInformationError(`PIV part: expected a key in slot 9a, 9c, 9d or 9e, got ${slot.toString(16)}`);
      const name = `keys.${slot.toString(16)}`;
      if (keys.has(slot) || [...keys.keys()].some((earlier) => earlier > slot)) throw new ProtectedInformationError(`PIV part: expected ${name} once, in slot order`);
      if (!isValidP256PrivateKey(privateKey)) throw new ProtectedInformationError(`PIV part: expected ${name}.privateKey to be a P-256 scalar in 1..n-1`);
      if (!bytesEqual(p256DerivePublicKey(privateKey), publicKey)) throw new ProtectedInformationError(`PIV part: expected ${name}.publicKey to be the public key of ${name}.privateKey`);
      keys.set(slot, { privateKey, publicKey });
    }
    for (; index < list.length && list[index]!.tag === PivField.dataObject; index++) {
      const entry = list[index]!;
      if (entry.end - entry.start < 3) throw new ProtectedInformationError('PIV part: expected a data object to start with its 3-byte tag');
      const tag = Number(bytesToUint(bytes.subarray(entry.start, entry.start + 3)));
      if (!isValidTag(tag)) throw new ProtectedInformationError('PIV part: expected data objects named by BER-TLV tags');
      const name = `dataObjects.${formatTag(tag).toLowerCase()}`;
      if ([...dataObjects.keys()].some((earlier) => earlier >= tag)) throw new ProtectedInformationError(`PIV part: expected ${name} once, in tag order`);
      const content = bytes.slice(entry.start + 3, entry.end);
      if (content.length > MAX_DATA_OBJECT_LENGTH) throw new ProtectedInformationError(`PIV part: expected ${name} to be at most ${MAX_DATA_OBJECT_LENGTH} bytes, got ${content.length}`);
      if (tag === PivTag.DISCOVERY && !isWholeDiscoveryObject(content)) throw new ProtectedInformationError('PIV part: expected dataObjects.7e to be one whole 7E data object');
      dataObjects.set(tag, content);
    }
    if (index !== list.length) throw new ProtectedInformationError(`PIV part: unexpected field ${list[index]!.tag.toString(16).padStart(2, '0')}`);
    return { pin, puk, pinRetriesLeft, pukRetriesLeft, managementKey: { algorithm, key }, keys, dataObjects };
  } catch (error) {
    wipe(...secrets); // a refused part leaves no copies of its secrets behind
    throw error;
  }
}
