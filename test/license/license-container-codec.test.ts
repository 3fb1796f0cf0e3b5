// The binary form of a license container (src/license/license-container-codec.ts; Wibu 000 §2.2-2.8): the layout by
// hand, round trips of every option, the limits of license-model.ts on both sides, the public view, and fuzzing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { ProtectedInformationError, readLicenseContainer } from '../../src/card/index.js';
import {
  checkLicenseContainer, decodeLicenseContainer, EMPTY_CONTAINER, encodedLicenseContainerLength, encodeLicenseContainer, isEmptyLicenseContainer, LicenseError,
  MAX_CODE, MAX_FIRM_ITEMS, MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM, MAX_UNITS, publicView, wipeContainerSecrets, type FirmItem,
  type LicenseContainer, type ProductItem,
} from '../../src/license/index.js';
import { field } from '../../src/license/license-field-codec.js';
import { containerWith, FULL_PRODUCT, LICENSOR, OTHER_LICENSOR, productItem, simpleProduct, T0, thrown } from '../support/index.js';

const u32 = (value: number) => fromHex(value.toString(16).padStart(8, '0'));
const u64 = (value: number) => fromHex(value.toString(16).padStart(16, '0'));

function inputRefusal(run: () => unknown): string {
  const error = thrown(run);
  expect(error).toBeInstanceOf(LicenseError);
  expect((error as LicenseError).reason).toBe('input');
  return (error as LicenseError).message;
}

const full = (): LicenseContainer => containerWith([productItem(FULL_PRODUCT, { unitsUsed: 12, firstUse: T0 - 10, userData: utf8('notes') }), productItem(simpleProduct(9, 'unlimited'))]);

describe('license container codec: layout', () => {
  it('encodes the empty container as format 01 and a zero clock', () => {
    expect(toHex(encodeLicenseContainer(EMPTY_CONTAINER))).toBe(
      '01' + // format
      '01' + '00000008' + '0000000000000000', // clock: tag 01, length 8, 0
    );
  });

  it('encodes a minimal firm and product field by field, in tag order', () => {
    const product = productItem(simpleProduct(3, 'unlimited', { text: 'P', featureMap: 1 }));
    const container: LicenseContainer = { clock: 5, firms: [{ licensorKey: LICENSOR.publicKey, firmCode: 258, text: 'F', updateCounter: 2, products: [product] }] };
    const productBytes = concatBytes(
      field(0x01, u32(3)), field(0x02, utf8('P')), field(0x03, u32(1)), field(0x05, u64(0)), field(0x06, Uint8Array.of(0)), field(0x0b, u32(1)),
      field(0x15, new Uint8Array(0)), field(0x16, new Uint8Array(0)), field(0x17, new Uint8Array(0)), field(0x18, new Uint8Array(0)),
    );
    const firmBytes = concatBytes(field(0x01, LICENSOR.publicKey), field(0x02, u32(258)), field(0x03, utf8('F')), field(0x04, u64(2)), field(0x06, productBytes));
    const expected = concatBytes(Uint8Array.of(0x01), field(0x01, u64(5)), field(0x02, firmBytes));
    expect(toHex(encodeLicenseContainer(container))).toBe(toHex(expected));
    expect(decodeLicenseContainer(expected)).toEqual(container);
  });
});

