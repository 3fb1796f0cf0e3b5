// PIV data objects and templates, NIST SP 800-73-4 Part 1 section 3 (containers, tables 8-9 and on) and
// Part 2 section 3 (table 3 application property template, table 7 dynamic authentication template).
import { p256 } from '@noble/curves/nist.js';
import { concatBytes } from '../../bytes/index.js';
import { TlvFormatError, decodeTlv, decodeTlvList, encodeConstructed, encodeTlv, formatTag } from '../ber-tlv.js';

/** The PIV card application AID with its version (Part 1 section 2.2): RID A000000308, PIX 00001000 0100. */
export const PIV_AID: Uint8Array = Uint8Array.of(
  0xa0, 0x00, 0x00, 0x03, 0x08, // RID of NIST
  0x00, 0x00, 0x10, 0x00, // PIX: PIV card application
  0x01, 0x00, // version 01.00
);

/** The RID alone: the coexistent tag allocation authority of the APT (Part 2 table 3). */
const NIST_RID = PIV_AID.subarray(0, 5);

/** BER-TLV tags of the PIV data objects (Part 1 section 3, table 3). */
export const PivTag = {
  CCC: 0x5fc107,
  CHUID: 0x5fc102,
  DISCOVERY: 0x7e,
  KEY_HISTORY: 0x5fc10c,
  CERT_9A: 0x5fc105,
  CERT_9C: 0x5fc10a,
  CERT_9D: 0x5fc10b,
  CERT_9E: 0x5fc101,
  FINGERPRINTS: 0x5fc103,
  SECURITY: 0x5fc106,
  FACIAL: 0x5fc108,
  PRINTED_INFO: 0x5fc109,
  IRIS: 0x5fc121,
} as const;
export type PivTag = (typeof PivTag)[keyof typeof PivTag];

/** Key reference → the data object holding its certificate (Part 1 table 3 and table 4b). */
export const CERT_TAG_OF_SLOT: ReadonlyMap<number, number> = new Map([
  [0x9a, PivTag.CERT_9A], // PIV Authentication
  [0x9c, PivTag.CERT_9C], // Digital Signature
  [0x9d, PivTag.CERT_9D], // Key Management
  [0x9e, PivTag.CERT_9E], // Card Authentication
]);

/** Tag of every container's content when read with GET DATA (Part 2 section 3.1.2). */
const DATA_TAG = 0x53;
/** Error detection code: always present and always empty (Part 1 section 3.1). */
const EMPTY_EDC = Uint8Array.of(0xfe, 0x00); // FE: error detection code, L=0

const APPLICATION_LABEL = 'VSC PIV';

/** Algorithm identifiers the applet announces (Part 2 table 3, SP 800-78-4 section 6). */
const ALGORITHMS = [0x03, 0x08, 0x0a, 0x0c, 0x11, 0x14] as const; // 3DES, AES-128, -192, -256, ECC P-256, P-384

function tlv(tag: number, ...value: number[]): Uint8Array {
  return encodeTlv(tag, Uint8Array.from(value));
}

/** The application property template answered to SELECT (Part 2 section 3.1.1, table 3). */
export function buildApplicationPropertyTemplate(): Uint8Array {
  return encodeConstructed(0x61, [
    encodeTlv(0x4f, PIV_AID.subarray(5)), // 4F: PIX with version, 00 00 10 00 01 00
    encodeConstructed(0x79, [encodeTlv(0x4f, NIST_RID)]), // 79: coexistent tag allocation authority
    encodeTlv(0x50, new TextEncoder().encode(APPLICATION_LABEL)), // 50: application label
    encodeConstructed(0xac, [
      ...ALGORITHMS.map((id) => tlv(0x80, id)), // 80 01 xx: one per supported algorithm
      tlv(0x06), // 06 00: object identifier, empty
    ]),
  ]);
}

// FASC-N characters (TIG SCEPACS): four data bits least significant first, then an odd parity bit.
const FASCN_SS = 0xb; // start sentinel
const FASCN_FS = 0xd; // field separator
const FASCN_ES = 0xf; // end sentinel

function fascNDigits(digits: string): number[] {
  return [...digits].map(Number);
}

/**
 * The 25-byte FASC-N of a non-federal issuer: agency code 9999, system code 9999, credential
 * number 999999 (the CHUID of non-federal issuers, Part 1 section 3.1.2), then CS 0, ICI 1,
 * PI 0000000000, OC 3, OI 0000, POA 1 and the longitudinal redundancy character.
 */
