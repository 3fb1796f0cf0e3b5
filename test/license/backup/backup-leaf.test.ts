// One leaf of a card's backup (src/license/backup/backup-leaf.ts; Wibu 000 §2.1, §2.6-2.8): the exact field layout,
// round trips, hidden data only in boxes its licensor opens (bound to card, item and update counter), secret data
// nowhere, the root over the leaves, a table of malformed leaves and a fuzz that never throws anything but 'input'.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex, uintToBytes, utf8 } from '../../../src/bytes/index.js';
import {
  buildCardBackup, decodeBackupLeaf, encodeBackupLeaf, encodeLicenseContainer, LicenseError, merkleRoot, openHiddenData, type BackupLeaf,
  type LicenseContainer,
} from '../../../src/license/index.js';
import {
  CARD_SERIAL, containerWith, FIRM_CODE, FULL_PRODUCT, LICENSOR, LICENSOR_SEED, OTHER_LICENSOR, OTHER_LICENSOR_SEED, productItem, simpleProduct, T0,
  thrown,
} from '../../support/index.js';

const SECRET = Uint8Array.of(5, 5, 5);
/** Two licensors: LICENSOR's firm with hidden and secret data, OTHER_LICENSOR's with neither. */
const CONTAINER: LicenseContainer = {
  clock: T0,
  firms: [
    containerWith([productItem({ ...FULL_PRODUCT, secretData: SECRET }), productItem(simpleProduct(9, 10, { hiddenData: Uint8Array.of(9, 9) }))], { updateCounter: 3 }).firms[0]!,
    { licensorKey: OTHER_LICENSOR.publicKey, firmCode: FIRM_CODE + 1, text: 'Other', updateCounter: 1, products: [productItem(simpleProduct(1))] },
  ],
};
const counting = () => {
  let next = 0;
  return (n: number) => new Uint8Array(n).fill(++next);
};
const field = (tag: number, value: Uint8Array) => concatBytes(Uint8Array.of(tag), uintToBytes(BigInt(value.length), 4), value);

