// The issuing authority's signed revocation list (patent 004 [0007], [0107]; DESIGN.md "Dongle-backed card"):
// signed over a canonical encoding, parsed strictly, refused when tampered with or signed by another authority.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex, fromUtf8, toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import { DongleError } from '../../src/dongle-backend/dongle.js';
import {
  REVOCATION_LIST_FILE, isSerialDestroyed, newer, parseRevocationList, readAuthorityRevocationList, revokedEntry, signRevocationList,
  type RevocationEntry,
} from '../../src/dongle-backend/revocation-list.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-revocations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A fixed key, so the signature below is a regression vector of the canonical encoding (made by this module
// at the time it was written; Ed25519 is deterministic, RFC 8032 section 5.1.6).
const authority = ed25519KeyFromSeed(new Uint8Array(32).fill(0x11));
const foreign = ed25519KeyFromSeed(new Uint8Array(32).fill(0x22));
const A = new Uint8Array(32).fill(0xaa);
const B = new Uint8Array(32).fill(0xbb);
const entries: RevocationEntry[] = [
  { dongle: A, serial: 'CARD-1', epoch: 0, revokedAt: '2026-11-28T10:00:00.000Z', reason: 'replaced' },
  { dongle: B, serial: 'CARD-2', epoch: 4, revokedAt: '2026-11-28T11:30:00.250Z', reason: 'destroyed' },
];
const list = signRevocationList(authority, { sequence: 7, issuedAt: '2026-11-28T12:00:00.000Z', entries });
const text = fromUtf8(list.bytes);
const root = (): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;
const bytesOf = (value: unknown): Uint8Array => utf8(JSON.stringify(value));

/** Only returns or throws DongleError('revocation-list'): never another exception. */
function parseOrListError(bytes: Uint8Array): void {
  try {
    parseRevocationList(bytes, authority.publicKey);
  } catch (error) {
    expect(error).toBeInstanceOf(DongleError);
    expect((error as DongleError).code).toBe('dongle.revocation-list');
  }
}

