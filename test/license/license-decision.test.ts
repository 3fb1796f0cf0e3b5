// The use decision of src/license/license-decision.ts (Wibu 002 Table 1, pay-per-use unit counters; DESIGN.md "License
// containers"): every refusal reason with its cause and nothing changed, the container's clock, unit counters, usage periods.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import {
  CLOCK_TOLERANCE_SECONDS, decideUse, MAX_UNITS, type FirmItem, type LicenseContainer, type LicenseReason, type ProductItem, type UseDecision, type UseRequest,
} from '../../src/license/index.js';

const KEY = new Uint8Array(32).fill(0x11);
const OTHER_KEY = new Uint8Array(32).fill(0x22);
const T0 = 1_800_000_000;
const DAY = 86_400;
const SECRET = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0x51, 0x6e);
const HIDDEN = Uint8Array.of(0xca, 0xfe, 0xba, 0xbe, 0x0d, 0xd5);
const COMPUTER = new Uint8Array(32).fill(0xc1);

function item(overrides: Partial<ProductItem> = {}): ProductItem {
  return {
    productCode: 7, text: 'Editor', featureMap: 0b011, unitsUsed: 0, payment: 'prepaid', licenseQuantity: 1,
    userData: new Uint8Array(0), protectedData: new Uint8Array(0), hiddenData: HIDDEN, secretData: SECRET, ...overrides,
  };
}

function firm(products: readonly ProductItem[], overrides: Partial<FirmItem> = {}): FirmItem {
  return { licensorKey: KEY, firmCode: 10101, text: 'ACME', updateCounter: 1, products, ...overrides };
}

function containerWith(product: Partial<ProductItem> = {}, options: { clock?: number; firm?: Partial<FirmItem> } = {}): LicenseContainer {
  return { firms: [firm([item(product)], options.firm)], clock: options.clock ?? T0 - 60 };
}

function request(overrides: Partial<UseRequest> = {}): UseRequest {
  return { licensorKey: KEY, productCode: 7, features: 0, units: 1, hostTime: T0, ...overrides };
}

function granted(decision: UseDecision): Extract<UseDecision, { ok: true }> {
  if (!decision.ok) throw new Error(`expected the use to be allowed, got ${decision.reason}: ${decision.message}`);
  return decision;
}

function refused(decision: UseDecision): Extract<UseDecision, { ok: false }> {
  if (decision.ok) throw new Error('expected the use to be refused');
  return decision;
}

const only = (container: LicenseContainer): ProductItem => container.firms[0]!.products[0]!;

