// One leaf of a card's backup: one firm item as the card saw it at the backup time (Wibu 000 §2.1 "the contents of all
// Firm Items", §2.6 serial number and box time in each Backup sequence, §2.7 hidden data encrypted for the licensor
// only, §2.8 secret data never in a backup). Fields as license-field-codec.ts (tag 1 ‖ length 4 ‖ value), in order:
//   01 salt (16, random per backup and firm item: a licensor's leaf says nothing of the other leaves' contents)
//   02 serial (UTF-8) · 03 time (8)
//   04 firm: encodeLicenseContainer({ clock: time, firms: [the firm item, every hiddenData and secretData emptied] })
//   05 hidden boxes: field(01, product code (4) ‖ sealHiddenData(licensor key, { serial, firm code, product code,
//      firm update counter }, hidden data))* for each product item with hidden data, ascending product codes
import { concatBytes, utf8 } from '../../bytes/index.js';
import { decodeLicenseContainer, encodeLicenseContainer } from '../license-container-codec.js';
import { MAX_LICENSE_TIME } from '../license-container-limits.js';
import { decodeBytes, decodeText, decodeUint, encodeUint, field, fieldError, FieldReader, joinFields } from '../license-field-codec.js';
import { sealHiddenData } from '../license-hidden-data.js';
import { MAX_ITEM_DATA_BYTES, type FirmItem, type LicenseContainer, type UnixSeconds } from '../license-model.js';
import { merkleRoot } from './backup-tree.js';

export const BACKUP_SALT_LENGTH = 16;
export const MAX_BACKUP_SERIAL_BYTES = 128;
/** sealToPublicKey's ephemeral key (32) ‖ nonce (24) ‖ tag (16) around the hidden data. */
const SEALED_OVERHEAD = 32 + 24 + 16;
const WHERE = 'backup leaf';

const enum L { salt = 0x01, serial = 0x02, time = 0x03, firm = 0x04, hidden = 0x05 }
const BOX = 0x01;

export interface HiddenBox {
  readonly productCode: number;
  /** The product's hidden data sealed to the firm item's licensor key (license-hidden-data.ts openHiddenData opens it). */
  readonly box: Uint8Array;
}

export interface BackupLeaf {
  readonly salt: Uint8Array;
  readonly serial: string;
  readonly time: UnixSeconds;
  /** The firm item with every product item's hidden and secret data empty. */
  readonly firm: FirmItem;
  readonly hiddenBoxes: readonly HiddenBox[];
}

const EMPTY = new Uint8Array(0);

/** The firm item as a backup shows it: hidden data only in its boxes, secret data nowhere (000 §2.7, §2.8). */
function shownFirm(firm: FirmItem): FirmItem {
  return { ...firm, products: firm.products.map((product) => ({ ...product, hiddenData: EMPTY, secretData: EMPTY })) };
}

function checkLeafFields(leaf: BackupLeaf): void {
  if (!(leaf.salt instanceof Uint8Array) || leaf.salt.length !== BACKUP_SALT_LENGTH) throw fieldError(WHERE, `expected a ${BACKUP_SALT_LENGTH}-byte salt`);
  const serialBytes = typeof leaf.serial === 'string' ? utf8(leaf.serial).length : -1;
  if (serialBytes < 1 || serialBytes > MAX_BACKUP_SERIAL_BYTES) throw fieldError(WHERE, `expected a serial of 1..${MAX_BACKUP_SERIAL_BYTES} UTF-8 bytes`);
  if (!Number.isInteger(leaf.time) || leaf.time < 0 || leaf.time > MAX_LICENSE_TIME) throw fieldError(WHERE, `expected a time in 0..${MAX_LICENSE_TIME}`);
  if (leaf.firm.products.some((product) => product.hiddenData.length > 0 || product.secretData.length > 0)) {
    throw fieldError(WHERE, 'expected the firm item with hidden and secret data emptied (hidden data goes in its boxes)');
  }
  checkBoxes(leaf.hiddenBoxes, leaf.firm);
}