function refusal(run: () => unknown): string | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('backup leaves', () => {
  const backup = buildCardBackup(CONTAINER, CARD_SERIAL, T0 + 60, counting());

  it('one leaf per firm item, in firm code order, under the root of the leaves', () => {
    expect(backup.leaves).toHaveLength(2);
    expect(toHex(backup.root)).toBe(toHex(merkleRoot(backup.leaves)));
    const [first, second] = backup.leaves.map(decodeBackupLeaf);
    expect(first).toMatchObject({ salt: new Uint8Array(16).fill(1), serial: CARD_SERIAL, time: T0 + 60 });
    expect(first!.firm.licensorKey).toEqual(LICENSOR.publicKey);
    expect(second).toMatchObject({ salt: new Uint8Array(16).fill(2), hiddenBoxes: [] });
    expect(second!.firm.firmCode).toBe(FIRM_CODE + 1);
  });

  it('lays out salt, serial, time, the firm item as a container at the backup time, and the hidden boxes', () => {
    const leaf = decodeBackupLeaf(backup.leaves[1]!);
    const firm = encodeLicenseContainer({ clock: T0 + 60, firms: [leaf.firm] });
    expect(toHex(backup.leaves[1]!)).toBe(toHex(concatBytes(
      field(1, new Uint8Array(16).fill(2)), field(2, utf8(CARD_SERIAL)), field(3, uintToBytes(BigInt(T0 + 60), 8)), field(4, firm), field(5, new Uint8Array(0)),
    )));
  });

  it('keeps every field of the firm item but hidden and secret data, which are empty', () => {
    const { firm } = decodeBackupLeaf(backup.leaves[0]!);
    const original = CONTAINER.firms[0]!;
    expect(firm).toEqual({ ...original, products: original.products.map((product) => ({ ...product, hiddenData: new Uint8Array(0), secretData: new Uint8Array(0) })) });
    expect(toHex(backup.leaves[0]!)).not.toContain(toHex(SECRET));
  });

  it('carries hidden data sealed to its licensor, bound to card, firm, product and update counter (000 §2.7)', () => {
    const { hiddenBoxes } = decodeBackupLeaf(backup.leaves[0]!);
    expect(hiddenBoxes.map((entry) => entry.productCode)).toEqual([7, 9]);
    const context = (productCode: number) => ({ serial: CARD_SERIAL, firmCode: FIRM_CODE, productCode, updateCounter: 3 });
    expect(openHiddenData(LICENSOR_SEED, context(7), hiddenBoxes[0]!.box)).toEqual(FULL_PRODUCT.hiddenData);
    expect(openHiddenData(LICENSOR_SEED, context(9), hiddenBoxes[1]!.box)).toEqual(Uint8Array.of(9, 9));
    expect(refusal(() => openHiddenData(OTHER_LICENSOR_SEED, context(7), hiddenBoxes[0]!.box))).toBe('input');
    expect(refusal(() => openHiddenData(LICENSOR_SEED, { ...context(7), updateCounter: 2 }, hiddenBoxes[0]!.box))).toBe('input');
    expect(refusal(() => openHiddenData(LICENSOR_SEED, { ...context(7), serial: 'VSC-OTHER' }, hiddenBoxes[0]!.box))).toBe('input');
  });

  it('round trips (encode ∘ decode is the identity on the card\'s leaves)', () => {
    for (const leaf of backup.leaves) expect(toHex(encodeBackupLeaf(decodeBackupLeaf(leaf)))).toBe(toHex(leaf));
  });

  it('a container without firm items backs up as no leaves under the empty tree\'s root', () => {
    const empty = buildCardBackup({ clock: 0, firms: [] }, CARD_SERIAL, T0, counting());
    expect(empty.leaves).toEqual([]);
    expect(toHex(empty.root)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('draws a new salt for every leaf', () => {
    const again = buildCardBackup(CONTAINER, CARD_SERIAL, T0 + 60, (n) => new Uint8Array(n).fill(0x77));
    expect(toHex(again.root)).not.toBe(toHex(backup.root));
  });
});

describe('backup leaves: refused', () => {
  const leaf = decodeBackupLeaf(buildCardBackup(CONTAINER, CARD_SERIAL, T0 + 60, counting()).leaves[0]!);
  const encoded = encodeBackupLeaf(leaf);
  const fields = (change: Partial<Record<'salt' | 'serial' | 'time' | 'firm' | 'hidden', Uint8Array>>, extra: Uint8Array[] = []) => concatBytes(
    field(1, change.salt ?? leaf.salt), field(2, change.serial ?? utf8(leaf.serial)), field(3, change.time ?? uintToBytes(BigInt(leaf.time), 8)),
    field(4, change.firm ?? encodeLicenseContainer({ clock: leaf.time, firms: [leaf.firm] })),
    field(5, change.hidden ?? concatBytes(...leaf.hiddenBoxes.map((entry) => field(1, concatBytes(uintToBytes(BigInt(entry.productCode), 4), entry.box))))), ...extra,
  );
  const box = (code: number, length = 80) => field(1, concatBytes(uintToBytes(BigInt(code), 4), new Uint8Array(length)));

  it('the table\'s own base case decodes', () => {
    expect(toHex(fields({}))).toBe(toHex(encoded));
  });

  it.each<[string, Uint8Array]>([
    ['no bytes', new Uint8Array(0)],
    ['a 15-byte salt', fields({ salt: new Uint8Array(15) })],
    ['a serial that is not UTF-8', fields({ serial: Uint8Array.of(0xff) })],
    ['an empty serial', fields({ serial: new Uint8Array(0) })],
    ['a 4-byte time', fields({ time: new Uint8Array(4) })],
    ['a time past 2^40', fields({ time: uintToBytes(2n ** 40n + 1n, 8) })],
    ['a firm that is no container', fields({ firm: Uint8Array.of(1, 2, 3) })],
    ['two firm items', fields({ firm: encodeLicenseContainer({ ...CONTAINER, clock: leaf.time }) })],
    ['no firm item', fields({ firm: encodeLicenseContainer({ clock: leaf.time, firms: [] }) })],
    ['a container clock other than the time', fields({ firm: encodeLicenseContainer({ clock: leaf.time - 1, firms: [leaf.firm] }) })],
    ['hidden data in the firm item', fields({ firm: encodeLicenseContainer({ clock: leaf.time, firms: [{ ...leaf.firm, products: [{ ...leaf.firm.products[0]!, hiddenData: Uint8Array.of(1) }, leaf.firm.products[1]!] }] }) })],
    ['secret data in the firm item', fields({ firm: encodeLicenseContainer({ clock: leaf.time, firms: [{ ...leaf.firm, products: [{ ...leaf.firm.products[0]!, secretData: SECRET }, leaf.firm.products[1]!] }] }) })],
    ['a hidden box for a product not in the firm item', fields({ hidden: box(8) })],
    ['hidden boxes out of order', fields({ hidden: concatBytes(box(9), box(7)) })],
    ['a hidden box twice', fields({ hidden: concatBytes(box(7), box(7)) })],
    ['a hidden box shorter than a sealed box', fields({ hidden: box(7, 71) })],
    ['a hidden box without its product code', fields({ hidden: field(1, Uint8Array.of(0, 0)) })],
    ['a hidden box field of another tag', fields({ hidden: field(2, new Uint8Array(84)) })],
    ['a field after the last', fields({}, [field(6, new Uint8Array(0))])],
    ['a field left out', encoded.subarray(0, encoded.length - 5 - decodeFieldLength(encoded))],
    ['a truncated leaf', encoded.subarray(0, encoded.length - 1)],
  ])('%s: input', (_name, bytes) => {
    expect(refusal(() => decodeBackupLeaf(bytes))).toBe('input');
  });

  it.each<[string, Partial<BackupLeaf>]>([
    ['a short salt', { salt: new Uint8Array(3) }],
    ['a serial of 129 bytes', { serial: 's'.repeat(129) }],
    ['a negative time', { time: -1 }],
    ['hidden data left in the firm item', { firm: { ...leaf.firm, products: leaf.firm.products.map((product) => ({ ...product, hiddenData: Uint8Array.of(1) })) } }],
  ])('encodeBackupLeaf refuses %s', (_name, change) => {
    expect(refusal(() => encodeBackupLeaf({ ...leaf, ...change }))).toBe('input');
  });

  it('random bytes and mutated leaves never throw anything but LicenseError input (fuzz)', () => {
    const mutated = fc.tuple(fc.nat(encoded.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
      const copy = encoded.slice();
      copy[at] = byte;
      return copy;
    });
    const cut = fc.nat(encoded.length).map((length) => encoded.subarray(0, length));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutated, cut), (bytes) => {
      const outcome = refusal(() => decodeBackupLeaf(bytes));
      if (outcome !== undefined) expect(outcome).toBe('input');
      else expect(toHex(encodeBackupLeaf(decodeBackupLeaf(bytes)))).toBe(toHex(bytes));
    }), { numRuns: 2000 });
  });
});

/** The value length of the last field of `bytes` (the hidden boxes field of a leaf). */
function decodeFieldLength(bytes: Uint8Array): number {
  let offset = 0;
  let length = 0;
  while (offset < bytes.length) {
    length = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 4).getUint32(0);
    offset += 5 + length;
  }
  return length;
}
