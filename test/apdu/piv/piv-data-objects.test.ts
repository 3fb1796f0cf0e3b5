// Tests for the PIV data objects, NIST SP 800-73-4 Part 1 section 3 and Part 2 section 3 (tables cited per case).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { fromHex, toHex } from '../../../src/bytes/index.js';
import { VscError } from '../../../src/errors/index.js';
import { TlvFormatError, decodeTlv, decodeTlvList } from '../../../src/apdu/ber-tlv.js';
import {
  CERT_TAG_OF_SLOT,
  PIV_AID,
  PivTag,
  buildApplicationPropertyTemplate,
  buildCcc,
  buildCertificateObject,
  buildChuid,
  buildDiscoveryObject,
  buildKeyHistory,
  encodeDynamicAuthenticationTemplate,
  encodeEcPublicKeyTemplate,
  parseCertificateObject,
  parseDynamicAuthenticationTemplate,
  wrapDataObject,
} from '../../../src/apdu/piv/piv-data-objects.js';

function expectTlvError(run: () => unknown, message?: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TlvFormatError);
  expect(thrown).toBeInstanceOf(VscError);
  expect((thrown as VscError).code).toBe('apdu.tlv');
  if (message !== undefined) expect((thrown as Error).message).toMatch(message);
}

describe('constants', () => {
  it('PIV AID is RID A000000308 with PIX 0000 1000 0100 (Part 1 section 2.2)', () => {
    expect(toHex(PIV_AID)).toBe('a000000308000010000100');
  });

  it('maps each key reference to its certificate container (Part 1 table 3)', () => {
    expect([...CERT_TAG_OF_SLOT]).toEqual([
      [0x9a, 0x5fc105],
      [0x9c, 0x5fc10a],
      [0x9d, 0x5fc10b],
      [0x9e, 0x5fc101],
    ]);
    expect(PivTag.CHUID).toBe(0x5fc102);
    expect(PivTag.CCC).toBe(0x5fc107);
    expect(PivTag.DISCOVERY).toBe(0x7e);
    expect(PivTag.KEY_HISTORY).toBe(0x5fc10c);
  });
});

describe('application property template (Part 2 section 3.1.1, table 3)', () => {
  const expected = fromHex(
    '61 30' + // application property template, 48 bytes
      ' 4f 06 000010000100' + // PIX with version
      ' 79 07 4f 05 a000000308' + // coexistent tag allocation authority: NIST RID
      ' 50 07 56534320504956' + // application label "VSC PIV"
      ' ac 14' + // cryptographic algorithms supported
      ' 80 01 03 80 01 08 80 01 0a 80 01 0c 80 01 11 80 01 14' + // 3DES, AES-128/192/256, P-256, P-384
      ' 06 00', // object identifier, empty
  );

  it('encodes the expected bytes', () => {
    expect(toHex(buildApplicationPropertyTemplate())).toBe(toHex(expected));
  });

  it('parses back with decodeTlvList', () => {
    const [apt] = decodeTlvList(buildApplicationPropertyTemplate());
    expect(apt!.tag).toBe(0x61);
    const children = decodeTlvList(apt!.value);
    expect(children.map((child) => child.tag)).toEqual([0x4f, 0x79, 0x50, 0xac]);
    expect(toHex(decodeTlv(children[1]!.value).value)).toBe('a000000308');
    const algorithms = decodeTlvList(children[3]!.value);
    expect(algorithms.filter((a) => a.tag === 0x80).map((a) => a.value[0])).toEqual([0x03, 0x08, 0x0a, 0x0c, 0x11, 0x14]);
    expect(algorithms.at(-1)).toMatchObject({ tag: 0x06, value: new Uint8Array(0) });
  });
});

