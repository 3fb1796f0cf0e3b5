// The licensor's check of one backed-up firm item (src/license/backup/backup-verify.ts; Wibu 000 §2.4, §2.6): a backup
// signed by a real SoftwareVscCard verifies item by item for each licensor, and every tampering is refused with its
// reason (a table).
import { describe, expect, it } from 'vitest';
import { encodeRecordLine, recordHash, verifyRecord } from '../../../src/rental/index.js';
import { concatBytes, toHex } from '../../../src/bytes/index.js';
import {
  decodeBackupLeaf, encodeBackupLeaf, LicenseError, openHiddenData, splitBackup, verifyBackupItem, type BackupItemFile, type LicenseReason,
} from '../../../src/license/index.js';
import {
  CARD_SERIAL, FIRM_CODE, FULL_PRODUCT, LICENSOR, LICENSOR_SEED, OTHER_LICENSOR, T0, TEST_PUBLIC_KEY, thrown,
} from '../../support/index.js';
import { OTHER_CARD, signedBackup, THIRD_LICENSOR, THREE_FIRMS } from './backup-fixture.js';

const KEYS = [LICENSOR.publicKey, OTHER_LICENSOR.publicKey, THIRD_LICENSOR.publicKey];

function refusal(run: () => unknown): LicenseReason | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('verifyBackupItem', () => {
  it.each(['individual', 'universal'] as const)('verifies each of three licensors\' items of a %s-key card\'s backup under that licensor\'s key', async (keyMode) => {
    const backup = await signedBackup({ keyMode });
    const items = splitBackup(backup);
    expect(items).toHaveLength(3);
    expect(verifyRecord(backup.record, { publicKey: TEST_PUBLIC_KEY, serial: CARD_SERIAL, keyMode })).toBe(true);
    items.forEach((item, i) => {
      const verified = verifyBackupItem(item, { licensorKey: KEYS[i]!, cardPublicKey: TEST_PUBLIC_KEY });
      const firm = THREE_FIRMS.firms[i]!;
      expect(verified).toMatchObject({ serial: CARD_SERIAL, time: T0 + 600, recordCounter: 41n });
      expect(verified.cardPublicKey).toEqual(TEST_PUBLIC_KEY);
      expect(verified.firm).toEqual({ ...firm, products: firm.products.map((product) => ({ ...product, hiddenData: new Uint8Array(0), secretData: new Uint8Array(0) })) });
    });
  });

  it('hands the licensor its hidden data, which it alone opens, and never the secret data', async () => {
    const [item] = splitBackup(await signedBackup());
    const verified = verifyBackupItem(item!, { licensorKey: LICENSOR.publicKey, cardPublicKey: TEST_PUBLIC_KEY });
    const context = { serial: CARD_SERIAL, firmCode: FIRM_CODE, productCode: 7, updateCounter: 3 };
    expect(openHiddenData(LICENSOR_SEED, context, verified.hiddenBoxes[0]!.box)).toEqual(FULL_PRODUCT.hiddenData);
    expect(verified.firm.products[1]!.secretData).toHaveLength(0);
  });

  it('the record is a rental trail record of the card (one line of its trail)', async () => {
    const { record } = await signedBackup();
    expect(JSON.parse(encodeRecordLine(record))).toMatchObject({ text: record.text });
    expect(record.text).toMatch(/^license backup items 3 root [0-9a-f]{64} at \d+$/);
  });
});

type Tamper = (item: BackupItemFile, all: readonly BackupItemFile[]) => BackupItemFile | Promise<BackupItemFile>;

/** The leaf with one change to its firm item, re-encoded (its audit path and the record unchanged). */
function changedLeaf(item: BackupItemFile, change: (leaf: ReturnType<typeof decodeBackupLeaf>) => ReturnType<typeof decodeBackupLeaf>): BackupItemFile {
  return { ...item, item: { ...item.item, leaf: encodeBackupLeaf(change(decodeBackupLeaf(item.item.leaf))) } };
}

