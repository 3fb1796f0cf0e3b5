// Tests for the BER-TLV codec, ISO/IEC 7816-4 section 5.2, on SP 800-73-4 data objects.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual, concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import { VscError } from '../../src/errors/index.js';
import {
  MAX_TLV_LENGTH, TlvFormatError, decodeTlv, decodeTlvList, encodeConstructed, encodeLength, encodeTag, encodeTlv,
  findTlv, formatTag, isValidTag, type Tlv,
} from '../../src/apdu/ber-tlv.js';

function filled(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + seed) & 0xff;
  return out;
}

function only(list: Tlv[]): Tlv {
  expect(list).toHaveLength(1);
  return list[0]!;
}

function expectTlvError(run: () => unknown, message?: RegExp): void {
  expect(run).toThrow(TlvFormatError);
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(VscError);
    expect((error as VscError).code).toBe('apdu.tlv');
    if (message !== undefined) expect((error as Error).message).toMatch(message);
  }
}

describe('SP 800-73-4 vectors', () => {
  // Application property template answered to SELECT (SP 800-73-4 Part 2 3.1.1), as a YubiKey sends it
  // (opensc-tool trace): 61 { 4F PIX of the PIV AID, 79 { 4F NIST RID as tag allocation authority } }.
  const apt = '61 11' + ' 4f 06 000010000100' + ' 79 07 4f 05 a000000308';

  it('decodes the application property template', () => {
    const template = only(decodeTlvList(fromHex(apt)));
    expect(template).toMatchObject({ tag: 0x61, constructed: true, headerLength: 2, end: 19 });
    const children = decodeTlvList(template.value);
    expect(children.map((tlv) => tlv.tag)).toEqual([0x4f, 0x79]);
    expect(toHex(findTlv(children, 0x4f)!.value)).toBe('000010000100');
    expect(findTlv(children, 0x4f)!.constructed).toBe(false);
    const authority = findTlv(children, 0x79)!;
    expect(authority.constructed).toBe(true);
    expect(toHex(only(decodeTlvList(authority.value)).value)).toBe('a000000308');
  });

  it('encodes the application property template', () => {
    const encoded = encodeConstructed(0x61, [
      encodeTlv(0x4f, fromHex('000010000100')),
      encodeConstructed(0x79, [encodeTlv(0x4f, fromHex('a000000308'))]),
    ]);
    expect(toHex(encoded)).toBe(toHex(fromHex(apt)));
  });

  it('handles the optional two-byte tag 5F50 (URL) and the AC algorithm list of the template', () => {
    const url = new TextEncoder().encode('https://example.gov/piv');
    const encoded = encodeConstructed(0x61, [
      encodeTlv(0x4f, fromHex('000010000100')),
      encodeTlv(0x5f50, url),
      // AC { 80 07 (RSA 2048), 80 11 (ECC P-256), 06 00 } (SP 800-78-4 algorithm identifiers).
      encodeConstructed(0xac, [encodeTlv(0x80, fromHex('07')), encodeTlv(0x80, fromHex('11')), encodeTlv(0x06, fromHex('00'))]),
    ]);
    const children = decodeTlvList(only(decodeTlvList(encoded)).value);
    expect(children.map((tlv) => formatTag(tlv.tag))).toEqual(['4F', '5F50', 'AC']);
    const urlTlv = findTlv(children, 0x5f50)!;
    expect(urlTlv.headerLength).toBe(3);
    expect(urlTlv.constructed).toBe(false);
    expect(bytesEqual(urlTlv.value, url)).toBe(true);
    const algorithms = decodeTlvList(findTlv(children, 0xac)!.value);
    expect(algorithms.map((tlv) => `${formatTag(tlv.tag)}=${toHex(tlv.value)}`)).toEqual(['80=07', '80=11', '06=00']);
    expect(findTlv(algorithms, 0x80)!.value[0]).toBe(0x07); // the first match wins
  });

  // X.509 Certificate for PIV Authentication, container 5FC105 (SP 800-73-4 Part 1 Appendix A):
  // 53 82 01 23 { 70 82 01 1A certificate, 71 01 00 CertInfo (uncompressed), FE 00 error detection code }.
  const certificate = concatBytes(fromHex('3082 0116'), filled(0x116, 7)); // 282 bytes shaped like DER
  const certificateObject = concatBytes(fromHex('53 82 01 23  70 82 01 1a'), certificate, fromHex('71 01 00  fe 00'));

  it('decodes a certificate object with 82 lengths', () => {
    const object = only(decodeTlvList(certificateObject));
    expect(object).toMatchObject({ tag: 0x53, constructed: false, headerLength: 4, end: 4 + 0x123 });
    expect(object.value.length).toBe(0x123);
    const [cert, info, edc] = decodeTlvList(object.value);
    expect(cert).toMatchObject({ tag: 0x70, headerLength: 4 });
    expect(bytesEqual(cert!.value, certificate)).toBe(true);
    expect(info).toMatchObject({ tag: 0x71 });
    expect(toHex(info!.value)).toBe('00');
    expect(edc).toMatchObject({ tag: 0xfe, headerLength: 2, end: 0x123 });
    expect(edc!.value.length).toBe(0);
  });

  it('encodes a certificate object (53 is primitive by BER, yet holds TLVs in PIV)', () => {
    const encoded = encodeConstructed(0x53, [
      encodeTlv(0x70, certificate),
      encodeTlv(0x71, fromHex('00')),
      encodeTlv(0xfe, new Uint8Array(0)),
    ]);
    expect(bytesEqual(encoded, certificateObject)).toBe(true);
  });

  it('decodes the PUT DATA field naming the 3-byte tag 5FC105 (SP 800-73-4 Part 2 3.3.2)', () => {
    const field = concatBytes(fromHex('5c 03 5f c1 05'), certificateObject);
    const [tagList, data] = decodeTlvList(field);
    expect(tagList).toMatchObject({ tag: 0x5c, end: 5 });
    expect(toHex(tagList!.value)).toBe('5fc105');
    expect(toHex(encodeTag(0x5fc105))).toBe('5fc105');
    expect(data).toMatchObject({ tag: 0x53, end: field.length });
  });

  it('decodes a 3-byte tag as a TLV of its own', () => {
    const tlv = decodeTlv(fromHex('5f c1 05 02 aa bb'));
    expect(tlv).toMatchObject({ tag: 0x5fc105, constructed: false, headerLength: 4, end: 6 });
    expect(toHex(encodeTlv(0x5fc105, fromHex('aabb')))).toBe('5fc10502aabb');
  });

  // GENERATE ASYMMETRIC KEY PAIR answer for RSA 2048 (SP 800-73-4 Part 2 3.3.2):
  // 7F49 82 01 09 { 81 82 01 00 modulus, 82 03 010001 exponent }.
  it('decodes and encodes the 7F49 public key template', () => {
    const modulus = filled(256, 3);
    const bytes = concatBytes(fromHex('7f49 82 0109  81 82 0100'), modulus, fromHex('82 03 010001'));
    const template = only(decodeTlvList(bytes));
    expect(template).toMatchObject({ tag: 0x7f49, constructed: true, headerLength: 5 });
    const parts = decodeTlvList(template.value);
    expect(bytesEqual(findTlv(parts, 0x81)!.value, modulus)).toBe(true);
    expect(toHex(findTlv(parts, 0x82)!.value)).toBe('010001');
    expect(bytesEqual(encodeConstructed(0x7f49, [encodeTlv(0x81, modulus), encodeTlv(0x82, fromHex('010001'))]), bytes)).toBe(true);
  });

  // GENERAL AUTHENTICATE dynamic authentication template (SP 800-73-4 Part 2 3.2.4), as in an opensc-tool trace:
  // 7C 81 85 { 82 00 (response requested), 81 81 80 challenge }.
  it('decodes the 7C template with 81 lengths of 128 and more', () => {
    const challenge = filled(128, 9);
    const bytes = concatBytes(fromHex('7c 81 85  82 00  81 81 80'), challenge);
    const template = only(decodeTlvList(bytes));
    expect(template).toMatchObject({ tag: 0x7c, constructed: true, headerLength: 3, end: 136 });
    const [response, witness] = decodeTlvList(template.value);
    expect(response).toMatchObject({ tag: 0x82, headerLength: 2 });
    expect(response!.value.length).toBe(0);
    expect(witness).toMatchObject({ tag: 0x81, headerLength: 3 });
    expect(bytesEqual(witness!.value, challenge)).toBe(true);
    expect(bytesEqual(encodeConstructed(0x7c, [encodeTlv(0x82, new Uint8Array(0)), encodeTlv(0x81, challenge)]), bytes)).toBe(true);
  });
});

