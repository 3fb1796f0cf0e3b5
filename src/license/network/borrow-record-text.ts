// The trail text of a borrowed seat (Wibu 002 Table 1, borrowable license), signed by the license server's card:
//   license borrow LD FIRM PRODUCT features F to CD until T id ID
// LD licensorDigest (32 hex), F the feature bits the borrowed seat unlocks, CD borrowCardDigest of the borrowing card
// (32 hex), T the end in Unix seconds, ID the borrow's id (24 hex). A "license " text the usage report does not know.
import { concatBytes, toHex, uintToBytes, utf8 } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';
import type { TrustRoot } from '../../rental/index.js';
import { MAX_CODE, type UnixSeconds } from '../license-model.js';
import { checkHexWord, checkWhole, RecordWords } from './record-words.js';

export const BORROW_ID_BYTES = 12;
const DIGEST_BYTES = 16;
const MAX_TIME = 2 ** 40;
const WHAT = 'borrow';

export interface BorrowRecordText {
  readonly licensor: string;
  readonly firmCode: number;
  readonly productCode: number;
  readonly features: number;
  /** borrowCardDigest of the card the seat is borrowed to. */
  readonly card: string;
  readonly until: UnixSeconds;
  readonly id: string;
}

/**
 * The borrowing card's name in a borrow text: SHA-256 over its serial, key and key mode, cut to 16 bytes. The serial
 * and mode are in it because a universal key is shared by many cards (patent 003 [0098]-[0102]): the key alone would
 * let every card of that key use the borrowed seat.
 */
export function borrowCardDigest(card: TrustRoot): string {
  const serial = utf8(card.serial);
  return toHex(sha256(concatBytes(utf8('vsc-license-borrow-card/1\n'), uintToBytes(BigInt(serial.length), 4), serial, card.publicKey, Uint8Array.of(card.keyMode === 'universal' ? 1 : 0))).subarray(0, DIGEST_BYTES));
}

export function formatBorrowRecordText(borrow: BorrowRecordText): string {
  return [
    'license borrow', checkHexWord(borrow.licensor, 'the licensor digest', DIGEST_BYTES, WHAT), checkWhole(borrow.firmCode, 'the firm code', MAX_CODE, WHAT),
    checkWhole(borrow.productCode, 'the product code', MAX_CODE, WHAT), 'features', checkWhole(borrow.features, 'the features', MAX_CODE, WHAT),
    'to', checkHexWord(borrow.card, 'the card digest', DIGEST_BYTES, WHAT), 'until', checkWhole(borrow.until, 'the end', MAX_TIME, WHAT),
    'id', checkHexWord(borrow.id, 'the borrow id', BORROW_ID_BYTES, WHAT),
  ].join(' ');
}

/** Exactly what formatBorrowRecordText writes; anything else is LicenseError 'input'. */
export function parseBorrowRecordText(text: string): BorrowRecordText {
  const words = new RecordWords(WHAT, text, 13);
  words.keyword(0, 'license');
  words.keyword(1, 'borrow');
  words.keyword(5, 'features');
  words.keyword(7, 'to');
  words.keyword(9, 'until');
  words.keyword(11, 'id');
  return {
    licensor: words.hex(2, 'the licensor digest', DIGEST_BYTES), firmCode: words.decimal(3, 'the firm code', MAX_CODE),
    productCode: words.decimal(4, 'the product code', MAX_CODE), features: words.decimal(6, 'the features', MAX_CODE),
    card: words.hex(8, 'the card digest', DIGEST_BYTES), until: words.decimal(10, 'the end', MAX_TIME), id: words.hex(12, 'the borrow id', BORROW_ID_BYTES),
  };
}
