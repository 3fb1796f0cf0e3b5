// The catalogue of license models (src/license/license-models.ts), one describe per row of Wibu 002 Table 1 named as the
// table names it: each builds its spec, puts it into a container and shows with decideUse what it allows and refuses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromUtf8 } from '../../src/bytes/index.js';
import {
  buildModelSpec, decideUse, encodeBody, LICENSE_MODEL_NOTES, LICENSE_MODELS, LicenseError, licenseModel, parseBodyText, parseModelOptions,
  type LicenseContainer, type LicenseModelName, type LicenseModelOptions, type LicenseReason, type ProductSpec, type UpdateBody, type UseDecision,
  type UseRequest,
} from '../../src/license/index.js';

const KEY = new Uint8Array(32).fill(0x33);
const T0 = 1_800_000_000;
const DAY = 86_400;
const VM = new Uint8Array(32).fill(0x56);
const PC = new Uint8Array(32).fill(0x9c);

/** One example of each row's options; the per-row tests and the round trip use them. */
const EXAMPLES: { readonly [N in LicenseModelName]: LicenseModelOptions<N> } = {
  'single-user': { productCode: 1 },
  'single-user-vm': { productCode: 2, vmDigest: VM },
  network: { productCode: 3, seats: 5, overflowSeats: 2, featureMap: 0b1 },
  'feature-on-demand': { productCode: 4, featureMap: 0b0101, text: 'Editor with add-ons' },
  perpetual: { productCode: 5 },
  'demo-trial': { productCode: 6, days: 30, featureMap: 0b1 },
  'rental-subscription': { productCode: 7, periodDays: 30, start: T0 },
  'pay-per-use': { productCode: 8, payment: 'prepaid', unit: 'calls', units: 3 },
  'software-assurance': { productCode: 9, maintenanceUntil: T0 },
  'downgrade-right': { productCode: 10, version: 5, oldest: 3 },
  'upgrade-right': { productCode: 11, version: 5 },
  'grace-period': { productCode: 12 },
  volume: { productCode: 13, policing: 'activation' },
  'high-availability': { productCode: 14, seats: 3 },
  'hot-standby': { productCode: 15, seats: 2, maxHours: 8 },
  'cold-standby': { productCode: 16, seats: 2, maxHours: 72 },
  overflow: { productCode: 17, seats: 10, overflowSeats: 3, until: T0 + 90 * DAY },
  borrowable: { productCode: 18, seats: 4, maxBorrowDays: 7 },
  transferable: { productCode: 19 },
  'named-user': { productCode: 20, user: 'alice' },
  'computer-bound': { productCode: 21, computerDigest: PC },
  'time-zone': { productCode: 22, minOffsetMinutes: 60, maxOffsetMinutes: 120 },
  'country-based': { productCode: 23, allow: ['DE', 'AT'] },
};

function spec<N extends LicenseModelName>(name: N, options: LicenseModelOptions<N> = EXAMPLES[name]): ProductSpec {
  const built = licenseModel(name).build(options);
  expectRoundTrip(built);
  return built;
}

/** Every spec travels unchanged through the product JSON of a put-product update (license-update.ts). */
function expectRoundTrip(product: ProductSpec): void {
  const body: UpdateBody = { kind: 'update', serial: 'VSC-0001', licensorKey: KEY, firmCode: 10101, time: T0, updateCounter: 1, operations: [{ op: 'put-product', product }] };
  const parsed = parseBodyText(encodeBody(body));
  expect(parsed).toStrictEqual(body);
}

/** A container holding the spec as a fresh item: firm item with the spec, unitsUsed 0, empty user data. */
function containerWith(product: ProductSpec, clock = T0 - DAY): LicenseContainer {
  return { clock, firms: [{ licensorKey: KEY, firmCode: 10101, text: 'ACME', updateCounter: 1, products: [{ ...product, unitsUsed: 0, userData: new Uint8Array(0) }] }] };
}

function use(container: LicenseContainer, product: ProductSpec, overrides: Partial<UseRequest> = {}): UseDecision {
  return decideUse(container, { licensorKey: KEY, productCode: product.productCode, features: 0, units: 1, hostTime: T0, ...overrides });
}

