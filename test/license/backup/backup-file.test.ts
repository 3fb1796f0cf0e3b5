// The backup file and its one-item files (src/license/backup/backup-file.ts; Wibu 000 §2.1, §2.4): assembled from a
// card's answer, written and read back exactly, split per licensor, strict parsing (a table of malformed files) and a
// fuzz of both parsers that never throws anything but LicenseError 'input'.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../src/bytes/index.js';
import {
  assembleBackup, auditPath, BACKUP_FORMAT, BACKUP_ITEM_FORMAT, backupItemFileJson, decodeBackupLeaf, encodeBackupFile, encodeBackupItemFile, LicenseError,
  MAX_BACKUP_FILE_BYTES, MAX_BACKUP_ITEM_BYTES, parseBackupFile, parseBackupItemFile, splitBackup, type BackupFile,
} from '../../../src/license/index.js';
import { CARD_SERIAL, FIRM_CODE, LICENSOR, OTHER_LICENSOR, T0, TEST_PUBLIC_KEY, thrown } from '../../support/index.js';
import { signedBackup, THIRD_LICENSOR } from './backup-fixture.js';

const USER = [{ licensorKey: LICENSOR.publicKey, productCode: 7, userData: Uint8Array.of(0x75, 0x73) }];

function refusal(run: () => unknown): string | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

const backup = await signedBackup({ user: USER });
const text = encodeBackupFile(backup);

describe('backup files', () => {
  it('assembles the card\'s answer: time and tree size from the record text, licensor and firm code from each leaf, audit paths', () => {
    expect(backup).toMatchObject({ time: T0 + 600, treeSize: 3, box: { serial: CARD_SERIAL, keyMode: 'individual', containerFormat: 1 }, user: USER });
    expect(backup.box.cardPublicKey).toEqual(TEST_PUBLIC_KEY);
    expect(backup.items.map((item) => [item.index, toHex(item.licensorKey), item.firmCode])).toEqual([
      [0, toHex(LICENSOR.publicKey), FIRM_CODE], [1, toHex(OTHER_LICENSOR.publicKey), FIRM_CODE + 1], [2, toHex(THIRD_LICENSOR.publicKey), FIRM_CODE + 2],
    ]);
    const leaves = backup.items.map((item) => item.leaf);
    backup.items.forEach((item, i) => expect(item.auditPath.map(toHex)).toEqual(auditPath(i, leaves).map(toHex)));
  });

  it('writes the JSON of the contract and reads it back exactly, from text and from bytes', () => {
    const json = JSON.parse(text);
    expect(Object.keys(json)).toEqual(['format', 'box', 'record', 'time', 'treeSize', 'items', 'user']);
    expect(json.format).toBe(BACKUP_FORMAT);
    expect(json.box).toEqual({ serial: CARD_SERIAL, cardPublicKey: toHex(TEST_PUBLIC_KEY), keyMode: 'individual', containerFormat: 1 });
    expect(json.record).toEqual({ nonce: 'bb'.repeat(16), counter: '41', signature: toHex(backup.record.signature), text: backup.record.text });
    expect(json.items[0]).toEqual({ index: 0, licensorKey: toHex(LICENSOR.publicKey), firmCode: FIRM_CODE, leaf: Buffer.from(backup.items[0]!.leaf).toString('base64'), auditPath: backup.items[0]!.auditPath.map(toHex) });
    expect(json.user).toEqual([{ licensorKey: toHex(LICENSOR.publicKey), productCode: 7, userData: '7573' }]);
    expect(parseBackupFile(text)).toEqual(backup);
    expect(parseBackupFile(utf8(text))).toEqual(backup);
    expect(encodeBackupFile(parseBackupFile(text))).toBe(text);
  });

  it('splits into one item file per firm item, each holding only its own item, read back from text, bytes or parsed JSON', () => {
    const items = splitBackup(backup);
    expect(items.map((item) => item.item.firmCode)).toEqual([FIRM_CODE, FIRM_CODE + 1, FIRM_CODE + 2]);
    for (const item of items) {
      const itemText = encodeBackupItemFile(item);
      expect(JSON.parse(itemText)).toEqual({ ...backupItemFileJson(item), format: BACKUP_ITEM_FORMAT });
      expect(itemText).not.toContain('"user"');
      expect(parseBackupItemFile(itemText)).toEqual(item);
      expect(parseBackupItemFile(utf8(itemText))).toEqual(item);
      expect(parseBackupItemFile(JSON.parse(itemText))).toEqual(item);
      // No other licensor's key appears in it (000 §2.4).
      for (const other of backup.items.filter((entry) => entry !== item.item)) expect(itemText).not.toContain(toHex(other.licensorKey));
    }
  });

  it('a backup of an empty container has no items', async () => {
    const empty = await signedBackup({ container: { clock: 0, firms: [] } });
    expect(empty).toMatchObject({ treeSize: 0, items: [] });
    expect(parseBackupFile(encodeBackupFile(empty))).toEqual(empty);
  });

  it('refuses to assemble leaves the record does not name', () => {
    const leaves = backup.items.map((item) => item.leaf);
    expect(refusal(() => assembleBackup({ box: backup.box, record: backup.record, leaves: leaves.slice(1), user: [] }))).toBe('input');
    expect(refusal(() => assembleBackup({ box: backup.box, record: backup.record, leaves: [leaves[1]!, leaves[0]!, leaves[2]!], user: [] }))).toBe('signature');
    expect(refusal(() => assembleBackup({ box: backup.box, record: { ...backup.record, text: 'license time 00000000000000000000000000000000 1 2' }, leaves, user: [] }))).toBe('input');
  });
});