describe('signRevocationList / parseRevocationList', () => {
  it('writes one line of JSON with the fields of the format, and parses it back', () => {
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(2);
    expect(root()).toEqual({
      format: 'vsc-revocation-list/1', authority: toHex(authority.publicKey), sequence: 7, issuedAt: '2026-11-28T12:00:00.000Z',
      entries: [
        { dongle: toHex(A), serial: 'CARD-1', epoch: 0, revokedAt: '2026-11-28T10:00:00.000Z', reason: 'replaced' },
        { dongle: toHex(B), serial: 'CARD-2', epoch: 4, revokedAt: '2026-11-28T11:30:00.250Z', reason: 'destroyed' },
      ],
      signature: toHex(list.signature),
    });
    const parsed = parseRevocationList(list.bytes, authority.publicKey);
    expect(parsed).toMatchObject({ sequence: 7, issuedAt: '2026-11-28T12:00:00.000Z', entries });
    expect(parsed.bytes).toEqual(list.bytes);
  });

  it('signs the canonical encoding of the file\'s head, built here byte by byte and checked with @noble/curves', () => {
    const canonical = fromHex([
      toHex(utf8('vsc-revocation-list/1')), '00', // domain, separator
      toHex(authority.publicKey), // authority (32)
      '0000000000000007', // sequence 7 (8)
      toHex(uintBytes(Date.parse('2026-11-28T12:00:00.000Z'), 8)), // issuedAt ms (8)
      '00000002', // entry count (4)
      'aa'.repeat(32), '06', toHex(utf8('CARD-1')), '00000000', toHex(uintBytes(Date.parse('2026-11-28T10:00:00.000Z'), 8)), '01', // replaced
      'bb'.repeat(32), '06', toHex(utf8('CARD-2')), '00000004', toHex(uintBytes(Date.parse('2026-11-28T11:30:00.250Z'), 8)), '03', // destroyed
    ].join(''));
    expect(ed25519.verify(list.signature, canonical, authority.publicKey)).toBe(true);
    expect(toHex(list.signature)).toBe(SIGNATURE_VECTOR);
  });

  it('verifies the values, not the JSON text: another key order and spacing still verify', () => {
    const fields = root();
    const reordered = { signature: fields['signature'], entries: fields['entries'], sequence: 7, issuedAt: fields['issuedAt'], authority: fields['authority'], format: fields['format'] };
    expect(parseRevocationList(utf8(JSON.stringify(reordered, null, 4)), authority.publicKey).sequence).toBe(7);
  });

  it('an empty list (sequence 0, as "authority init" makes it) round trips', () => {
    const empty = signRevocationList(authority, { sequence: 0, issuedAt: '2026-11-28T09:00:00.000Z', entries: [] });
    expect(parseRevocationList(empty.bytes, authority.publicKey).entries).toEqual([]);
  });

  it('refuses a list of another authority, even one that claims to be ours', () => {
    const theirs = signRevocationList(foreign, { sequence: 99, issuedAt: '2026-11-28T12:00:00.000Z', entries: [] });
    expect(() => parseRevocationList(theirs.bytes, authority.publicKey)).toThrow(/signed by authority [0-9a-f]{16}…, not by the card's authority/);
    const claimed = { ...(JSON.parse(fromUtf8(theirs.bytes)) as object), authority: toHex(authority.publicKey) };
    expect(() => parseRevocationList(bytesOf(claimed), authority.publicKey)).toThrow(/signature does not verify/);
  });

  const tampered: [string, (fields: Record<string, unknown>, entry: Record<string, unknown>) => void][] = [
    ['a lower sequence', (fields) => { fields['sequence'] = 6; }],
    ['another issuedAt', (fields) => { fields['issuedAt'] = '2026-11-28T12:00:00.001Z'; }],
    ['an entry\'s reason', (_, entry) => { entry['reason'] = 'lost'; }],
    ['an entry\'s epoch', (_, entry) => { entry['epoch'] = 1; }],
    ['an entry\'s serial', (_, entry) => { entry['serial'] = 'CARD-9'; }],
    ['an entry\'s revokedAt', (_, entry) => { entry['revokedAt'] = '2026-11-29T10:00:00.000Z'; }],
    ['an entry\'s dongle', (_, entry) => { entry['dongle'] = toHex(B).replace(/^bb/, 'cc'); }],
    ['an entry removed', (fields) => { (fields['entries'] as unknown[]).shift(); }],
    ['the entries reordered', (fields) => { (fields['entries'] as unknown[]).reverse(); }],
    ['a signature bit', (fields) => { fields['signature'] = `${String(fields['signature']).slice(0, -1)}${String(fields['signature']).endsWith('0') ? '1' : '0'}`; }],
  ];
  it.each(tampered)('refuses a list with %s changed', (_, change) => {
    const fields = root();
    change(fields, (fields['entries'] as Record<string, unknown>[])[0]!);
    expect(() => parseRevocationList(bytesOf(fields), authority.publicKey)).toThrow(/signature does not verify/);
  });

  const malformed: [string, (fields: Record<string, unknown>, entry: Record<string, unknown>) => void, RegExp][] = [
    ['another format', (fields) => { fields['format'] = 'vsc-revocation-list/2'; }, /"format": "vsc-revocation-list\/1"/],
    ['an extra field', (fields) => { fields['note'] = 'x'; }, /exactly the fields/],
    ['a missing field', (fields) => { delete fields['issuedAt']; }, /exactly the fields/],
    ['an extra entry field', (_, entry) => { entry['note'] = 'x'; }, /entry 0: expected exactly the fields/],
    ['upper-case hex', (fields) => { fields['signature'] = String(fields['signature']).toUpperCase(); }, /lower-case hex/],
    ['a short authority key', (fields) => { fields['authority'] = String(fields['authority']).slice(2); }, /64 lower-case hex digits/],
    ['a fractional sequence', (fields) => { fields['sequence'] = 1.5; }, /sequence number/],
    ['a negative sequence', (fields) => { fields['sequence'] = -1; }, /sequence number/],
    ['a string sequence', (fields) => { fields['sequence'] = '7'; }, /number sequence/],
    ['a time without milliseconds', (fields) => { fields['issuedAt'] = '2026-11-28T12:00:00Z'; }, /issuedAt/],
    ['a time with an offset', (_, entry) => { entry['revokedAt'] = '2026-11-28T10:00:00.000+00:00'; }, /revokedAt/],
    ['an impossible date', (_, entry) => { entry['revokedAt'] = '2026-02-30T10:00:00.000Z'; }, /revokedAt/],
    ['an unknown reason', (_, entry) => { entry['reason'] = 'stolen'; }, /reason of replaced, lost, destroyed/],
    ['an epoch past 2^32-1', (_, entry) => { entry['epoch'] = 2 ** 32; }, /epoch in 0\.\./],
    ['an empty serial', (_, entry) => { entry['serial'] = ''; }, /serial of 1\.\.64 bytes/],
    ['a lone surrogate in a serial', (_, entry) => { entry['serial'] = 'CARD-\ud800'; }, /serial of 1\.\.64 bytes of UTF-8/],
    ['one dongle listed twice', (fields) => { (fields['entries'] as Record<string, unknown>[])[1]!['dongle'] = toHex(A); }, /listed twice/],
    ['entries that are not an array', (fields) => { fields['entries'] = {}; }, /array of entries/],
  ];
  it.each(malformed)('refuses %s, saying what it expected', (_, change, message) => {
    const fields = root();
    change(fields, (fields['entries'] as Record<string, unknown>[])[0]!);
    expect(() => parseRevocationList(bytesOf(fields), authority.publicKey)).toThrow(message);
  });

  it.each([
    ['no bytes', new Uint8Array(0)],
    ['not UTF-8', Uint8Array.of(0xff, 0xfe)],
    ['a JSON array', utf8('[]')],
    ['JSON null', utf8('null')],
    ['a byte-order mark', Uint8Array.of(0xef, 0xbb, 0xbf, ...list.bytes)],
  ])('refuses %s', (_, bytes) => {
    expect(() => parseRevocationList(bytes, authority.publicKey)).toThrow(DongleError);
  });

  it('fuzz: arbitrary bytes and arbitrary JSON only ever give a list or DongleError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => parseOrListError(bytes)), { numRuns: 500 });
    fc.assert(fc.property(fc.json(), (json) => parseOrListError(utf8(json))), { numRuns: 500 });
  });

  it('fuzz: a valid list with any one field replaced by any JSON value is refused with DongleError', () => {
    const fields = ['format', 'authority', 'sequence', 'issuedAt', 'entries', 'signature'];
    const entryFields = ['dongle', 'serial', 'epoch', 'revokedAt', 'reason'];
    fc.assert(
      fc.property(fc.constantFrom(...fields, ...entryFields.map((name) => `entry.${name}`)), fc.jsonValue(), (field, value) => {
        const changed = root();
        if (field.startsWith('entry.')) (changed['entries'] as Record<string, unknown>[])[1]![field.slice(6)] = value;
        else changed[field] = value;
        parseOrListError(bytesOf(changed));
      }),
      { numRuns: 500 },
    );
  });
});