type Case = [name: string, product: Partial<ProductItem>, use: Partial<UseRequest>, clock: number, reason: LicenseReason, message: RegExp];
const refusals: Case[] = [
  ['negative units', {}, { units: -1 }, T0, 'input', /expected units/],
  ['a fractional host time', {}, { hostTime: T0 + 0.5 }, T0, 'input', /expected hostTime/],
  ['a short licensor key', {}, { licensorKey: new Uint8Array(31) }, T0, 'input', /licensorKey as 32 bytes/],
  ['a host clock a day behind the container', {}, { hostTime: T0 - DAY }, T0, 'clock-set-back', /1 d behind/],
  ['a host clock 5 min 1 s behind', {}, { hostTime: T0 - CLOCK_TOLERANCE_SECONDS - 1 }, T0, 'clock-set-back', /5 min 1 s behind/],
  ['another licensor', {}, { licensorKey: OTHER_KEY }, T0, 'no-license', /no firm item of this licensor/],
  ['another product code', {}, { productCode: 8 }, T0, 'no-license', /no product 8 of firm 10101/],
  ['a feature not unlocked', {}, { features: 0b110 }, T0, 'feature', /product 7 of firm 10101 does not unlock features 0x4 \(unlocked: 0x3\)/],
  ['feature bit 31', { featureMap: 0x7fff_ffff }, { features: 0xffff_ffff }, T0, 'feature', /features 0x80000000/],
  ['a time before activation', { activationTime: T0 + 10 }, {}, T0, 'not-yet-active', /not active before 2027-01-15T08:00:10Z/],
  ['the expiration itself', { expiration: T0 }, {}, T0, 'expired', /expired at 2027-01-15T08:00:00Z/],
  ['a time after expiration', { expiration: T0 - 1 }, {}, T0, 'expired', /expired at/],
  ['the container clock past expiration though the host lags within tolerance', { expiration: T0 }, { hostTime: T0 - 200 }, T0, 'expired', /expired/],
  ['a usage period over', { firstUse: T0 - 2 * DAY, usagePeriodSeconds: 2 * DAY }, {}, T0, 'expired', /usage period of 2 d ended at/],
  ['another user', { namedUser: 'alice' }, { user: 'bob' }, T0, 'user', /named user, not to this user/],
  ['no user reported', { namedUser: 'alice' }, {}, T0, 'user', /no user was reported/],
  ['another computer', { boundTo: COMPUTER }, { computer: new Uint8Array(32).fill(0xc2) }, T0, 'computer', /bound to another computer/],
  ['no computer reported', { boundTo: COMPUTER }, {}, T0, 'computer', /no computer digest/],
  ['a country outside the allow list', { countries: { allow: ['DE', 'AT'] } }, { country: 'FR' }, T0, 'country', /not licensed in FR \(allowed: DE, AT\)/],
  ['a country on the deny list', { countries: { deny: ['FR'] } }, { country: 'FR' }, T0, 'country', /not licensed in FR \(excluded\)/],
  ['no country reported under a rule', { countries: { deny: ['FR'] } }, {}, T0, 'country', /no country was reported/],
  ['a time zone outside the offsets', { timeZones: { minOffsetMinutes: 60, maxOffsetMinutes: 120 } }, { timeZoneOffsetMinutes: -300 }, T0, 'time-zone', /UTC\+01:00\.\.UTC\+02:00, not UTC-05:00/],
  ['no time zone reported', { timeZones: { minOffsetMinutes: 60, maxOffsetMinutes: 120 } }, {}, T0, 'time-zone', /no time zone/],
  ['a version above the range', { versions: { min: 3, max: 5 } }, { version: 6 }, T0, 'version', /versions 3\.\.5, not 6/],
  ['a version below the range', { versions: { min: 3, max: 5 } }, { version: 2 }, T0, 'version', /not 2/],
  ['no version reported', { versions: { min: 3, max: 5 } }, {}, T0, 'version', /no version/],
  ['a release after maintenance ended', { maintenanceUntil: T0 - DAY }, { releaseTime: T0 }, T0, 'maintenance', /releases up to 2027-01-14T08:00:00Z, not one released 2027-01-15/],
  ['no release time reported', { maintenanceUntil: T0 }, {}, T0, 'maintenance', /no release time/],
  ['more prepaid units than left', { unitLimit: 5, unitsUsed: 4 }, { units: 2 }, T0, 'exhausted', /product 7 of firm 10101 has 1 of 5 units left, 2 asked/],
  ['a postpaid credit used up', { payment: 'postpaid', unitLimit: 3, unitsUsed: 3 }, {}, T0, 'exhausted', /0 of a credit of 3 units left until the next bill, 1 asked/],
  ['an unlimited counter at its end', { unitsUsed: MAX_UNITS }, {}, T0, 'exhausted', /the most a counter holds/],
];

