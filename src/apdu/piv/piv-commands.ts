// The PIV command vocabulary of NIST SP 800-73-4 Part 2 as the applet reads it: instruction codes,
// key references, algorithm identifiers (SP 800-78-4), the tags of command data, which containers
// may be read without the PIN or written at all, and the parsing of command data, where anything
// that does not parse is 6A80.
import type { BlockCipherAlgorithm } from '../../crypto/index.js';
import { TlvFormatError, decodeTlvList, type Tlv } from '../ber-tlv.js';
import { SW, SwError } from '../status-words.js';
import { PivTag, parseDynamicAuthenticationTemplate } from './piv-data-objects.js';

/** Instructions of SP 800-73-4 Part 2 table 2 that this applet implements. */
export const PivIns = {
  VERIFY: 0x20,
  CHANGE_REFERENCE_DATA: 0x24,
  RESET_RETRY_COUNTER: 0x2c,
  GENERATE_ASYMMETRIC_KEY_PAIR: 0x47,
  GENERAL_AUTHENTICATE: 0x87,
  GET_DATA: 0xcb,
  PUT_DATA: 0xdb,
  /**
   * SET MANAGEMENT KEY: SP 800-73-4 leaves changing the card management key to the vendor; this is
   * the YubiKey command that yubico-piv-tool --action set-mgm-key sends (P1 FF, P2 FF or FE for
   * "touch", ignored here; data: algorithm, 9B, key length, key).
   */
  SET_MANAGEMENT_KEY: 0xff,
} as const;

/** Key references (Part 1 table 4b). */
export const PIN_REF = 0x80;
export const PUK_REF = 0x81;
export const MANAGEMENT_KEY_REF = 0x9b;

/** Algorithm identifiers (SP 800-78-4 table 6-2). */
const ALG_3DES_LEGACY = 0x00;
const ALG_3DES = 0x03;
const ALG_AES128 = 0x08;
export const ALG_P256 = 0x11;

/** Dynamic authentication template tags (Part 2 table 7). */
export const TAG_WITNESS = 0x80;
export const TAG_CHALLENGE = 0x81;
export const TAG_RESPONSE = 0x82;
export const TAG_EXPONENTIATION = 0x85;

/** GET DATA / PUT DATA: P1 P2 = 3F FF, 5C tag list, 53 data (Part 2 3.1.2, 3.3.1). */
export const DATA_P1P2 = 0x3fff;
export const TAG_LIST = 0x5c;
export const DATA_FIELD = 0x53;
/** GENERATE ASYMMETRIC KEY PAIR control reference template and its algorithm (Part 2 table 10). */
export const TAG_CONTROL_TEMPLATE = 0xac;
export const TAG_ALGORITHM = 0x80;

/** Longest digest GENERAL AUTHENTICATE signs (SHA-512); longer input is not a digest. */
export const MAX_DIGEST_LENGTH = 64;

/** Objects that only a verified PIN may read (Part 1 table 3); the rest are always readable. */
export const PIN_PROTECTED_OBJECTS: ReadonlySet<number> = new Set([
  PivTag.FINGERPRINTS,
  PivTag.FACIAL,
  PivTag.PRINTED_INFO,
  PivTag.IRIS,
  0x5fc123, // pairing code reference data container
]);

export function wrongData(message: string): SwError {
  return new SwError(SW.WRONG_DATA, message);
}

/** BER-TLV from the command data; what does not parse is 6A80. */
export function decodeData(data: Uint8Array): Tlv[] {
  try {
    return decodeTlvList(data);
  } catch (error) {
    if (error instanceof TlvFormatError) throw wrongData(error.message);
    throw error;
  }
}

export function parseTemplate(data: Uint8Array): Map<number, Uint8Array> {
  try {
    return parseDynamicAuthenticationTemplate(data);
  } catch (error) {
    if (error instanceof TlvFormatError) throw wrongData(error.message);
    throw error;
  }
}

export function tagFromBytes(bytes: Uint8Array): number {
  if (bytes.length < 1 || bytes.length > 3) throw wrongData(`expected a tag of 1 to 3 bytes in 5C, got ${bytes.length}`);
  let tag = 0;
  for (const byte of bytes) tag = (tag << 8) | byte;
  return tag;
}

/** Containers PUT DATA may write: the PIV range 5FC101-5FC123, discovery, BIT group, vendor 5FFFxx. */
export function isWritableTag(tag: number): boolean {
  return (
    tag === PivTag.DISCOVERY || tag === 0x7f61 || (tag >= 0x5fc101 && tag <= 0x5fc123) || (tag >= 0x5fff00 && tag <= 0x5fff15)
  );
}

export function managementAlgorithmOf(p1: number): BlockCipherAlgorithm | undefined {
  if (p1 === ALG_3DES || p1 === ALG_3DES_LEGACY) return '3des';
  if (p1 === ALG_AES128) return 'aes128';
  return undefined;
}
