// The backup file a user keeps, and the one-item files the hub sends each licensor (Wibu 000 §2.1 "a XML file which can
// be copied without any restrictions ... can also split into several XML files", §2.4 "Licensor Sees Only Own
// Licenses"; JSON here). The card signs one record over the root of all leaves (backup-leaf.ts, backup-tree.ts); each
// item carries its leaf and audit path, so it can be checked alone (backup-verify.ts).
//   BackupFile     {"format": "vsc-license-backup/1", "box", "record", "time", "treeSize", "items": [ITEM], "user": [USER]}
//   BackupItemFile {"format": "vsc-license-backup-item/1", "box", "record", "time", "treeSize", "item": ITEM}
//   box    {"serial", "cardPublicKey": 64 hex, "keyMode": "individual" | "universal", "containerFormat": 1}
//   record {"nonce": 32 hex, "counter": decimal string, "signature": 128 hex, "text": "license backup items N root R at T"}
//   ITEM   {"index", "licensorKey": 64 hex, "firmCode", "leaf": base64, "auditPath": [64 hex, ...]}
//   USER   {"licensorKey": 64 hex, "productCode", "userData": hex}   the user's own data: not signed, not trusted
// Parsers are strict (every field checked, unknown fields refused, time and treeSize those of the record text, leaves
// decoded): LicenseError 'input'. Whether the card signed it is backup-verify.ts's question.
import { COUNTER_MAX, type VscKeyMode } from '../../apdu/index.js';
import { toHex } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, SHA256_LENGTH } from '../../crypto/index.js';
import { LICENSE_CONTAINER_FORMAT } from '../license-container-codec.js';
import { LicenseError } from '../license-error.js';
import { describeJson, hexValue, JsonFields, jsonInput, parseJsonText } from '../license-json-fields.js';
import { MAX_CODE, MAX_FIRM_ITEMS, MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM } from '../license-model.js';
import { parseContainerRecordText, type BackupRecordText } from '../license-record-text.js';
import { decodeBackupLeaf, MAX_BACKUP_SERIAL_BYTES } from './backup-leaf.js';
import { auditPathLength, auditPaths, merkleRoot } from './backup-tree.js';

export const BACKUP_FORMAT = 'vsc-license-backup/1';
export const BACKUP_ITEM_FORMAT = 'vsc-license-backup-item/1';
export const MAX_BACKUP_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_BACKUP_ITEM_BYTES = 64 * 1024;
const NONCE_LENGTH = 16;
/** The deepest audit path a tree of MAX_FIRM_ITEMS leaves has. */
const MAX_AUDIT_PATH = 32;
const MAX_USER_ITEMS = MAX_FIRM_ITEMS * MAX_PRODUCT_ITEMS_PER_FIRM;
const DECIMAL = /^(?:0|[1-9][0-9]{0,38})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface BackupBox {
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
  readonly containerFormat: 1;
}

/** The card's signed record of the backup: an AuditRecord (patent 003 [0056]) whose text is the backup record text. */
export interface BackupRecord {
  readonly nonce: Uint8Array;
  readonly counter: bigint;
  readonly signature: Uint8Array;
  readonly text: string;
}

export interface BackupItemEntry {
  readonly index: number;
  readonly licensorKey: Uint8Array;
  readonly firmCode: number;
  readonly leaf: Uint8Array;
  readonly auditPath: readonly Uint8Array[];
}

export interface UserItemEntry {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  readonly userData: Uint8Array;
}

export interface BackupFile {
  readonly box: BackupBox;
  readonly record: BackupRecord;
  readonly time: number;
  readonly treeSize: number;
  readonly items: readonly BackupItemEntry[];
  readonly user: readonly UserItemEntry[];
}

export interface BackupItemFile {
  readonly box: BackupBox;
  readonly record: BackupRecord;
  readonly time: number;
  readonly treeSize: number;
  readonly item: BackupItemEntry;
}

/** The backup record text of `record`, or LicenseError 'input'. */
export function backupRecordText(record: BackupRecord, where = 'backup'): BackupRecordText {
  let parsed;
  try {
    parsed = parseContainerRecordText(record.text);
  } catch (error) {
    throw jsonInput(`${where} record`, `expected the text "license backup items N root R at T": ${(error as Error).message}`);
  }
  if (parsed.kind !== 'backup') throw jsonInput(`${where} record`, `expected the text of a backup record, got a ${parsed.kind} record`);
  return parsed;
}

/**
 * The file of a backup the card answered (license applet INS 3C): time and treeSize from the record text, each item's
 * licensor key and firm code from its decoded leaf, and every audit path from one build of the tree.
 */
