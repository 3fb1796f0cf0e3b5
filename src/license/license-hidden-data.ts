// Hidden data handed out only encrypted to its licensor (Wibu 000 §2.7 "HiddenData PIO is Encrypted"): the card seals
// a product item's hidden data to the licensor's Ed25519 key taken as X25519 (RFC 7748 4.1), binding the card's
// serial, the firm code, the product code and the firm update counter, so a box read from one card, item or update
// state opens for no other. Associated data: UTF-8(serial) ‖ firm code (4) ‖ product code (4) ‖ update counter (8).
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { ed25519PublicKeyToX25519, ed25519SeedToX25519, openSealedBox, sealToPublicKey } from '../crypto/index.js';
import { encodeUint } from './license-field-codec.js';
import { LicenseError } from './license-error.js';

export const HIDDEN_DATA_PURPOSE = 'license-hidden-data';

/** Where a box of hidden data was read: every part must match for it to open. */
export interface HiddenDataContext {
  readonly serial: string;
  readonly firmCode: number;
  readonly productCode: number;
  /** The firm item's update counter when the box was read. */
  readonly updateCounter: number;
}

export function hiddenDataAssociatedData(context: HiddenDataContext): Uint8Array {
  return concatBytes(utf8(context.serial), encodeUint(context.firmCode, 4), encodeUint(context.productCode, 4), encodeUint(context.updateCounter, 8));
}

/** The card's side (READ HIDDEN): `hiddenData` sealed to the licensor's Ed25519 public key. */
export function sealHiddenData(licensorKey: Uint8Array, context: HiddenDataContext, hiddenData: Uint8Array): Uint8Array {
  let recipient: Uint8Array;
  try {
    recipient = ed25519PublicKeyToX25519(licensorKey);
    return sealToPublicKey(recipient, HIDDEN_DATA_PURPOSE, hiddenDataAssociatedData(context), hiddenData);
  } catch (cause) {
    throw new LicenseError('input', 'hidden data: the licensor key cannot receive sealed data (not a usable Ed25519 key)', { cause });
  }
}

/** The licensor's side: opens a box with the seed of its Ed25519 key, or throws LicenseError 'input'. */
export function openHiddenData(licensorSeed: Uint8Array, context: HiddenDataContext, box: Uint8Array): Uint8Array {
  const privateKey = ed25519SeedToX25519(licensorSeed);
  try {
    const opened = openSealedBox(privateKey, HIDDEN_DATA_PURPOSE, hiddenDataAssociatedData(context), box);
    if (opened === undefined) throw new LicenseError('input', 'hidden data: the box does not open for this licensor, card, item and update counter');
    return opened;
  } finally {
    wipe(privateKey);
  }
}
