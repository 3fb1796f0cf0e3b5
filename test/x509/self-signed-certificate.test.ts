// Tests for the self-signed P-256 certificate (RFC 5280 section 4.1) and its DER writer (X.690 8 and 10),
// checked against node:crypto's X509Certificate and the openssl command line.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { decodeTlv, decodeTlvList } from '../../src/apdu/index.js';
import {
  DerEncodingError, derBitString, derBoolean, derExplicit, derGeneralizedTime, derInteger, derOid,
  derPrintableString, derSet, derTime, derUtcTime,
} from '../../src/x509/der.js';
import { CertificateInitError, p256PublicKey, selfSignedCertificate } from '../../src/x509/self-signed-certificate.js';

const privateKey = fromHex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721'); // RFC 6979 A.2.5 P-256 key
const notBefore = new Date('2024-01-02T03:04:05Z');
const notAfter = new Date('2034-01-02T03:04:05Z');
const der = selfSignedCertificate({ privateKey, subjectCommonName: 'PIV Authentication', notBefore, notAfter });
const cert = new X509Certificate(der);

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

describe('selfSignedCertificate', () => {
  it('parses with node:crypto and verifies under its own key', () => {
    expect(cert.verify(cert.publicKey)).toBe(true);
    // Self-issued, not "self-signed" in OpenSSL's sense: X509_check_issued wants keyCertSign in the
    // issuer's keyUsage, which an end-entity key (cA FALSE) must not assert (RFC 5280 4.2.1.3, 4.2.1.9).
    expect(cert.checkIssued(cert)).toBe(false);
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.subject).toBe('CN=PIV Authentication');
    expect(cert.issuer).toBe('CN=PIV Authentication');
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage ?? []).toEqual([]); // node lists only extended key usage here
  });

  it('carries the validity dates given', () => {
    expect(new Date(cert.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(cert.validTo).toISOString()).toBe(notAfter.toISOString());
  });

  it('holds the public key of the private key', () => {
    const point = p256PublicKey(privateKey);
    expect(point).toHaveLength(65);
    expect(point[0]).toBe(0x04);
    const jwk = cert.publicKey.export({ format: 'jwk' });
    expect(jwk.crv).toBe('P-256');
    expect(jwk.x).toBe(base64url(point.subarray(1, 33)));
    expect(jwk.y).toBe(base64url(point.subarray(33)));
  });

  it('fails to verify with a flipped signature byte', () => {
    const [certificate] = decodeTlvList(der);
    const [, , signature] = decodeTlvList(certificate!.value);
    const tampered = der.slice();
    // Flip a byte inside r of the ECDSA-Sig-Value, past BIT STRING 00, SEQUENCE and INTEGER headers.
    tampered[signature!.end - signature!.value.length + 8]! ^= 0x01;
    const otherKey = createPublicKey(cert.publicKey.export({ format: 'pem', type: 'spki' }));
    expect(new X509Certificate(tampered).verify(otherKey)).toBe(false);
  });

  it('is parsed by openssl as ecdsa-with-SHA256 on prime256v1 with critical extensions', () => {
    const text = execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der, encoding: 'utf8' });
    expect(text).toContain('ecdsa-with-SHA256');
    expect(text).toContain('prime256v1');
    expect(text).toMatch(/Version: 3/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Agreement/);
  });

  it('uses the serial number given, and a positive random one by default', () => {
    const serial = fromHex('8000000000000000000000000000000001');
    const withSerial = new X509Certificate(selfSignedCertificate({ privateKey, subjectCommonName: 'x', serialNumber: serial }));
    expect(withSerial.serialNumber).toBe('8000000000000000000000000000000001'); // node drops the sign byte
    expect(toHex(selfSignedCertificate({ privateKey, subjectCommonName: 'x', serialNumber: serial }))).toContain(
      '021200' + toHex(serial), // INTEGER, 18 bytes: 00 then the 17-byte serial whose top bit is set
    );
    for (let i = 0; i < 20; i++) {
      const serialHex = new X509Certificate(selfSignedCertificate({ privateKey, subjectCommonName: 'x' })).serialNumber;
      expect(serialHex.length).toBeLessThanOrEqual(32);
      expect(BigInt(`0x${serialHex}`) > 0n).toBe(true);
    }
  });

  it('defaults to a validity from a minute ago to ten years on', () => {
    const before = Date.now();
    const fresh = new X509Certificate(selfSignedCertificate({ privateKey, subjectCommonName: 'x' }));
    const from = new Date(fresh.validFrom).getTime();
    const to = new Date(fresh.validTo).getTime();
    expect(from).toBeLessThanOrEqual(before - 59_000);
    expect(from).toBeGreaterThan(before - 62_000);
    expect((to - from) / (365.25 * 24 * 3600 * 1000)).toBeCloseTo(10, 2);
  });

  it('writes GeneralizedTime from 2050 and UTCTime before', () => {
    const late = selfSignedCertificate({
      privateKey,
      subjectCommonName: 'x',
      notBefore: new Date('2049-12-31T23:59:59Z'),
      notAfter: new Date('2050-01-01T00:00:00Z'),
    });
    const parsed = new X509Certificate(late);
    expect(parsed.verify(parsed.publicKey)).toBe(true);
    expect(new Date(parsed.validTo).toISOString()).toBe('2050-01-01T00:00:00.000Z');
    expect(toHex(late)).toContain(toHex(derUtcTime(new Date('2049-12-31T23:59:59Z'))));
    expect(toHex(late)).toContain(toHex(derGeneralizedTime(new Date('2050-01-01T00:00:00Z'))));
  });

  it('encodes a non-ASCII common name as UTF8String', () => {
    const parsed = new X509Certificate(selfSignedCertificate({ privateKey, subjectCommonName: 'Clé Ünïcode' }));
    expect(parsed.subject).toBe('CN=Clé Ünïcode');
  });

  it.each([
    ['a short key', { privateKey: new Uint8Array(31), subjectCommonName: 'x' }, /32-byte P-256 private key, got 31 bytes/],
    ['a zero key', { privateKey: new Uint8Array(32), subjectCommonName: 'x' }, /out of range/],
    ['a key at n', { privateKey: fromHex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'), subjectCommonName: 'x' }, /out of range/],
    ['an empty name', { privateKey, subjectCommonName: '' }, /common name of 1\.\.64/],
    ['a long name', { privateKey, subjectCommonName: 'x'.repeat(65) }, /common name of 1\.\.64/],
    ['a zero serial', { privateKey, subjectCommonName: 'x', serialNumber: new Uint8Array(4) }, /positive serial/],
    ['a 21-byte serial', { privateKey, subjectCommonName: 'x', serialNumber: new Uint8Array(21).fill(1) }, /positive serial/],
    ['a reversed validity', { privateKey, subjectCommonName: 'x', notBefore: notAfter, notAfter: notBefore }, /notAfter on or after/],
    ['an invalid date', { privateKey, subjectCommonName: 'x', notBefore: new Date(NaN) }, /notBefore to be a valid Date/],
  ])('refuses %s', (_name, init, message) => {
    expect(() => selfSignedCertificate(init)).toThrow(CertificateInitError);
    expect(() => selfSignedCertificate(init)).toThrow(message);
  });
});