export function assembleBackup(parts: { box: BackupBox; record: BackupRecord; leaves: readonly Uint8Array[]; user: readonly UserItemEntry[] }): BackupFile {
  const text = backupRecordText(parts.record);
  if (parts.leaves.length !== text.items) throw jsonInput('backup', `expected the ${text.items} leaves the record names, got ${parts.leaves.length}`);
  if (toHex(merkleRoot(parts.leaves)) !== text.root) throw new LicenseError('signature', 'backup: the leaves do not reach the root the card signed');
  const paths = auditPaths(parts.leaves);
  const items = parts.leaves.map((leaf, index) => {
    const { firm } = decodeBackupLeaf(leaf);
    return { index, licensorKey: firm.licensorKey, firmCode: firm.firmCode, leaf: leaf.slice(), auditPath: paths[index]! };
  });
  return { box: parts.box, record: parts.record, time: text.at, treeSize: text.items, items, user: parts.user };
}

/** One item file per firm item: what the hub sends each licensor's restoring service (000 §2.4). */
export function splitBackup(file: BackupFile): BackupItemFile[] {
  return file.items.map((item) => ({ box: file.box, record: file.record, time: file.time, treeSize: file.treeSize, item }));
}

// ---- encoding ------------------------------------------------------------------------------------------------------

const boxJson = (box: BackupBox) => ({ serial: box.serial, cardPublicKey: toHex(box.cardPublicKey), keyMode: box.keyMode, containerFormat: box.containerFormat });
const recordJson = (record: BackupRecord) => ({ nonce: toHex(record.nonce), counter: record.counter.toString(), signature: toHex(record.signature), text: record.text });
// The leaf's base64 is the JSON file's edge: Buffer only here, converted at once.
const itemJson = (item: BackupItemEntry) => ({
  index: item.index, licensorKey: toHex(item.licensorKey), firmCode: item.firmCode, leaf: Buffer.from(item.leaf.buffer, item.leaf.byteOffset, item.leaf.byteLength).toString('base64'),
  auditPath: item.auditPath.map(toHex),
});

export function encodeBackupFile(file: BackupFile): string {
  return JSON.stringify({
    format: BACKUP_FORMAT, box: boxJson(file.box), record: recordJson(file.record), time: file.time, treeSize: file.treeSize, items: file.items.map(itemJson),
    user: file.user.map((entry) => ({ licensorKey: toHex(entry.licensorKey), productCode: entry.productCode, userData: toHex(entry.userData) })),
  });
}

/** The item file as JSON text; backupItemFileJson gives the object, for a request body that carries it. */
export function encodeBackupItemFile(item: BackupItemFile): string {
  return JSON.stringify(backupItemFileJson(item));
}

export function backupItemFileJson(item: BackupItemFile): Record<string, unknown> {
  return { format: BACKUP_ITEM_FORMAT, box: boxJson(item.box), record: recordJson(item.record), time: item.time, treeSize: item.treeSize, item: itemJson(item.item) };
}

// ---- strict parsing ------------------------------------------------------------------------------------------------

function parseBox(value: unknown, where: string): BackupBox {
  const box = new JsonFields(value, `${where} box`, ['serial', 'cardPublicKey', 'keyMode', 'containerFormat']);
  box.integer('containerFormat', LICENSE_CONTAINER_FORMAT, LICENSE_CONTAINER_FORMAT);
  return { serial: box.text('serial', MAX_BACKUP_SERIAL_BYTES, 1), cardPublicKey: box.hex('cardPublicKey', ED25519_PUBLIC_KEY_LENGTH), keyMode: box.constant('keyMode', 'individual', 'universal'), containerFormat: 1 };
}

function parseRecord(value: unknown, where: string): BackupRecord {
  const record = new JsonFields(value, `${where} record`, ['nonce', 'counter', 'signature', 'text']);
  const counter = record.raw('counter');
  if (typeof counter !== 'string' || !DECIMAL.test(counter) || BigInt(counter) > COUNTER_MAX) {
    throw jsonInput(record.where, `expected counter as a decimal string in 0..2^128-1 without leading zeros, got ${describeJson(counter)}`);
  }
  return { nonce: record.hex('nonce', NONCE_LENGTH), counter: BigInt(counter), signature: record.hex('signature', ED25519_SIGNATURE_LENGTH), text: record.string('text', 512) };
}