function nonFederalFascN(): Uint8Array {
  const characters = [
    FASCN_SS, ...fascNDigits('9999'), // agency code
    FASCN_FS, ...fascNDigits('9999'), // system code
    FASCN_FS, ...fascNDigits('999999'), // credential number
    FASCN_FS, 0, // credential series
    FASCN_FS, 1, // individual credential issue
    FASCN_FS, ...fascNDigits('0000000000'), // person identifier
    3, // organizational category: commercial enterprise
    ...fascNDigits('0000'), // organizational identifier
    1, // person/organization association: employee
    FASCN_ES,
  ];
  characters.push(characters.reduce((lrc, character) => lrc ^ character, 0));
  const out = new Uint8Array(25);
  let bit = 0;
  for (const character of characters) {
    let ones = 0;
    for (let i = 0; i < 5; i++) {
      const value = i < 4 ? (character >> i) & 1 : (ones + 1) & 1;
      ones += value;
      if (value === 1) out[bit >> 3]! |= 0x80 >> (bit & 7);
      bit++;
    }
  }
  return out;
}

function checkLength(what: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new TypeError(`expected a ${length}-byte ${what}, got ${got}`);
  }
}

/** Content of the CHUID container (Part 1 section 3.1.2, table 9), unsigned: 3E is empty. */
export function buildChuid(guid: Uint8Array, expiry: string): Uint8Array {
  checkLength('GUID', guid, 16);
  if (typeof expiry !== 'string' || !/^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/.test(expiry)) {
    throw new TypeError(`expected an expiration date YYYYMMDD, got ${String(expiry)}`);
  }
  return concatBytes(
    encodeTlv(0x30, nonFederalFascN()), // 30: FASC-N, 25 bytes
    encodeTlv(0x34, guid), // 34: GUID, 16 bytes
    encodeTlv(0x35, new TextEncoder().encode(expiry)), // 35: expiration date, 8 ASCII digits
    tlv(0x3e), // 3E 00: issuer asymmetric signature, absent on a self-issued card
    EMPTY_EDC,
  );
}

/** Content of the card capability container (Part 1 section 3.1.1, table 8). */
export function buildCcc(cardIdentifier: Uint8Array): Uint8Array {
  checkLength('card identifier', cardIdentifier, 21);
  return concatBytes(
    encodeTlv(0xf0, cardIdentifier), // F0: card identifier, 21 bytes
    tlv(0xf1, 0x21), // F1 01: capability container version number
    tlv(0xf2, 0x21), // F2 01: capability grammar version number
    tlv(0xf3), // F3 00: applications CardURL
    tlv(0xf4, 0x00), // F4 01: PKCS#15 not supported
    tlv(0xf5, 0x10), // F5 01: registered data model number
    tlv(0xf6), // F6 00: access control rule table
    tlv(0xf7), // F7 00: card APDUs
    tlv(0xfa), // FA 00: redirection tag
    tlv(0xfb), // FB 00: capability tuples
    tlv(0xfc), // FC 00: status tuples
    tlv(0xfd), // FD 00: next CCC
    EMPTY_EDC,
  );
}

/** The whole discovery object (Part 1 section 3.3.2); it is not wrapped in 53. */
export function buildDiscoveryObject(): Uint8Array {
  return encodeConstructed(PivTag.DISCOVERY, [
    encodeTlv(0x4f, PIV_AID), // 4F 0B: PIV card application AID
    tlv(0x5f2f, 0x40, 0x00), // 5F2F 02: PIN usage policy, application PIN only; global PIN unused
  ]);
}

/** Content of the key history object (Part 1 section 3.3.3): no retired keys. */
export function buildKeyHistory(): Uint8Array {
  return concatBytes(
    tlv(0xc1, 0x00), // C1 01: keys with on-card certificates
    tlv(0xc2, 0x00), // C2 01: keys with off-card certificates
    EMPTY_EDC,
  );
}

/** Content of an X.509 certificate container (Part 1 sections 3.1.3 and 3.2): 70 certificate, 71 CertInfo, FE EDC. */
export function buildCertificateObject(certificateDer: Uint8Array): Uint8Array {
  if (!(certificateDer instanceof Uint8Array) || certificateDer.length === 0) {
    throw new TypeError(`expected a DER certificate, got ${certificateDer instanceof Uint8Array ? 'no bytes' : typeof certificateDer}`);
  }
  return concatBytes(
    encodeTlv(0x70, certificateDer), // 70: certificate
    tlv(0x71, 0x00), // 71 01: CertInfo, uncompressed
    EMPTY_EDC,
  );
}

