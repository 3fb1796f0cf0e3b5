// The JSON form of the PIV state that cards were sealed and state files written in before the binary
// codec (protected-information-codec.ts). It is read once per card to migrate it, and written only by
// the tests of that migration: the one place where a card's secrets still pass through hex strings.
import {
  MAX_DATA_OBJECT_LENGTH, PIN_MAX_RETRIES, PIV_KEY_SLOTS, PUK_MAX_RETRIES, PivStateError, PivTag, REFERENCE_DATA_LENGTH, formatTag, isPivKeySlot,
  isValidPinReference, isValidPukReference, isValidTag, isWholeDiscoveryObject, type ManagementKeyAlgorithm, type PivKeyPair, type PivKeySlot,
  type PivState,
} from '../apdu/index.js';
import { fromHex, toHex } from '../bytes/index.js';
import { blockCipherKeyLength, isBlockCipherAlgorithm, isValidP256PrivateKey, p256DerivePublicKey, P256_PRIVATE_KEY_LENGTH, P256_PUBLIC_KEY_LENGTH } from '../crypto/index.js';

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
