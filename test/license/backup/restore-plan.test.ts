// Wibu 000 "CM-Box Backup" §2.2, §2.3, §2.7, §2.8: the restore policy (strict JSON) and the operations a licensor's
// restoring service signs for the replacement container; applied to a real container, they give the item back.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTORE_POLICY, parseRestorePolicy, planRestore, restorePolicyJson, type RestorePolicy } from '../../../src/license/backup/index.js';
import { applyLicenseBody, EMPTY_CONTAINER, LicenseError, type LicenseContainer } from '../../../src/license/index.js';
import { FIRM_CODE, LICENSOR, productItem, signedUpdate, simpleProduct, T0 } from '../../support/license-fixture.js';

const DAY_SECONDS = 86_400;
const FULL: RestorePolicy = {
  mode: 'full', units: { maxTimeSeconds: DAY_SECONDS, maxDegreePercent: 80, minTimeSeconds: 9 * DAY_SECONDS, minDegreePercent: 10 },
  secretData: { mode: 'none' }, alerts: { intervalSeconds: 30 * DAY_SECONDS, alertAt: 2, stopAt: 3 },
};

const firm = {
  licensorKey: LICENSOR.publicKey, firmCode: FIRM_CODE, text: 'ACME Software', updateCounter: 4, certifiedTime: T0,
  products: [
    productItem(simpleProduct(1, 1000), { unitsUsed: 200, userData: Uint8Array.of(9) }),
    productItem(simpleProduct(2, 'unlimited', { usagePeriodSeconds: 30 * DAY_SECONDS, hiddenData: new Uint8Array(0) }), { firstUse: T0 - 10 * DAY_SECONDS }),
    productItem(simpleProduct(3, 50, { payment: 'postpaid' }), { unitsUsed: 20 }),
  ],
};
const hidden = new Map([[1, Uint8Array.of(0xde, 0xad)]]);

/** Signs the plan's operations for a fresh target and applies them as the card would. */
function restoreOnto(operations: ReturnType<typeof planRestore>['operations']): LicenseContainer {
  const update = signedUpdate({ serial: 'VSC-NEW', updateCounter: 0, operations, time: T0 });
  return applyLicenseBody(EMPTY_CONTAINER, update, 'VSC-NEW', { random: (length) => new Uint8Array(length).fill(7) }).container;
}

describe('restore policy JSON', () => {
  it('round-trips every mode', () => {
    const policies: RestorePolicy[] = [
      FULL, DEFAULT_RESTORE_POLICY, { ...FULL, mode: 'partial', products: [1, 3] },
      { ...FULL, secretData: { mode: 'mixed', fixed: Uint8Array.of(1, 2), randomLength: 8 } }, { ...FULL, secretData: { mode: 'random', randomLength: 16 } },
    ];
    for (const policy of policies) expect(parseRestorePolicy(JSON.parse(JSON.stringify(restorePolicyJson(policy))))).toEqual(policy);
  });

  it.each([
    [{ ...restorePolicyJson(FULL), mode: 'some' }, 'mode'],
    [{ ...restorePolicyJson(FULL), products: [1] }, 'products'],
    [{ ...restorePolicyJson(FULL), extra: 1 }, 'unknown field'],
    [{ ...restorePolicyJson(FULL), units: { ...FULL.units, minDegreePercent: 90 } }, 'min degree'],
    [{ ...restorePolicyJson(FULL), secretData: { mode: 'fixed' } }, 'secretData.fixed'],
    [{ ...restorePolicyJson(FULL), alerts: { intervalSeconds: 10, alertAt: 3, stopAt: 2 } }, 'alerts.stopAt'],
    [{ ...restorePolicyJson(FULL), mode: 'partial', products: [1, 1] }, 'once'],
  ])('refuses a bad policy (%#) naming %s', (json, named) => {
    expect(() => parseRestorePolicy(json)).toThrow(LicenseError);
    expect(() => parseRestorePolicy(json)).toThrow(named);
  });
});

describe('planRestore', () => {
  it('a full restore of a 2-day-old backup rebuilds the firm item with 71.25 % of the units left, hidden data, no user data', () => {
    const plan = planRestore({ firm, hidden }, FULL, 2 * DAY_SECONDS, false);
    expect(plan.restored).toEqual([1, 2, 3]);
    expect(plan.skipped).toEqual([]);
    const container = restoreOnto(plan.operations);
    const [restored] = container.firms;
    expect(restored!.text).toBe('ACME Software');
    const [one, two, three] = restored!.products;
    expect(one!.unitLimit).toBe(570); // 800 left · 71.25 %
    expect(one!.unitsUsed).toBe(0);
    expect(one!.hiddenData).toEqual(Uint8Array.of(0xde, 0xad));
    expect(one!.userData).toEqual(new Uint8Array(0));
    // The trial that began 10 days ago ends where it would have: its period is now an expiration.
    expect(two!.usagePeriodSeconds).toBeUndefined();
    expect(two!.expiration).toBe(T0 + 20 * DAY_SECONDS);
    // Postpaid keeps its credit; the 20 units used are in the backup for the bill.
    expect(three!.unitLimit).toBe(50);
  });

  it('partial restores only the listed product items', () => {
    const plan = planRestore({ firm, hidden }, { ...FULL, mode: 'partial', products: [3] }, 0, false);
    expect(plan).toMatchObject({ restored: [3], skipped: [1, 2] });
    expect(restoreOnto(plan.operations).firms[0]!.products.map((product) => product.productCode)).toEqual([3]);
  });

  it('none is refused as not restorable', () => {
    expect(() => planRestore({ firm, hidden }, DEFAULT_RESTORE_POLICY, 0, false)).toThrow(expect.objectContaining({ reason: 'not-restorable' }));
  });

  it('secret data: random is drawn on the new card, fixed and mixed are put, none stays empty', () => {
    const random = restoreOnto(planRestore({ firm, hidden }, { ...FULL, secretData: { mode: 'random', randomLength: 4 } }, 0, false).operations);
    expect(random.firms[0]!.products[0]!.secretData).toEqual(new Uint8Array(4).fill(7));
    const mixed = restoreOnto(planRestore({ firm, hidden }, { ...FULL, secretData: { mode: 'mixed', fixed: Uint8Array.of(1), randomLength: 2 } }, 0, false, () => Uint8Array.of(5, 6)).operations);
    expect(mixed.firms[0]!.products[0]!.secretData).toEqual(Uint8Array.of(1, 5, 6));
    const none = restoreOnto(planRestore({ firm, hidden }, FULL, 0, false).operations);
    expect(none.firms[0]!.products[0]!.secretData).toEqual(new Uint8Array(0));
  });

  it('onto a target that has the firm item already, no create-firm', () => {
    const plan = planRestore({ firm, hidden }, FULL, 0, true);
    expect(plan.operations.some((operation) => operation.op === 'create-firm')).toBe(false);
  });

  it('an old backup restores no units past MinTime, the items themselves still', () => {
    const plan = planRestore({ firm, hidden }, FULL, 10 * DAY_SECONDS, false);
    expect(restoreOnto(plan.operations).firms[0]!.products[0]!.unitLimit).toBe(0);
  });
});