describe('license container codec: round trips', () => {
  it.each([
    ['the empty container', EMPTY_CONTAINER],
    ['a product item with every option, beside an unlimited one', full()],
    ['two firm items in firm code order', { clock: T0, firms: [full().firms[0]!, { licensorKey: OTHER_LICENSOR.publicKey, firmCode: 20202, text: '', updateCounter: 7, products: [] }] }],
    ['empty country lists and an overflow without end', containerWith([productItem(simpleProduct(1, 0, { countries: { allow: [] }, overflow: { seats: 1 } }))])],
    ['limits at their largest', containerWith([productItem(simpleProduct(MAX_CODE, MAX_UNITS, { featureMap: MAX_CODE, secretData: new Uint8Array(MAX_ITEM_DATA_BYTES).fill(7) }), { unitsUsed: MAX_UNITS })], { firmCode: MAX_CODE, updateCounter: MAX_UNITS })],
  ])('%s', (_name, container) => {
    const bytes = encodeLicenseContainer(container);
    expect(decodeLicenseContainer(bytes)).toEqual(container);
    expect(encodedLicenseContainerLength(container)).toBe(bytes.length);
  });

  it('keeps an absent option absent, not undefined', () => {
    const decoded = decodeLicenseContainer(encodeLicenseContainer(containerWith([productItem(simpleProduct(1, 'unlimited'))])));
    expect(Object.keys(decoded.firms[0]!.products[0]!)).not.toContain('unitLimit');
    expect(Object.keys(decoded.firms[0]!.products[0]!)).not.toContain('firstUse');
  });
});

describe('license container codec: limits, on encoding and decoding', () => {
  const product = (overrides: Partial<ProductItem>) => containerWith([{ ...productItem(simpleProduct(1)), ...overrides }]);
  const firm = (overrides: Partial<FirmItem>) => containerWith([], overrides);
  const manyProducts = Array.from({ length: MAX_PRODUCT_ITEMS_PER_FIRM + 1 }, (_, i) => productItem(simpleProduct(i)));
  it.each<[string, LicenseContainer, string]>([
    ['a clock past 2^40', { firms: [], clock: 2 ** 40 + 1 }, 'clock'],
    ['a fractional unit count', product({ unitsUsed: 1.5 }), 'unitsUsed'],
    ['a negative product code', product({ productCode: -1 }), 'productCode'],
    ['a text with a control character', product({ text: 'a\nb' }), 'text'],
    ['a text with a lone surrogate', product({ text: 'a\ud800' }), 'lone surrogate'],
    ['a text past 128 bytes', firm({ text: 'é'.repeat(65) }), 'text'],
    ['a license quantity of 0', product({ licenseQuantity: 0 }), 'licenseQuantity'],
    ['versions upside down', product({ versions: { min: 5, max: 4 } }), 'versions.max'],
    ['a lower-case country', product({ countries: { deny: ['de'] } }), 'countries.deny'],
    ['time zones upside down', product({ timeZones: { minOffsetMinutes: 60, maxOffsetMinutes: 0 } }), 'timeZones'],
    ['a short computer digest', product({ boundTo: new Uint8Array(31) }), 'boundTo'],
    ['user data past 1024 bytes', product({ userData: new Uint8Array(MAX_ITEM_DATA_BYTES + 1) }), 'userData'],
    ['a standby of another kind', product({ standby: { kind: 'warm' as 'hot', maxSeconds: 1 } }), 'standby'],
    ['a short licensor key', firm({ licensorKey: new Uint8Array(31) }), 'licensorKey'],
    ['products out of order', containerWith([productItem(simpleProduct(2)), productItem(simpleProduct(1))]), 'ascending product code'],
    ['a product code twice', containerWith([productItem(simpleProduct(2)), productItem(simpleProduct(2))]), 'ascending product code'],
    [`${MAX_PRODUCT_ITEMS_PER_FIRM + 1} products`, containerWith(manyProducts), `at most ${MAX_PRODUCT_ITEMS_PER_FIRM}`],
    ['firms out of order', { clock: 0, firms: [{ ...firm({}).firms[0]!, firmCode: 2 }, { ...firm({}).firms[0]!, licensorKey: OTHER_LICENSOR.publicKey, firmCode: 1 }] }, 'ascending firm code'],
    ['one key in two firm items', { clock: 0, firms: [{ ...firm({}).firms[0]!, firmCode: 1 }, { ...firm({}).firms[0]!, firmCode: 2 }] }, 'one firm item only'],
  ])('refuses %s', (_name, container, named) => {
    expect(inputRefusal(() => encodeLicenseContainer(container))).toContain(named);
    expect(inputRefusal(() => checkLicenseContainer(container))).toContain(named);
  });

  it(`refuses more than ${MAX_FIRM_ITEMS} firm items`, () => {
    const firms = Array.from({ length: MAX_FIRM_ITEMS + 1 }, (_, i) => ({ licensorKey: concatBytes(new Uint8Array(28), u32(i)), firmCode: i, text: '', updateCounter: 0, products: [] }));
    expect(inputRefusal(() => encodeLicenseContainer({ clock: 0, firms }))).toContain(`at most ${MAX_FIRM_ITEMS}`);
    expect(encodeLicenseContainer({ clock: 0, firms: firms.slice(0, MAX_FIRM_ITEMS) }).length).toBeGreaterThan(0);
  });

  const valid = encodeLicenseContainer(full());
  it.each<[string, Uint8Array, string]>([
    ['no bytes', new Uint8Array(0), 'no bytes'],
    ['another format', concatBytes(Uint8Array.of(2), valid.subarray(1)), 'format 2'],
    ['a cut field header', valid.subarray(0, 4), 'field header'],
    ['a field longer than what remains', valid.subarray(0, valid.length - 1), 'remain'],
    ['no clock', concatBytes(Uint8Array.of(1), field(0x02, new Uint8Array(0))), 'clock'],
    ['a 4-byte clock', concatBytes(Uint8Array.of(1), field(0x01, u32(1))), 'clock to be 8 bytes'],
    ['a clock of 2^53', concatBytes(Uint8Array.of(1), field(0x01, fromHex('0020000000000000'))), 'below 2^53'],
    ['an unknown field', concatBytes(valid, field(0x7f, new Uint8Array(0))), 'unexpected field 7f'],
    ['a second clock', concatBytes(valid, field(0x01, u64(0))), 'unexpected field 01'],
    ['an empty firm item', concatBytes(Uint8Array.of(1), field(0x01, u64(0)), field(0x02, new Uint8Array(0))), 'licensorKey'],
    ['a text that is not UTF-8', encodeWithFirmText(Uint8Array.of(0xc3, 0x28)), 'UTF-8'],
  ])('refuses %s', (_name, bytes, named) => {
    expect(inputRefusal(() => decodeLicenseContainer(bytes))).toContain(named);
  });
});

