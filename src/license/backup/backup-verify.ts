// The licensor's check of one backed-up firm item (Wibu 000 §2.6 "Backup File Cannot Be Manipulated": the signature
// binds the box's serial number and time, so "using a Backup structure of another CM-Box or of another time is not
// possible"). Here the card's Ed25519 key signs one record over the Merkle root of every leaf (backup-tree.ts), and
// the licensor trusts the card key it activated for that serial, never a key the file brings.
//   foreign    an item of another licensor; a box key other than the expected card key; a leaf of another serial or
//              of another time than the record's
//   signature  the record does not verify under the card key (rental verifyRecord, with the box's serial and key
//              mode); the audit path does not reach the signed root; the leaf's licensor key or firm code is not the
//              entry's
//   input      anything malformed
import { bytesEqual, toHex } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../../crypto/index.js';
import { verifyRecord } from '../../rental/index.js';
import { LicenseError } from '../license-error.js';
import type { FirmItem } from '../license-model.js';
import { backupItemFileJson, backupRecordText, parseBackupItemFile, type BackupItemFile } from './backup-file.js';
import { decodeBackupLeaf, type HiddenBox } from './backup-leaf.js';
import { rootFromAuditPath } from './backup-tree.js';

export interface VerifiedBackupItem {
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  /** The backup time: the card's clock when it signed. */
  readonly time: number;
  /** The firm item as backed up: hidden data in hiddenBoxes, secret data never (000 §2.7, §2.8). */
  readonly firm: FirmItem;
  readonly hiddenBoxes: readonly HiddenBox[];
  /** The counter of the card's backup record (names this backup, e.g. against restoring it twice). */
  readonly recordCounter: bigint;
}

export interface ExpectedBackupSigner {
  /** The restoring licensor's own key. */
  readonly licensorKey: Uint8Array;
  /** The card key the licensor activated for the box's serial (its own database). */
  readonly cardPublicKey: Uint8Array;
}

const refuse = (reason: LicenseError['reason'], message: string): LicenseError => new LicenseError(reason, `backup item: ${message}`);

/**
 * Checks one item file (000 §2.6) as the licensor `expected.licensorKey` whose database names `expected.cardPublicKey`
 * for the box's serial; throws LicenseError 'foreign', 'signature' or 'input' (above), or answers what it vouches for.
 */
export function verifyBackupItem(file: BackupItemFile, expected: ExpectedBackupSigner): VerifiedBackupItem {
  for (const [name, key] of [['licensor key', expected?.licensorKey], ['card public key', expected?.cardPublicKey]] as const) {
    if (!(key instanceof Uint8Array) || key.length !== ED25519_PUBLIC_KEY_LENGTH) throw refuse('input', `expected the ${name} as ${ED25519_PUBLIC_KEY_LENGTH} bytes`);
  }
  // A caller may hand in what it built itself: every field is checked as the parser checks a file.
  let json: Record<string, unknown>;
  try {
    json = backupItemFileJson(file);
  } catch (cause) {
    throw new LicenseError('input', 'backup item: expected { box, record, time, treeSize, item }', { cause });
  }
  const checked = parseBackupItemFile(json);
  const { box, record, item } = checked;
  if (!bytesEqual(item.licensorKey, expected.licensorKey)) throw refuse('foreign', `firm item ${item.firmCode} belongs to another licensor`);
  if (!bytesEqual(box.cardPublicKey, expected.cardPublicKey)) throw refuse('foreign', `the backup names another card key for card ${box.serial} than the one this licensor activated`);
  if (!verifyRecord(record, { publicKey: box.cardPublicKey, serial: box.serial, keyMode: box.keyMode })) {
    throw refuse('signature', `the backup record at counter ${record.counter} was not signed by card ${box.serial}`);
  }
  const text = backupRecordText(record);
  const root = rootFromAuditPath(item.index, text.items, item.leaf, item.auditPath);
  if (toHex(root) !== text.root) throw refuse('signature', `leaf ${item.index} and its audit path do not reach the root card ${box.serial} signed`);
  const leaf = decodeBackupLeaf(item.leaf);
  if (leaf.serial !== box.serial) throw refuse('foreign', `the leaf is of card ${leaf.serial}, the box of card ${box.serial}`);
  if (leaf.time !== text.at) throw refuse('foreign', `the leaf was made at ${leaf.time}, the record at ${text.at}`);
  if (!bytesEqual(leaf.firm.licensorKey, item.licensorKey) || leaf.firm.firmCode !== item.firmCode) {
    throw refuse('signature', `the signed leaf holds firm item ${leaf.firm.firmCode} of another key or code than the entry names`);
  }
  return { serial: box.serial, cardPublicKey: box.cardPublicKey.slice(), time: text.at, firm: leaf.firm, hiddenBoxes: leaf.hiddenBoxes, recordCounter: record.counter };
}