describe('helpers', () => {
  it('revokedEntry finds a dongle by fingerprint; isSerialDestroyed only for a "destroyed" entry', () => {
    expect(revokedEntry(list, A)?.reason).toBe('replaced');
    expect(revokedEntry(list, new Uint8Array(32))).toBeUndefined();
    expect(isSerialDestroyed(list, 'CARD-2')).toBe(true);
    expect(isSerialDestroyed(list, 'CARD-1')).toBe(false);
    expect(isSerialDestroyed(list, 'CARD-3')).toBe(false);
  });

  it('newer picks the higher sequence, the first on a tie', () => {
    const later = signRevocationList(authority, { sequence: 8, issuedAt: '2026-11-28T13:00:00.000Z', entries });
    expect(newer(list, later)).toBe(later);
    expect(newer(later, list)).toBe(later);
    expect(newer(list, parseRevocationList(list.bytes, authority.publicKey))).toBe(list);
  });
});

describe('readAuthorityRevocationList', () => {
  const reference = (escrowDirectory: string) => ({ signingKey: authority.publicKey, escrowKey: new Uint8Array(32).fill(9), escrowDirectory });

  it('reads <escrowDirectory>/revocations.list', () => {
    const authorityDir = join(dir, 'authority');
    mkdirSync(authorityDir, { mode: 0o700 });
    writeFileSync(join(authorityDir, REVOCATION_LIST_FILE), list.bytes, { mode: 0o600 });
    expect(readAuthorityRevocationList(reference(authorityDir))?.sequence).toBe(7);
  });

  it('gives undefined when the directory cannot be reached or holds no list', () => {
    expect(readAuthorityRevocationList(reference(''))).toBeUndefined();
    expect(readAuthorityRevocationList(reference(join(dir, 'unmounted')))).toBeUndefined();
    mkdirSync(join(dir, 'empty'));
    expect(readAuthorityRevocationList(reference(join(dir, 'empty')))).toBeUndefined();
  });

  it('throws when a list is there but is not a valid one of this authority', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, REVOCATION_LIST_FILE), signRevocationList(foreign, { sequence: 1, issuedAt: '2026-11-28T12:00:00.000Z', entries: [] }).bytes);
    expect(() => readAuthorityRevocationList(reference(bad))).toThrow(/not by the card's authority/);
    writeFileSync(join(bad, REVOCATION_LIST_FILE), fromHex('00'));
    expect(() => readAuthorityRevocationList(reference(bad))).toThrow(DongleError);
  });
});

function uintBytes(value: number, length: number): Uint8Array {
  return fromHex(value.toString(16).padStart(2 * length, '0'));
}

/** Ed25519 (deterministic, RFC 8032 section 5.1.6) by the 0x11-seed key over the bytes above; made by this module when written. */
const SIGNATURE_VECTOR = '91db027c251d7c1dd96bad8baa32fd27e5d3b8df8baae8ad64e913dd18d25ad281e70eb752ffe685e27512e3fd536028fd4916500d1f5292e29d435eb6484903';