/** The minimal container of the layout test with its firm text's bytes replaced. */
function encodeWithFirmText(textBytes: Uint8Array): Uint8Array {
  const firmBytes = concatBytes(field(0x01, LICENSOR.publicKey), field(0x02, u32(1)), field(0x03, textBytes), field(0x04, u64(0)));
  return concatBytes(Uint8Array.of(0x01), field(0x01, u64(0)), field(0x02, firmBytes));
}

describe('license container codec: views', () => {
  it('the public view empties hidden and secret data and keeps everything else', () => {
    const container = containerWith([productItem({ ...FULL_PRODUCT, secretData: Uint8Array.of(9, 9) }, { userData: Uint8Array.of(5) })]);
    const view = publicView(container);
    const item = view.firms[0]!.products[0]!;
    expect(item.hiddenData).toHaveLength(0);
    expect(item.secretData).toHaveLength(0);
    expect({ ...item, hiddenData: undefined, secretData: undefined }).toEqual({ ...container.firms[0]!.products[0]!, hiddenData: undefined, secretData: undefined });
    expect(container.firms[0]!.products[0]!.secretData).toEqual(Uint8Array.of(9, 9)); // the original is untouched
  });

  it('wiping zeroes hidden and secret data only', () => {
    const container = decodeLicenseContainer(encodeLicenseContainer(containerWith([productItem({ ...FULL_PRODUCT, secretData: Uint8Array.of(9) }, { userData: Uint8Array.of(5) })])));
    wipeContainerSecrets(container);
    const item = container.firms[0]!.products[0]!;
    expect([...item.hiddenData, ...item.secretData].every((byte) => byte === 0)).toBe(true);
    expect(item.userData).toEqual(Uint8Array.of(5));
  });
});

// ---- fuzzing -------------------------------------------------------------------------------------------------------