function allowed(decision: UseDecision): Extract<UseDecision, { ok: true }> {
  if (!decision.ok) throw new Error(`expected the use to be allowed, got ${decision.reason}: ${decision.message}`);
  return decision;
}

function reason(decision: UseDecision): LicenseReason | 'allowed' {
  return decision.ok ? 'allowed' : decision.reason;
}

function refusal(run: () => unknown): LicenseError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LicenseError);
    return error as LicenseError;
  }
  throw new Error('expected a LicenseError');
}

describe('Single User License', () => {
  it('one seat in the local container: any use of it is allowed, another product or licensor has no license', () => {
    const item = spec('single-user');
    expect([item.licenseQuantity, item.expiration, item.text]).toEqual([1, undefined, 'Single User License']);
    const container = containerWith(item);
    expect(allowed(use(container, item)).remaining).toBe('unlimited');
    expect(reason(use(container, item, { productCode: 99 }))).toBe('no-license');
    expect(reason(use(container, item, { licensorKey: new Uint8Array(32) }))).toBe('no-license');
  });
});

describe('Single User License in a Virtual Machine', () => {
  it('bound to the virtual machine: its digest is allowed, a copy (another digest) or none is refused', () => {
    const item = spec('single-user-vm');
    const container = containerWith(item);
    expect(reason(use(container, item, { computer: VM.slice() }))).toBe('allowed');
    expect(reason(use(container, item, { computer: new Uint8Array(32).fill(0x57) }))).toBe('computer');
    expect(reason(use(container, item))).toBe('computer');
  });
});

describe('Network License', () => {
  it('carries the seats for the license server; the server\'s container allows seat allocations and refuses unlicensed features', () => {
    const item = spec('network');
    expect([item.licenseQuantity, item.overflow]).toEqual([5, { seats: 2 }]);
    expect(licenseModel('network').servedBy).toBe('license-server');
    const container = containerWith(item);
    expect(allowed(use(container, item, { units: 0, features: 0b1 })).remaining).toBe('unlimited');
    expect(reason(use(container, item, { features: 0b10 }))).toBe('feature');
  });
});

describe('Feature-on-Demand License', () => {
  it('unlocks the features sold and refuses an unlicensed one until an add-on adds its bit', () => {
    const item = spec('feature-on-demand');
    const container = containerWith(item);
    expect(reason(use(container, item, { features: 0b0001 }))).toBe('allowed');
    expect(reason(use(container, item, { features: 0b0101 }))).toBe('allowed');
    const denied = use(container, item, { features: 0b0010 });
    expect(reason(denied)).toBe('feature');
    const addOn = spec('feature-on-demand', { ...EXAMPLES['feature-on-demand'], featureMap: 0b0111 });
    expect(reason(use(containerWith(addOn), addOn, { features: 0b0010 }))).toBe('allowed');
    expect(refusal(() => licenseModel('feature-on-demand').build({ productCode: 4 } as LicenseModelOptions<'feature-on-demand'>)).message).toMatch(/needs option featureMap/);
  });
});

describe('Perpetual License', () => {
  it('never expires: a use a century later is allowed; only a host clock set back is refused', () => {
    const item = spec('perpetual');
    expect([item.expiration, item.activationTime, item.usagePeriodSeconds]).toEqual([undefined, undefined, undefined]);
    const later = allowed(use(containerWith(item), item, { hostTime: T0 + 36_500 * DAY }));
    expect(reason(use(later.container, item, { hostTime: T0 }))).toBe('clock-set-back');
  });
});

describe('Demo / Trial License', () => {
  it('runs for its days from the first use with the features chosen, then is refused as expired', () => {
    const item = spec('demo-trial');
    expect(item.usagePeriodSeconds).toBe(30 * DAY);
    const first = allowed(use(containerWith(item), item, { units: 0, features: 0b1 }));
    expect(first.product.firstUse).toBe(T0);
    expect(reason(use(first.container, item, { hostTime: T0 + 30 * DAY - 1 }))).toBe('allowed');
    expect(reason(use(first.container, item, { hostTime: T0 + 30 * DAY }))).toBe('expired');
    expect(reason(use(first.container, item, { features: 0b10 }))).toBe('feature');
  });
});

