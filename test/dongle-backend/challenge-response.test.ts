// The two challenge forms of patent 004 Fig. 14 ([0003]-[0004], steps 1201-1211): signed nonces, and the vendor's
// table of precomputed pairs, with the patent's own example values (test/fixtures/fig14-challenge-table.json).
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { emulatedDongles } from '../support/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToUint, concatBytes, toHex, utf8 } from '../../src/bytes/index.js';
import { sha256 } from '../../src/crypto/index.js';
import {
  CHALLENGE_NONCE_LENGTH, DongleAbsentError, DongleAuthenticationError, DongleError, answersSignatureChallenge, checkTableChallenge,
  createChallengeTable, dongleTableResponder, encodeChallengeTable, parseChallengeTable, requireTableForDongle,
  type ChallengeTable, type Dongle, type DongleIdentity,
} from '../../src/dongle-backend/index.js';
import { ExitCode } from '../../src/errors/index.js';

const FIXTURE = new URL('../fixtures/fig14-challenge-table.json', import.meta.url);
/** [0004]: 1202 "23928 → 90873", "98709 → 98199"; 1206-1208 "the third value is 89766" → "09876". */
const PATENT_DONGLE: Record<string, string> = { '23928': '90873', '98709': '98199', '89766': '09876' };

const dongles = emulatedDongles('vsc-challenge-');
const { root } = dongles;
const open = (dir: string) => dongles.open(dir);

let a: Dongle;
let b: Dongle;
let idA: DongleIdentity;
let idB: DongleIdentity;

beforeAll(async () => {
  a = await open(join(root, 'a'));
  b = await open(join(root, 'b'));
  [idA, idB] = await Promise.all([a.ensureKey(), b.ensureKey()]);
});
afterAll(() => dongles.cleanup());

/** A dongle that answers `sign` as told: a stand-in for a fake or a broken one. */
function fakeDongle(sign: (message: Uint8Array) => Promise<Uint8Array>): Dongle {
  const unused = () => Promise.reject(new Error('not used by the test'));
  return { uri: 'fake:', identify: unused, ensureKey: unused, sign, read: unused, write: unused, close: async () => undefined };
}

/** The one-line DongleError a malformed table gives. */
function tableErrorOf(call: () => unknown): DongleError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(DongleError);
    const dongleError = error as DongleError;
    expect(dongleError.code).toBe('dongle.challenge-table');
    expect(dongleError.exitCode).toBe(ExitCode.usage);
    expect(dongleError.message).not.toContain('\n');
    return dongleError;
  }
  throw new Error('expected a DongleError, got none');
}

describe('signature form', () => {
  it('the dongle signs a fresh domain-separated nonce, checked with its public key', async () => {
    expect(await answersSignatureChallenge(a, idA)).toBe(true);
    const messages: Uint8Array[] = [];
    const recording = fakeDongle(async (message) => {
      messages.push(message);
      return a.sign(message);
    });
    expect(await answersSignatureChallenge(recording, idA)).toBe(true);
    expect(await answersSignatureChallenge(recording, idA)).toBe(true);
    const domain = utf8('vsc-dongle-challenge/1');
    for (const message of messages) {
      expect(message.length).toBe(domain.length + CHALLENGE_NONCE_LENGTH);
      expect(message.subarray(0, domain.length)).toEqual(domain);
    }
    expect(toHex(messages[0]!)).not.toBe(toHex(messages[1]!));
  });

  it('is false for another dongle, a forged or malformed answer', async () => {
    expect(await answersSignatureChallenge(b, idA)).toBe(false);
    expect(await answersSignatureChallenge(fakeDongle(async () => new Uint8Array(64)), idA)).toBe(false);
    expect(await answersSignatureChallenge(fakeDongle(async () => new Uint8Array(0)), idA)).toBe(false);
    expect(await answersSignatureChallenge(fakeDongle(async () => 'signature' as unknown as Uint8Array), idA)).toBe(false);
    // A signature of the same nonce without the domain: not an answer.
    const bare = fakeDongle(async (message) => a.sign(message.subarray(utf8('vsc-dongle-challenge/1').length)));
    expect(await answersSignatureChallenge(bare, idA)).toBe(false);
  });

  it('lets DongleAbsentError through when the stick is pulled out', async () => {
    const dir = join(root, 'pulled');
    cpSync(join(root, 'a'), dir, { recursive: true });
    const copy = await open(dir);
    expect(await answersSignatureChallenge(copy, await copy.identify())).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    await expect(answersSignatureChallenge(copy, idA)).rejects.toBeInstanceOf(DongleAbsentError);
  });
});

