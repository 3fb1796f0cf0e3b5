// Licensor updates and time certificates applied to a container (src/license/license-apply.ts; Wibu 000 §2.2, §2.6
// Firm Update Counter; DESIGN.md "License containers": only the licensor's key changes its firm item, replays and
// foreign updates are refused). The containers handed in are frozen: nothing may change them in place.
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import {
  applyLicenseBody, EMPTY_CONTAINER, LicenseError, licenseBodyDigest, licensorDigest, MAX_FIRM_ITEMS, MAX_PRODUCT_ITEMS_PER_FIRM,
  parseLicenseRecordText, type LicenseContainer, type LicenseReason, type SignedLicenseBody, type UpdateOperation,
} from '../../src/license/index.js';
import {
  CARD_SERIAL, containerWith, deepFreeze, FIRM_CODE, firstUpdate, FULL_PRODUCT, LICENSOR, OTHER_LICENSOR, productItem, signedUpdate, simpleProduct, T0,
  thrown, timeCertificate,
} from '../support/index.js';

const random = (length: number) => new Uint8Array(length).fill(0x5a);
const apply = (container: LicenseContainer, signed: SignedLicenseBody, serial = CARD_SERIAL) => applyLicenseBody(deepFreeze(container), signed, serial, { random });

function refusal(run: () => unknown): LicenseReason {
  const error = thrown(run);
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

/** EMPTY_CONTAINER after the first update (create-firm, products 7 and 9). */
function created(): LicenseContainer {
  return apply(EMPTY_CONTAINER, firstUpdate([{ op: 'put-product', product: FULL_PRODUCT }, { op: 'put-product', product: simpleProduct(9) }])).container;
}

const next = (operations: readonly UpdateOperation[], updateCounter = 1, time = T0 + 100) => signedUpdate({ updateCounter, time, operations });

describe('applying a licensor update', () => {
  it('creates the firm item with its products; the counter, certified time and clock move; the text names the update', () => {
    const signed = firstUpdate([{ op: 'put-product', product: FULL_PRODUCT }]);
    const { container, text } = apply(EMPTY_CONTAINER, signed);
    expect(container).toEqual({
      clock: T0,
      firms: [{ licensorKey: LICENSOR.publicKey, firmCode: FIRM_CODE, text: 'ACME Software', updateCounter: 1, certifiedTime: T0, products: [productItem(FULL_PRODUCT)] }],
    });
    expect(text).toBe(`license update ${licensorDigest(LICENSOR.publicKey)} ${FIRM_CODE} counter 1 digest ${toHex(licenseBodyDigest(signed))}`);
    expect(parseLicenseRecordText(text)).toMatchObject({ kind: 'update', counter: 1 });
  });

  it('keeps firm items in firm code order whatever order they arrive in', () => {
    const first = apply(EMPTY_CONTAINER, firstUpdate([], { firmCode: 500 })).container;
    const both = apply(first, firstUpdate([], { licensor: OTHER_LICENSOR, firmCode: 20 })).container;
    expect(both.firms.map((firm) => firm.firmCode)).toEqual([20, 500]);
  });

  it('put-product replaces the licensor\'s fields and keeps the card\'s: units used, first use, user data', () => {
    const used = containerWith([productItem(simpleProduct(9, 10), { unitsUsed: 4, firstUse: T0 - 5, userData: utf8('mine') })]);
    const { container } = apply(used, next([{ op: 'put-product', product: simpleProduct(9, 50, { text: 'Renamed', protectedData: Uint8Array.of(7) }) }]));
    expect(container.firms[0]!.products).toEqual([{ ...simpleProduct(9, 50, { text: 'Renamed', protectedData: Uint8Array.of(7) }), unitsUsed: 4, firstUse: T0 - 5, userData: utf8('mine') }]);
  });

  it.each<[string, UpdateOperation, (container: LicenseContainer) => unknown, unknown]>([
    ['set-firm-text', { op: 'set-firm-text', text: 'ACME Inc.' }, (c) => c.firms[0]!.text, 'ACME Inc.'],
    ['add-units raises the limit', { op: 'add-units', productCode: 9, units: 5 }, (c) => c.firms[0]!.products[1]!.unitLimit, 15],
    ['extend sets the expiration', { op: 'extend', productCode: 7, expiration: T0 + 1 }, (c) => c.firms[0]!.products[0]!.expiration, T0 + 1],
    ['delete-product removes it', { op: 'delete-product', productCode: 7 }, (c) => c.firms[0]!.products.map((p) => p.productCode), [9]],
    ['generate-secret draws on the card', { op: 'generate-secret', productCode: 9, length: 3 }, (c) => c.firms[0]!.products[1]!.secretData, Uint8Array.of(0x5a, 0x5a, 0x5a)],
    ['delete-firm empties the firm item', { op: 'delete-firm' }, (c) => c.firms.map((f) => f.products), [[]]],
  ])('%s', (_name, operation, read, expected) => {
    const { container } = apply(created(), next([operation]));
    expect(read(container)).toEqual(expected);
    expect(container.firms[0]!.updateCounter).toBe(2);
  });

  it('after delete-firm the licensor\'s first update replayed is refused: the deleted licenses stay deleted', () => {
    const first = firstUpdate([{ op: 'put-product', product: simpleProduct(7, 10) }]);
    const made = apply(EMPTY_CONTAINER, first).container;
    const deleted = apply(made, signedUpdate({ updateCounter: 1, operations: [{ op: 'delete-firm' }] })).container;
    expect(deleted.firms[0]!.products).toEqual([]);
    expect(refusal(() => apply(deleted, first))).toBe('replayed');
    // The licensor may put a license there again (a transfer back) with the counter the shell kept.
    const again = apply(deleted, signedUpdate({ updateCounter: 2, operations: [{ op: 'put-product', product: simpleProduct(7, 3) }] })).container;
    expect(again.firms[0]!.products.map((p) => p.unitLimit)).toEqual([3]);
  });

  it('settle-units lowers the units used by what was billed, never below zero', () => {
    const used = containerWith([productItem(simpleProduct(9, 10, { payment: 'postpaid' }), { unitsUsed: 6 })]);
    expect(apply(used, next([{ op: 'settle-units', productCode: 9, units: 6 }])).container.firms[0]!.products[0]!.unitsUsed).toBe(0);
    expect(refusal(() => apply(used, next([{ op: 'settle-units', productCode: 9, units: 7 }])))).toBe('input');
  });

  it('takes the newer of the certified time and the update time, and never moves the clock back', () => {
    const later = containerWith([], { certifiedTime: T0 + 500 }, T0 + 900);
    const { container } = apply(later, next([{ op: 'set-firm-text', text: 'x' }], 1, T0 + 100));
    expect(container.firms[0]!.certifiedTime).toBe(T0 + 500);
    expect(container.clock).toBe(T0 + 900);
  });
});

describe('refusing a licensor update', () => {
  const start = created(); // firm item at update counter 1
  it.each<[string, () => SignedLicenseBody, LicenseReason]>([
    ['a replayed update (its counter already used)', () => firstUpdate(), 'replayed'],
    ['a reordered update (a counter still ahead)', () => next([{ op: 'set-firm-text', text: 'x' }], 2), 'replayed'],
    ['an update for another card', () => signedUpdate({ serial: 'VSC-OTHER', updateCounter: 1, operations: [{ op: 'set-firm-text', text: 'x' }] }), 'foreign'],
    ['another licensor naming this firm code', () => firstUpdate([], { licensor: OTHER_LICENSOR }), 'foreign'],
    ['this licensor naming another firm code', () => signedUpdate({ firmCode: FIRM_CODE + 1, updateCounter: 1, operations: [{ op: 'set-firm-text', text: 'x' }] }), 'foreign'],
    ['create-firm on the existing firm item', () => signedUpdate({ updateCounter: 1, operations: [{ op: 'create-firm', text: 'again' }] }), 'input'],
    ['a product that does not exist', () => next([{ op: 'add-units', productCode: 8, units: 1 }]), 'no-license'],
    ['units added to an unlimited item', () => next([{ op: 'put-product', product: simpleProduct(9, 'unlimited') }, { op: 'add-units', productCode: 9, units: 1 }]), 'input'],
  ])('%s', (_name, make, reason) => {
    expect(refusal(() => apply(start, make()))).toBe(reason);
  });

  it('a signature that does not verify, over a changed body or a changed signature', () => {
    const signed = next([{ op: 'set-firm-text', text: 'x' }]);
    const badSignature = { ...signed, signature: signed.signature.map((byte, i) => (i === 0 ? byte ^ 1 : byte)) };
    const otherText = { ...signed, bodyText: signed.bodyText.replace('"x"', '"y"') };
    expect(refusal(() => apply(start, badSignature))).toBe('signature');
    expect(refusal(() => apply(start, otherText))).toBe('signature');
  });

  it('a first update needs counter 0 and create-firm', () => {
    expect(refusal(() => apply(EMPTY_CONTAINER, signedUpdate({ updateCounter: 1, operations: [{ op: 'create-firm', text: 'x' }] })))).toBe('replayed');
    expect(refusal(() => apply(EMPTY_CONTAINER, signedUpdate({ operations: [{ op: 'set-firm-text', text: 'x' }] })))).toBe('no-license');
    expect(refusal(() => apply(EMPTY_CONTAINER, signedUpdate({ operations: [{ op: 'delete-firm' }] })))).toBe('no-license');
  });

  it('is atomic: a refused operation late in an update leaves nothing of the earlier ones', () => {
    const before = structuredClone(start);
    const update = next([{ op: 'set-firm-text', text: 'changed' }, { op: 'put-product', product: simpleProduct(11) }, { op: 'add-units', productCode: 8, units: 1 }]);
    expect(refusal(() => apply(start, update))).toBe('no-license');
    expect(start).toEqual(before); // frozen as well: apply would have thrown on a change in place
  });

  it(`refuses a product item past ${MAX_PRODUCT_ITEMS_PER_FIRM} and a firm item past ${MAX_FIRM_ITEMS}`, () => {
    const full = containerWith(Array.from({ length: MAX_PRODUCT_ITEMS_PER_FIRM }, (_, i) => productItem(simpleProduct(i))));
    expect(refusal(() => apply(full, next([{ op: 'put-product', product: simpleProduct(1000) }])))).toBe('capacity');
    expect(apply(full, next([{ op: 'put-product', product: simpleProduct(3, 99) }])).container.firms[0]!.products).toHaveLength(MAX_PRODUCT_ITEMS_PER_FIRM);
    const firms = Array.from({ length: MAX_FIRM_ITEMS }, (_, i) => ({ licensorKey: new Uint8Array(32).fill(i % 256).map((b, j) => (j === 0 ? i >> 8 : b)), firmCode: i, text: '', updateCounter: 1, products: [] }));
    expect(refusal(() => apply({ clock: 0, firms }, firstUpdate([], { firmCode: 99_999 })))).toBe('capacity');
  });
});

describe('time certificates', () => {
  const start = created(); // certified time and clock T0

  it('move the certified time and the clock forward, without a counter step, and name the time in the text', () => {
    const { container, text } = apply(start, timeCertificate({ time: T0 + 3_600 }));
    expect(container.firms[0]!.certifiedTime).toBe(T0 + 3_600);
    expect(container.clock).toBe(T0 + 3_600);
    expect(container.firms[0]!.updateCounter).toBe(1);
    expect(text).toBe(`license time ${licensorDigest(LICENSOR.publicKey)} ${FIRM_CODE} ${T0 + 3_600}`);
  });

  it('never move anything back: an older certificate (or a replay) changes nothing', () => {
    const later = apply(start, timeCertificate({ time: T0 + 3_600 })).container;
    expect(apply(later, timeCertificate({ time: T0 + 60 })).container).toEqual(later);
    expect(apply(later, timeCertificate({ time: T0 + 3_600 })).container).toEqual(later);
  });

  it('reset the clock exactly, once: the remedy for a host clock set far ahead', () => {
    const ahead = { ...start, clock: T0 + 10 * 365 * 86_400 };
    const certificate = timeCertificate({ time: T0 + 60, resetClock: true });
    const reset = apply(ahead, certificate).container;
    expect(reset.clock).toBe(T0 + 60);
    expect(reset.firms[0]!.certifiedTime).toBe(T0 + 60);
    expect(refusal(() => apply({ ...reset, clock: T0 + 86_400 }, certificate))).toBe('replayed');
    expect(refusal(() => apply(ahead, timeCertificate({ time: T0 - 1, resetClock: true })))).toBe('replayed');
  });

  it.each<[string, () => SignedLicenseBody, LicenseReason]>([
    ['for a firm item that does not exist', () => timeCertificate({ licensor: OTHER_LICENSOR, firmCode: 4 }), 'no-license'],
    ['by another licensor for this firm code', () => timeCertificate({ licensor: OTHER_LICENSOR }), 'foreign'],
    ['for another card', () => timeCertificate({ serial: 'VSC-OTHER' }), 'foreign'],
    ['with a signature that does not verify', () => ({ ...timeCertificate(), signature: new Uint8Array(64) }), 'signature'],
  ])('are refused %s', (_name, make, reason) => {
    expect(refusal(() => apply(start, make()))).toBe(reason);
  });
});

describe('set-lock-authority (000 §2.10: the first licensor\'s locking authority stands)', () => {
  const AUTHORITY = new Uint8Array(32).fill(0xa7);
  const ANOTHER = new Uint8Array(32).fill(0xa8);
  const setAuthority = (key: Uint8Array, updateCounter = 1) => next([{ op: 'set-lock-authority', key }], updateCounter);

  it('is taken by a container without one, and the record is the update\'s', () => {
    const { container, text } = apply(created(), setAuthority(AUTHORITY));
    expect(container.lockAuthority).toEqual(AUTHORITY);
    expect(container.firms[0]!.updateCounter).toBe(2);
    expect(parseLicenseRecordText(text)).toMatchObject({ kind: 'update', counter: 2 });
  });

  it('may come in a licensor\'s first update, after create-firm', () => {
    expect(apply(EMPTY_CONTAINER, firstUpdate([{ op: 'set-lock-authority', key: AUTHORITY }])).container.lockAuthority).toEqual(AUTHORITY);
  });

  it('the same key again changes nothing but the update counter; another licensor may name it too', () => {
    const first = apply(created(), setAuthority(AUTHORITY)).container;
    const again = apply(first, setAuthority(AUTHORITY, 2)).container;
    expect(again).toEqual({ ...first, firms: [{ ...first.firms[0]!, updateCounter: 3 }], clock: first.clock });
    const other = apply(first, firstUpdate([{ op: 'set-lock-authority', key: AUTHORITY }], { licensor: OTHER_LICENSOR, firmCode: FIRM_CODE + 1 })).container;
    expect(other.lockAuthority).toEqual(AUTHORITY);
    expect(other.firms).toHaveLength(2);
  });

  it('another key is refused as foreign, by the same or another licensor, and nothing changes', () => {
    const first = apply(created(), setAuthority(AUTHORITY)).container;
    expect(refusal(() => apply(first, setAuthority(ANOTHER, 2)))).toBe('foreign');
    expect(refusal(() => apply(first, firstUpdate([{ op: 'set-lock-authority', key: ANOTHER }], { licensor: OTHER_LICENSOR, firmCode: FIRM_CODE + 1 })))).toBe('foreign');
  });

  it('needs the licensor\'s firm item, as every operation but create-firm', () => {
    expect(refusal(() => apply(EMPTY_CONTAINER, signedUpdate({ operations: [{ op: 'set-lock-authority', key: AUTHORITY }] })))).toBe('no-license');
  });

  it('updates and time certificates keep the lock authority; a locked container takes neither (locked)', () => {
    const withAuthority = apply(created(), setAuthority(AUTHORITY)).container;
    expect(apply(withAuthority, next([{ op: 'set-firm-text', text: 'x' }], 2)).container.lockAuthority).toEqual(AUTHORITY);
    expect(apply(withAuthority, timeCertificate({ time: T0 + 900 })).container.lockAuthority).toEqual(AUTHORITY);
    const locked = { ...withAuthority, lock: { time: T0 + 1, digest: new Uint8Array(32) } };
    expect(refusal(() => apply(locked, next([{ op: 'set-firm-text', text: 'x' }], 2)))).toBe('locked');
    expect(refusal(() => apply(locked, timeCertificate({ time: T0 + 900 })))).toBe('locked');
  });
});