describe('CHUID (Part 1 section 3.1.2, table 9)', () => {
  const guid = fromHex('00112233445566778899aabbccddeeff');
  // Non-federal FASC-N: SS 9999 FS 9999 FS 999999 FS 0 FS 1 FS 0000000000 3 0000 1 ES LRC,
  // 40 characters of 5 bits (4 data bits LSB first, odd parity); the same bytes yubico-piv-tool writes.
  const fascN = 'd4e739da739ced39ce739d836858210842108421c84210c3eb';

  it('encodes FASC-N, GUID, expiry, empty signature and EDC', () => {
    const expected =
      '3019' + fascN + // 30 25: FASC-N
      '3410' + toHex(guid) + // 34 16: GUID
      '3508' + '3230333030313031' + // 35 8: "20300101"
      '3e00' + // issuer asymmetric signature, empty
      'fe00'; // error detection code
    expect(toHex(buildChuid(guid, '20300101'))).toBe(expected);
  });

  it('refuses a wrong GUID length or a malformed date', () => {
    expect(() => buildChuid(guid.subarray(1), '20300101')).toThrow(/expected a 16-byte GUID, got 15 bytes/);
    for (const date of ['2030011', '20301301', '20300132', '2030-01-01', '']) {
      expect(() => buildChuid(guid, date)).toThrow(/expected an expiration date YYYYMMDD/);
    }
  });
});

describe('CCC (Part 1 section 3.1.1, table 8)', () => {
  const cardId = fromHex('a000000116ff02' + '0102030405060708090a0b0c0d0e');

  it('encodes the expected bytes', () => {
    const expected =
      'f015' + toHex(cardId) + // card identifier, 21 bytes
      'f10121' + // capability container version
      'f20121' + // capability grammar version
      'f300' + // applications CardURL
      'f40100' + // PKCS#15
      'f50110' + // registered data model number
      'f600f700fa00fb00fc00fd00' + // access control rule table, card APDUs, redirection, tuples, next CCC
      'fe00'; // error detection code
    expect(toHex(buildCcc(cardId))).toBe(expected);
  });

  it('refuses a card identifier that is not 21 bytes', () => {
    expect(() => buildCcc(new Uint8Array(20))).toThrow(/expected a 21-byte card identifier, got 20 bytes/);
  });
});

describe('discovery object (Part 1 section 3.3.2)', () => {
  it('is the whole 7E object with the AID and PIN usage policy', () => {
    const expected = '7e12' + '4f0b' + 'a000000308000010000100' + '5f2f024000';
    expect(toHex(buildDiscoveryObject())).toBe(expected);
    const [object] = decodeTlvList(buildDiscoveryObject());
    const children = decodeTlvList(object!.value);
    expect(children.map((child) => child.tag)).toEqual([0x4f, 0x5f2f]);
    expect(toHex(children[1]!.value)).toBe('4000');
  });

  it('is answered as is by GET DATA, not wrapped in 53', () => {
    expect(toHex(wrapDataObject(PivTag.DISCOVERY, buildDiscoveryObject()))).toBe(toHex(buildDiscoveryObject()));
    expectTlvError(() => wrapDataObject(PivTag.DISCOVERY, fromHex('5300')), /7E/);
    expectTlvError(() => wrapDataObject(PivTag.DISCOVERY, fromHex('7e00 00')), /7E/);
  });
});

describe('key history object (Part 1 section 3.3.3)', () => {
  it('announces no retired keys', () => {
    expect(toHex(buildKeyHistory())).toBe('c10100' + 'c20100' + 'fe00');
  });
});

describe('wrapDataObject (Part 2 section 3.1.2)', () => {
  it('wraps container content in 53 with a minimal length', () => {
    expect(toHex(wrapDataObject(PivTag.KEY_HISTORY, buildKeyHistory()))).toBe('5308c10100c20100fe00');
    const big = wrapDataObject(PivTag.CERT_9A, new Uint8Array(300));
    expect(toHex(big.subarray(0, 4))).toBe('5382012c');
  });
});

describe('certificate object (Part 1 sections 3.1.3 and 3.2)', () => {
  const cert = fromHex('3003020101');

  it('encodes 70 cert, 71 00, FE 00', () => {
    expect(toHex(buildCertificateObject(cert))).toBe('7005' + '3003020101' + '710100' + 'fe00');
  });

  it('round-trips certificates of any size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3000 }), (der) => {
        expect(parseCertificateObject(buildCertificateObject(der))).toEqual(der);
      }),
      { numRuns: 50 },
    );
  });

  it('accepts an object without CertInfo or EDC', () => {
    expect(toHex(parseCertificateObject(fromHex('7005 3003020101')))).toBe('3003020101');
  });

  it.each([
    ['empty content', '', /certificate \(tag 70\)/],
    ['no certificate', '710100fe00', /certificate \(tag 70\)/],
    ['empty certificate', '7000710100fe00', /certificate \(tag 70\)/],
    ['gzip CertInfo', '7005 3003020101 710101 fe00', /CertInfo 00.*got CertInfo 01/],
    ['CertInfo of two bytes', '7005 3003020101 71020000 fe00', /got 2 bytes/],
    ['unknown tag', '7005 3003020101 7300', /got 73/],
    ['duplicate certificate', '7005 3003020101 7005 3003020101', /once/],
    ['length overflow', '7006 3003020101', /expected 6 value bytes/],
    ['trailing byte', '7005 3003020101 fe00 01', /length after tag 01|tag/],
  ])('refuses %s', (_name, hex, message) => {
    expectTlvError(() => parseCertificateObject(fromHex(hex)), message);
  });
});