describe('decideUse refusals', () => {
  it.each(refusals)('refuses %s', (_name, product, use, clock, reason, message) => {
    const container = containerWith(product, { clock });
    const before = structuredClone(container);
    const decision = refused(decideUse(container, request(use)));
    expect(decision.reason).toBe(reason);
    expect(decision.message).toMatch(message);
    expect(decision.message).not.toMatch(/\n/);
    // Nothing changed: no first use, no count, no clock; and nothing hidden or secret in the message.
    expect(container).toEqual(before);
    expect(only(container).firstUse).toBe(product.firstUse);
    for (const hidden of [SECRET, HIDDEN, COMPUTER]) expect(decision.message).not.toContain(toHex(hidden));
    expect(decision.message).not.toContain('alice');
  });

  const order: Array<[string, Partial<ProductItem>, Partial<UseRequest>, LicenseReason]> = [
    ['a set-back clock before no license', {}, { hostTime: T0 - DAY, productCode: 8 }, 'clock-set-back'],
    ['a missing feature before an expiration', { expiration: T0 - 1 }, { features: 0b100 }, 'feature'],
    ['an expiration before a wrong country', { expiration: T0 - 1, countries: { allow: ['DE'] } }, { country: 'FR' }, 'expired'],
    ['a wrong user before exhausted units', { namedUser: 'alice', unitLimit: 0 }, { user: 'bob' }, 'user'],
    ['a wrong version before exhausted units', { versions: { min: 1, max: 1 }, unitLimit: 0 }, { version: 2 }, 'version'],
  ];
  it.each(order)('checks in the listed order: %s', (_name, product, use, reason) => {
    expect(refused(decideUse(containerWith(product, { clock: T0 }), request(use))).reason).toBe(reason);
  });
});