describe('Rental, Leasing, Subscription License', () => {
  it('is not yet active before the start, valid for the period, expired at its end, valid again once extended', () => {
    const item = spec('rental-subscription');
    expect([item.activationTime, item.expiration]).toEqual([T0, T0 + 30 * DAY]);
    expect(reason(use(containerWith(item, T0 - 2 * DAY), item, { hostTime: T0 - DAY }))).toBe('not-yet-active');
    expect(reason(use(containerWith(item), item, { hostTime: T0 + 29 * DAY }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { hostTime: T0 + 30 * DAY }))).toBe('expired');
    const renewed = { ...item, expiration: T0 + 60 * DAY };
    expect(reason(use(containerWith(renewed), renewed, { hostTime: T0 + 30 * DAY }))).toBe('allowed');
  });
});

describe('Pay-per-Use License', () => {
  it('prepaid counts down to exhausted, postpaid counts up to its credit or without limit, the unit named in the protected data', () => {
    const prepaid = spec('pay-per-use');
    expect([prepaid.unitLimit, prepaid.payment, fromUtf8(prepaid.protectedData)]).toEqual([3, 'prepaid', 'vsc-unit:calls']);
    let container = containerWith(prepaid);
    const left: Array<number | 'unlimited'> = [];
    for (let call = 0; call < 3; call += 1) {
      const decision = allowed(use(container, prepaid));
      left.push(decision.remaining);
      container = decision.container;
    }
    expect(left).toEqual([2, 1, 0]);
    expect(reason(use(container, prepaid))).toBe('exhausted');

    const minutes = spec('pay-per-use', { productCode: 8, payment: 'postpaid', unit: 'minutes' });
    expect([minutes.unitLimit, fromUtf8(minutes.protectedData)]).toEqual([undefined, 'vsc-unit:minutes']);
    const counted = allowed(use(containerWith(minutes), minutes, { units: 90 }));
    expect([counted.product.unitsUsed, counted.remaining]).toEqual([90, 'unlimited']);
    const credit = spec('pay-per-use', { productCode: 8, payment: 'postpaid', unit: 'minutes', units: 60 });
    expect(reason(use(containerWith(credit), credit, { units: 61 }))).toBe('exhausted');
    expect(refusal(() => licenseModel('pay-per-use').build({ productCode: 8, payment: 'prepaid', unit: 'calls' })).message).toMatch(/needs option units when prepaid/);
  });
});

describe('License with Software Assurance', () => {
  it('releases within maintenance stay usable for ever; a later release or an unknown one is refused', () => {
    const item = spec('software-assurance');
    expect(reason(use(containerWith(item), item, { releaseTime: T0 - 1, hostTime: T0 + 3_650 * DAY }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { releaseTime: T0 + 1 }))).toBe('maintenance');
    expect(reason(use(containerWith(item), item))).toBe('maintenance');
  });
});

describe('License with Downgrade-Right', () => {
  it('covers the version sold and older ones down to the oldest, not newer ones', () => {
    const item = spec('downgrade-right');
    expect(item.versions).toEqual({ min: 3, max: 5 });
    const container = containerWith(item);
    expect([3, 5, 6, 2].map((version) => reason(use(container, item, { version })))).toEqual(['allowed', 'allowed', 'version', 'version']);
  });
});

describe('License with Upgrade-Right', () => {
  it('covers the version sold and newer ones, not older ones', () => {
    const item = spec('upgrade-right');
    expect(item.versions).toEqual({ min: 5, max: 0xffff_ffff });
    const container = containerWith(item);
    expect([5, 9, 4].map((version) => reason(use(container, item, { version })))).toEqual(['allowed', 'allowed', 'version']);
  });
});

describe('Grace Period License', () => {
  it('is the program\'s before activation (the container has no item: no-license) and the activated item after', () => {
    const item = spec('grace-period');
    expect(licenseModel('grace-period').servedBy).toBe('program');
    const empty: LicenseContainer = { firms: [], clock: 0 };
    expect(reason(use(empty, item))).toBe('no-license');
    expect(reason(use(containerWith(item), item))).toBe('allowed');
  });
});