describe('table form with the patent\'s example values (Fig. 14, [0004])', () => {
  const table = parseChallengeTable(readFileSync(FIXTURE));

  it('reads the fixture: 5 digits, the three pairs of the figure, a placeholder fingerprint', () => {
    expect(table.digits).toBe(5);
    expect(Object.fromEntries(table.pairs.map((pair) => [pair.challenge, pair.response]))).toEqual(PATENT_DONGLE);
    expect(table.dongle).toBe('0'.repeat(64));
    expect(table.note).toMatch(/illustrative/);
  });

  it('1209 → 1211: a dongle that answers as the patent\'s does passes every time, whichever pair is picked', async () => {
    const asked = new Set<string>();
    for (let i = 0; i < 60; i++) {
      expect(await checkTableChallenge(table, async (challenge) => {
        asked.add(challenge);
        return PATENT_DONGLE[challenge]!;
      })).toBe(true);
    }
    // 1206 picks at random: all three pairs came up ((2/3)^60 ≈ 3e-11 that one did not).
    expect([...asked].sort()).toEqual(['23928', '89766', '98709']);
  });

  it('1209 → 1210: a dongle that answers 89766 otherwise stops the program when that pair is picked', async () => {
    const outcomes = new Map<string, boolean[]>();
    for (let i = 0; i < 60; i++) {
      let challenge = '';
      const right = await checkTableChallenge(table, async (asked) => {
        challenge = asked;
        return asked === '89766' ? '09877' : PATENT_DONGLE[asked]!;
      });
      outcomes.set(challenge, [...(outcomes.get(challenge) ?? []), right]);
    }
    expect(outcomes.get('89766')!.every((right) => !right)).toBe(true);
    expect(outcomes.get('89766')!.length).toBeGreaterThan(0);
    for (const challenge of ['23928', '98709']) expect(outcomes.get(challenge)!.every((right) => right)).toBe(true);
  });

  it.each([
    ['a shorter answer', '9087'],
    ['a longer answer', '090873'],
    ['the challenge itself', null],
    ['no string at all', 90873],
  ])('is false for %s', async (_, answer) => {
    const respond = async (challenge: string) => (answer === null ? challenge : answer) as string;
    for (let i = 0; i < 10; i++) expect(await checkTableChallenge(table, respond)).toBe(false);
  });

  it('lets what the responder throws through', async () => {
    await expect(checkTableChallenge(table, () => Promise.reject(new DongleAbsentError('pulled out')))).rejects.toBeInstanceOf(DongleAbsentError);
  });

  it('the patent\'s table is refused for a real dongle before any challenge (its fingerprint is a placeholder)', () => {
    let error: unknown;
    try {
      requireTableForDongle(table, idA);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DongleAuthenticationError);
    expect((error as DongleAuthenticationError).exitCode).toBe(ExitCode.authenticationFailed);
    expect((error as Error).message).toMatch(/made for dongle 0000000000000000, not for emulated dongle/);
  });
});