describe('decideUse on success', () => {
  it('replaces only the used product item, keeps the sorted order and leaves the input container as it was', () => {
    const second = firm([item({ productCode: 2 }), item({ productCode: 7 }), item({ productCode: 9 })], { licensorKey: OTHER_KEY, firmCode: 20202 });
    const container: LicenseContainer = { firms: [firm([item({ productCode: 1 })]), second], clock: T0 - 10 };
    const before = structuredClone(container);
    const decision = granted(decideUse(container, request({ licensorKey: OTHER_KEY, units: 3, hostTime: T0 })));
    expect(container).toEqual(before);
    expect(decision.container.firms.map((f) => f.products.map((p) => p.productCode))).toEqual([[1], [2, 7, 9]]);
    expect(decision.container.firms[0]).toBe(container.firms[0]);
    expect(decision.container.firms[1]!.products[0]).toBe(second.products[0]);
    expect(decision.container.firms[1]!.products[1]).toEqual({ ...second.products[1], unitsUsed: 3, firstUse: T0 });
    expect(decision.firm).toBe(decision.container.firms[1]);
    expect(decision.product).toBe(decision.container.firms[1]!.products[1]);
    expect(decision.container.clock).toBe(T0);
    expect(decision.remaining).toBe('unlimited');
  });

  it('detects a clock set back a day, tolerates 4 minutes without moving the clock back, and moves it forward', () => {
    const container = containerWith({}, { clock: T0 });
    expect(refused(decideUse(container, request({ hostTime: T0 - DAY }))).message).toMatch(/^the host clock is 1 d behind the container's clock \(2027-01-15T08:00:00Z\)/);
    expect(granted(decideUse(container, request({ hostTime: T0 - 240 }))).container.clock).toBe(T0);
    expect(granted(decideUse(container, request({ hostTime: T0 + 3_600 }))).container.clock).toBe(T0 + 3_600);
  });

  it('a certified time counts as now: an item expired by it is refused though the host clock lags', () => {
    const container = containerWith({ expiration: T0 + 100 }, { clock: T0, firm: { certifiedTime: T0 + 200 } });
    expect(refused(decideUse(container, request({ hostTime: T0 }))).reason).toBe('expired');
  });

  it('counts a prepaid counter down use by use and refuses with exhausted at the end', () => {
    let container = containerWith({ unitLimit: 3 });
    const remaining: Array<number | 'unlimited'> = [];
    for (let use = 0; use < 3; use += 1) {
      const decision = granted(decideUse(container, request({ hostTime: T0 + use })));
      remaining.push(decision.remaining);
      container = decision.container;
    }
    expect(remaining).toEqual([2, 1, 0]);
    const end = refused(decideUse(container, request({ hostTime: T0 + 3 })));
    expect([end.reason, end.message]).toEqual(['exhausted', 'product 7 of firm 10101 has 0 of 3 units left, 1 asked']);
    expect(granted(decideUse(container, request({ units: 0, hostTime: T0 + 4 }))).remaining).toBe(0);
  });

  it('counts a postpaid item up, without limit or up to its credit', () => {
    let open = containerWith({ payment: 'postpaid' });
    for (const units of [2, 5, 1]) open = granted(decideUse(open, request({ units }))).container;
    expect(only(open).unitsUsed).toBe(8);
    expect(granted(decideUse(open, request())).remaining).toBe('unlimited');
    const credit = granted(decideUse(containerWith({ payment: 'postpaid', unitLimit: 4, unitsUsed: 1 }), request({ units: 3 })));
    expect(credit.remaining).toBe(0);
    expect(refused(decideUse(credit.container, request())).reason).toBe('exhausted');
  });

  it('starts a usage period at the first use, even one that counts no units', () => {
    const fresh = containerWith({ usagePeriodSeconds: 100 });
    const first = granted(decideUse(fresh, request({ units: 0, hostTime: T0 + 5_000 })));
    expect(only(first.container).firstUse).toBe(T0 + 5_000);
    const later = granted(decideUse(first.container, request({ hostTime: T0 + 5_099 })));
    expect(only(later.container).firstUse).toBe(T0 + 5_000);
    expect(refused(decideUse(later.container, request({ hostTime: T0 + 5_100 }))).message).toMatch(/usage period of 1 min 40 s ended at/);
  });

  it('allows what every restriction names', () => {
    const product: Partial<ProductItem> = {
      namedUser: 'alice', boundTo: COMPUTER, countries: { allow: ['DE'], deny: ['FR'] }, timeZones: { minOffsetMinutes: 60, maxOffsetMinutes: 120 },
      versions: { min: 3, max: 5 }, maintenanceUntil: T0, activationTime: T0 - 1, expiration: T0 + 1, unitLimit: 1,
    };
    const use = { user: 'alice', computer: COMPUTER.slice(), country: 'DE', timeZoneOffsetMinutes: 120, version: 5, releaseTime: T0, features: 0b011 };
    expect(granted(decideUse(containerWith(product), request(use))).remaining).toBe(0);
  });
});

describe('decideUse properties', () => {
  it('a sequence of random uses never counts past the limit and never moves the clock back', () => {
    const step = fc.record({ units: fc.integer({ min: 0, max: 4 }), jump: fc.integer({ min: -900, max: 3_600 }) });
    fc.assert(fc.property(fc.integer({ min: 0, max: 20 }), fc.array(step, { maxLength: 40 }), (unitLimit, steps) => {
      let container = containerWith({ unitLimit }, { clock: T0 });
      let host = T0;
      let counted = 0;
      for (const { units, jump } of steps) {
        host += jump;
        const decision = decideUse(container, request({ units, hostTime: host }));
        const setBack = host + CLOCK_TOLERANCE_SECONDS < container.clock;
        const fits = counted + units <= unitLimit;
        expect(decision.ok).toBe(!setBack && fits);
        if (!decision.ok) {
          expect(decision.reason).toBe(setBack ? 'clock-set-back' : 'exhausted');
          continue;
        }
        expect(decision.container.clock).toBeGreaterThanOrEqual(container.clock);
        counted += units;
        container = decision.container;
        expect(only(container).unitsUsed).toBe(counted);
        expect(only(container).unitsUsed).toBeLessThanOrEqual(unitLimit);
        expect(decision.remaining).toBe(unitLimit - counted);
      }
    }), { numRuns: 300 });
  });

  it('answers any request shape with a decision, never a throw (fuzz)', () => {
    const anyNumber = fc.oneof(fc.integer(), fc.double(), fc.constant(Number.NaN), fc.constant(-0));
    const shape = fc.record({
      licensorKey: fc.oneof(fc.constant(KEY), fc.uint8Array({ maxLength: 40 })), productCode: anyNumber, features: anyNumber, units: anyNumber, hostTime: anyNumber,
    });
    fc.assert(fc.property(shape, (use) => {
      const decision = decideUse(containerWith({ unitLimit: 10 }), use);
      if (!decision.ok) expect(decision.message).not.toMatch(/\n/);
    }), { numRuns: 500 });
  });
});
