// The texts the card's license applet signs into the rental trail (patent 003 [0056] record "string"; DESIGN.md
// "License containers": unit counters on top of SIGN AND INCREMENT, whose records prove the usage):
//   use     license use LD FIRM PRODUCT features F units U left L at T     (L decimal or "unlimited"; T the host's time)
//   update  license update LD FIRM counter N digest D                      (N the firm update counter after; D 64 hex)
//   time    license time LD FIRM T
// and the records of the whole container (Wibu 000 §2.6 a signed backup, §2.10 locking), parsed apart from the firm
// item's records above (parseContainerRecordText), so a reader of one licensor's records never meets them:
//   backup  license backup items N root R at T      (N leaves, R the backup tree's root, 64 hex; T the backup time)
//   lock    license lock AD T digest D              (AD = licensorDigest(authority key), T the sequence's time,
//   unlock  license unlock AD T digest D             D lockSequenceDigest, 64 hex)
// LD = licensorDigest(key): the first 16 bytes of SHA-256(licensor key) as 32 lowercase hex digits. Every number is
// decimal without leading zeros; the parser takes exactly what the formatter writes.
import { toHex } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, sha256 } from '../crypto/index.js';
import { LicenseError } from './license-error.js';
import { MAX_CODE, MAX_FIRM_ITEMS, MAX_UNITS, type UnixSeconds } from './license-model.js';

const LICENSOR_DIGEST_BYTES = 16;
const BODY_DIGEST_BYTES = 32;
const MAX_TIME = 2 ** 40;

export interface UseRecordText {
  readonly kind: 'use';
  /** licensorDigest of the firm item's key. */
  readonly licensor: string;
  readonly firmCode: number;
  readonly productCode: number;
  readonly features: number;
  readonly units: number;
  readonly left: number | 'unlimited';
  readonly at: UnixSeconds;
}

export interface UpdateRecordText {
  readonly kind: 'update';
  readonly licensor: string;
  readonly firmCode: number;
  /** The firm update counter after the update. */
  readonly counter: number;
  /** licenseBodyDigest of the signed update, 64 lowercase hex digits. */
  readonly digest: string;
}

export interface TimeRecordText {
  readonly kind: 'time';
  readonly licensor: string;
  readonly firmCode: number;
  readonly time: UnixSeconds;
}

export type LicenseRecordText = UseRecordText | UpdateRecordText | TimeRecordText;

export interface BackupRecordText {
  readonly kind: 'backup';
  /** Leaves of the backup tree: one per firm item. */
  readonly items: number;
  /** merkleRoot of the leaves, 64 lowercase hex digits. */
  readonly root: string;
  /** The backup time: the container's clock after the backup. */
  readonly at: UnixSeconds;
}

export interface LockRecordText {
  readonly kind: 'lock' | 'unlock';
  /** licensorDigest of the locking authority's key. */
  readonly authority: string;
  /** The lock or unlock sequence's time. */
  readonly time: UnixSeconds;
  /** lockSequenceDigest of the sequence, 64 lowercase hex digits. */
  readonly digest: string;
}

/** Records of the whole container rather than of one licensor's firm item. */
export type ContainerRecordText = BackupRecordText | LockRecordText;

function input(message: string): LicenseError {
  return new LicenseError('input', `license record text: ${message}`);
}

/** The licensor's name in record texts: SHA-256(key) cut to 16 bytes, lowercase hex. */
export function licensorDigest(licensorKey: Uint8Array): string {
  if (!(licensorKey instanceof Uint8Array) || licensorKey.length !== ED25519_PUBLIC_KEY_LENGTH) {
    throw input(`expected a ${ED25519_PUBLIC_KEY_LENGTH}-byte licensor key, got ${licensorKey instanceof Uint8Array ? `${licensorKey.length} bytes` : typeof licensorKey}`);
  }
  return toHex(sha256(licensorKey).subarray(0, LICENSOR_DIGEST_BYTES));
}

const HEX = (bytes: number) => new RegExp(`^[0-9a-f]{${bytes * 2}}$`);
const LICENSOR_HEX = HEX(LICENSOR_DIGEST_BYTES);
const DIGEST_HEX = HEX(BODY_DIGEST_BYTES);
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;

function checkHex(value: string, pattern: RegExp, name: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw input(`expected ${name} as lowercase hex of the right length`);
  return value;
}

function checkNumber(value: number, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw input(`expected ${name} as a whole number in 0..${max}, got ${String(value)}`);
  return value;
}

/** The record text of `record`, checked field by field. */
export function formatLicenseRecordText(record: LicenseRecordText | ContainerRecordText): string {
  switch (record.kind) {
    case 'backup':
      return `license backup items ${checkNumber(record.items, 'the item count', MAX_FIRM_ITEMS)} root ${checkHex(record.root, DIGEST_HEX, 'the backup root')} at ${checkNumber(record.at, 'the backup time', MAX_TIME)}`;
    case 'lock':
    case 'unlock':
      return `license ${record.kind} ${checkHex(record.authority, LICENSOR_HEX, 'the authority digest')} ${checkNumber(record.time, 'the sequence time', MAX_TIME)} digest ${checkHex(record.digest, DIGEST_HEX, 'the sequence digest')}`;
    default:
      return formatFirmRecordText(record);
  }
}

