// Tests for the command APDU codec, ISO/IEC 7816-4 section 5.1: cases 1, 2S, 3S, 4S, 2E, 3E, 4E.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual, concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import type { VscError } from '../../src/errors/index.js';
import { ApduFormatError, MAX_EXTENDED_NE, commandApdu, encodeCommandApdu, parseCommandApdu, type CommandApdu } from '../../src/apdu/command-apdu.js';

function filled(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

interface Vector {
  name: string;
  hex: string;
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: string;
  ne: number;
  extended: boolean;
}

// PIV commands from SP 800-73-4 Part 2 section 3 and a YubiKey opensc-tool trace (SELECT, VERIFY, GET DATA).
const vectors: Vector[] = [
  // VERIFY with no data asks for the PIN retry counter (SP 800-73-4 Part 2 3.2.1).
  { name: 'case 1', hex: '00200080', cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: '', ne: 0, extended: false },
  // GET RESPONSE, Le 10.
  { name: 'case 2S', hex: '00c0000010', cla: 0, ins: 0xc0, p1: 0, p2: 0, data: '', ne: 16, extended: false },
  // GET RESPONSE, Le 00 = 256.
  { name: 'case 2S, Le 00', hex: '00c0000000', cla: 0, ins: 0xc0, p1: 0, p2: 0, data: '', ne: 256, extended: false },
  // VERIFY PIV Card Application PIN "123456" padded with FF.
  {
    name: 'case 3S',
    hex: '0020008008 313233343536ffff',
    cla: 0,
    ins: 0x20,
    p1: 0,
    p2: 0x80,
    data: '313233343536ffff',
    ne: 0,
    extended: false,
  },
  // SELECT PIV by its truncated AID, Le 00 (SP 800-73-4 Part 2 3.1.1).
  {
    name: 'case 4S',
    hex: '00a4040009a0000003080000100000',
    cla: 0,
    ins: 0xa4,
    p1: 4,
    p2: 0,
    data: 'a00000030800001000',
    ne: 256,
    extended: false,
  },
  { name: 'case 4S, Le 01', hex: '10a404000101 01', cla: 0x10, ins: 0xa4, p1: 4, p2: 0, data: '01', ne: 1, extended: false },
  // GET RESPONSE with an extended Le 0000 = 65536.
  { name: 'case 2E, Le 0000', hex: '00c0000000 0000', cla: 0, ins: 0xc0, p1: 0, p2: 0, data: '', ne: 65536, extended: true },
  { name: 'case 2E, Le 0100', hex: '00c0000000 0100', cla: 0, ins: 0xc0, p1: 0, p2: 0, data: '', ne: 256, extended: true },
  { name: 'case 2E, Le 0005', hex: '00c0000000 0005', cla: 0, ins: 0xc0, p1: 0, p2: 0, data: '', ne: 5, extended: true },
  // PUT DATA 53 01 00 with extended Lc 0003.
  { name: 'case 3E', hex: '00db3fff00 0003 530100', cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data: '530100', ne: 0, extended: true },
  // GET DATA for tag 5FC107 (card capability container), extended Lc 0005 and Le 0000 (opensc-tool trace).
  {
    name: 'case 4E',
    hex: '00cb3fff00 0005 5c035fc107 0000',
    cla: 0,
    ins: 0xcb,
    p1: 0x3f,
    p2: 0xff,
    data: '5c035fc107',
    ne: 65536,
    extended: true,
  },
  { name: 'case 4E, Le 0102', hex: '00cb3fff00 0001 5c 0102', cla: 0, ins: 0xcb, p1: 0x3f, p2: 0xff, data: '5c', ne: 258, extended: true },
];

function fields(apdu: CommandApdu): Omit<Vector, 'name' | 'hex'> {
  return { cla: apdu.cla, ins: apdu.ins, p1: apdu.p1, p2: apdu.p2, data: toHex(apdu.data), ne: apdu.ne, extended: apdu.extended };
}

describe('command APDU vectors', () => {
  it.each(vectors)('parses $name', ({ name: _name, hex, ...expected }) => {
    expect(fields(parseCommandApdu(fromHex(hex)))).toEqual(expected);
  });

  it.each(vectors)('encodes $name', ({ hex, cla, ins, p1, p2, data, ne, extended }) => {
    const apdu = commandApdu({ cla, ins, p1, p2, data: fromHex(data), ne, extended });
    expect(toHex(encodeCommandApdu(apdu))).toBe(toHex(fromHex(hex)));
  });

  it('copies the data field out of the parsed buffer', () => {
    const bytes = fromHex('0020008002aabb');
    const apdu = parseCommandApdu(bytes);
    bytes[5] = 0;
    expect(toHex(apdu.data)).toBe('aabb');
  });

  it('returns frozen APDUs', () => {
    expect(Object.isFrozen(parseCommandApdu(fromHex('00200080')))).toBe(true);
    expect(Object.isFrozen(commandApdu({ cla: 0, ins: 0x20 }))).toBe(true);
  });

  it('parses and encodes 255 and 256 data bytes around the short/extended boundary', () => {
    const short = fromHex('00db3fff' + 'ff' + toHex(filled(255)) + '00');
    expect(fields(parseCommandApdu(short))).toMatchObject({ ne: 256, extended: false });
    const extended = concatBytes(fromHex('00db3fff000100'), filled(256), fromHex('0000'));
    expect(fields(parseCommandApdu(extended))).toMatchObject({ ne: 65536, extended: true });
    expect(parseCommandApdu(extended).data).toEqual(filled(256));
  });
});

describe('commandApdu builder', () => {
  it('chooses short fields up to Nc 255 and Ne 256', () => {
    const atLimit = commandApdu({ cla: 0, ins: 0xdb, data: filled(255), ne: 256 });
    expect(atLimit.extended).toBe(false);
    const bytes = encodeCommandApdu(atLimit);
    expect(bytes.length).toBe(4 + 1 + 255 + 1);
    expect(bytes[4]).toBe(0xff);
    expect(bytes[bytes.length - 1]).toBe(0x00);
  });

  it('switches to extended fields at Nc 256', () => {
    const apdu = commandApdu({ cla: 0, ins: 0xdb, data: filled(256) });
    expect(apdu.extended).toBe(true);
    const bytes = encodeCommandApdu(apdu);
    expect(bytes.length).toBe(4 + 3 + 256);
    expect(toHex(bytes.subarray(4, 7))).toBe('000100');
  });

  it('switches to extended fields at Ne 257', () => {
    expect(toHex(encodeCommandApdu(commandApdu({ cla: 0, ins: 0xc0, ne: 256 })))).toBe('00c0000000');
    expect(toHex(encodeCommandApdu(commandApdu({ cla: 0, ins: 0xc0, ne: 257 })))).toBe('00c0000000' + '0101');
    expect(toHex(encodeCommandApdu(commandApdu({ cla: 0, ins: 0xc0, data: fromHex('01'), ne: 257 })))).toBe(
      '00c0000000' + '0001' + '01' + '0101',
    );
  });

  it('writes Ne 65536 as 0000', () => {
    expect(toHex(encodeCommandApdu(commandApdu({ cla: 0, ins: 0xc0, ne: MAX_EXTENDED_NE })))).toBe('00c0000000' + '0000');
  });

  it('uses extended fields when asked even if short ones would do', () => {
    expect(toHex(encodeCommandApdu(commandApdu({ cla: 0, ins: 0xc0, ne: 5, extended: true })))).toBe('00c0000000' + '0005');
  });

  it('defaults P1, P2, data and Ne', () => {
    expect(fields(commandApdu({ cla: 0x80, ins: 0xfd }))).toEqual({
      cla: 0x80,
      ins: 0xfd,
      p1: 0,
      p2: 0,
      data: '',
      ne: 0,
      extended: false,
    });
  });

  it.each([
    ['CLA 256', { cla: 256, ins: 0 }],
    ['CLA -1', { cla: -1, ins: 0 }],
    ['INS 1.5', { cla: 0, ins: 1.5 }],
    ['P1 256', { cla: 0, ins: 0, p1: 256 }],
    ['P2 negative', { cla: 0, ins: 0, p2: -1 }],
    ['P2 NaN', { cla: 0, ins: 0, p2: Number.NaN }],
    ['Ne 65537', { cla: 0, ins: 0, ne: 65537 }],
    ['Ne -1', { cla: 0, ins: 0, ne: -1 }],
    ['Ne 2.5', { cla: 0, ins: 0, ne: 2.5 }],
    ['65536 data bytes', { cla: 0, ins: 0, data: new Uint8Array(65536) }],
  ])('rejects %s', (_name, init) => {
    expect(() => commandApdu(init)).toThrow(ApduFormatError);
    expect(() => commandApdu(init)).toThrow(/^expected /);
  });

  it('encodeCommandApdu validates a hand-made record too', () => {
    const forged = { cla: 0x100, ins: 0, p1: 0, p2: 0, data: new Uint8Array(0), ne: 0, extended: false };
    expect(() => encodeCommandApdu(forged)).toThrow(ApduFormatError);
  });
});

describe('malformed command APDUs', () => {
  const malformed: [string, string][] = [
    ['empty', ''],
    ['1 byte', '00'],
    ['3 bytes', '00a404'],
    ['short Lc 05 followed by 4 bytes (too few)', '00a4040005 01020304'],
    ['short Lc 02 followed by 1 byte (too few)', '00a4040002 01'],
    ['short Lc 02 followed by data, Le and one extra byte', '00a4040002 0102 00 ff'],
    ['short Lc 02 followed by data, Le and two extra bytes', '00a4040002 0102 00 ffff'],
    ['short Lc 03 followed by data and a two-byte Le', '00a4040003 010203 0000'],
    ['short Lc FF followed by 10 bytes', '00a40400ff' + '00'.repeat(10)],
    ['b5 = 00 with 1 byte after it (length 6)', '00a4040000 01'],
    ['extended Lc 0000 followed by 1 byte', '00a4040000 0000 01'],
    ['extended Lc 0000 followed by a two-byte Le', '00a4040000 0000 0000'],
    ['extended Lc 0005 followed by 3 bytes (too few)', '00a4040000 0005 010203'],
    ['extended Lc 0003 followed by data and a one-byte Le', '00a4040000 0003 010203 00'],
    ['extended Lc 0003 followed by data and a three-byte Le', '00a4040000 0003 010203 000000'],
    ['extended Lc 0003 followed by data, Le and one extra byte', '00a4040000 0003 010203 0000 00'],
    ['extended Lc 0100 followed by 255 bytes', '00a4040000 0100' + '00'.repeat(255)],
    ['extended Lc FFFF followed by 2 bytes', '00a4040000 ffff 0102'],
  ];

  it.each(malformed)('rejects %s', (_name, hex) => {
    const bytes = fromHex(hex);
    expect(() => parseCommandApdu(bytes)).toThrow(ApduFormatError);
    try {
      parseCommandApdu(bytes);
    } catch (error) {
      expect((error as VscError).code).toBe('apdu.format');
    }
  });
});

describe('command APDU properties', () => {
  // Data of any length up to 65535, with random content for small sizes and a cheap pattern for large ones.
  const data = fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.nat(255)).map(([n, seed]) => filled(n, seed)) },
  );
  const ne = fc.oneof(
    fc.constant(0),
    fc.constantFrom(1, 255, 256, 257, 65535, 65536),
    fc.integer({ min: 0, max: 256 }),
    fc.integer({ min: 0, max: 65536 }),
  );
  const byte = fc.nat(255);
  const validApdu = fc.record({ cla: byte, ins: byte, p1: byte, p2: byte, data, ne, extended: fc.boolean() });

  it('encode then parse gives the same fields back', () => {
    fc.assert(
      fc.property(validApdu, (init) => {
        const built = commandApdu(init);
        const bytes = encodeCommandApdu(built);
        const parsed = parseCommandApdu(bytes);
        expect(parsed.cla).toBe(init.cla);
        expect(parsed.ins).toBe(init.ins);
        expect(parsed.p1).toBe(init.p1);
        expect(parsed.p2).toBe(init.p2);
        expect(parsed.ne).toBe(init.ne);
        expect(bytesEqual(parsed.data, init.data)).toBe(true);
        // Case 1 has no length field, so "extended" cannot survive it.
        expect(parsed.extended).toBe(built.extended && (init.data.length > 0 || init.ne > 0));
        const lengthFields = !built.extended
          ? (init.data.length > 0 ? 1 : 0) + (init.ne > 0 ? 1 : 0)
          : init.data.length > 0
            ? 3 + (init.ne > 0 ? 2 : 0)
            : init.ne > 0
              ? 3
              : 0;
        expect(bytes.length).toBe(4 + lengthFields + init.data.length);
        expect(encodeCommandApdu(parsed)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  // Byte strings built around the length-field shapes, so that many of them parse.
  const header = fc.uint8Array({ minLength: 4, maxLength: 4 });
  const shortShaped = fc
    .tuple(header, fc.integer({ min: 0, max: 12 }), fc.uint8Array({ maxLength: 16 }))
    .map(([h, lc, tail]) => concatBytes(h, Uint8Array.of(lc), tail));
  const extendedShaped = fc
    .tuple(header, fc.integer({ min: 0, max: 12 }), fc.uint8Array({ maxLength: 18 }))
    .map(([h, lc, tail]) => concatBytes(h, Uint8Array.of(0, lc >> 8, lc & 0xff), tail));
  const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 12 }), shortShaped, extendedShaped);

  it('any byte string either parses and re-encodes to itself, or throws ApduFormatError', () => {
    let parsed = 0;
    let rejected = 0;
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        let apdu: CommandApdu;
        try {
          apdu = parseCommandApdu(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(ApduFormatError);
          rejected++;
          return;
        }
        parsed++;
        expect(encodeCommandApdu(apdu)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
    expect(parsed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