describe('Volume License', () => {
  it('gives each activated computer a one-seat item; policed by audit it counts every use for the audit', () => {
    const activation = spec('volume');
    expect([activation.licenseQuantity, activation.payment]).toEqual([1, 'prepaid']);
    expect(licenseModel('volume').servedBy).toBe('issuing-service');
    const audit = spec('volume', { productCode: 13, policing: 'audit' });
    let container = containerWith(audit);
    for (let run = 0; run < 3; run += 1) container = allowed(use(container, audit)).container;
    expect(container.firms[0]!.products[0]!.unitsUsed).toBe(3);
    expect(reason(use(container, audit, { productCode: 14 }))).toBe('no-license');
  });
});

describe('High Availability License', () => {
  it('puts the same item with its seats on each of three servers, each container allowing its seat allocations', () => {
    const item = spec('high-availability');
    expect([item.licenseQuantity, licenseModel('high-availability').servedBy]).toEqual([3, 'license-server']);
    const servers = [containerWith(item), containerWith(item), containerWith(item)];
    expect(servers.map((container) => reason(use(container, item, { units: 0 })))).toEqual(['allowed', 'allowed', 'allowed']);
    expect(reason(use(servers[0]!, item, { features: 0b1 }))).toBe('feature');
  });
});

describe('Hot Standby License', () => {
  it('marks the standby server\'s item hot with its standby hours for the license server to count', () => {
    const item = spec('hot-standby');
    expect([item.licenseQuantity, item.standby]).toEqual([2, { kind: 'hot', maxSeconds: 8 * 3_600 }]);
    expect(reason(use(containerWith(item), item, { units: 0 }))).toBe('allowed');
    expect(reason(use(containerWith({ ...item, expiration: T0 }), item))).toBe('expired');
  });
});

describe('Cold Standby License', () => {
  it('marks the standby item cold with its limit; the container allows it, the server serves it only once switched over', () => {
    const item = spec('cold-standby');
    expect(item.standby).toEqual({ kind: 'cold', maxSeconds: 72 * 3_600 });
    expect(reason(use(containerWith(item), item, { units: 0 }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { productCode: 15 }))).toBe('no-license');
  });
});

describe('Overflow License', () => {
  it('carries seats, overflow seats and the overflow end for the license server; the container allows the uses it logs', () => {
    const item = spec('overflow');
    expect([item.licenseQuantity, item.overflow]).toEqual([10, { seats: 3, until: T0 + 90 * DAY }]);
    expect(reason(use(containerWith(item), item, { units: 0 }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { features: 0b1 }))).toBe('feature');
  });
});

describe('Borrowable License', () => {
  it('carries the longest borrow for the license server; the container allows the seat a borrow takes', () => {
    const item = spec('borrowable');
    expect([item.licenseQuantity, item.maxBorrowSeconds]).toEqual([4, 7 * DAY]);
    expect(reason(use(containerWith(item), item, { units: 0 }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { licensorKey: new Uint8Array(32).fill(1) }))).toBe('no-license');
  });
});

describe('Transferable License', () => {
  it('moves for good: once transferred the old container has no license and the new one allows it', () => {
    const item = spec('transferable');
    expect(licenseModel('transferable').servedBy).toBe('issuing-service');
    const before = containerWith(item);
    expect(reason(use(before, item))).toBe('allowed');
    // The transfer: the issuing service's delete-product update on the old container, then put-product on the new one.
    const old: LicenseContainer = { ...before, firms: [{ ...before.firms[0]!, products: [] }] };
    expect(reason(use(old, item))).toBe('no-license');
    expect(reason(use(containerWith(item), item))).toBe('allowed');
  });
});

describe('Named User License', () => {
  it('allows the named user and refuses another or none', () => {
    const item = spec('named-user');
    expect(['alice', 'bob', undefined].map((user) => reason(use(containerWith(item), item, user === undefined ? {} : { user })))).toEqual(['allowed', 'user', 'user']);
  });
});

describe('Computer-bound License', () => {
  it('allows the computer it is bound to and refuses another', () => {
    const item = spec('computer-bound');
    expect(reason(use(containerWith(item), item, { computer: PC.slice() }))).toBe('allowed');
    expect(reason(use(containerWith(item), item, { computer: VM }))).toBe('computer');
  });
});