describe('table form with real emulated dongles', () => {
  let tableA: ChallengeTable;
  beforeAll(async () => {
    tableA = await createChallengeTable(a, idA, 40);
  });

  it('1201-1203: distinct random D-digit challenges and the dongle\'s answers, labelled with its fingerprint', () => {
    expect(tableA.format).toBe('vsc-challenge-table/1');
    expect(tableA.dongle).toBe(toHex(idA.fingerprint));
    expect(tableA.digits).toBe(5);
    expect(tableA.pairs).toHaveLength(40);
    expect(new Set(tableA.pairs.map((pair) => pair.challenge)).size).toBe(40);
    for (const pair of tableA.pairs) {
      expect(pair.challenge).toMatch(/^[0-9]{5}$/);
      expect(pair.response).toMatch(/^[0-9]{5}$/);
    }
    requireTableForDongle(tableA, idA);
  });

  it('an answer is SHA-256(sign("vsc-dongle-table/1" ‖ challenge)) mod 10^D, zero-padded', async () => {
    for (const pair of tableA.pairs.slice(0, 5)) {
      const signature = await a.sign(concatBytes(utf8('vsc-dongle-table/1'), utf8(pair.challenge)));
      expect(pair.response).toBe((bytesToUint(sha256(signature)) % 100_000n).toString().padStart(5, '0'));
    }
    expect(await dongleTableResponder(a)('00000000')).toMatch(/^[0-9]{8}$/);
  });

  it('1206-1209: the table verifies against its dongle, again and again', async () => {
    for (let i = 0; i < 20; i++) expect(await checkTableChallenge(tableA, dongleTableResponder(a))).toBe(true);
  });

  it('fails against another emulated dongle, and is refused for it by fingerprint', async () => {
    const table12 = await createChallengeTable(a, idA, 20, 12);
    // With 12 digits a chance match is 1e-12 per pair: every pair is answered wrong.
    for (const pair of table12.pairs) expect(await dongleTableResponder(b)(pair.challenge)).not.toBe(pair.response);
    for (let i = 0; i < 10; i++) expect(await checkTableChallenge(table12, dongleTableResponder(b))).toBe(false);
    expect(() => requireTableForDongle(table12, idB)).toThrow(DongleAuthenticationError);
  });

  it('every challenge once when the count is all there are (4 digits, 10 000 pairs)', async () => {
    const full = await createChallengeTable(a, idA, 10_000, 4);
    expect(new Set(full.pairs.map((pair) => pair.challenge)).size).toBe(10_000);
  });

  it('refuses to label a table with the identity of another dongle', async () => {
    await expect(createChallengeTable(a, idB, 3)).rejects.toBeInstanceOf(DongleAuthenticationError);
  });

  it.each([
    [0, 5, /number of pairs to be an integer in 1\.\.100000, got 0/],
    [100_001, 5, /in 1\.\.100000, got 100001/],
    [10_001, 4, /in 1\.\.10000, got 10001/],
    [2.5, 5, /got 2\.5/],
    [3, 3, /number of digits to be an integer in 4\.\.12, got 3/],
    [3, 13, /got 13/],
  ])('refuses %s pairs of %s digits', async (count, digits, message) => {
    await expect(createChallengeTable(a, idA, count, digits)).rejects.toThrow(message);
  });

  it('the responder refuses a challenge that is not 4 to 12 digits', async () => {
    for (const bad of ['123', '1234567890123', '12a45', ' 12345', '١٢٣٤٥']) await expect(dongleTableResponder(a)(bad)).rejects.toBeInstanceOf(DongleError);
  });
});

