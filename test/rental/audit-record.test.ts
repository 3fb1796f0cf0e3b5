// The audit record of patent 003 [0056] and its trail line (DESIGN.md "Software rental"): h1 and the signed digest
// byte by byte (vectors computed independently with Python's hashlib), the line's encode / parse / round trip, a
// table of malformed lines, and fast-check fuzz: the parser only ever returns a record or throws RentalError.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { thrown } from '../support/index.js';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, uintToBytes, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  encodeRecordLine, MAX_TEXT_BYTES, parseRecordLine, recordDigest, recordHash, verifyRecord, type AuditRecord, type TrustRoot,
} from '../../src/rental/audit-record.js';
import { RentalError } from '../../src/rental/rental-error.js';

const WP_TEXT = 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3';
/** [0056], Fig. 6: the patent's nonces are small integers; a record's nonce is 16 bytes, so they are 16-byte big-endian. */
const nonceOf = (n: bigint) => uintToBytes(n, 16);

function signed(text: string, counter: bigint, root: { key: ReturnType<typeof ed25519KeyFromSeed>; serial: string; keyMode: TrustRoot['keyMode'] }, nonce = nonceOf(96n)): AuditRecord {
  const unsigned = { nonce, text, counter, signature: new Uint8Array(64) };
  return { ...unsigned, signature: root.key.sign(recordDigest(unsigned, { publicKey: root.key.publicKey, serial: root.serial, keyMode: root.keyMode })) };
}


const key = ed25519KeyFromSeed(generateEd25519Seed());
const individual = { key, serial: 'SN-AUDIT', keyMode: 'individual' as const };
const root: TrustRoot = { publicKey: key.publicKey, serial: 'SN-AUDIT', keyMode: 'individual' };

describe('h1 and the signed digest ([0056], [0059] steps [2] and [6], [0100])', () => {
  it('h1 = SHA-256(len(nonce) ‖ nonce ‖ len(text) ‖ text), 4-byte big-endian lengths: Fig. 6 record 1 (nonce 96)', () => {
    // python3: sha256(pack('>I',16) + (96).to_bytes(16,'big') + pack('>I',57) + WP_TEXT.encode())
    expect(toHex(recordHash(nonceOf(96n), WP_TEXT))).toBe('38cdf65b02cb3c492d8322662b93aaf26e6ecab37817b5edcec41a375c3c189e');
    const manual = createHash('sha256').update(Uint8Array.of(0, 0, 0, 16)).update(nonceOf(96n)).update(Uint8Array.of(0, 0, 0, 57)).update(utf8(WP_TEXT)).digest();
    expect(toHex(recordHash(nonceOf(96n), WP_TEXT))).toBe(manual.toString('hex'));
  });

  it('the lengths make (nonce, text) unambiguous, and the text counts in UTF-8 bytes', () => {
    expect(toHex(recordHash(nonceOf(1n), 'ab'))).not.toBe(toHex(recordHash(nonceOf(1n), 'ab\u0000')));
    const text = 'Grüße €';
    const manual = createHash('sha256').update(Uint8Array.of(0, 0, 0, 16)).update(nonceOf(1n)).update(uintToBytes(BigInt(utf8(text).length), 4)).update(utf8(text)).digest('hex');
    expect(toHex(recordHash(nonceOf(1n), text))).toBe(manual);
  });

  it('individual key: the card signs SHA-256(h1 ‖ counter as 16 bytes), the VSC applet\'s P1 00 digest', () => {
    const record = { nonce: nonceOf(96n), text: WP_TEXT, counter: 0n, signature: new Uint8Array(64) };
    expect(toHex(recordDigest(record, root))).toBe('ad16fc65ee32233bde621a32558331caec434f81d0139ef3b87a77042b23a244');
  });

  it('universal key ([0100] "hash(hash(96,WP...),serial_number,0)"): SHA-256(h1 ‖ serial ‖ counter), the P1 01 digest', () => {
    const record = { nonce: nonceOf(96n), text: WP_TEXT, counter: 0n, signature: new Uint8Array(64) };
    const universal: TrustRoot = { ...root, serial: 'SN-UNIVERSAL-7', keyMode: 'universal' };
    expect(toHex(recordDigest(record, universal))).toBe('2948234d44edf8a35ae33da4f1f70f2ec72de3d63b15c2b64b59514839e603d8');
  });

  it('verifies a record against its trust root only: another key, serial (universal) or counter fails', () => {
    const record = signed(WP_TEXT, 5n, individual);
    expect(verifyRecord(record, root)).toBe(true);
    expect(verifyRecord({ ...record, counter: 6n }, root)).toBe(false);
    expect(verifyRecord({ ...record, text: WP_TEXT.replace('15 minutes', '15 seconds') }, root)).toBe(false);
    expect(verifyRecord(record, { ...root, publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey })).toBe(false);
    const universalCard = { key, serial: 'SN-U1', keyMode: 'universal' as const };
    const universalRecord = signed(WP_TEXT, 5n, universalCard);
    expect(verifyRecord(universalRecord, { publicKey: key.publicKey, serial: 'SN-U1', keyMode: 'universal' })).toBe(true);
    expect(verifyRecord(universalRecord, { publicKey: key.publicKey, serial: 'SN-U2', keyMode: 'universal' })).toBe(false);
    expect(verifyRecord(universalRecord, { publicKey: key.publicKey, serial: 'SN-U1', keyMode: 'individual' })).toBe(false);
  });
});