describe('p256PublicKey', () => {
  it('matches noble for random keys', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), () => {
        const key = p256.utils.randomSecretKey();
        expect(p256PublicKey(key)).toEqual(p256.getPublicKey(key, false));
      }),
      { numRuns: 10 },
    );
  });
});

describe('der', () => {
  it.each([
    [0n, '020100'],
    [127n, '02017f'],
    [128n, '02020080'],
    [255n, '020200ff'],
    [256n, '02020100'],
    [32767n, '02027fff'],
    [32768n, '0203008000'],
    [-1n, '0201ff'],
    [-128n, '020180'],
    [-129n, '0202ff7f'],
    [0xffffffffffffffffn, '020900ffffffffffffffff'],
  ])('INTEGER %s', (value, hex) => {
    expect(toHex(derInteger(value))).toBe(hex);
    if (value >= -(2n ** 53n) && value <= 2n ** 53n) expect(toHex(derInteger(Number(value)))).toBe(hex);
  });

  it.each([
    ['', '020100'],
    ['00', '020100'],
    ['0000', '020100'],
    ['007f', '02017f'],
    ['80', '02020080'],
    ['000080', '02020080'],
    ['ff', '020200ff'],
    ['0100', '02020100'],
  ])('INTEGER of unsigned bytes %s', (hex, expected) => {
    expect(toHex(derInteger(fromHex(hex)))).toBe(expected);
  });

  it('encodes 32-byte scalars minimally and without sign errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (scalar) => {
        const encoded = derInteger(scalar);
        const tlv = decodeTlv(encoded);
        expect(tlv.end).toBe(encoded.length);
        const value = tlv.value;
        // Minimal: no 00 before a byte below 80, never an ff-style negative.
        if (value.length > 1) expect(value[0] === 0x00 && value[1]! < 0x80).toBe(false);
        expect(value[0]! & 0x80).toBe(0);
        expect(BigInt(`0x${toHex(value)}`)).toBe(BigInt(`0x${toHex(scalar)}`));
        expect(toHex(derInteger(BigInt(`0x${toHex(scalar)}`)))).toBe(toHex(encoded));
      }),
    );
    const topBitSet = new Uint8Array(32).fill(0xff);
    expect(toHex(derInteger(topBitSet))).toBe('022100' + 'ff'.repeat(32));
  });

  it('encodes object identifiers (X.690 8.19)', () => {
    expect(toHex(derOid('1.2.840.10045.2.1'))).toBe('06072a8648ce3d0201');
    expect(toHex(derOid('1.2.840.10045.3.1.7'))).toBe('06082a8648ce3d030107');
    expect(toHex(derOid('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302');
    expect(toHex(derOid('2.5.4.3'))).toBe('0603550403');
    expect(toHex(derOid('2.999.3'))).toBe('0603883703');
    for (const bad of ['', '1', '3.1', '1.40', '1.2.', '1..2', '1.02']) {
      expect(() => derOid(bad)).toThrow(DerEncodingError);
    }
  });

  it('encodes times (RFC 5280 4.1.2.5)', () => {
    const date = new Date('2024-02-03T04:05:06.789Z');
    expect(toHex(derUtcTime(date))).toBe('170d' + toHex(new TextEncoder().encode('240203040506Z')));
    expect(toHex(derGeneralizedTime(date))).toBe('180f' + toHex(new TextEncoder().encode('20240203040506Z')));
    expect(derTime(new Date('1950-01-01T00:00:00Z'))[0]).toBe(0x17);
    expect(derTime(new Date('1949-12-31T23:59:59Z'))[0]).toBe(0x18);
    expect(derTime(new Date('2050-01-01T00:00:00Z'))[0]).toBe(0x18);
    expect(() => derUtcTime(new Date('2050-01-01T00:00:00Z'))).toThrow(DerEncodingError);
    expect(() => derTime(new Date(NaN))).toThrow(DerEncodingError);
  });

  it('encodes BIT STRING, BOOLEAN, SET order and context tags', () => {
    expect(toHex(derBitString(fromHex('88'), 3))).toBe('03020388');
    expect(toHex(derBitString(new Uint8Array(0)))).toBe('030100');
    expect(() => derBitString(fromHex('89'), 3)).toThrow(DerEncodingError);
    expect(() => derBitString(fromHex('80'), 8)).toThrow(DerEncodingError);
    expect(toHex(derBoolean(true))).toBe('0101ff');
    expect(toHex(derBoolean(false))).toBe('010100');
    expect(toHex(derSet([fromHex('0201ff'), fromHex('020101'), fromHex('0101ff')]))).toBe('31090101ff0201010201ff');
    expect(toHex(derExplicit(0, [derInteger(2)]))).toBe('a003020102');
    expect(toHex(derPrintableString('PIV'))).toBe('1303504956');
    expect(() => derPrintableString('a@b')).toThrow(DerEncodingError);
  });
});
