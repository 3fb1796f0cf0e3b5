// A borrowed seat (Wibu 002 Table 1, borrowable license: "for a fixed period of time ... the license remains allocated
// to the license server ... when the borrowing time expires, the license is automatically made available again"): a
// record the license server's card signs into its trail, naming the licensor, product, features, the borrowing card's
// key and the end, checked offline on the borrowing machine against the licensor's card binding of the server's card.
//   license borrow LD PRODUCT features F to CD until T id ID
// LD licensorDigest, CD the first 16 bytes of SHA-256(borrowing card's public key) as hex, T Unix seconds, ID the seat.
// A borrower who returns early and kept a copy could go on using it offline until T: bounded by maxBorrowSeconds, as
// with other license managers that borrow without the licensor (README "License containers").
import { bytesEqual, toHex } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';
import { parseRecordLine, verifyRecord, type AuditRecord, type TrustRoot } from '../../rental/index.js';
import { parseCardBinding, verifyCardBinding } from '../card-binding.js';
import { LicenseError } from '../license-error.js';
import type { UnixSeconds } from '../license-model.js';
import { licensorDigest } from '../license-record-text.js';

export interface BorrowText {
  readonly licensor: string;
  readonly productCode: number;
  readonly features: number;
  readonly serial?: string;
  readonly cardPublicKey: Uint8Array;
  readonly until: UnixSeconds;
  readonly id: string;
}

export function cardDigest(cardPublicKey: Uint8Array): string {
  return toHex(sha256(cardPublicKey).subarray(0, 16));
}

export function formatBorrowText(borrow: BorrowText): string {
  return `license borrow ${borrow.licensor} ${borrow.productCode} features ${borrow.features} to ${cardDigest(borrow.cardPublicKey)} until ${borrow.until} id ${borrow.id}`;
}

const BORROW = /^license borrow ([0-9a-f]{32}) (0|[1-9][0-9]{0,9}) features (0|[1-9][0-9]{0,9}) to ([0-9a-f]{32}) until (0|[1-9][0-9]{0,12}) id ([0-9a-f]{24})$/;

export interface BorrowCertificate {
  readonly record: AuditRecord;
  /** The licensor's card binding of the license server's card. */
  readonly binding: string;
}

export function parseBorrowCertificate(text: string): BorrowCertificate {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LicenseError('input', 'borrow certificate: not JSON');
  }
  const fields = value as { record?: unknown; binding?: unknown };
  if (typeof fields !== 'object' || fields === null || typeof fields.binding !== 'string' || typeof fields.record !== 'object' || fields.record === null) {
    throw new LicenseError('input', 'borrow certificate: expected {"record", "binding"}');
  }
  try {
    return { record: parseRecordLine(JSON.stringify(fields.record)), binding: fields.binding };
  } catch (error) {
    throw new LicenseError('input', `borrow certificate: ${(error as Error).message}`);
  }
}

/**
 * Whether a borrowed seat may be used now on the card `card` (the borrowing machine's): the server's card signed it,
 * the licensor bound that card, it names this licensor, product and features and this card, and it has not ended.
 */
export function checkBorrowCertificate(certificate: BorrowCertificate, expect: { licensorKey: Uint8Array; productCode: number; features: number; now: UnixSeconds; card: TrustRoot }): { until: UnixSeconds } {
  const binding = parseCardBinding(certificate.binding);
  verifyCardBinding(binding, expect.licensorKey);
  const server: TrustRoot = { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode };
  if (!verifyRecord(certificate.record, server)) throw new LicenseError('signature', `the borrow certificate was not signed by the license server's card ${binding.serial}`);
  const match = BORROW.exec(certificate.record.text);
  if (match === null) throw new LicenseError('signature', 'the license server\'s card signed a record that is no borrow certificate');
  if (match[1] !== licensorDigest(expect.licensorKey) || Number(match[2]) !== expect.productCode) throw new LicenseError('no-license', 'the borrow certificate is for another licensor or product');
  if ((expect.features & ~Number(match[3])) !== 0) throw new LicenseError('feature', 'the borrowed seat does not unlock those features');
  if (!bytesEqual(new TextEncoder().encode(match[4]!), new TextEncoder().encode(cardDigest(expect.card.publicKey)))) {
    throw new LicenseError('computer', `the seat was borrowed to another card than ${expect.card.serial}`);
  }
  const until = Number(match[5]);
  if (expect.now >= until) throw new LicenseError('expired', `the borrowed seat ended at ${new Date(until * 1000).toISOString()}: it is back on the license server`);
  return { until };
}