describe('lengths', () => {
  it.each([
    [0, '00'],
    [1, '01'],
    [0x7f, '7f'],
    [0x80, '8180'],
    [0xff, '81ff'],
    [0x100, '820100'],
    [0x123, '820123'],
    [0xffff, '82ffff'],
    [0x10000, '83010000'],
    [MAX_TLV_LENGTH, '83ffffff'],
  ])('encodes %i minimally as %s, and decodes it back', (length, hex) => {
    expect(toHex(encodeLength(length))).toBe(hex);
    const bytes = concatBytes(fromHex('04'), fromHex(hex), filled(length));
    const tlv = decodeTlv(bytes);
    expect(tlv.value.length).toBe(length);
    expect(tlv.headerLength).toBe(1 + hex.length / 2);
    expect(tlv.end).toBe(bytes.length);
  });

  it.each([-1, 1.5, Number.NaN, MAX_TLV_LENGTH + 1])('refuses to encode the length %s', (length) => {
    expectTlvError(() => encodeLength(length), /^expected a length in 0\.\.16777215, got/);
  });

  it('refuses a value longer than 83 can say', () => {
    expectTlvError(() => encodeTlv(0x53, new Uint8Array(MAX_TLV_LENGTH + 1)));
  });

  it.each([
    ['81 03', 3, 3],
    ['81 00', 0, 3],
    ['82 0003', 3, 4],
    ['82 007f', 0x7f, 4],
    ['83 000003', 3, 5],
    ['83 0000ff', 0xff, 5],
  ])('accepts the non-minimal length %s on decode, re-encodes it minimally', (hex, length, headerLength) => {
    const bytes = concatBytes(fromHex('04'), fromHex(hex), filled(length));
    const tlv = decodeTlv(bytes);
    expect(tlv.value.length).toBe(length);
    expect(tlv.headerLength).toBe(headerLength);
    expect(encodeTlv(tlv.tag, tlv.value).length).toBe(1 + encodeLength(length).length + length);
  });
});