/** The DER certificate inside a certificate container's content; refuses gzip (CertInfo 01). */
export function parseCertificateObject(content: Uint8Array): Uint8Array {
  const seen = new Map<number, Uint8Array>();
  for (const object of decodeTlvList(content)) {
    if (object.tag !== 0x70 && object.tag !== 0x71 && object.tag !== 0x72 && object.tag !== 0xfe) {
      throw new TlvFormatError(`expected tags 70, 71, 72 or FE in a certificate object, got ${formatTag(object.tag)}`);
    }
    if (seen.has(object.tag)) throw new TlvFormatError(`expected tag ${formatTag(object.tag)} once in a certificate object, got it twice`);
    seen.set(object.tag, object.value);
  }
  const certificate = seen.get(0x70);
  if (certificate === undefined || certificate.length === 0) {
    throw new TlvFormatError('expected a certificate (tag 70) in the certificate object, got none');
  }
  const certInfo = seen.get(0x71);
  if (certInfo !== undefined && !(certInfo.length === 1 && certInfo[0] === 0x00)) {
    const got = certInfo.length === 1 ? `CertInfo ${formatTag(certInfo[0]!)}` : `${certInfo.length} bytes`;
    throw new TlvFormatError(`expected CertInfo 00 (uncompressed certificate), got ${got}`);
  }
  return certificate.slice();
}

/** What GET DATA answers for a container (Part 2 section 3.1.2): 53 L content, or the 7E object as is. */
export function wrapDataObject(tag: number, content: Uint8Array): Uint8Array {
  if (tag !== PivTag.DISCOVERY) return encodeTlv(DATA_TAG, content);
  const object = decodeTlv(content);
  if (object.tag !== PivTag.DISCOVERY || object.end !== content.length) {
    throw new TlvFormatError(`expected one 7E data object for the discovery object, got tag ${formatTag(object.tag)} in ${content.length} bytes`);
  }
  return content.slice();
}

/** The answer to GENERATE ASYMMETRIC KEY PAIR for an EC key (Part 2 section 3.3.2). */
export function encodeEcPublicKeyTemplate(point: Uint8Array): Uint8Array {
  checkLength('uncompressed P-256 point', point, 65);
  if (point[0] !== 0x04) throw new TypeError(`expected an uncompressed point starting 04, got ${formatTag(point[0]!)}`);
  // Throws when the point is not on the curve: never hand out a key nobody can verify against.
  p256.Point.fromBytes(point).assertValidity();
  return encodeConstructed(0x7f49, [encodeTlv(0x86, point)]); // 7F49: public key template; 86: EC point
}

/** Tags of the dynamic authentication template (Part 2 table 7). */
const DYNAMIC_AUTHENTICATION_TAGS: ReadonlySet<number> = new Set([
  0x80, // witness
  0x81, // challenge
  0x82, // response
  0x85, // exponentiation (ECDH peer point)
]);
const DYNAMIC_AUTHENTICATION_TEMPLATE = 0x7c;

function checkDynamicAuthenticationTag(tag: number): void {
  if (!DYNAMIC_AUTHENTICATION_TAGS.has(tag)) {
    throw new TlvFormatError(`expected tag 80, 81, 82 or 85 in a dynamic authentication template, got ${formatTag(tag)}`);
  }
}

/** The data of GENERAL AUTHENTICATE (Part 2 section 3.2.4): 7C L {80|81|82|85 ...} as tag → value. */
export function parseDynamicAuthenticationTemplate(data: Uint8Array): Map<number, Uint8Array> {
  const template = decodeTlv(data);
  if (template.tag !== DYNAMIC_AUTHENTICATION_TEMPLATE) {
    throw new TlvFormatError(`expected a dynamic authentication template (tag 7C), got tag ${formatTag(template.tag)}`);
  }
  if (template.end !== data.length) {
    throw new TlvFormatError(`expected nothing after the dynamic authentication template, got ${data.length - template.end} bytes`);
  }
  const entries = new Map<number, Uint8Array>();
  for (const object of decodeTlvList(template.value)) {
    checkDynamicAuthenticationTag(object.tag);
    if (entries.has(object.tag)) {
      throw new TlvFormatError(`expected tag ${formatTag(object.tag)} once in a dynamic authentication template, got it twice`);
    }
    entries.set(object.tag, object.value.slice());
  }
  return entries;
}

/** Builds 7C L {...}, e.g. the 82 response of a signature (Part 2 table 7). */
export function encodeDynamicAuthenticationTemplate(entries: ReadonlyArray<[number, Uint8Array]>): Uint8Array {
  const seen = new Set<number>();
  const children = entries.map(([tag, value]) => {
    checkDynamicAuthenticationTag(tag);
    if (seen.has(tag)) throw new TlvFormatError(`expected tag ${formatTag(tag)} once in a dynamic authentication template, got it twice`);
    seen.add(tag);
    return encodeTlv(tag, value);
  });
  return encodeConstructed(DYNAMIC_AUTHENTICATION_TEMPLATE, children);
}
