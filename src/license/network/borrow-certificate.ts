// A borrowed seat (Wibu 002 Table 1, borrowable license: "the license is borrowed for use on a local computer for a
// fixed period ... when the borrowing time expires, the license is automatically made available again"): the license
// server's card signs the borrow text (borrow-record-text.ts) into its trail; with the licensor's card binding of that
// card it is a certificate the borrowing machine checks offline, with nothing but the licensor key the program carries.
// File form, UTF-8 JSON: {"format": "vsc-license-borrow/1", "record": trail record object, "binding": card binding text}.
//
// A borrower that returned early but kept a copy can go on using it offline until its end: bounded by maxBorrowSeconds,
// as with other license managers that borrow without the licensor (README "Network license server").
import { verifyRecord, type AuditRecord, type TrustRoot } from '../../rental/index.js';
import { encodeCardBinding, verifyCardBinding, type CardBinding } from '../card-binding.js';
import { LicenseError } from '../license-error.js';
import type { UnixSeconds } from '../license-model.js';
import { licensorDigest } from '../license-record-text.js';
import { borrowCardDigest, parseBorrowRecordText, type BorrowRecordText } from './borrow-record-text.js';
import { bindingFromWire, recordFromWire, recordToWire } from './record-wire.js';

export const BORROW_CERTIFICATE_FORMAT = 'vsc-license-borrow/1';
/** Far more than a record and a binding take; a bigger "certificate" is refused before it is parsed. */
const MAX_CERTIFICATE_LENGTH = 8 * 1024;

export interface BorrowCertificate {
  /** The borrow text, signed by the license server's card. */
  readonly record: AuditRecord;
  /** The licensor's card binding of the license server's card. */
  readonly binding: CardBinding;
}

export function encodeBorrowCertificate(certificate: BorrowCertificate): string {
  return JSON.stringify({ format: BORROW_CERTIFICATE_FORMAT, record: recordToWire(certificate.record), binding: encodeCardBinding(certificate.binding) });
}

export function parseBorrowCertificate(text: string): BorrowCertificate {
  if (typeof text !== 'string' || text.length > MAX_CERTIFICATE_LENGTH) throw new LicenseError('input', `borrow certificate: expected a text of at most ${MAX_CERTIFICATE_LENGTH} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LicenseError('input', 'borrow certificate: not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LicenseError('input', 'borrow certificate: expected a JSON object');
  const fields = value as Record<string, unknown>;
  const keys = ['format', 'record', 'binding'];
  if (Object.keys(fields).length !== keys.length || keys.some((key) => !(key in fields))) throw new LicenseError('input', `borrow certificate: expected exactly the fields ${keys.join(', ')}`);
  if (fields['format'] !== BORROW_CERTIFICATE_FORMAT) throw new LicenseError('input', `borrow certificate: expected format ${BORROW_CERTIFICATE_FORMAT}`);
  return { record: recordFromWire(fields['record'], 'borrow certificate record'), binding: bindingFromWire(fields['binding'], 'borrow certificate binding') };
}

export interface BorrowCheck {
  /** The licensor key the program carries. */
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  /** Feature bits the program needs (default 0). */
  readonly features?: number;
  /**
   * The time now. Offline the host clock is all there is: pass the later of it and the own container's clock, so that
   * a clock turned back is bounded by the newest time this machine's card has seen.
   */
  readonly now: UnixSeconds;
  /** The card of this machine, as the program reached it (the card whose signed records it checked). */
  readonly ownCard: TrustRoot;
}

/**
 * Whether a borrowed seat may be used now on this machine, offline: the server's card signed it (under the licensor's
 * binding of that card), it names this licensor, product and features and this machine's card, and it has not ended.
 * Refusals: LicenseError 'signature', 'no-license', 'feature', 'computer' (another card's), 'expired' (at or after T).
 */
export function checkBorrowed(certificate: string | BorrowCertificate, expect: BorrowCheck): BorrowRecordText {
  const { record, binding } = typeof certificate === 'string' ? parseBorrowCertificate(certificate) : certificate;
  verifyCardBinding(binding, expect.licensorKey);
  const server: TrustRoot = { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode };
  if (!verifyRecord(record, server)) throw new LicenseError('signature', `the borrow certificate was not signed by the license server's card ${binding.serial}`);
  let borrow: BorrowRecordText;
  try {
    borrow = parseBorrowRecordText(record.text);
  } catch (error) {
    throw new LicenseError('signature', 'the license server\'s card signed a record that is no borrow certificate', { cause: error });
  }
  if (borrow.licensor !== licensorDigest(expect.licensorKey) || borrow.productCode !== expect.productCode) {
    throw new LicenseError('no-license', `the borrow certificate is for another licensor or product than product ${expect.productCode}`);
  }
  const missing = ((expect.features ?? 0) & ~borrow.features) >>> 0;
  if (missing !== 0) throw new LicenseError('feature', `the borrowed seat does not unlock features 0x${missing.toString(16)}`);
  if (borrow.card !== borrowCardDigest(expect.ownCard)) {
    throw new LicenseError('computer', `the seat was borrowed to another card than ${expect.ownCard.serial}`);
  }
  if (expect.now >= borrow.until) throw new LicenseError('expired', `the borrowed seat ended at ${new Date(borrow.until * 1000).toISOString()}: it is back on the license server`);
  return borrow;
}