describe('EC public key template (Part 2 section 3.3.2)', () => {
  const point = p256.getPublicKey(p256.utils.randomSecretKey(), false);

  it('encodes 7F49 L { 86 41 point }', () => {
    expect(toHex(encodeEcPublicKeyTemplate(point))).toBe('7f4943' + '8641' + toHex(point));
  });

  it('refuses points of the wrong size, compressed or off the curve', () => {
    expect(() => encodeEcPublicKeyTemplate(point.subarray(1))).toThrow(/expected a 65-byte uncompressed P-256 point, got 64 bytes/);
    const compressed = new Uint8Array(65);
    compressed[0] = 0x02;
    expect(() => encodeEcPublicKeyTemplate(compressed)).toThrow(/starting 04, got 02/);
    const offCurve = point.slice();
    offCurve[64]! ^= 1;
    expect(() => encodeEcPublicKeyTemplate(offCurve)).toThrow();
  });
});

describe('dynamic authentication template (Part 2 section 3.2.4, table 7)', () => {
  it('parses a signature request: 82 00 response wanted, 81 challenge', () => {
    const data = fromHex('7c 24' + '82 00' + '81 20' + '11'.repeat(32));
    const entries = parseDynamicAuthenticationTemplate(data);
    expect([...entries.keys()]).toEqual([0x82, 0x81]);
    expect(entries.get(0x82)).toEqual(new Uint8Array(0));
    expect(toHex(entries.get(0x81)!)).toBe('11'.repeat(32));
  });

  it('encodes a response', () => {
    expect(toHex(encodeDynamicAuthenticationTemplate([[0x82, fromHex('3006020101020102')]]))).toBe(
      '7c0a' + '8208' + '3006020101020102',
    );
    expect(toHex(encodeDynamicAuthenticationTemplate([]))).toBe('7c00');
  });

  it('round-trips any set of allowed tags', () => {
    const entry = fc.tuple(fc.constantFrom(0x80, 0x81, 0x82, 0x85), fc.uint8Array({ maxLength: 300 }));
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: ([tag]) => tag, maxLength: 4 }), (entries) => {
        const parsed = parseDynamicAuthenticationTemplate(encodeDynamicAuthenticationTemplate(entries));
        expect([...parsed]).toEqual(entries);
      }),
    );
  });

  it('copies values out of the input buffer', () => {
    const data = fromHex('7c03 810101');
    const value = parseDynamicAuthenticationTemplate(data).get(0x81)!;
    data.fill(0xee);
    expect(toHex(value)).toBe('01');
  });

  it.each([
    ['empty input', '', /expected a tag/],
    ['wrong outer tag', '7d03 810101', /tag 7C.*got tag 7D/],
    ['trailing bytes', '7c03 810101 00', /nothing after.*got 1 bytes/],
    ['unknown tag', '7c03 830101', /80, 81, 82 or 85.*got 83/],
    ['length overflow of the template', '7c05 810101', /expected 5 value bytes/],
    ['length overflow of an entry', '7c03 810201', /expected 2 value bytes/],
    ['duplicate tag', '7c06 810101 810102', /once.*twice/],
    ['indefinite length', '7c80 810101 0000', /definite length/],
  ])('refuses %s', (_name, hex, message) => {
    expectTlvError(() => parseDynamicAuthenticationTemplate(fromHex(hex)), message);
  });

  it('refuses to encode unknown or repeated tags', () => {
    expectTlvError(() => encodeDynamicAuthenticationTemplate([[0x83, new Uint8Array(0)]]), /got 83/);
    expectTlvError(
      () =>
        encodeDynamicAuthenticationTemplate([
          [0x81, new Uint8Array(1)],
          [0x81, new Uint8Array(1)],
        ]),
      /twice/,
    );
  });
});