describe('the trail line', () => {
  const record = signed(WP_TEXT, 3n, individual);

  it('encodes the four fields in [0056]\'s order, bytes as lowercase hex, the counter as 32 digits', () => {
    const line = encodeRecordLine(record);
    expect(line).toBe(`{"nonce":"00000000000000000000000000000060","text":"${WP_TEXT}","counter":"00000000000000000000000000000003","signature":"${toHex(record.signature)}"}`);
    expect(parseRecordLine(line)).toEqual(record);
  });

  it('round-trips any record: texts with quotes, controls, astral characters, counters up to 2^128-1', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.bigInt(0n, (1n << 128n) - 1n), fc.uint8Array({ minLength: 64, maxLength: 64 }),
      (nonce, text, counter, signature) => {
        const line = encodeRecordLine({ nonce, text, counter, signature });
        expect(line).not.toContain('\n');
        expect(parseRecordLine(line)).toEqual({ nonce, text, counter, signature });
      },
    ), { numRuns: 300 });
  });

  it('takes a text of exactly MAX_TEXT_BYTES and refuses one byte more (input, exit 2)', () => {
    const longest = { ...record, text: 'x'.repeat(MAX_TEXT_BYTES) };
    expect(parseRecordLine(encodeRecordLine(longest)).text).toHaveLength(MAX_TEXT_BYTES);
    expect(thrown(() => encodeRecordLine({ ...record, text: 'é'.repeat(MAX_TEXT_BYTES / 2) + 'x' }))).toMatchObject({ reason: 'input', exitCode: ExitCode.usage });
  });

  const good = encodeRecordLine(record);
  const fields = JSON.parse(good) as Record<string, string>;
  const line = (over: Record<string, unknown>) => JSON.stringify({ ...fields, ...over });
  it.each([
    ['an empty line', '', 'empty line'],
    ['not JSON', good.slice(0, -1), 'not JSON'],
    ['an array', '[1,2,3]', 'got an array'],
    ['a number', '42', 'got number'],
    ['null', 'null', 'got null'],
    ['a missing key', JSON.stringify({ nonce: fields['nonce'], text: WP_TEXT, counter: fields['counter'] }), 'expected the keys'],
    ['an extra key', line({ extra: 1 }), 'expected the keys'],
    ['keys in another order', JSON.stringify({ text: WP_TEXT, nonce: fields['nonce'], counter: fields['counter'], signature: fields['signature'] }), 'in that order'],
    ['a nonce of 15 bytes', line({ nonce: '00'.repeat(15) }), '"nonce" as 32 lowercase hex digits, got 30 characters'],
    ['an uppercase nonce', line({ nonce: fields['nonce']!.toUpperCase().replace(/0/g, 'A') }), '"nonce" as 32 lowercase hex'],
    ['a nonce as a number', line({ nonce: 96 }), 'got number'],
    ['a counter of 31 digits', line({ counter: '0'.repeat(31) }), '"counter" as 32 lowercase hex digits, got 31 characters'],
    ['a decimal counter', line({ counter: 3 }), 'got number'],
    ['a counter with a sign', line({ counter: '-' + '0'.repeat(31) }), '"counter"'],
    ['a short signature', line({ signature: 'ab'.repeat(63) }), '"signature" as 128 lowercase hex digits'],
    ['an uppercase signature', line({ signature: fields['signature']!.toUpperCase() }), '"signature" as 128 lowercase hex digits'],
    ['a text that is a number', line({ text: 7 }), 'text as a string'],
    ['a lone surrogate in the text', line({ text: 'WP \ud800' }), 'lone surrogate'],
    ['a text over the limit', line({ text: 'x'.repeat(MAX_TEXT_BYTES + 1) }), `at most ${MAX_TEXT_BYTES} UTF-8 bytes`],
    ['spacing', good.replace('","text"', '", "text"'), 'canonical form'],
    ['a needless escape', good.replace('WP 15', 'W\\u0050 15'), 'canonical form'],
    ['a duplicate key', good.slice(0, -1) + `,"nonce":"${'11'.repeat(16)}"}`, 'canonical form'],
    ['a trailing newline inside the line', good + '\n', 'canonical form'],
  ])('refuses %s as malformed (exit 3), in one line that names what was expected', (_name, bad, expected) => {
    const error = thrown(() => parseRecordLine(bad, 17)) as RentalError;
    expect(error).toBeInstanceOf(RentalError);
    expect(error.reason).toBe('malformed');
    expect(error.code).toBe('rental.malformed');
    expect(error.exitCode).toBe(ExitCode.refusedByState);
    expect(error.line).toBe(17);
    expect(error.message).toMatch(/^trail line 17: /);
    expect(error.message).toContain(expected);
    expect(error.message).not.toContain('\n');
  });

  it('never quotes the line it refuses', () => {
    const secretish = line({ text: 'x'.repeat(10), nonce: 'zz'.repeat(16) });
    expect((thrown(() => parseRecordLine(secretish)) as Error).message).not.toContain('zzzz');
  });
});

