// The PIV part of a card's protected information (DESIGN.md "Keys and secrets"): PIN, PUK and their
// retry counters (SP 800-73-4 Part 2 3.2.1-3.2.3), the card management key (9B), the P-256 keys
// (Part 1 table 4b) and the data objects, and its JSON codec. A new card's personalisation is in src/card.
import { fromHex, toHex, wipe } from '../../bytes/index.js';
import { blockCipherKeyLength, isBlockCipherAlgorithm, type BlockCipherAlgorithm, isValidP256PrivateKey, p256DerivePublicKey, P256_PRIVATE_KEY_LENGTH, P256_PUBLIC_KEY_LENGTH } from '../../crypto/index.js';
import { VscError } from '../../errors/index.js';
import { decodeTlv, formatTag, isValidTag } from '../ber-tlv.js';
import { PivTag } from './piv-data-objects.js';

/** Asymmetric key references of the applet (Part 1 table 4b). */
export const PIV_KEY_SLOTS = [0x9a, 0x9c, 0x9d, 0x9e] as const;
export type PivKeySlot = (typeof PIV_KEY_SLOTS)[number];

export const PIN_MAX_RETRIES = 3;
export const PUK_MAX_RETRIES = 3;
/** PIN and PUK reference data are 8 bytes, padded with FF (Part 2 3.2.1). */
export const REFERENCE_DATA_LENGTH = 8;
/** Largest data object content the card stores (a certificate container with room to spare). */
export const MAX_DATA_OBJECT_LENGTH = 16_384;

export type ManagementKeyAlgorithm = BlockCipherAlgorithm;

export interface ManagementKey {
  algorithm: ManagementKeyAlgorithm;
  key: Uint8Array;
}

export interface PivKeyPair {
  /** 32-byte scalar. */
  privateKey: Uint8Array;
  /** 65-byte uncompressed point. */
  publicKey: Uint8Array;
}

export interface PivState {
  /** 8-byte reference data: 6 to 8 ASCII digits, FF-padded. */
  pin: Uint8Array;
  /** 8-byte reference data: 6 to 8 bytes, FF-padded. */
  puk: Uint8Array;
  pinRetriesLeft: number;
  pukRetriesLeft: number;
  managementKey: ManagementKey;
  keys: Map<PivKeySlot, PivKeyPair>;
  /** Tag → container content (for the discovery object 7E: the whole 7E object). */
  dataObjects: Map<number, Uint8Array>;
}

/** A PIV state that fails validation; the message names the field, never its secret value. */
export class PivStateError extends VscError {
  override readonly name = 'PivStateError';
  constructor(message: string) {
    super('piv.state', message);
  }
}

export function isPivKeySlot(value: number): value is PivKeySlot {
  return (PIV_KEY_SLOTS as readonly number[]).includes(value);
}

/** Reference data without its FF padding. */
function unpadded(reference: Uint8Array): Uint8Array {
  let end = reference.length;
  while (end > 0 && reference[end - 1] === 0xff) end--;
  return reference.subarray(0, end);
}

/** Part 2 3.2.1 / Part 1 2.4.3: 6 to 8 digits 0-9, then FF padding to 8 bytes. */
export function isValidPinReference(reference: Uint8Array): boolean {
  if (reference.length !== REFERENCE_DATA_LENGTH) return false;
  const value = unpadded(reference);
  if (value.length < 6) return false;
  for (const byte of value) if (byte < 0x30 || byte > 0x39) return false;
  return true;
}

/** PUK: 6 to 8 bytes of any value other than trailing FF, then FF padding to 8 bytes. */
export function isValidPukReference(reference: Uint8Array): boolean {
  return reference.length === REFERENCE_DATA_LENGTH && unpadded(reference).length >= 6;
}

/** FF-pads a PIN or PUK given as text to its 8-byte reference data. */
export function padReferenceData(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  if (bytes.length > REFERENCE_DATA_LENGTH) throw new PivStateError(`expected at most ${REFERENCE_DATA_LENGTH} bytes of PIN or PUK, got ${bytes.length}`);
  const out = new Uint8Array(REFERENCE_DATA_LENGTH).fill(0xff);
  out.set(bytes, 0);
  bytes.fill(0);
  return out;
}

