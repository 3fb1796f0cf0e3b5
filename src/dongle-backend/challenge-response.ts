// The two challenge forms of patent 004 Fig. 14 ([0003]-[0004], steps 1201-1211; DESIGN.md "Dongle-backed card"):
// questions only the dongle holding the DongleKey can answer, asked while the card runs ([0106] in-use).
//   - Signature form: the dongle signs a fresh nonce; its public key checks the answer. Nothing to precompute
//     and nothing a copy of the program gives away.
//   - Table form (steps 1201-1204, 1206-1209): the vendor asks the dongle once to "encrypt" random numbers and
//     ships the pairs; the program later asks the dongle one of them and compares. Whoever reads the table can
//     answer its challenges without the dongle (a fake dongle that looks answers up), as in the patent, where
//     the table sits in the shipped program: the signature form is the default for that reason.
import { randomBytes, randomInt } from 'node:crypto';
import { bytesToUint, concatBytes, constantTimeEqual, fromUtf8, toHex, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { ExitCode, assertBytes, assertInteger } from '../errors/index.js';
import { DongleAuthenticationError, DongleError, shortFingerprint, verifyDongleSignature, type Dongle, type DongleIdentity } from './dongle.js';

/** Domain separation: a challenge signature can never be taken for any other signature of the dongle key. */
const SIGNATURE_DOMAIN = utf8('vsc-dongle-challenge/1');
const TABLE_DOMAIN = utf8('vsc-dongle-table/1');
export const CHALLENGE_NONCE_LENGTH = 32;

export const CHALLENGE_TABLE_FORMAT = 'vsc-challenge-table/1';
export const CHALLENGE_TABLE_LIMITS = Object.freeze({ minDigits: 4, maxDigits: 12, maxPairs: 100_000, maxNoteLength: 1000 });
/** 100 000 pairs of 12 digits take under 6 MB as encodeChallengeTable writes them; more is not a table. */
const MAX_TABLE_BYTES = 16 * 1024 * 1024;

export interface ChallengePair {
  /** D decimal digits (step 1201's random number). */
  readonly challenge: string;
  /** D decimal digits: the dongle's "encryption" of the challenge (step 1202). */
  readonly response: string;
}

/** The vendor's table of step 1203, as a JSON file. */
export interface ChallengeTable {
  readonly format: typeof CHALLENGE_TABLE_FORMAT;
  /** The fingerprint (64 lowercase hex digits) of the dongle the table was made with. */
  readonly dongle: string;
  readonly digits: number;
  readonly pairs: readonly ChallengePair[];
  /** Free text for people (where the table came from); ignored by the checks. */
  readonly note?: string;
}

// ---- Signature form ----

/** What the dongle signs for a nonce: the domain, then the nonce. */
export function signatureChallengeMessage(nonce: Uint8Array): Uint8Array {
  assertBytes('challenge nonce', nonce, CHALLENGE_NONCE_LENGTH);
  return concatBytes(SIGNATURE_DOMAIN, nonce);
}

/**
 * One signature challenge: a fresh random nonce, signed by the dongle, checked with `identity`'s public key.
 * False on a wrong answer; DongleAbsentError (and any other failure to sign) propagates.
 */
export async function answersSignatureChallenge(dongle: Dongle, identity: DongleIdentity): Promise<boolean> {
  const message = signatureChallengeMessage(Uint8Array.from(randomBytes(CHALLENGE_NONCE_LENGTH)));
  const signature = await dongle.sign(message);
  return signature instanceof Uint8Array && verifyDongleSignature(identity.publicKey, message, signature);
}

// ---- Table form ----

const tableError = (message: string) => new DongleError('challenge-table', message, { exitCode: ExitCode.usage });

const tableMessage = (challenge: string): Uint8Array => concatBytes(TABLE_DOMAIN, utf8(challenge));

function assertDigits(digits: unknown): asserts digits is number {
  assertInteger('the number of digits', digits, CHALLENGE_TABLE_LIMITS.minDigits, CHALLENGE_TABLE_LIMITS.maxDigits, tableError);
}

/**
 * The dongle's "encryption" of a D-digit challenge (step 1202 / 1208): SHA-256 of the dongle's signature of
 * the domain and the challenge's digits, as a number mod 10^D, zero-padded to D digits. The dongle's signature
 * is deterministic (dongle.ts), so the same dongle always gives the same answer; the bias of the reduction
 * (2^256 mod 10^12 out of 2^256) is negligible.
 */
async function tableResponse(dongle: Dongle, challenge: string): Promise<string> {
  return responseOf(await dongle.sign(tableMessage(challenge)), challenge.length);
}

function responseOf(signature: Uint8Array, digits: number): string {
  return (bytesToUint(sha256(signature)) % 10n ** BigInt(digits)).toString().padStart(digits, '0');
}

/** The real dongle as a responder of checkTableChallenge (steps 1207-1208). */
export function dongleTableResponder(dongle: Dongle): (challenge: string) => Promise<string> {
  return async (challenge) => {
    const { minDigits, maxDigits } = CHALLENGE_TABLE_LIMITS;
    if (typeof challenge !== 'string' || !new RegExp(`^[0-9]{${minDigits},${maxDigits}}$`).test(challenge)) {
      throw tableError(`expected a challenge of ${minDigits} to ${maxDigits} decimal digits, got ${typeof challenge === 'string' ? `${challenge.length} characters` : typeof challenge}`);
    }
    return tableResponse(dongle, challenge);
  };
}

/**
 * Steps 1201-1203: `count` distinct random D-digit challenges and the dongle's answers. The first answer's
 * signature is checked against `identity`, so a table is never made with one dongle and labelled with another.
 */
export async function createChallengeTable(dongle: Dongle, identity: DongleIdentity, count: number, digits = 5): Promise<ChallengeTable> {
  assertDigits(digits);
  assertInteger('the number of pairs', count, 1, Math.min(CHALLENGE_TABLE_LIMITS.maxPairs, 10 ** digits), tableError);
  const challenges = new Set<string>();
  while (challenges.size < count) challenges.add(randomInt(0, 10 ** digits).toString().padStart(digits, '0'));
  const pairs: ChallengePair[] = [];
  for (const challenge of challenges) {
    const message = tableMessage(challenge);
    const signature = await dongle.sign(message);
    if (pairs.length === 0 && !verifyDongleSignature(identity.publicKey, message, signature)) {
      throw new DongleAuthenticationError(`${dongle.uri} does not sign with the key of dongle ${shortFingerprint(identity.fingerprint)}`);
    }
    pairs.push(Object.freeze({ challenge, response: responseOf(signature, digits) }));
  }
  return Object.freeze({ format: CHALLENGE_TABLE_FORMAT, dongle: toHex(identity.fingerprint), digits, pairs: Object.freeze(pairs) });
}

/** Refuses a table made for another dongle before any challenge is asked (exit 4, as a wrong answer would). */
export function requireTableForDongle(table: ChallengeTable, identity: DongleIdentity): void {
  const expected = toHex(identity.fingerprint);
  if (table.dongle !== expected) {
    throw new DongleAuthenticationError(
      `the challenge table was made for dongle ${table.dongle.slice(0, 16)}, not for ${identity.description} (${expected.slice(0, 16)})`,
    );
  }
}

/**
 * Steps 1206-1209 once: a pair picked at random (1206), its challenge asked (1207-1208), the answer compared
 * in constant time (1209). False is 1210, "the program stops"; true is 1211. What `respond` throws propagates.
 */
export async function checkTableChallenge(table: ChallengeTable, respond: (challenge: string) => Promise<string>): Promise<boolean> {
  if (table.pairs.length === 0) throw tableError('the challenge table has no pairs');
  const pair = table.pairs[randomInt(0, table.pairs.length)]!;
  const answer: unknown = await respond(pair.challenge);
  return typeof answer === 'string' && constantTimeEqual(utf8(answer), utf8(pair.response));
}

/** The table as JSON: the fields first, then one pair a line. */
export function encodeChallengeTable(table: ChallengeTable): Uint8Array {
  const lines = [
    '{',
    `  "format": ${JSON.stringify(table.format)},`,
    `  "dongle": ${JSON.stringify(table.dongle)},`,
    `  "digits": ${JSON.stringify(table.digits)},`,
    ...(table.note === undefined ? [] : [`  "note": ${JSON.stringify(table.note)},`]),
    '  "pairs": [',
    table.pairs.map((pair) => `    { "challenge": ${JSON.stringify(pair.challenge)}, "response": ${JSON.stringify(pair.response)} }`).join(',\n'),
    '  ]',
    '}',
    '',
  ];
  return utf8(lines.join('\n'));
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length <= 24 ? JSON.stringify(value) : `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `${/^[aeiou]/.test(typeof value) ? 'an' : 'a'} ${typeof value}`;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw tableError(`the challenge table: unknown field ${JSON.stringify(key.slice(0, 40))} in ${where} (expected ${allowed.join(', ')})`);
  }
}

/**
 * Reads a table file strictly: every field checked, digits 4..12, 1..100000 pairs, distinct challenges, every
 * challenge and response exactly D decimal digits. Anything else is DongleError('challenge-table'), exit 2,
 * one readable line.
 */
export function parseChallengeTable(bytes: Uint8Array): ChallengeTable {
  assertBytes('challenge table file', bytes, { min: 1, max: MAX_TABLE_BYTES }, tableError);
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw tableError('the challenge table is not UTF-8 text');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw tableError(`the challenge table is not JSON: ${String((error as Error).message).split('\n')[0]}`);
  }
  if (!isRecord(value)) throw tableError(`the challenge table: expected a JSON object, got ${shown(value)}`);
  onlyKeys(value, ['format', 'dongle', 'digits', 'note', 'pairs'], 'the table');
  if (value['format'] !== CHALLENGE_TABLE_FORMAT) throw tableError(`the challenge table: expected format ${JSON.stringify(CHALLENGE_TABLE_FORMAT)}, got ${shown(value['format'])}`);
  const dongle = value['dongle'];
  if (typeof dongle !== 'string' || !/^[0-9a-f]{64}$/.test(dongle)) {
    throw tableError(`the challenge table: expected "dongle" to be a fingerprint of 64 lowercase hex digits, got ${shown(dongle)}`);
  }
  const digits = value['digits'];
  const { minDigits, maxDigits, maxPairs, maxNoteLength } = CHALLENGE_TABLE_LIMITS;
  if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < minDigits || digits > maxDigits) {
    throw tableError(`the challenge table: expected "digits" to be an integer in ${minDigits}..${maxDigits}, got ${shown(digits)}`);
  }
  const note = value['note'];
  if (note !== undefined && (typeof note !== 'string' || note.length > maxNoteLength)) {
    throw tableError(`the challenge table: expected "note" to be a string of at most ${maxNoteLength} characters, got ${shown(note)}`);
  }
  const rawPairs = value['pairs'];
  if (!Array.isArray(rawPairs) || rawPairs.length < 1 || rawPairs.length > maxPairs) {
    throw tableError(`the challenge table: expected "pairs" to be an array of 1 to ${maxPairs} pairs, got ${Array.isArray(rawPairs) ? `${rawPairs.length} pairs` : shown(rawPairs)}`);
  }
  const pattern = new RegExp(`^[0-9]{${digits}}$`);
  const seen = new Set<string>();
  const pairs = rawPairs.map((pair: unknown, index): ChallengePair => {
    const where = `pair ${index + 1}`;
    if (!isRecord(pair)) throw tableError(`the challenge table: expected ${where} to be an object, got ${shown(pair)}`);
    onlyKeys(pair, ['challenge', 'response'], where);
    for (const field of ['challenge', 'response'] as const) {
      const digitsOf = pair[field];
      if (typeof digitsOf !== 'string' || !pattern.test(digitsOf)) {
        throw tableError(`the challenge table: expected the ${field} of ${where} to be ${digits} decimal digits, got ${shown(digitsOf)}`);
      }
    }
    const challenge = pair['challenge'] as string;
    if (seen.has(challenge)) throw tableError(`the challenge table: challenge ${challenge} of ${where} appears twice`);
    seen.add(challenge);
    return Object.freeze({ challenge, response: pair['response'] as string });
  });
  return Object.freeze({
    format: CHALLENGE_TABLE_FORMAT,
    dongle,
    digits,
    pairs: Object.freeze(pairs),
    ...(note === undefined ? {} : { note }),
  });
}