/** Only returns an AuditRecord or throws RentalError, whatever it is given. */
function parsesOrRefuses(input: string): void {
  try {
    const record = parseRecordLine(input);
    expect(encodeRecordLine(record)).toBe(input);
  } catch (error) {
    if (!(error instanceof RentalError)) throw error;
    expect(error.message).not.toContain('\n');
  }
}

describe('fuzz: parseRecordLine only returns or throws RentalError', () => {
  const good = encodeRecordLine(signed(WP_TEXT, 3n, individual));
  const anyUnit = fc.nat(0xffff).map((code) => String.fromCharCode(code));

  it('on arbitrary strings, with lone surrogates and controls', () => {
    fc.assert(fc.property(fc.string({ unit: anyUnit, maxLength: 400 }), parsesOrRefuses), { numRuns: 2000 });
  });

  it('on arbitrary JSON values', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => parsesOrRefuses(JSON.stringify(value) ?? '')), { numRuns: 1000 });
  });

  it('on objects with the right keys and arbitrary values', () => {
    const value = fc.oneof(fc.jsonValue(), fc.string({ unit: fc.constantFrom(...'0123456789abcdefA'), minLength: 30, maxLength: 130 }), fc.string({ unit: anyUnit }));
    fc.assert(fc.property(value, value, value, value, (nonce, text, counter, signature) => parsesOrRefuses(JSON.stringify({ nonce, text, counter, signature }))), { numRuns: 1000 });
  });

  it('on a good line with characters replaced, inserted or deleted', () => {
    const edit = fc.record({ at: fc.nat(good.length), cut: fc.nat(3), insert: fc.string({ unit: anyUnit, maxLength: 3 }) });
    fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
      let line = good;
      for (const { at, cut, insert } of edits) line = line.slice(0, at % (line.length + 1)) + insert + line.slice((at % (line.length + 1)) + cut);
      parsesOrRefuses(line);
    }), { numRuns: 2000 });
  });

  it('on a good line with one hex digit of nonce, counter or signature changed: still parses, but no longer verifies', () => {
    const parsed = parseRecordLine(good);
    fc.assert(fc.property(fc.integer({ min: 10, max: good.length - 3 }), fc.constantFrom(...'0123456789abcdef'), (at, digit) => {
      const changed = good.slice(0, at) + digit + good.slice(at + 1);
      let record: AuditRecord;
      try {
        record = parseRecordLine(changed);
      } catch (error) {
        expect(error).toBeInstanceOf(RentalError);
        return;
      }
      if (changed !== good) expect(verifyRecord(record, root)).toBe(false);
      else expect(record).toEqual(parsed);
    }), { numRuns: 500 });
  });
});

describe('bad input to the encoder is exit 2', () => {
  const record = signed(WP_TEXT, 3n, individual);
  it.each([
    ['a 15-byte nonce', { ...record, nonce: new Uint8Array(15) }],
    ['a 63-byte signature', { ...record, signature: new Uint8Array(63) }],
    ['a negative counter', { ...record, counter: -1n }],
    ['a counter of 2^128', { ...record, counter: 1n << 128n }],
    ['a text with a lone surrogate', { ...record, text: '\udc00' }],
  ])('refuses %s', (_name, bad) => {
    const error = thrown(() => encodeRecordLine(bad));
    expect(error).toBeInstanceOf(RentalError);
    expect(error).toMatchObject({ reason: 'input', code: 'rental.input', exitCode: ExitCode.usage });
  });

  it('recordHash refuses a nonce that is not 16 bytes', () => {
    expect(() => recordHash(fromHex('00'), 'x')).toThrow('expected a 16-byte nonce, got 1 bytes');
  });
});