export function clonePivState(state: PivState): PivState {
  return {
    pin: state.pin.slice(),
    puk: state.puk.slice(),
    pinRetriesLeft: state.pinRetriesLeft,
    pukRetriesLeft: state.pukRetriesLeft,
    managementKey: { algorithm: state.managementKey.algorithm, key: state.managementKey.key.slice() },
    keys: new Map([...state.keys].map(([slot, pair]) => [slot, { privateKey: pair.privateKey.slice(), publicKey: pair.publicKey.slice() }])),
    dataObjects: new Map([...state.dataObjects].map(([tag, content]) => [tag, content.slice()])),
  };
}

/** Zeroes the secrets of a state nobody uses any more: PIN, PUK, management key, private keys. */
export function wipePivSecrets(state: PivState): void {
  wipe(state.pin, state.puk, state.managementKey.key, ...[...state.keys.values()].map((pair) => pair.privateKey));
}

// ---- JSON codec ------------------------------------------------------------------------------

/** The JSON form: hex strings, decimal numbers, slot and tag keys in lower-case hex. */
export interface EncodedPivState {
  pin: string;
  puk: string;
  pinRetriesLeft: number;
  pukRetriesLeft: number;
  managementKey: { algorithm: ManagementKeyAlgorithm; key: string };
  keys: Record<string, { privateKey: string; publicKey: string }>;
  dataObjects: Record<string, string>;
}

export function encodePivState(state: PivState): EncodedPivState {
  const keys: Record<string, { privateKey: string; publicKey: string }> = {};
  for (const slot of PIV_KEY_SLOTS) {
    const pair = state.keys.get(slot);
    if (pair !== undefined) keys[slot.toString(16)] = { privateKey: toHex(pair.privateKey), publicKey: toHex(pair.publicKey) };
  }
  const dataObjects: Record<string, string> = {};
  for (const tag of [...state.dataObjects.keys()].sort((a, b) => a - b)) {
    dataObjects[formatTag(tag).toLowerCase()] = toHex(state.dataObjects.get(tag)!);
  }
  return {
    pin: toHex(state.pin),
    puk: toHex(state.puk),
    pinRetriesLeft: state.pinRetriesLeft,
    pukRetriesLeft: state.pukRetriesLeft,
    managementKey: { algorithm: state.managementKey.algorithm, key: toHex(state.managementKey.key) },
    keys,
    dataObjects,
  };
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `a string of ${value.length} characters` : `a ${typeof value}`;
}

/** A JSON key for an error message: short or alphabetic names as they are, others only by length (they might be secret). */
function quoteName(name: string): string {
  return name.length <= 8 || /^[A-Za-z_]{1,40}$/.test(name) ? JSON.stringify(name) : `a name of ${name.length} characters`;
}

function expectObject(value: unknown, path: string, fields?: readonly string[]): JsonObject {
  if (!isObject(value)) throw new PivStateError(`expected ${path} to be an object, got ${kind(value)}`);
  if (fields !== undefined) {
    for (const field of fields) if (!(field in value)) throw new PivStateError(`expected ${path}.${field}, got none`);
    for (const field of Object.keys(value)) {
      if (!fields.includes(field)) throw new PivStateError(`expected only ${fields.join(', ')} in ${path}, got ${quoteName(field)}`);
    }
  }
  return value;
}

/** Hex of an exact byte length (or a range); the error never quotes the string, which may be secret. */
function expectHex(value: unknown, path: string, min: number, max = min): Uint8Array {
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value)) {
    throw new PivStateError(`expected ${path} to be lower-case hex, got ${kind(value)}`);
  }
  const length = value.length / 2;
  if (length < min || length > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new PivStateError(`expected ${path} to be ${want} bytes, got ${length}`);
  }
  return fromHex(value);
}

function expectRetries(value: unknown, path: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new PivStateError(`expected ${path} to be an integer 0..${max}, got ${typeof value === 'number' ? value : kind(value)}`);
  }
  return value;
}