const time = fc.integer({ min: 0, max: 2 ** 40 });
// Any Unicode (graphemes, so never a lone surrogate) without control characters, within 128 UTF-8 bytes.
const text = fc.string({ unit: 'grapheme', maxLength: 8 }).filter((value) => [...value].every((char) => char.charCodeAt(0) >= 0x20 && char.charCodeAt(0) !== 0x7f) && utf8(value).length <= 128);
const data = fc.uint8Array({ maxLength: 40 });
const country = fc.constantFrom('DE', 'AT', 'CH', 'US', 'FR');
const productArbitrary = (productCode: number): fc.Arbitrary<ProductItem> => fc.record({
  productCode: fc.constant(productCode), text, featureMap: fc.integer({ min: 0, max: MAX_CODE }), unitLimit: fc.option(fc.integer({ min: 0, max: MAX_UNITS }), { nil: undefined }),
  unitsUsed: fc.integer({ min: 0, max: MAX_UNITS }), payment: fc.constantFrom('prepaid' as const, 'postpaid' as const), expiration: fc.option(time, { nil: undefined }),
  activationTime: fc.option(time, { nil: undefined }), usagePeriodSeconds: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
  firstUse: fc.option(time, { nil: undefined }), licenseQuantity: fc.integer({ min: 1, max: 100_000 }),
  versions: fc.option(fc.tuple(fc.nat(1000), fc.nat(1000)).map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) })), { nil: undefined }),
  maintenanceUntil: fc.option(time, { nil: undefined }), namedUser: fc.option(text, { nil: undefined }), boundTo: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
  countries: fc.option(fc.record({ allow: fc.array(country, { maxLength: 3 }), deny: fc.array(country, { maxLength: 3 }) }, { requiredKeys: [] }), { nil: undefined }),
  timeZones: fc.option(fc.tuple(fc.integer({ min: -720, max: 840 }), fc.integer({ min: -720, max: 840 })).map(([a, b]) => ({ minOffsetMinutes: Math.min(a, b), maxOffsetMinutes: Math.max(a, b) })), { nil: undefined }),
  overflow: fc.option(fc.record({ seats: fc.integer({ min: 1, max: 100_000 }), until: time }, { requiredKeys: ['seats'] }), { nil: undefined }),
  maxBorrowSeconds: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
  standby: fc.option(fc.record({ kind: fc.constantFrom('hot' as const, 'cold' as const), maxSeconds: fc.integer({ min: 1, max: 2 ** 40 }) }), { nil: undefined }),
  userData: data, protectedData: data, hiddenData: data, secretData: data,
}).map((item) => Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined)) as unknown as ProductItem);

const firmArbitrary = (firmCode: number, key: Uint8Array): fc.Arbitrary<FirmItem> =>
  fc.record({
    text, updateCounter: fc.integer({ min: 0, max: MAX_UNITS }), certifiedTime: fc.option(time, { nil: undefined }),
    codes: fc.uniqueArray(fc.integer({ min: 0, max: MAX_CODE }), { maxLength: 3 }),
  }).chain(({ text: firmText, updateCounter, certifiedTime, codes }) =>
    fc.tuple(...[...codes].sort((a, b) => a - b).map(productArbitrary)).map((products) => ({
      licensorKey: key, firmCode, text: firmText, updateCounter, ...(certifiedTime === undefined ? {} : { certifiedTime }), products,
    })));

const containerArbitrary: fc.Arbitrary<LicenseContainer> = fc
  .record({ clock: time, codes: fc.uniqueArray(fc.integer({ min: 0, max: MAX_CODE }), { maxLength: 3 }), keys: fc.uniqueArray(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 3, maxLength: 3, selector: toHex }) })
  .chain(({ clock, codes, keys }) => fc.tuple(...[...codes].sort((a, b) => a - b).map((code, i) => firmArbitrary(code, keys[i]!))).map((firms) => ({ clock, firms })));