describe('Time Zone License', () => {
  it('allows the offsets of the region and refuses others', () => {
    const item = spec('time-zone');
    expect([60, 120, 0, 180].map((timeZoneOffsetMinutes) => reason(use(containerWith(item), item, { timeZoneOffsetMinutes })))).toEqual(['allowed', 'allowed', 'time-zone', 'time-zone']);
  });
});

describe('Country-Based License', () => {
  it('allows whitelisted countries and refuses a wrong country; a blacklist refuses only the countries it names', () => {
    const allow = spec('country-based');
    expect(['DE', 'AT', 'FR'].map((country) => reason(use(containerWith(allow), allow, { country })))).toEqual(['allowed', 'allowed', 'country']);
    const deny = spec('country-based', { productCode: 23, deny: ['FR'] });
    expect(['FR', 'US'].map((country) => reason(use(containerWith(deny), deny, { country })))).toEqual(['country', 'allowed']);
    expect(refusal(() => licenseModel('country-based').build({ productCode: 23 })).message).toMatch(/needs option allow or deny/);
  });
});

describe('the catalogue', () => {
  it('has one entry per row of Table 1, in its order, each with a note for the README', () => {
    expect(LICENSE_MODELS.map((model) => model.title)).toEqual([
      'Single User License', 'Single User License in a Virtual Machine', 'Network License', 'Feature-on-Demand License', 'Perpetual License',
      'Demo / Trial License', 'Rental, Leasing, Subscription License', 'Pay-per-Use License', 'License with Software Assurance',
      'License with Downgrade-Right', 'License with Upgrade-Right', 'Grace Period License', 'Volume License', 'High Availability License',
      'Hot Standby License', 'Cold Standby License', 'Overflow License', 'Borrowable License', 'Transferable License', 'Named User License',
      'Computer-bound License', 'Time Zone License', 'Country-Based License',
    ]);
    for (const model of LICENSE_MODELS) {
      expect(model.name).toMatch(/^[a-z]+(?:-[a-z]+)*$/);
      expect(LICENSE_MODEL_NOTES[model.name]).toContain(model.title);
    }
    expect(Object.keys(LICENSE_MODEL_NOTES)).toHaveLength(23);
  });

  it('every example spec round-trips through the put-product JSON unchanged', () => {
    for (const model of LICENSE_MODELS) expectRoundTrip((model as { build(options: unknown): ProductSpec }).build(EXAMPLES[model.name]));
  });
});

