// The PIV part of a card's protected information (DESIGN.md "Keys and secrets"): PIN, PUK and their
// retry counters (SP 800-73-4 Part 2 3.2.1-3.2.3), the card management key (9B), the P-256 keys
// (Part 1 table 4b) and the data objects. Its codec (binary) and a new card's personalisation are in src/card.
import { wipe } from '../../bytes/index.js';
import type { BlockCipherAlgorithm } from '../../crypto/index.js';
import { VscError } from '../../errors/index.js';
import { decodeTlv } from '../ber-tlv.js';
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

/** The discovery object is kept with its own 7E header (GET DATA answers it unwrapped). */
export function isWholeDiscoveryObject(content: Uint8Array): boolean {
  try {
    const object = decodeTlv(content);
    return object.tag === PivTag.DISCOVERY && object.end === content.length;
  } catch {
    return false;
  }
}