function onlyInputRefusals(run: () => unknown, also: (error: unknown) => boolean = () => false): void {
  const error = thrown(run);
  if (error === undefined || also(error)) return;
  expect(error).toBeInstanceOf(LicenseError);
  expect((error as LicenseError).reason).toBe('input');
}

describe('license container codec: fuzz', () => {
  it('round trips any container within the limits', () => {
    fc.assert(fc.property(containerArbitrary, (container) => {
      expect(decodeLicenseContainer(encodeLicenseContainer(container))).toEqual(container);
    }), { numRuns: 200 });
  });

  it('random bytes decode or give LicenseError input, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => onlyInputRefusals(() => decodeLicenseContainer(concatBytes(Uint8Array.of(1), bytes)))), { numRuns: 500 });
  });

  it('a valid encoding with bytes changed or cut decodes or gives LicenseError input', () => {
    const base = encodeLicenseContainer(full());
    fc.assert(fc.property(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(base.length), (at, value, cut) => {
      const bytes = base.slice(0, Math.max(cut, at + 1));
      bytes[at] = value;
      onlyInputRefusals(() => decodeLicenseContainer(bytes));
    }), { numRuns: 500 });
  });

  it('random protected information gives only ProtectedInformationError (the card wraps the container\'s refusals)', () => {
    const prefix = fromHex('01'); // the protected information's format byte
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const error = thrown(() => readLicenseContainer(concatBytes(prefix, bytes)));
      if (error !== undefined) expect(error).toBeInstanceOf(ProtectedInformationError);
    }), { numRuns: 300 });
  });
});

