// The trail texts a network license server's card signs besides the seat allocations (Wibu 002 Table 1: overflow
// license "the excess is logged ... and billed"; hot and cold standby "its use is logged and limited"):
//   license overflow LD FIRM PRODUCT lease ID at T      one per overflow seat handed out (ID the lease, 24 hex)
//   license standby LD FIRM PRODUCT minute N at T       one per started minute of a standby server's service (N from 1)
// LD licensorDigest (32 hex), T Unix seconds. The licensor bills overflow and counts standby minutes from these.
import { LicenseError } from '../license-error.js';
import { MAX_CODE, type UnixSeconds } from '../license-model.js';
import { checkHexWord, checkWhole, RecordWords } from './record-words.js';

export const LEASE_ID_BYTES = 12;
const DIGEST_BYTES = 16;
const MAX_TIME = 2 ** 40;
/** Standby minutes an item may count: far beyond any maxSeconds a licensor grants. */
const MAX_MINUTES = 2 ** 32;

export type SeatRecordText =
  | { readonly kind: 'overflow'; readonly licensor: string; readonly firmCode: number; readonly productCode: number; readonly lease: string; readonly at: UnixSeconds }
  | { readonly kind: 'standby'; readonly licensor: string; readonly firmCode: number; readonly productCode: number; readonly minute: number; readonly at: UnixSeconds };

export function formatSeatRecordText(record: SeatRecordText): string {
  const what = record.kind;
  const head = `license ${what} ${checkHexWord(record.licensor, 'the licensor digest', DIGEST_BYTES, what)} ${checkWhole(record.firmCode, 'the firm code', MAX_CODE, what)} ${checkWhole(record.productCode, 'the product code', MAX_CODE, what)}`;
  const middle = record.kind === 'overflow' ? `lease ${checkHexWord(record.lease, 'the lease id', LEASE_ID_BYTES, what)}` : `minute ${checkWhole(record.minute, 'the minute', MAX_MINUTES, what)}`;
  return `${head} ${middle} at ${checkWhole(record.at, 'the time', MAX_TIME, what)}`;
}

/** Exactly what formatSeatRecordText writes; anything else is LicenseError 'input'. */
export function parseSeatRecordText(text: string): SeatRecordText {
  const kind = typeof text === 'string' ? text.split(' ', 2)[1] : undefined;
  if (kind !== 'overflow' && kind !== 'standby') throw new LicenseError('input', 'seat record text: expected "license overflow ..." or "license standby ..."');
  const words = new RecordWords(kind, text, 9);
  words.keyword(0, 'license');
  words.keyword(7, 'at');
  const item = { licensor: words.hex(2, 'the licensor digest', DIGEST_BYTES), firmCode: words.decimal(3, 'the firm code', MAX_CODE), productCode: words.decimal(4, 'the product code', MAX_CODE) };
  const at = words.decimal(8, 'the time', MAX_TIME);
  if (kind === 'overflow') {
    words.keyword(5, 'lease');
    return { kind, ...item, lease: words.hex(6, 'the lease id', LEASE_ID_BYTES), at };
  }
  words.keyword(5, 'minute');
  return { kind, ...item, minute: words.decimal(6, 'the minute', MAX_MINUTES), at };
}