describe('parseModelOptions and buildModelSpec (the CLI)', () => {
  const parsed: Array<[string, Record<string, string>, unknown]> = [
    ['demo-trial', { productCode: '6', days: '30' }, { productCode: 6, days: 30 }],
    ['feature-on-demand', { productCode: '4', featureMap: '0x5', text: 'Editor' }, { productCode: 4, featureMap: 5, text: 'Editor' }],
    ['rental-subscription', { productCode: '7', periodDays: '30', start: '2027-01-31' }, { productCode: 7, periodDays: 30, start: Date.UTC(2027, 0, 31) / 1000 }],
    ['rental-subscription', { productCode: '7', periodDays: '30', start: '2027-01-31T12:00:00+02:00' }, { productCode: 7, periodDays: 30, start: Date.UTC(2027, 0, 31, 10) / 1000 }],
    ['software-assurance', { productCode: '9', maintenanceUntil: '1800000000' }, { productCode: 9, maintenanceUntil: T0 }],
    ['time-zone', { productCode: '22', minOffsetMinutes: '-05:30', maxOffsetMinutes: '90' }, { productCode: 22, minOffsetMinutes: -330, maxOffsetMinutes: 90 }],
    ['country-based', { productCode: '23', allow: 'DE, AT' }, { productCode: 23, allow: ['DE', 'AT'] }],
    ['computer-bound', { productCode: '21', computerDigest: '9c'.repeat(32) }, { productCode: 21, computerDigest: PC }],
    ['pay-per-use', { productCode: '8', payment: 'postpaid', unit: 'minutes' }, { productCode: 8, payment: 'postpaid', unit: 'minutes' }],
  ];
  it.each(parsed)('parses %s %j', (name, values, expected) => {
    expect(parseModelOptions(name, values)).toEqual(expected);
  });

  it('builds what the typed options build', () => {
    expect(buildModelSpec('demo-trial', { productCode: '6', days: '30', featureMap: '1' })).toStrictEqual(spec('demo-trial'));
    expect(buildModelSpec('time-zone', { productCode: '22', minOffsetMinutes: '+01:00', maxOffsetMinutes: '+02:00' })).toStrictEqual(spec('time-zone'));
  });

  const bad: Array<[string, string, Record<string, string>, RegExp]> = [
    ['an unknown model', 'gold', { productCode: '1' }, /unknown model "gold"; expected one of single-user/],
    ['an unknown option', 'demo-trial', { productCode: '1', days: '3', weeks: '1' }, /unknown option "weeks" for model demo-trial/],
    ['a missing required option', 'demo-trial', { productCode: '1' }, /needs option days/],
    ['no product code', 'perpetual', {}, /needs option productCode/],
    ['a word for a number', 'demo-trial', { productCode: '1', days: 'ten' }, /expected option days as a whole number/],
    ['a negative number', 'demo-trial', { productCode: '1', days: '-3' }, /expected option days as a whole number/],
    ['zero days', 'demo-trial', { productCode: '1', days: '0' }, /expected days to be a whole number in 1\.\.100000, got 0/],
    ['a day that does not exist', 'rental-subscription', { productCode: '1', periodDays: '3', start: '2027-02-30' }, /expected option start as Unix seconds or an ISO 8601 date/],
    ['a short digest', 'computer-bound', { productCode: '1', computerDigest: 'abcd' }, /64 lowercase hex/],
    ['an unknown choice', 'pay-per-use', { productCode: '1', payment: 'weekly', unit: 'calls' }, /one of prepaid, postpaid/],
    ['prepaid without units', 'pay-per-use', { productCode: '1', payment: 'prepaid', unit: 'calls' }, /needs option units when prepaid/],
    ['a lower-case country', 'country-based', { productCode: '1', deny: 'fr' }, /alpha-2 codes in upper case/],
    ['a country twice', 'country-based', { productCode: '1', allow: 'DE,DE' }, /without repeated codes/],
    ['neither allow nor deny', 'country-based', { productCode: '1' }, /needs option allow or deny/],
    ['oldest above the version', 'downgrade-right', { productCode: '1', version: '2', oldest: '3' }, /expected oldest to be a whole number in 0\.\.2, got 3/],
    ['a reversed time zone range', 'time-zone', { productCode: '1', minOffsetMinutes: '120', maxOffsetMinutes: '60' }, /maxOffsetMinutes to be a whole number in 120\.\.840/],
    ['a product code beyond 32 bits', 'perpetual', { productCode: '4294967296' }, /productCode to be a whole number in 0\.\.4294967295/],
    ['a control character in the text', 'perpetual', { productCode: '1', text: 'a\u0007b' }, /without control characters/],
    ['no seats', 'network', { productCode: '1', seats: '0' }, /seats to be a whole number in 1\.\.100000/],
  ];
  it.each(bad)('refuses %s with reason input', (_name, model, values, message) => {
    const error = refusal(() => buildModelSpec(model, values));
    expect(error.reason).toBe('input');
    expect(error.message).toMatch(message);
  });

  it('any options either build a spec that round-trips or are refused with reason input (fuzz)', () => {
    const names = LICENSE_MODELS.map((model) => model.name);
    const keys = ['productCode', 'text', 'featureMap', 'days', 'seats', 'start', 'periodDays', 'units', 'payment', 'unit', 'allow', 'deny', 'version', 'oldest',
      'newest', 'minOffsetMinutes', 'maxOffsetMinutes', 'vmDigest', 'maxHours', 'overflowSeats', 'until', 'maxBorrowDays', 'policing', 'user', 'other'];
    const value = fc.oneof(fc.string({ maxLength: 12 }), fc.nat().map(String), fc.constantFrom('prepaid', 'postpaid', 'calls', 'audit', 'DE,AT', '+01:00', '2027-01-31', '0x10'));
    const values = fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 6 }).map((record) => ({ productCode: '5', ...record }));
    fc.assert(fc.property(fc.constantFrom(...names), values, (name, record) => {
      let built: ProductSpec;
      try {
        built = buildModelSpec(name, record);
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
        expect((error as LicenseError).reason).toBe('input');
        return;
      }
      expectRoundTrip(built);
    }), { numRuns: 1_000 });
  });
});