describe('license container codec: lock state (000 §2.10)', () => {
  const AUTHORITY = new Uint8Array(32).fill(0xa7);
  const DIGEST = new Uint8Array(32).fill(0xd1);
  const locked = (): LicenseContainer => ({ ...full(), lockAuthority: AUTHORITY, lock: { time: T0 + 5, digest: DIGEST } });

  it('a container without lock fields keeps its bytes: the layout vector above, byte for byte', () => {
    const product = productItem(simpleProduct(3, 'unlimited', { text: 'P', featureMap: 1 }));
    const container: LicenseContainer = { clock: 5, firms: [{ licensorKey: LICENSOR.publicKey, firmCode: 258, text: 'F', updateCounter: 2, products: [product] }] };
    const productBytes = concatBytes(
      field(0x01, u32(3)), field(0x02, utf8('P')), field(0x03, u32(1)), field(0x05, u64(0)), field(0x06, Uint8Array.of(0)), field(0x0b, u32(1)),
      field(0x15, new Uint8Array(0)), field(0x16, new Uint8Array(0)), field(0x17, new Uint8Array(0)), field(0x18, new Uint8Array(0)),
    );
    const firmBytes = concatBytes(field(0x01, LICENSOR.publicKey), field(0x02, u32(258)), field(0x03, utf8('F')), field(0x04, u64(2)), field(0x06, productBytes));
    const bytes = encodeLicenseContainer(container);
    expect(toHex(bytes)).toBe(toHex(concatBytes(Uint8Array.of(0x01), field(0x01, u64(5)), field(0x02, firmBytes))));
    expect(Object.keys(decodeLicenseContainer(bytes))).toEqual(['firms', 'clock']);
    expect(toHex(encodeLicenseContainer(EMPTY_CONTAINER))).toBe('01' + '01' + '00000008' + '0000000000000000');
  });

  it('appends field 03 lock authority (32) and field 04 lock (time 8 ‖ digest 32) after the firm items', () => {
    const base = full();
    const plain = encodeLicenseContainer(base);
    expect(toHex(encodeLicenseContainer({ ...base, lockAuthority: AUTHORITY }))).toBe(toHex(concatBytes(plain, field(0x03, AUTHORITY))));
    expect(toHex(encodeLicenseContainer(locked()))).toBe(toHex(concatBytes(plain, field(0x03, AUTHORITY), field(0x04, concatBytes(u64(T0 + 5), DIGEST)))));
  });

  it.each<[string, LicenseContainer]>([
    ['a lock authority only', { ...EMPTY_CONTAINER, lockAuthority: AUTHORITY }],
    ['a locked container', locked()],
    ['a locked container without firm items', { clock: 0, firms: [], lockAuthority: AUTHORITY, lock: { time: 0, digest: DIGEST } }],
  ])('round trips %s', (_name, container) => {
    expect(decodeLicenseContainer(encodeLicenseContainer(container))).toEqual(container);
  });

  it('a container with only a lock authority is not the empty container (the card keeps its field)', () => {
    expect(isEmptyLicenseContainer(EMPTY_CONTAINER)).toBe(true);
    expect(isEmptyLicenseContainer({ ...EMPTY_CONTAINER, lockAuthority: AUTHORITY })).toBe(false);
  });

  it.each<[string, LicenseContainer, string]>([
    ['a lock without a lock authority', { ...full(), lock: { time: 1, digest: DIGEST } }, 'lock authority'],
    ['a 31-byte lock authority', { ...full(), lockAuthority: new Uint8Array(31) }, 'lockAuthority'],
    ['a 31-byte lock digest', { ...locked(), lock: { time: 1, digest: new Uint8Array(31) } }, 'lock.digest'],
    ['a lock time past 2^40', { ...locked(), lock: { time: 2 ** 40 + 1, digest: DIGEST } }, 'lock.time'],
  ])('refuses %s on encoding', (_name, container, word) => {
    expect(inputRefusal(() => encodeLicenseContainer(container))).toContain(word);
  });

  it.each<[string, Uint8Array]>([
    ['a lock without a lock authority', concatBytes(encodeLicenseContainer(full()), field(0x04, concatBytes(u64(1), DIGEST)))],
    ['a lock of 39 bytes', concatBytes(encodeLicenseContainer(full()), field(0x03, AUTHORITY), field(0x04, concatBytes(u64(1), DIGEST.subarray(1))))],
    ['the lock before the lock authority', concatBytes(encodeLicenseContainer(full()), field(0x04, concatBytes(u64(1), DIGEST)), field(0x03, AUTHORITY))],
    ['the lock authority before a firm item', concatBytes(encodeLicenseContainer(EMPTY_CONTAINER), field(0x03, AUTHORITY), field(0x02, new Uint8Array(0)))],
    ['a lock authority twice', concatBytes(encodeLicenseContainer(full()), field(0x03, AUTHORITY), field(0x03, AUTHORITY))],
    ['a field 05', concatBytes(encodeLicenseContainer(full()), field(0x05, new Uint8Array(0)))],
  ])('refuses %s on decoding', (_name, bytes) => {
    inputRefusal(() => decodeLicenseContainer(bytes));
  });

  it('the public view of a locked container shows clock, lock authority and lock, and no firm item', () => {
    expect(publicView(locked())).toEqual({ clock: T0, firms: [], lockAuthority: AUTHORITY, lock: { time: T0 + 5, digest: DIGEST } });
    expect(publicView({ ...full(), lockAuthority: AUTHORITY }).firms).toHaveLength(1);
    expect(publicView({ ...full(), lockAuthority: AUTHORITY }).lockAuthority).toEqual(AUTHORITY);
  });

  it('round trips any container with or without lock fields (fuzz)', () => {
    const lockState = fc.record({
      lockAuthority: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
      lock: fc.option(fc.record({ time, digest: fc.uint8Array({ minLength: 32, maxLength: 32 }) }), { nil: undefined }),
    });
    fc.assert(fc.property(containerArbitrary, lockState, (container, state) => {
      const withLock: LicenseContainer = {
        ...container, ...(state.lockAuthority === undefined ? {} : { lockAuthority: state.lockAuthority }),
        ...(state.lock === undefined || state.lockAuthority === undefined ? {} : { lock: state.lock }),
      };
      expect(decodeLicenseContainer(encodeLicenseContainer(withLock))).toEqual(withLock);
    }), { numRuns: 100 });
  });
});