describe('backup files: malformed', () => {
  /** An item whose leaf's base64 ends in padding, and that base64 with the unused bits of its last character set. */
  const padded = backup.items.findIndex((item) => item.leaf.length % 3 !== 0);
  const nonCanonical = (base64: string): string => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const at = base64.indexOf('=') - 1;
    return base64.slice(0, at) + alphabet[alphabet.indexOf(base64[at]!) + 1]! + base64.slice(at + 1);
  };

  it('has an item with padding to tamper with', () => {
    expect(padded).toBeGreaterThanOrEqual(0);
    expect(Buffer.from(nonCanonical(Buffer.from(backup.items[padded]!.leaf).toString('base64')), 'base64')).toEqual(Buffer.from(backup.items[padded]!.leaf));
  });

  const json = () => JSON.parse(text) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const edit = (change: (file: Record<string, any>) => void): string => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const file = json();
    change(file);
    return JSON.stringify(file);
  };

  it.each<[string, string | Uint8Array]>([
    ['not JSON', 'backup'],
    ['not UTF-8', Uint8Array.of(0x22, 0xc3, 0x22)],
    ['an array', '[]'],
    ['another format', edit((f) => { f['format'] = BACKUP_ITEM_FORMAT; })],
    ['an unknown field', edit((f) => { f['comment'] = 'x'; })],
    ['no user list', edit((f) => { delete f['user']; })],
    ['an unknown box field', edit((f) => { f['box'].version = 2; })],
    ['container format 2', edit((f) => { f['box'].containerFormat = 2; })],
    ['another key mode', edit((f) => { f['box'].keyMode = 'shared'; })],
    ['an empty serial', edit((f) => { f['box'].serial = ''; })],
    ['a short card key', edit((f) => { f['box'].cardPublicKey = f['box'].cardPublicKey.slice(2); })],
    ['a counter as a number', edit((f) => { f['record'].counter = 41; })],
    ['a counter with a leading zero', edit((f) => { f['record'].counter = '041'; })],
    ['a counter past 2^128-1', edit((f) => { f['record'].counter = (2n ** 128n).toString(); })],
    ['a record text of another kind', edit((f) => { f['record'].text = 'license time 00000000000000000000000000000000 1 2'; })],
    ['an upper-case signature', edit((f) => { f['record'].signature = f['record'].signature.toUpperCase(); })],
    ['a time other than the record text\'s', edit((f) => { f['time'] += 1; })],
    ['a tree size other than the record text\'s', edit((f) => { f['treeSize'] = 2; })],
    ['more items than leaves', edit((f) => { f['items'].push(f['items'][0]); })],
    ['items out of order', edit((f) => { f['items'].reverse(); })],
    ['an index past the tree', edit((f) => { f['items'][2].index = 3; })],
    ['a leaf in base64url', edit((f) => { f['items'][0].leaf = Buffer.from(backup.items[0]!.leaf).toString('base64url'); })],
    ['a leaf with its padding wrong', edit((f) => { const leaf: string = f['items'][0].leaf; f['items'][0].leaf = leaf.endsWith('=') ? leaf.replace(/=+$/, '') : `${leaf.slice(0, -1)}=`; })],
    ['a leaf with non-zero bits after its last byte', edit((f) => { f['items'][padded].leaf = nonCanonical(f['items'][padded].leaf); })],
    ['a leaf that is no leaf', edit((f) => { f['items'][0].leaf = Buffer.from('not a leaf').toString('base64'); })],
    ['an audit path too long', edit((f) => { f['items'][2].auditPath.push(f['items'][2].auditPath[0]); })],
    ['an audit hash of 31 bytes', edit((f) => { f['items'][0].auditPath[0] = f['items'][0].auditPath[0].slice(2); })],
    ['a firm code past 2^32', edit((f) => { f['items'][0].firmCode = 2 ** 32; })],
    ['user data of 1025 bytes', edit((f) => { f['user'][0].userData = '00'.repeat(1025); })],
    ['user data in odd hex', edit((f) => { f['user'][0].userData = '123'; })],
    ['user data of one product twice', edit((f) => { f['user'].push(f['user'][0]); })],
    ['a file past 8 MiB', ' '.repeat(MAX_BACKUP_FILE_BYTES) + text],
  ])('parseBackupFile refuses %s with input', (_name, input) => {
    expect(refusal(() => parseBackupFile(input))).toBe('input');
  });

  const itemText = encodeBackupItemFile(splitBackup(backup)[1]!);
  const editItem = (change: (file: Record<string, any>) => void): string => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const file = JSON.parse(itemText) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    change(file);
    return JSON.stringify(file);
  };

  it.each<[string, unknown]>([
    ['the whole backup', text],
    ['another format', editItem((f) => { f['format'] = BACKUP_FORMAT; })],
    ['items instead of item', editItem((f) => { f['items'] = [f['item']]; delete f['item']; })],
    ['user data', editItem((f) => { f['user'] = []; })],
    ['an item without audit path', editItem((f) => { delete f['item'].auditPath; })],
    ['null', null],
    ['a number', 42],
    ['a parsed object with a wrong field', { ...JSON.parse(itemText), time: 'now' }],
    ['a file past 64 KiB', ' '.repeat(MAX_BACKUP_ITEM_BYTES) + itemText],
  ])('parseBackupItemFile refuses %s with input', (_name, input) => {
    expect(refusal(() => parseBackupItemFile(input))).toBe('input');
  });

  it('random bytes and mutated files never throw anything but LicenseError input (fuzz)', () => {
    const inputs = (valid: Uint8Array) => fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.string({ maxLength: 200 }).map(utf8),
      fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0x20, max: 0x7e })).map(([at, byte]) => {
        const copy = valid.slice();
        copy[at] = byte;
        return copy;
      }),
      fc.nat(valid.length).map((length) => valid.subarray(0, length)),
    );
    const whole = utf8(text);
    fc.assert(fc.property(inputs(whole), (bytes) => {
      const outcome = refusal(() => parseBackupFile(bytes));
      if (outcome !== undefined) expect(outcome).toBe('input');
    }), { numRuns: 1500 });
    const one = utf8(itemText);
    fc.assert(fc.property(inputs(one), (bytes) => {
      const outcome = refusal(() => parseBackupItemFile(bytes));
      if (outcome !== undefined) expect(outcome).toBe('input');
    }), { numRuns: 1500 });
  });

  it('mutated leaves inside a file are refused as input or parse to leaves that decode (fuzz)', () => {
    const leaf = backup.items[0]!.leaf;
    fc.assert(fc.property(fc.nat(leaf.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const copy = leaf.slice();
      copy[at] = byte;
      const mutated = { ...backup, items: [{ ...backup.items[0]!, leaf: copy }, ...backup.items.slice(1)] } satisfies BackupFile;
      const outcome = refusal(() => parseBackupFile(encodeBackupFile(mutated)));
      if (outcome !== undefined) expect(outcome).toBe('input');
      else expect(decodeBackupLeaf(parseBackupFile(encodeBackupFile(mutated)).items[0]!.leaf)).toBeDefined();
    }), { numRuns: 500 });
  });
});