function checkBoxes(boxes: readonly HiddenBox[], firm: FirmItem): void {
  const codes = new Set(firm.products.map((product) => product.productCode));
  boxes.forEach((entry, i) => {
    if (!codes.has(entry.productCode)) throw fieldError(WHERE, `expected hidden box ${i} for a product item of the firm item, got product code ${entry.productCode}`);
    if (i > 0 && boxes[i - 1]!.productCode >= entry.productCode) throw fieldError(WHERE, 'expected hidden boxes in ascending product code order, each code once');
    if (!(entry.box instanceof Uint8Array) || entry.box.length < SEALED_OVERHEAD || entry.box.length > SEALED_OVERHEAD + MAX_ITEM_DATA_BYTES) {
      throw fieldError(WHERE, `expected hidden box ${i} of ${SEALED_OVERHEAD}..${SEALED_OVERHEAD + MAX_ITEM_DATA_BYTES} bytes`);
    }
  });
}

export function encodeBackupLeaf(leaf: BackupLeaf): Uint8Array {
  checkLeafFields(leaf);
  return joinFields([
    field(L.salt, leaf.salt), field(L.serial, utf8(leaf.serial)), field(L.time, encodeUint(leaf.time, 8)),
    field(L.firm, encodeLicenseContainer({ clock: leaf.time, firms: [leaf.firm] })),
    field(L.hidden, joinFields(leaf.hiddenBoxes.map((entry) => field(BOX, concatBytes(encodeUint(entry.productCode, 4), entry.box))))),
  ]);
}

/** Parses a leaf strictly; anything malformed is LicenseError 'input'. */
export function decodeBackupLeaf(bytes: Uint8Array): BackupLeaf {
  if (!(bytes instanceof Uint8Array)) throw fieldError(WHERE, 'expected bytes');
  const r = new FieldReader(bytes, WHERE);
  const salt = decodeBytes(r.required(L.salt, 'salt'), WHERE, 'salt', BACKUP_SALT_LENGTH);
  const serial = decodeText(r.required(L.serial, 'serial'), WHERE, 'serial');
  const time = decodeUint(r.required(L.time, 'time'), 8, WHERE, 'time');
  let container: LicenseContainer;
  try {
    container = decodeLicenseContainer(r.required(L.firm, 'firm'));
  } catch (error) {
    throw fieldError(WHERE, `expected the firm item as a license container: ${(error as Error).message}`);
  }
  const rawBoxes = new FieldReader(r.required(L.hidden, 'hidden boxes'), `${WHERE} hidden boxes`);
  r.end();
  const hiddenBoxes = rawBoxes.many(BOX).map((value, i) => {
    if (value.length < 4) throw fieldError(WHERE, `expected hidden box ${i} to start with a 4-byte product code`);
    return { productCode: decodeUint(value.subarray(0, 4), 4, WHERE, 'productCode'), box: value.slice(4) };
  });
  rawBoxes.end();
  const firm = container.firms[0];
  if (container.firms.length !== 1 || firm === undefined) throw fieldError(WHERE, `expected exactly one firm item, got ${container.firms.length}`);
  if (container.clock !== time) throw fieldError(WHERE, `expected the firm's container clock to be the leaf time ${time}, got ${container.clock}`);
  const leaf = { salt, serial, time, firm, hiddenBoxes };
  checkLeafFields(leaf);
  return leaf;
}

/**
 * The card's side of a backup (000 §2.1): one leaf per firm item, in firm code order, and the root the card signs. The
 * container is the card's own (hidden data still in it); `random` gives the salts.
 */
export function buildCardBackup(container: LicenseContainer, serial: string, time: number, random: (n: number) => Uint8Array): { leaves: Uint8Array[]; root: Uint8Array } {
  const leaves = container.firms.map((firm) => {
    const hiddenBoxes = firm.products.filter((product) => product.hiddenData.length > 0).map((product) => ({
      productCode: product.productCode,
      box: sealHiddenData(firm.licensorKey, { serial, firmCode: firm.firmCode, productCode: product.productCode, updateCounter: firm.updateCounter }, product.hiddenData),
    }));
    const salt = random(BACKUP_SALT_LENGTH);
    if (!(salt instanceof Uint8Array) || salt.length !== BACKUP_SALT_LENGTH) throw new TypeError(`expected ${BACKUP_SALT_LENGTH} random bytes`);
    return encodeBackupLeaf({ salt, serial, time, firm: shownFirm(firm), hiddenBoxes });
  });
  return { leaves, root: merkleRoot(leaves) };
}