describe('tags', () => {
  it.each([
    [0x01, '01'],
    [0x04, '04'],
    [0x53, '53'],
    [0x5c, '5c'],
    [0x7e, '7e'],
    [0xfe, 'fe'],
    [0x5f1f, '5f1f'],
    [0x5f50, '5f50'],
    [0x5f7f, '5f7f'],
    [0x7f49, '7f49'],
    [0xbf7f, 'bf7f'],
    [0x5fc105, '5fc105'],
    [0x9f8100, '9f8100'],
    [0xdfff7f, 'dfff7f'],
  ])('encodes the valid tag %s', (tag, hex) => {
    expect(isValidTag(tag)).toBe(true);
    expect(toHex(encodeTag(tag))).toBe(hex);
    expect(decodeTlv(encodeTlv(tag, fromHex('aa'))).tag).toBe(tag);
  });

  it.each([
    ['0', 0],
    ['negative', -1],
    ['not an integer', 0x53 + 0.5],
    ['more than 3 bytes', 0x1000000],
    ['1F alone (announces subsequent bytes)', 0x1f],
    ['5F alone', 0x5f],
    ['FF (padding)', 0xff],
    ['2 bytes after a one-byte first byte (0153)', 0x0153],
    ['second byte below 1F (5F1E: fits the one-byte form)', 0x5f1e],
    ['second byte 00 (5F00)', 0x5f00],
    ['EMV-style 9F02 (ISO 7816-4 forbids 00-1E as second byte)', 0x9f02],
    ['second byte announcing a third that is missing (5F81)', 0x5f81],
    ['second byte 80 (a leading zero group, 5F8001)', 0x5f8001],
    ['third byte announcing a fourth (5FC181)', 0x5fc181],
    ['3 bytes where the second is the last (5F4901)', 0x5f4901],
    ['first byte FF (FF4F)', 0xff4f],
  ])('refuses the invalid tag: %s', (_name, tag) => {
    expect(isValidTag(tag)).toBe(false);
    expectTlvError(() => encodeTag(tag));
    expectTlvError(() => encodeTlv(tag, new Uint8Array(0)));
  });

  it('sets constructed from bit 6 of the first tag byte', () => {
    expect(decodeTlv(fromHex('2000')).constructed).toBe(true);
    expect(decodeTlv(fromHex('df1f00')).constructed).toBe(false);
    expect(decodeTlv(fromHex('3f1f00')).constructed).toBe(true);
  });

  // An independent statement of ISO/IEC 7816-4 5.2.2.1 for tags of up to three bytes.
  function referenceValid(tag: number): boolean {
    if (tag <= 0 || tag > 0xffffff) return false;
    if (tag <= 0xff) return tag !== 0xff && (tag & 0x1f) !== 0x1f;
    const first = tag > 0xffff ? tag >> 16 : tag >> 8;
    if (first === 0xff || (first & 0x1f) !== 0x1f) return false;
    if (tag <= 0xffff) return (tag & 0xff) >= 0x1f && (tag & 0xff) <= 0x7f;
    return ((tag >> 8) & 0xff) >= 0x81 && (tag & 0xff) <= 0x7f;
  }

  it('isValidTag agrees with the reference on every 1- and 2-byte tag', () => {
    const disagreements: number[] = [];
    for (let tag = 0; tag <= 0xffff; tag++) if (isValidTag(tag) !== referenceValid(tag)) disagreements.push(tag);
    expect(disagreements).toEqual([]);
  });

  it('isValidTag agrees with the reference on 3-byte tags, and valid tags decode to themselves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x10000, max: 0x1000001 }), (tag) => {
        expect(isValidTag(tag)).toBe(referenceValid(tag));
        if (referenceValid(tag)) expect(decodeTlv(concatBytes(encodeTag(tag), fromHex('00'))).tag).toBe(tag);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('decodeTlv and decodeTlvList', () => {
  it('returns the value as a view into the input, not a copy', () => {
    const bytes = fromHex('53 02 aa bb');
    const tlv = decodeTlv(bytes);
    expect(tlv.value.buffer).toBe(bytes.buffer);
    expect(tlv.value.byteOffset).toBe(2);
    bytes[2] = 0x11;
    expect(tlv.value[0]).toBe(0x11);
  });

  it('decodes at an offset and reports the absolute end', () => {
    const bytes = fromHex('01 01 aa  5f c1 05 02 bb cc  02 00');
    const tlv = decodeTlv(bytes, 3);
    expect(tlv).toMatchObject({ tag: 0x5fc105, headerLength: 4, end: 9 });
    expect(toHex(tlv.value)).toBe('bbcc');
    expect(decodeTlv(bytes, tlv.end)).toMatchObject({ tag: 0x02, end: 11 });
  });

  it('returns a frozen record', () => {
    expect(Object.isFrozen(decodeTlv(fromHex('0100')))).toBe(true);
  });

  it('decodes the empty list', () => {
    expect(decodeTlvList(new Uint8Array(0))).toEqual([]);
  });

  it('findTlv returns undefined when the tag is absent', () => {
    expect(findTlv(decodeTlvList(fromHex('0100 0200')), 0x03)).toBeUndefined();
    expect(findTlv([], 0x53)).toBeUndefined();
  });

  it.each([-1, 1.5, 5])('refuses the offset %s', (offset) => {
    expectTlvError(() => decodeTlv(fromHex('0100'), offset), /^expected an offset in 0\.\.2, got/);
  });

  it('refuses 00/FF padding by default and skips it when asked (ISO/IEC 7816-4 5.2.2.1)', () => {
    const padded = fromHex('00 ff 01 01 aa 00 00 02 00 ff ff');
    expectTlvError(() => decodeTlvList(padded), /reserved for padding/);
    const list = decodeTlvList(padded, { allowPadding: true });
    expect(list.map((tlv) => [tlv.tag, toHex(tlv.value)])).toEqual([
      [0x01, 'aa'],
      [0x02, ''],
    ]);
    expect(decodeTlvList(fromHex('0000ff'), { allowPadding: true })).toEqual([]);
  });

  const malformed: [string, string, RegExp][] = [
    ['nothing to decode', '', /expected a tag at offset 0, got end of data/],
    ['padding byte 00 as a tag', '00 00', /reserved for padding/],
    ['padding byte FF as a tag', 'ff 00', /reserved for padding/],
    ['tag 5F cut after its first byte', '5f', /announces subsequent bytes, got none/],
    ['tag 5FC1 cut before its third byte', '5f c1', /announces another byte, got none/],
    ['4-byte tag', '5f c1 81 05 00', /at most 3 bytes/],
    ['second tag byte 1E', '5f 1e 00', /expected a first subsequent tag byte/],
    ['second tag byte 80', '5f 80 01 00', /expected a first subsequent tag byte/],
    ['missing length', '53', /expected a length after tag 53, got end of data/],
    ['missing length after a 3-byte tag', '5f c1 05', /expected a length after tag 5FC105/],
    ['indefinite length 80', '53 80 01 00 00 00', /indefinite form 80/],
    ['length form 84', '53 84 00 00 00 01 00', /expected a length form 81, 82 or 83 after tag 53, got 84/],
    ['length form FF', '53 ff', /got FF/],
    ['81 without its byte', '53 81', /expected 1 length bytes after tag 53, got 0/],
    ['82 with one byte', '53 82 01', /expected 2 length bytes after tag 53, got 1/],
    ['83 with two bytes', '53 83 00 01', /expected 3 length bytes/],
    ['short value', '53 02 01', /expected 2 value bytes for tag 53, got 1/],
    ['81 80 with 127 bytes', '53 81 80' + '00'.repeat(127), /expected 128 value bytes for tag 53, got 127/],
    ['82 0100 with 255 bytes', '53 82 01 00' + '00'.repeat(255), /expected 256 value bytes/],
    ['83 ffffff with nothing', '53 83 ff ff ff', /expected 16777215 value bytes/],
  ];

  it.each(malformed)('decodeTlv rejects %s', (_name, hex, message) => {
    expectTlvError(() => decodeTlv(fromHex(hex)), message);
  });

  it.each(malformed.filter(([, hex]) => hex !== ''))('decodeTlvList rejects %s', (_name, hex, message) => {
    expectTlvError(() => decodeTlvList(fromHex(hex)), message);
  });

  it.each([
    ['a tag without length after a good object', '53 01 00 54', /expected a length after tag 54/],
    ['a trailing padding byte', '53 01 00 00', /reserved for padding/],
    ['a truncated second object', '53 01 00 70 05 01', /expected 5 value bytes for tag 70, got 1/],
  ])('decodeTlvList rejects %s: the whole buffer must be consumed', (_name, hex, message) => {
    expectTlvError(() => decodeTlvList(fromHex(hex)), message);
  });
});

describe('encodeConstructed', () => {
  it('wraps no children in an empty object', () => {
    expect(toHex(encodeConstructed(0x7c, []))).toBe('7c00');
  });

  it('refuses a child that is not BER-TLV, keeping the cause', () => {
    try {
      encodeConstructed(0x53, [encodeTlv(0x71, fromHex('00')), fromHex('70 05 01')]);
      expect.unreachable('expected a TlvFormatError');
    } catch (error) {
      expect(error).toBeInstanceOf(TlvFormatError);
      expect((error as Error).message).toMatch(/^child 1 is not BER-TLV: expected 5 value bytes for tag 70, got 1/);
      expect((error as Error).cause).toBeInstanceOf(TlvFormatError);
    }
  });

  it('refuses an invalid outer tag', () => {
    expectTlvError(() => encodeConstructed(0x1f, []), /invalid tag 1F/);
  });
});

describe('BER-TLV properties', () => {
  const oneByteTag = fc.nat(0xfe).filter((b) => b !== 0 && (b & 0x1f) !== 0x1f);
  const firstOfLong = fc.nat(6).map((top) => (top << 5) | 0x1f); // 1F, 3F, ... DF; FF is padding
  const twoByteTag = fc.tuple(firstOfLong, fc.integer({ min: 0x1f, max: 0x7f })).map(([a, b]) => (a << 8) | b);
  const threeByteTag = fc
    .tuple(firstOfLong, fc.integer({ min: 0x81, max: 0xff }), fc.nat(0x7f))
    .map(([a, b, c]) => (a << 16) | (b << 8) | c);
  const tag = fc.oneof(oneByteTag, twoByteTag, threeByteTag);
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 70000 }), fc.nat(255)).map(([n, seed]) => filled(n, seed)) },
  );

  it('encodeTlv then decodeTlv gives tag, constructed flag, value and sizes back', () => {
    fc.assert(
      fc.property(tag, value, (tag, value) => {
        const tagBytes = encodeTag(tag);
        const encoded = encodeTlv(tag, value);
        const tlv = decodeTlv(encoded);
        expect(tlv.tag).toBe(tag);
        expect(tlv.constructed).toBe((tagBytes[0]! & 0x20) !== 0);
        expect(bytesEqual(tlv.value, value)).toBe(true);
        expect(tlv.headerLength).toBe(tagBytes.length + encodeLength(value.length).length);
        expect(tlv.end).toBe(encoded.length);
        expect(encoded.length).toBe(tlv.headerLength + value.length);
      }),
      { numRuns: 300 },
    );
  });

  it('a list of objects decodes back in order, and nests inside encodeConstructed', () => {
    const entry = fc.tuple(tag, fc.uint8Array({ maxLength: 200 }));
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), tag, (entries, outer) => {
        const children = entries.map(([t, v]) => encodeTlv(t, v));
        const list = decodeTlvList(concatBytes(...children));
        expect(list.map((tlv) => [tlv.tag, toHex(tlv.value)])).toEqual(entries.map(([t, v]) => [t, toHex(v)]));
        const wrapped = decodeTlv(encodeConstructed(outer, children));
        expect(wrapped.tag).toBe(outer);
        expect(decodeTlvList(wrapped.value).map((tlv) => tlv.tag)).toEqual(entries.map(([t]) => t));
      }),
    );
  });

  // Random bytes, and byte strings shaped like TLVs so that many decode.
  const tagBytes = fc.oneof(tag.map(encodeTag), fc.uint8Array({ minLength: 1, maxLength: 3 }));
  const shaped = fc
    .array(fc.tuple(tagBytes, fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 8 })), { maxLength: 4 })
    .map((parts) => concatBytes(...parts.flatMap(([t, l, v]) => [t, l, v])));
  const wellFormed = fc
    .array(fc.tuple(tag, fc.uint8Array({ maxLength: 20 })), { maxLength: 4 })
    .map((parts) => concatBytes(...parts.map(([t, v]) => encodeTlv(t, v))));
  const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), shaped, wellFormed);

  it('any byte string either decodes into objects that tile it exactly, or throws TlvFormatError', () => {
    let decoded = 0;
    let rejected = 0;
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        let list: Tlv[];
        try {
          list = decodeTlvList(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(TlvFormatError);
          rejected++;
          return;
        }
        if (list.length > 0) decoded++;
        let offset = 0;
        for (const tlv of list) {
          expect(isValidTag(tlv.tag)).toBe(true);
          expect(tlv.value.byteOffset - bytes.byteOffset).toBe(offset + tlv.headerLength);
          expect(tlv.end).toBe(offset + tlv.headerLength + tlv.value.length);
          const again = decodeTlv(encodeTlv(tlv.tag, tlv.value));
          expect(again.tag).toBe(tlv.tag);
          expect(bytesEqual(again.value, tlv.value)).toBe(true);
          offset = tlv.end;
        }
        expect(offset).toBe(bytes.length);
      }),
      { numRuns: 3000 },
    );
    expect(decoded).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it('single-object decoding of random bytes throws nothing but TlvFormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), fc.nat(12), (bytes, offset) => {
        try {
          const tlv = decodeTlv(bytes, offset);
          expect(tlv.end).toBeLessThanOrEqual(bytes.length);
        } catch (error) {
          expect(error).toBeInstanceOf(TlvFormatError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
