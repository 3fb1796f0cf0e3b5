// The licensor's word that a container's card is a given card (DESIGN.md "License containers"; the trust root of a
// program, as the keyfile is for rental, patent 003 [0044], [0058]): a program does not trust the local process that
// reaches the card, so it checks every record the card signs for it against a card key its licensor vouched for.
// File form, UTF-8 JSON: {"format": "vsc-license-card/1", "serial", "cardPublicKey": 64 hex, "keyMode": "individual" |
// "universal", "licensorKey": 64 hex, "signature": 128 hex}; the licensor signs
//   "vsc-license-card/1\n" ‖ len(serial) (4, big-endian) ‖ serial (UTF-8) ‖ cardPublicKey (32) ‖ keyMode (1: 00 | 01).
import type { VscKeyMode } from '../apdu/index.js';
import { bytesEqual, concatBytes, fromHex, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify, type Ed25519SigningKey } from '../crypto/index.js';
import { LicenseError } from './license-error.js';

export const CARD_BINDING_FORMAT = 'vsc-license-card/1';
const MAX_SERIAL_BYTES = 128;

export interface CardBinding {
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
  readonly licensorKey: Uint8Array;
  readonly signature: Uint8Array;
}

function signedBytes(serial: string, cardPublicKey: Uint8Array, keyMode: VscKeyMode): Uint8Array {
  const serialBytes = utf8(serial);
  return concatBytes(utf8(`${CARD_BINDING_FORMAT}\n`), uintToBytes(BigInt(serialBytes.length), 4), serialBytes, cardPublicKey, Uint8Array.of(keyMode === 'universal' ? 1 : 0));
}

function checkFields(serial: string, cardPublicKey: Uint8Array): void {
  if (serial.length === 0 || utf8(serial).length > MAX_SERIAL_BYTES) throw new LicenseError('input', `card binding: expected a serial of 1..${MAX_SERIAL_BYTES} bytes`);
  if (cardPublicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new LicenseError('input', `card binding: expected a ${ED25519_PUBLIC_KEY_LENGTH}-byte card key, got ${cardPublicKey.length}`);
}

export function signCardBinding(licensor: Ed25519SigningKey, card: { readonly serial: string; readonly cardPublicKey: Uint8Array; readonly keyMode: VscKeyMode }): CardBinding {
  checkFields(card.serial, card.cardPublicKey);
  const signature = licensor.sign(signedBytes(card.serial, card.cardPublicKey, card.keyMode));
  return { serial: card.serial, cardPublicKey: card.cardPublicKey.slice(), keyMode: card.keyMode, licensorKey: licensor.publicKey.slice(), signature };
}

/** Throws LicenseError 'signature' unless `binding` is signed by `licensorKey` (the key the program carries). */
export function verifyCardBinding(binding: CardBinding, licensorKey: Uint8Array): void {
  if (!bytesEqual(binding.licensorKey, licensorKey)) throw new LicenseError('signature', 'the card binding is signed by another licensor than the program\'s');
  if (!ed25519Verify(licensorKey, signedBytes(binding.serial, binding.cardPublicKey, binding.keyMode), binding.signature)) {
    throw new LicenseError('signature', `the card binding for card ${binding.serial} does not verify under the licensor's key`);
  }
}

export function encodeCardBinding(binding: CardBinding): string {
  return JSON.stringify({
    format: CARD_BINDING_FORMAT, serial: binding.serial, cardPublicKey: toHex(binding.cardPublicKey), keyMode: binding.keyMode,
    licensorKey: toHex(binding.licensorKey), signature: toHex(binding.signature),
  });
}

export function parseCardBinding(text: string): CardBinding {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LicenseError('input', 'card binding: not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LicenseError('input', 'card binding: expected a JSON object');
  const record = value as Record<string, unknown>;
  const keys = ['format', 'serial', 'cardPublicKey', 'keyMode', 'licensorKey', 'signature'];
  if (Object.keys(record).length !== keys.length || keys.some((key) => !(key in record))) throw new LicenseError('input', `card binding: expected exactly the fields ${keys.join(', ')}`);
  if (record['format'] !== CARD_BINDING_FORMAT) throw new LicenseError('input', `card binding: expected format ${CARD_BINDING_FORMAT}`);
  if (typeof record['serial'] !== 'string') throw new LicenseError('input', 'card binding: expected serial to be a string');
  if (record['keyMode'] !== 'individual' && record['keyMode'] !== 'universal') throw new LicenseError('input', 'card binding: expected keyMode individual or universal');
  const hexField = (name: string, length: number): Uint8Array => {
    const field = record[name];
    if (typeof field !== 'string' || !new RegExp(`^[0-9a-f]{${length * 2}}$`).test(field)) throw new LicenseError('input', `card binding: expected ${name} as ${length * 2} lowercase hex digits`);
    return fromHex(field);
  };
  const binding = {
    serial: record['serial'], cardPublicKey: hexField('cardPublicKey', ED25519_PUBLIC_KEY_LENGTH), keyMode: record['keyMode'],
    licensorKey: hexField('licensorKey', ED25519_PUBLIC_KEY_LENGTH), signature: hexField('signature', ED25519_SIGNATURE_LENGTH),
  } as const;
  checkFields(binding.serial, binding.cardPublicKey);
  return binding;
}