describe('the table file', () => {
  const fixture = readFileSync(FIXTURE);

  it('round-trips: encode(parse(x)) parses to the same table, with and without a note', async () => {
    const table = parseChallengeTable(fixture);
    expect(parseChallengeTable(encodeChallengeTable(table))).toEqual(table);
    const made = await createChallengeTable(a, idA, 7, 9);
    const encoded = encodeChallengeTable(made);
    expect(parseChallengeTable(encoded)).toEqual(made);
    expect(encodeChallengeTable(parseChallengeTable(encoded))).toEqual(encoded);
    expect(JSON.parse(new TextDecoder().decode(encoded))).toEqual(made);
  });

  const valid = (): Record<string, unknown> => JSON.parse(fixture.toString('utf8')) as Record<string, unknown>;
  const pairs = (...list: unknown[]) => ({ ...valid(), pairs: list });
  const bytes = (value: unknown) => utf8(JSON.stringify(value));
  it.each<[string, Uint8Array | unknown, RegExp]>([
    ['no bytes', new Uint8Array(0), /expected challenge table file of 1 to \d+ bytes, got 0 bytes/],
    ['a string instead of bytes', '{}', /got a string/],
    ['bytes that are not UTF-8', Uint8Array.of(0x7b, 0xff, 0x7d), /not UTF-8 text/],
    ['text that is not JSON', utf8('{"format": '), /not JSON/],
    ['a JSON array', bytes([]), /expected a JSON object, got an array/],
    ['JSON null', bytes(null), /expected a JSON object, got null/],
    ['another format', bytes({ ...valid(), format: 'vsc-challenge-table/2' }), /expected format "vsc-challenge-table\/1", got "vsc-challenge-table\/2"/],
    ['no format', bytes({ ...valid(), format: undefined }), /expected format "vsc-challenge-table\/1", got nothing/],
    ['an upper-case fingerprint', bytes({ ...valid(), dongle: 'AB'.repeat(32) }), /64 lowercase hex digits/],
    ['a short fingerprint', bytes({ ...valid(), dongle: 'ab'.repeat(31) }), /64 lowercase hex digits/],
    ['3 digits', bytes({ ...valid(), digits: 3 }), /"digits" to be an integer in 4\.\.12, got 3/],
    ['13 digits', bytes({ ...valid(), digits: 13 }), /got 13/],
    ['5.5 digits', bytes({ ...valid(), digits: 5.5 }), /got 5\.5/],
    ['digits as a string', bytes({ ...valid(), digits: '5' }), /got "5"/],
    ['digits that do not match the pairs', bytes({ ...valid(), digits: 6 }), /challenge of pair 1 to be 6 decimal digits, got "23928"/],
    ['no pairs', bytes(pairs()), /array of 1 to 100000 pairs, got 0 pairs/],
    ['pairs as an object', bytes({ ...valid(), pairs: {} }), /array of 1 to 100000 pairs, got an object/],
    ['100001 pairs', bytes(pairs(...Array.from({ length: 100_001 }, (_, i) => ({ challenge: String(i).padStart(6, '0'), response: '000000' })))), /got 100001 pairs/],
    ['a repeated challenge', bytes(pairs({ challenge: '23928', response: '90873' }, { challenge: '23928', response: '11111' })), /challenge 23928 of pair 2 appears twice/],
    ['a pair that is a string', bytes(pairs('23928:90873')), /pair 1 to be an object, got "23928:90873"/],
    ['a pair without a response', bytes(pairs({ challenge: '23928' })), /response of pair 1 to be 5 decimal digits, got nothing/],
    ['a short response', bytes(pairs({ challenge: '23928', response: '9087' })), /response of pair 1 to be 5 decimal digits, got "9087"/],
    ['a response with a sign', bytes(pairs({ challenge: '23928', response: '-9087' })), /got "-9087"/],
    ['a response as a number', bytes(pairs({ challenge: '23928', response: 90873 })), /got 90873/],
    ['non-ASCII digits', bytes(pairs({ challenge: '٢٣٩٢٨', response: '90873' })), /challenge of pair 1/],
    ['a trailing newline in a challenge', bytes(pairs({ challenge: '23928\n', response: '90873' })), /challenge of pair 1/],
    ['an extra field in a pair', bytes(pairs({ challenge: '23928', response: '90873', key: 'x' })), /unknown field "key" in pair 1/],
    ['an extra field in the table', bytes({ ...valid(), key: 'secret' }), /unknown field "key" in the table/],
    ['a __proto__ field', utf8('{"__proto__": {"digits": 5}, "format": "vsc-challenge-table/1"}'), /unknown field "__proto__"/],
    ['a note that is not a string', bytes({ ...valid(), note: 1 }), /"note" to be a string/],
    ['a note too long', bytes({ ...valid(), note: 'x'.repeat(1001) }), /at most 1000 characters, got a string of 1001 characters/],
  ])('refuses %s in one line, exit 2', (_, input, message) => {
    expect(tableErrorOf(() => parseChallengeTable(input as Uint8Array)).message).toMatch(message);
  });

  /** Either a table or DongleError: never a TypeError, SyntaxError or RangeError. */
  function parseOrTableError(input: Uint8Array): void {
    try {
      const table = parseChallengeTable(input);
      expect(table.pairs.length).toBeGreaterThan(0);
    } catch (error) {
      if (!(error instanceof DongleError)) throw error;
    }
  }

  it('fuzz: random bytes only ever give a table or DongleError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), parseOrTableError), { numRuns: 1000 });
  });

  it('fuzz: any JSON value, and the fixture with any field replaced by any JSON value, only give a table or DongleError', () => {
    const fields = ['format', 'dongle', 'digits', 'note', 'pairs', 'extra'];
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(...fields), fc.nat({ max: 3 }), fc.boolean(), (value, field, index, inPair) => {
        parseOrTableError(bytes(value));
        const table = valid();
        if (inPair) {
          const list = table['pairs'] as Record<string, unknown>[];
          list[index % list.length] = { ...list[index % list.length], [field === 'extra' ? 'challenge' : 'response']: value };
        } else {
          table[field] = value;
        }
        parseOrTableError(bytes(table));
      }),
      { numRuns: 1000 },
    );
  });
});