function formatFirmRecordText(record: LicenseRecordText): string {
  const head = `license ${record.kind} ${checkHex(record.licensor, LICENSOR_HEX, 'the licensor digest')} ${checkNumber(record.firmCode, 'the firm code', MAX_CODE)}`;
  switch (record.kind) {
    case 'use': {
      const left = record.left === 'unlimited' ? 'unlimited' : String(checkNumber(record.left, 'the units left', MAX_UNITS));
      return `${head} ${checkNumber(record.productCode, 'the product code', MAX_CODE)} features ${checkNumber(record.features, 'the features', MAX_CODE)} units ${checkNumber(record.units, 'the units', MAX_UNITS)} left ${left} at ${checkNumber(record.at, 'the host time', MAX_TIME)}`;
    }
    case 'update':
      return `${head} counter ${checkNumber(record.counter, 'the update counter', MAX_UNITS)} digest ${checkHex(record.digest, DIGEST_HEX, 'the update digest')}`;
    case 'time':
      return `${head} ${checkNumber(record.time, 'the certified time', MAX_TIME)}`;
    default:
      throw input('expected a use, update or time record');
  }
}

function parseNumber(word: string | undefined, name: string, max: number): number {
  if (word === undefined || !DECIMAL.test(word)) throw input(`expected ${name} as a decimal number without leading zeros`);
  return checkNumber(Number(word), name, max);
}

function keyword(words: readonly string[], index: number, expected: string): void {
  if (words[index] !== expected) throw input(`expected "${expected}" as word ${index + 1}`);
}

/** Parses a record text strictly: exactly the form formatLicenseRecordText writes, single spaces, nothing more. */
export function parseLicenseRecordText(text: string): LicenseRecordText {
  if (typeof text !== 'string' || text.length > 512) throw input('expected a text of at most 512 characters');
  const words = text.split(' ');
  keyword(words, 0, 'license');
  const kind = words[1];
  const licensor = words[2];
  if (licensor === undefined || !LICENSOR_HEX.test(licensor)) throw input('expected the licensor digest as 32 lowercase hex digits');
  const firmCode = parseNumber(words[3], 'the firm code', MAX_CODE);
  const expectWords = (count: number): void => {
    if (words.length !== count) throw input(`expected ${count} words in a ${kind} record, got ${words.length}`);
  };
  switch (kind) {
    case 'use': {
      expectWords(13);
      keyword(words, 5, 'features');
      keyword(words, 7, 'units');
      keyword(words, 9, 'left');
      keyword(words, 11, 'at');
      return {
        kind, licensor, firmCode, productCode: parseNumber(words[4], 'the product code', MAX_CODE), features: parseNumber(words[6], 'the features', MAX_CODE),
        units: parseNumber(words[8], 'the units', MAX_UNITS), left: words[10] === 'unlimited' ? 'unlimited' : parseNumber(words[10], 'the units left', MAX_UNITS),
        at: parseNumber(words[12], 'the host time', MAX_TIME),
      };
    }
    case 'update': {
      expectWords(8);
      keyword(words, 4, 'counter');
      keyword(words, 6, 'digest');
      const digest = words[7]!;
      if (!DIGEST_HEX.test(digest)) throw input('expected the update digest as 64 lowercase hex digits');
      return { kind, licensor, firmCode, counter: parseNumber(words[5], 'the update counter', MAX_UNITS), digest };
    }
    case 'time':
      expectWords(5);
      return { kind, licensor, firmCode, time: parseNumber(words[4], 'the certified time', MAX_TIME) };
    default:
      throw input('expected "use", "update" or "time" as word 2');
  }
}

/** Parses a backup, lock or unlock record text strictly: exactly the form formatLicenseRecordText writes. */
export function parseContainerRecordText(text: string): ContainerRecordText {
  if (typeof text !== 'string' || text.length > 512) throw input('expected a text of at most 512 characters');
  const words = text.split(' ');
  keyword(words, 0, 'license');
  const kind = words[1];
  const expectWords = (count: number): void => {
    if (words.length !== count) throw input(`expected ${count} words in a ${kind} record, got ${words.length}`);
  };
  const hexWord = (index: number, pattern: RegExp, name: string): string => {
    const word = words[index];
    if (word === undefined || !pattern.test(word)) throw input(`expected ${name} as lowercase hex of the right length`);
    return word;
  };
  switch (kind) {
    case 'backup':
      expectWords(8);
      keyword(words, 2, 'items');
      keyword(words, 4, 'root');
      keyword(words, 6, 'at');
      return { kind, items: parseNumber(words[3], 'the item count', MAX_FIRM_ITEMS), root: hexWord(5, DIGEST_HEX, 'the backup root'), at: parseNumber(words[7], 'the backup time', MAX_TIME) };
    case 'lock':
    case 'unlock':
      expectWords(6);
      keyword(words, 4, 'digest');
      return { kind, authority: hexWord(2, LICENSOR_HEX, 'the authority digest'), time: parseNumber(words[3], 'the sequence time', MAX_TIME), digest: hexWord(5, DIGEST_HEX, 'the sequence digest') };
    default:
      throw input('expected "backup", "lock" or "unlock" as word 2');
  }
}