/** The discovery object is kept with its own 7E header (GET DATA answers it unwrapped). */
export function isWholeDiscoveryObject(content: Uint8Array): boolean {
  try {
    const object = decodeTlv(content);
    return object.tag === PivTag.DISCOVERY && object.end === content.length;
  } catch {
    return false;
  }
}

const STATE_FIELDS = ['pin', 'puk', 'pinRetriesLeft', 'pukRetriesLeft', 'managementKey', 'keys', 'dataObjects'] as const;

/** Parses and checks every field of the JSON form; throws PivStateError naming the first problem. */
export function decodePivState(json: unknown): PivState {
  const root = expectObject(json, 'PIV state', STATE_FIELDS);
  const pin = expectHex(root['pin'], 'pin', REFERENCE_DATA_LENGTH);
  if (!isValidPinReference(pin)) throw new PivStateError('expected pin to be 6 to 8 digits padded with FF');
  const puk = expectHex(root['puk'], 'puk', REFERENCE_DATA_LENGTH);
  if (!isValidPukReference(puk)) throw new PivStateError('expected puk to be 6 to 8 bytes padded with FF');
  const pinRetriesLeft = expectRetries(root['pinRetriesLeft'], 'pinRetriesLeft', PIN_MAX_RETRIES);
  const pukRetriesLeft = expectRetries(root['pukRetriesLeft'], 'pukRetriesLeft', PUK_MAX_RETRIES);

  const mk = expectObject(root['managementKey'], 'managementKey', ['algorithm', 'key']);
  const algorithm = mk['algorithm'];
  if (!isBlockCipherAlgorithm(algorithm)) {
    throw new PivStateError(`expected managementKey.algorithm "3des" or "aes128", got ${typeof algorithm === 'string' ? quoteName(algorithm) : kind(algorithm)}`);
  }
  const managementKey = { algorithm, key: expectHex(mk['key'], 'managementKey.key', blockCipherKeyLength(algorithm)) };

  const keys = new Map<PivKeySlot, PivKeyPair>();
  for (const [name, value] of Object.entries(expectObject(root['keys'], 'keys'))) {
    const slot = /^9[acde]$/.test(name) ? Number.parseInt(name, 16) : NaN;
    if (!isPivKeySlot(slot)) throw new PivStateError(`expected keys to be named 9a, 9c, 9d or 9e, got ${quoteName(name)}`);
    const pair = expectObject(value, `keys.${name}`, ['privateKey', 'publicKey']);
    const privateKey = expectHex(pair['privateKey'], `keys.${name}.privateKey`, P256_PRIVATE_KEY_LENGTH);
    const publicKey = expectHex(pair['publicKey'], `keys.${name}.publicKey`, P256_PUBLIC_KEY_LENGTH);
    if (!isValidP256PrivateKey(privateKey)) throw new PivStateError(`expected keys.${name}.privateKey to be a P-256 scalar in 1..n-1`);
    const derived = p256DerivePublicKey(privateKey);
    if (toHex(derived) !== toHex(publicKey)) throw new PivStateError(`expected keys.${name}.publicKey to be the public key of keys.${name}.privateKey`);
    keys.set(slot, { privateKey, publicKey });
  }

  const dataObjects = new Map<number, Uint8Array>();
  for (const [name, value] of Object.entries(expectObject(root['dataObjects'], 'dataObjects'))) {
    const tag = /^(?:[0-9a-f]{2}){1,3}$/.test(name) ? Number.parseInt(name, 16) : NaN;
    if (!isValidTag(tag) || formatTag(tag).toLowerCase() !== name) {
      throw new PivStateError(`expected dataObjects to be named by BER-TLV tags in lower-case hex, got ${quoteName(name)}`);
    }
    const content = expectHex(value, `dataObjects.${name}`, 0, MAX_DATA_OBJECT_LENGTH);
    if (tag === PivTag.DISCOVERY && !isWholeDiscoveryObject(content)) {
      throw new PivStateError('expected dataObjects.7e to be one whole 7E data object');
    }
    dataObjects.set(tag, content);
  }
  return { pin, puk, pinRetriesLeft, pukRetriesLeft, managementKey, keys, dataObjects };
}