describe('verifyBackupItem: tampering', () => {
  const expected = { licensorKey: LICENSOR.publicKey, cardPublicKey: TEST_PUBLIC_KEY };

  it.each<[string, Tamper, LicenseReason, { licensorKey?: Uint8Array; cardPublicKey?: Uint8Array }?]>([
    ['a unit counter changed in the leaf', (item) => changedLeaf(item, (leaf) => ({ ...leaf, firm: { ...leaf.firm, products: leaf.firm.products.map((product) => ({ ...product, unitsUsed: 0 })) } })), 'signature'],
    ['a unit limit raised in the leaf', (item) => changedLeaf(item, (leaf) => ({ ...leaf, firm: { ...leaf.firm, products: leaf.firm.products.map((product) => ({ ...product, unitLimit: 1_000_000 })) } })), 'signature'],
    ['a hidden box dropped from the leaf', (item) => changedLeaf(item, (leaf) => ({ ...leaf, hiddenBoxes: [] })), 'signature'],
    ['another serial in the box (individual key: the leaf names the card)', (item) => ({ ...item, box: { ...item.box, serial: 'VSC-OTHER' } }), 'foreign'],
    ['another licensor\'s item', (_item, all) => all[1]!, 'foreign'],
    ['a wrong expected licensor key', (item) => item, 'foreign', { licensorKey: OTHER_LICENSOR.publicKey }],
    ['an entry claiming another licensor, checked by that licensor', (item) => ({ ...item, item: { ...item.item, licensorKey: OTHER_LICENSOR.publicKey } }), 'signature', { licensorKey: OTHER_LICENSOR.publicKey }],
    ['an entry naming another firm code', (item) => ({ ...item, item: { ...item.item, firmCode: FIRM_CODE + 9 } }), 'signature'],
    ['a swapped audit path', (item, all) => ({ ...item, item: { ...item.item, auditPath: all[1]!.item.auditPath } }), 'signature'],
    ['the audit path\'s hashes in another order', (item) => ({ ...item, item: { ...item.item, auditPath: [...item.item.auditPath].reverse() } }), 'signature'],
    ['another index for the leaf', (item) => ({ ...item, item: { ...item.item, index: 1 } }), 'signature'],
    ['a box naming another card key', (item) => ({ ...item, box: { ...item.box, cardPublicKey: OTHER_CARD.publicKey } }), 'foreign'],
    ['a wrong expected card key', (item) => item, 'foreign', { cardPublicKey: OTHER_CARD.publicKey }],
    ['a record of another card under this card\'s key in the box', async (item) => ({ ...item, record: (await signedBackup({ cardKey: OTHER_CARD })).record }), 'signature'],
    ['a record signed by another card with its key in the box', async () => {
      const other = await signedBackup({ cardKey: OTHER_CARD });
      return { ...splitBackup(other)[0]!, box: other.box };
    }, 'foreign'],
    ['another backup\'s record (other salts, same card)', async (item) => ({ ...item, record: (await signedBackup({ time: T0 + 601 })).record, time: T0 + 601 }), 'signature'],
    ['a record counter changed', (item) => ({ ...item, record: { ...item.record, counter: item.record.counter + 1n } }), 'signature'],
    ['a record nonce changed', (item) => ({ ...item, record: { ...item.record, nonce: new Uint8Array(16) } }), 'signature'],
    ['a record text naming another time', (item) => ({ ...item, record: { ...item.record, text: item.record.text.replace(/at \d+$/, `at ${T0}`) }, time: T0 }), 'signature'],
    ['a box in universal mode for an individual-key record', (item) => ({ ...item, box: { ...item.box, keyMode: 'universal' } }), 'signature'],
    ['a time field other than the record text\'s', (item) => ({ ...item, time: item.time + 1 }), 'input'],
    ['a tree size other than the record text\'s', (item) => ({ ...item, treeSize: 4 }), 'input'],
    ['an audit path one hash short', (item) => ({ ...item, item: { ...item.item, auditPath: item.item.auditPath.slice(1) } }), 'input'],
    ['a leaf that does not decode', (item) => ({ ...item, item: { ...item.item, leaf: concatBytes(item.item.leaf, Uint8Array.of(1)) } }), 'input'],
    ['no box', (item) => ({ ...item, box: undefined } as unknown as BackupItemFile), 'input'],
  ])('%s: %s', async (_name, tamper, reason, overrides = {}) => {
    const all = splitBackup(await signedBackup());
    const file = await tamper(all[0]!, all);
    expect(refusal(() => verifyBackupItem(file, { ...expected, ...overrides }))).toBe(reason);
    expect(refusal(() => verifyBackupItem(all[0]!, expected))).toBeUndefined(); // the untouched item still verifies
  });

  it.each<[string, Parameters<typeof signedBackup>[0], LicenseReason]>([
    ['another serial in the box of a universal-key card (the serial is in the signed digest)', { keyMode: 'universal' }, 'signature'],
    ['leaves of another serial signed by the card', { leafSerial: 'VSC-OTHER' }, 'foreign'],
    ['leaves of another time than the record\'s', { recordTime: T0 + 599 }, 'foreign'],
  ])('%s: %s', async (name, init, reason) => {
    const backup = await signedBackup(init);
    let item = splitBackup(backup)[0]!;
    if (name.startsWith('another serial in the box')) item = { ...item, box: { ...item.box, serial: 'VSC-OTHER' } };
    expect(refusal(() => verifyBackupItem(item, expected))).toBe(reason);
  });

  it.each<[string, unknown]>([
    ['no expectation', undefined],
    ['a 31-byte licensor key', { licensorKey: new Uint8Array(31), cardPublicKey: TEST_PUBLIC_KEY }],
    ['no card key', { licensorKey: LICENSOR.publicKey }],
  ])('refuses %s with input', async (_name, expectation) => {
    const [item] = splitBackup(await signedBackup());
    expect(refusal(() => verifyBackupItem(item!, expectation as typeof expected))).toBe('input');
  });

  it('a record the card signed over another text is not a backup record (the signature binds the text)', async () => {
    const [item] = splitBackup(await signedBackup());
    const text = `license time ${toHex(new Uint8Array(16))} 1 2`;
    expect(recordHash(item!.record.nonce, text)).not.toEqual(recordHash(item!.record.nonce, item!.record.text));
    expect(refusal(() => verifyBackupItem({ ...item!, record: { ...item!.record, text } }, expected))).toBe('input');
  });
});
