// Self-signed X.509 v3 certificates for P-256 keys (RFC 5280 section 4.1, ECDSA per RFC 5480 and
// RFC 5758 section 3.2): what a new PIV card holds in 9A and 9C so OpenSC shows its keys.
import { randomBytes } from 'node:crypto';
import { assertBytes, VscError } from '../errors/index.js';
import { isValidP256PrivateKey, P256_PRIVATE_KEY_LENGTH, p256DerivePublicKey, p256Sign, sha256 } from '../crypto/index.js';
import { derBitString, derBoolean, derExplicit, derInteger, derOctetString, derOid, derSequence, derSet, derTime, derUtf8String } from './der.js';

/** Inputs the certificate cannot be built from: a bad key, name, serial or validity. */
export class CertificateInitError extends VscError {
  override readonly name = 'CertificateInitError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('x509.init', message, options);
  }
}

export interface SelfSignedCertificateInit {
  /** 32-byte P-256 scalar. */
  privateKey: Uint8Array;
  /** e.g. "PIV Authentication". */
  subjectCommonName: string;
  /** Default: 16 random bytes with the top bit cleared (a positive INTEGER, RFC 5280 4.1.2.2). */
  serialNumber?: Uint8Array;
  /** Default: one minute ago, against clock skew between card and verifier. */
  notBefore?: Date;
  /** Default: ten years after notBefore's default. */
  notAfter?: Date;
}

const OID = {
  EC_PUBLIC_KEY: '1.2.840.10045.2.1', // id-ecPublicKey, RFC 5480 2.1.1
  PRIME256V1: '1.2.840.10045.3.1.7', // secp256r1, RFC 5480 2.1.1.1
  ECDSA_WITH_SHA256: '1.2.840.10045.4.3.2', // RFC 5758 3.2
  COMMON_NAME: '2.5.4.3', // id-at-commonName, RFC 5280 appendix A.1
  BASIC_CONSTRAINTS: '2.5.29.19', // RFC 5280 4.2.1.9
  KEY_USAGE: '2.5.29.15', // RFC 5280 4.2.1.3
} as const;

/** CommonName upper bound ub-common-name (RFC 5280 appendix A.1). */
const MAX_COMMON_NAME_LENGTH = 64;
const SERIAL_LENGTH = 16;
const TEN_YEARS_MS = 10 * 365.25 * 24 * 60 * 60 * 1000;

function checkPrivateKey(privateKey: Uint8Array): void {
  assertBytes('P-256 private key', privateKey, P256_PRIVATE_KEY_LENGTH, (message) => new CertificateInitError(message));
  if (!isValidP256PrivateKey(privateKey)) {
    throw new CertificateInitError('expected a P-256 private key in 1..n-1, got a value out of range');
  }
}

/** The 65-byte uncompressed public point 04 || X || Y (SEC 1 2.3.3) of a P-256 private key. */
export function p256PublicKey(privateKey: Uint8Array): Uint8Array {
  checkPrivateKey(privateKey);
  return p256DerivePublicKey(privateKey);
}

/** AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 3.2). */
function ecdsaWithSha256(): Uint8Array {
  return derSequence([derOid(OID.ECDSA_WITH_SHA256)]);
}

/** Name with one RDN holding the common name (RFC 5280 4.1.2.4); UTF8String per 4.1.2.6. */
function commonNameOnly(commonName: string): Uint8Array {
  return derSequence([derSet([derSequence([derOid(OID.COMMON_NAME), derUtf8String(commonName)])])]);
}

/** SubjectPublicKeyInfo of an uncompressed P-256 point (RFC 5480 2). */
function subjectPublicKeyInfo(point: Uint8Array): Uint8Array {
  return derSequence([derSequence([derOid(OID.EC_PUBLIC_KEY), derOid(OID.PRIME256V1)]), derBitString(point)]);
}

/** Extension with critical TRUE; FALSE is the DEFAULT and would be omitted (RFC 5280 4.2). */
function criticalExtension(oid: string, extnValue: Uint8Array): Uint8Array {
  return derSequence([derOid(oid), derBoolean(true), derOctetString(extnValue)]);
}

function extensions(): Uint8Array {
  return derExplicit(3, [
    derSequence([
      // BasicConstraints ::= SEQUENCE { cA DEFAULT FALSE, ... }: an end-entity key, so empty.
      criticalExtension(OID.BASIC_CONSTRAINTS, derSequence([])),
      // KeyUsage bits 0 digitalSignature and 4 keyAgreement: 1000 1000, trailing 3 zero bits unused.
      criticalExtension(OID.KEY_USAGE, derBitString(Uint8Array.of(0x88), 3)),
    ]),
  ]);
}

function defaultSerialNumber(): Uint8Array {
  const serial = Uint8Array.from(randomBytes(SERIAL_LENGTH));
  serial[0]! &= 0x7f;
  // A zero serial is not positive; the odds are 2^-127, but the fix costs nothing.
  if (serial.every((byte) => byte === 0)) serial[SERIAL_LENGTH - 1] = 1;
  return serial;
}

function checkSerialNumber(serial: Uint8Array): void {
  // RFC 5280 4.1.2.2: positive, at most 20 octets once encoded (a top bit set costs a 00 byte).
  if (!(serial instanceof Uint8Array)) throw new CertificateInitError(`expected a serial number as bytes, got ${typeof serial}`);
  const encodedLength = derInteger(serial).length - 2;
  if (serial.every((byte) => byte === 0) || encodedLength > 20) {
    const got = `${serial.length} bytes encoding to ${encodedLength}`;
    throw new CertificateInitError(`expected a positive serial number of at most 20 encoded bytes, got ${got}`);
  }
}

function checkDate(what: string, date: Date): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new CertificateInitError(`expected ${what} to be a valid Date, got ${String(date)}`);
  }
}

/** A DER certificate whose issuer is its subject, signed ecdsa-with-SHA256 by `init.privateKey`. */
export function selfSignedCertificate(init: SelfSignedCertificateInit): Uint8Array {
  const publicKey = p256PublicKey(init.privateKey);
  const commonName = init.subjectCommonName;
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > MAX_COMMON_NAME_LENGTH) {
    throw new CertificateInitError(`expected a common name of 1..${MAX_COMMON_NAME_LENGTH} characters, got ${JSON.stringify(commonName)}`);
  }
  const serialNumber = init.serialNumber ?? defaultSerialNumber();
  checkSerialNumber(serialNumber);
  const now = Date.now();
  const notBefore = init.notBefore ?? new Date(now - 60_000);
  const notAfter = init.notAfter ?? new Date(now - 60_000 + TEN_YEARS_MS);
  checkDate('notBefore', notBefore);
  checkDate('notAfter', notAfter);
  if (notAfter.getTime() < notBefore.getTime()) {
    throw new CertificateInitError(`expected notAfter on or after ${notBefore.toISOString()}, got ${notAfter.toISOString()}`);
  }

  const name = commonNameOnly(commonName);
  const tbsCertificate = derSequence([
    derExplicit(0, [derInteger(2)]), // version v3
    derInteger(serialNumber),
    ecdsaWithSha256(),
    name, // issuer
    derSequence([derTime(notBefore), derTime(notAfter)]), // validity
    name, // subject
    subjectPublicKeyInfo(publicKey),
    extensions(),
  ]);
  // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 appendix A) over SHA-256(TBS).
  const signature = p256Sign(init.privateKey, sha256(tbsCertificate));
  return derSequence([tbsCertificate, ecdsaWithSha256(), derBitString(signature)]);
}
