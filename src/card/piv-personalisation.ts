// The personalisation of a new card's PIV applet (DESIGN.md "The PIV applet"): PIN, PUK, management key,
// P-256 keys with self-signed certificates in 9A and 9C, CHUID, CCC, discovery object and key history.
// It lives beside the applets, not in them, so the APDU layer does not depend on X.509.
import { randomBytes } from 'node:crypto';
import {
  CERT_TAG_OF_SLOT, PIN_MAX_RETRIES, PUK_MAX_RETRIES, PivStateError, PivTag, buildCcc, buildCertificateObject,
  buildChuid, buildDiscoveryObject, buildKeyHistory, isValidPinReference, isValidPukReference, padReferenceData,
  type ManagementKey, type PivKeyPair, type PivKeySlot, type PivState,
} from '../apdu/index.js';
import { fromHex } from '../bytes/index.js';
import { blockCipherKeyLength, isBlockCipherAlgorithm, p256GenerateKey } from '../crypto/index.js';
import { selfSignedCertificate } from '../x509/index.js';

/** The management key every PIV card ships with (the well-known 3DES default, 0102...08 three times). */
export const DEFAULT_MANAGEMENT_KEY_HEX = '010203040506070801020304050607080102030405060708';
export const DEFAULT_PIN = '123456';
export const DEFAULT_PUK = '12345678';

export interface PersonalisePivOptions {
  pin?: string;
  puk?: string;
  managementKey?: ManagementKey;
  /** CHUID expiration date YYYYMMDD; defaults to ten years from today. */
  expiry?: string;
}

/** GSC-RID (A0 00 00 01 16), manufacturer FF (unregistered), card type 02 (Java Card), then 14 random bytes. */
function newCardIdentifier(): Uint8Array {
  const out = new Uint8Array(21);
  out.set([0xa0, 0x00, 0x00, 0x01, 0x16, 0xff, 0x02], 0);
  out.set(randomBytes(14), 7);
  return out;
}

function tenYearsFromNow(): string {
  const date = new Date();
  date.setUTCFullYear(date.getUTCFullYear() + 10);
  return date.toISOString().slice(0, 10).replaceAll('-', '');
}

/** Certificate subjects of the personalised keys (SP 800-73-4 key names). */
const PERSONALISED_SLOTS: ReadonlyArray<[PivKeySlot, string]> = [
  [0x9a, 'PIV Authentication'],
  [0x9c, 'Digital Signature'],
];

/**
 * A new card as DESIGN.md describes it: PIN 123456, PUK 12345678, the default 3DES management key,
 * fresh P-256 keys with self-signed certificates in 9A and 9C, CHUID with a random GUID, CCC,
 * discovery object and key history.
 */
export function personalisePiv(options: PersonalisePivOptions = {}): PivState {
  const pin = padReferenceData(options.pin ?? DEFAULT_PIN);
  if (!isValidPinReference(pin)) throw new PivStateError('expected a PIN of 6 to 8 digits');
  const puk = padReferenceData(options.puk ?? DEFAULT_PUK);
  if (!isValidPukReference(puk)) throw new PivStateError('expected a PUK of 6 to 8 bytes');
  const managementKey = options.managementKey ?? { algorithm: '3des', key: fromHex(DEFAULT_MANAGEMENT_KEY_HEX) };
  if (!isBlockCipherAlgorithm(managementKey.algorithm) || managementKey.key.length !== blockCipherKeyLength(managementKey.algorithm)) {
    throw new PivStateError(`expected a 3des (24-byte) or aes128 (16-byte) management key, got ${String(managementKey.algorithm)} with ${managementKey.key.length} bytes`);
  }

  const keys = new Map<PivKeySlot, PivKeyPair>();
  const dataObjects = new Map<number, Uint8Array>();
  for (const [slot, subjectCommonName] of PERSONALISED_SLOTS) {
    const pair = p256GenerateKey();
    keys.set(slot, { privateKey: pair.privateKey, publicKey: pair.publicKey });
    const certificate = selfSignedCertificate({ privateKey: pair.privateKey, subjectCommonName });
    dataObjects.set(CERT_TAG_OF_SLOT.get(slot)!, buildCertificateObject(certificate));
  }
  dataObjects.set(PivTag.CHUID, buildChuid(Uint8Array.from(randomBytes(16)), options.expiry ?? tenYearsFromNow()));
  dataObjects.set(PivTag.CCC, buildCcc(newCardIdentifier()));
  dataObjects.set(PivTag.DISCOVERY, buildDiscoveryObject());
  dataObjects.set(PivTag.KEY_HISTORY, buildKeyHistory());

  return {
    pin,
    puk,
    pinRetriesLeft: PIN_MAX_RETRIES,
    pukRetriesLeft: PUK_MAX_RETRIES,
    managementKey: { algorithm: managementKey.algorithm, key: managementKey.key.slice() },
    keys,
    dataObjects,
  };
}