function parseItem(value: unknown, where: string, treeSize: number): BackupItemEntry {
  const item = new JsonFields(value, where, ['index', 'licensorKey', 'firmCode', 'leaf', 'auditPath']);
  if (treeSize === 0) throw jsonInput(where, 'expected no items in a backup of no leaves');
  const index = item.integer('index', 0, treeSize - 1);
  const rawLeaf = item.raw('leaf');
  if (typeof rawLeaf !== 'string' || rawLeaf.length > MAX_BACKUP_FILE_BYTES || !BASE64.test(rawLeaf)) throw jsonInput(where, `expected leaf as base64 with padding, got ${describeJson(rawLeaf)}`);
  const leaf = Uint8Array.from(Buffer.from(rawLeaf, 'base64'));
  // One leaf has one text: unused low bits of the last character must be zero.
  if (Buffer.from(leaf).toString('base64') !== rawLeaf) throw jsonInput(where, 'expected leaf as canonical base64');
  try {
    decodeBackupLeaf(leaf);
  } catch (error) {
    throw jsonInput(where, `expected a backup leaf: ${(error as Error).message}`);
  }
  const path = item.array('auditPath', MAX_AUDIT_PATH).map((hash, i) => hexValue(hash, `${where}: auditPath[${i}]`, SHA256_LENGTH));
  const expected = auditPathLength(index, treeSize);
  if (path.length !== expected) throw jsonInput(where, `expected an audit path of ${expected} hashes for leaf ${index} of ${treeSize}, got ${path.length}`);
  return { index, licensorKey: item.hex('licensorKey', ED25519_PUBLIC_KEY_LENGTH), firmCode: item.integer('firmCode', 0, MAX_CODE), leaf, auditPath: path };
}

/** The fields both files share, with time and treeSize checked against the record text. */
function parseHead(fields: JsonFields): { box: BackupBox; record: BackupRecord; time: number; treeSize: number } {
  const box = parseBox(fields.raw('box'), fields.where);
  const record = parseRecord(fields.raw('record'), fields.where);
  const text = backupRecordText(record, fields.where);
  const time = fields.integer('time', 0, 2 ** 40);
  const treeSize = fields.integer('treeSize', 0, MAX_FIRM_ITEMS);
  if (time !== text.at || treeSize !== text.items) throw jsonInput(fields.where, `expected time ${text.at} and treeSize ${text.items} as the record text says, got ${time} and ${treeSize}`);
  return { box, record, time, treeSize };
}

function parseUser(value: unknown, where: string): UserItemEntry {
  const user = new JsonFields(value, where, ['licensorKey', 'productCode', 'userData']);
  return { licensorKey: user.hex('licensorKey', ED25519_PUBLIC_KEY_LENGTH), productCode: user.integer('productCode', 0, MAX_CODE), userData: user.hex('userData', { max: MAX_ITEM_DATA_BYTES }) };
}

export function parseBackupFile(text: string | Uint8Array): BackupFile {
  const where = 'backup file';
  const fields = new JsonFields(parseJsonText(text, where, MAX_BACKUP_FILE_BYTES), where, ['format', 'box', 'record', 'time', 'treeSize', 'items', 'user']);
  fields.constant('format', BACKUP_FORMAT);
  const head = parseHead(fields);
  const items = fields.array('items', head.treeSize).map((item, i) => parseItem(item, `${where} items[${i}]`, head.treeSize));
  items.forEach((item, i) => {
    if (i > 0 && items[i - 1]!.index >= item.index) throw jsonInput(where, 'expected items in ascending index order, each index once');
  });
  const user = fields.array('user', MAX_USER_ITEMS).map((entry, i) => parseUser(entry, `${where} user[${i}]`));
  const seen = new Set<string>();
  for (const entry of user) {
    const key = `${toHex(entry.licensorKey)} ${entry.productCode}`;
    if (seen.has(key)) throw jsonInput(where, `expected the user data of each product item once, got product ${entry.productCode} twice`);
    seen.add(key);
  }
  return { ...head, items, user };
}

/** Parses an item file given as its text or bytes, or as the JSON value a request body carried. */
export function parseBackupItemFile(text: string | Uint8Array | unknown): BackupItemFile {
  const where = 'backup item file';
  const value = typeof text === 'string' || text instanceof Uint8Array ? parseJsonText(text, where, MAX_BACKUP_ITEM_BYTES) : text;
  const fields = new JsonFields(value, where, ['format', 'box', 'record', 'time', 'treeSize', 'item']);
  fields.constant('format', BACKUP_ITEM_FORMAT);
  const head = parseHead(fields);
  return { ...head, item: parseItem(fields.raw('item'), `${where} item`, head.treeSize) };
}
