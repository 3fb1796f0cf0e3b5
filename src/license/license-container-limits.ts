// The limits a license container keeps (license-model.ts; as license-update.ts parses what a licensor may set): ranges,
// texts, data sizes, item counts, and firm and product items in code order with each licensor key once; a lock only
// with a lock authority. The container codec checks them on encoding and decoding alike (license-container-codec.ts).
import { toHex } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { fieldError, textProblem } from './license-field-codec.js';
import {
  MAX_CODE, MAX_FIRM_ITEMS, MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM, MAX_TEXT_BYTES, MAX_UNITS, type FirmItem, type LicenseContainer,
  type ProductItem,
} from './license-model.js';

/** The latest time a container holds (as license-update.ts parses times). */
export const MAX_LICENSE_TIME = 2 ** 40;
const BOUND_TO_LENGTH = 32;
/** A lock's lockSequenceDigest (SHA-256). */
export const LOCK_DIGEST_LENGTH = 32;
const MAX_COUNTRIES = 250;
const WHERE = 'license container';
/** In the order of their codes in the binary form. */
export const PAYMENT_CODES = ['prepaid', 'postpaid'] as const;
export const STANDBY_CODES = ['hot', 'cold'] as const;

function whole(value: unknown, where: string, name: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw fieldError(where, `expected ${name} as a whole number in ${min}..${max}, got ${typeof value === 'number' ? value : typeof value}`);
}

function optionalWhole(value: unknown, where: string, name: string, min: number, max: number): void {
  if (value !== undefined) whole(value, where, name, min, max);
}

function text(value: unknown, where: string, name: string): void {
  const problem = textProblem(value, MAX_TEXT_BYTES);
  if (problem !== undefined) throw fieldError(where, `expected ${name} as ${problem}`);
}

function bytes(value: unknown, where: string, name: string, max: number, exact?: number): void {
  if (!(value instanceof Uint8Array)) throw fieldError(where, `expected ${name} as bytes, got ${typeof value}`);
  if (exact !== undefined && value.length !== exact) throw fieldError(where, `expected ${name} to be ${exact} bytes, got ${value.length}`);
  if (value.length > max) throw fieldError(where, `expected ${name} of at most ${max} bytes, got ${value.length}`);
}

function countryList(value: unknown, where: string, name: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.length > MAX_COUNTRIES || value.some((code) => typeof code !== 'string' || !/^[A-Z]{2}$/.test(code))) {
    throw fieldError(where, `expected ${name} as at most ${MAX_COUNTRIES} ISO 3166-1 alpha-2 codes, upper case`);
  }
}

function checkProduct(product: ProductItem, where: string): void {
  whole(product.productCode, where, 'productCode', 0, MAX_CODE);
  text(product.text, where, 'text');
  whole(product.featureMap, where, 'featureMap', 0, MAX_CODE);
  optionalWhole(product.unitLimit, where, 'unitLimit', 0, MAX_UNITS);
  whole(product.unitsUsed, where, 'unitsUsed', 0, MAX_UNITS);
  if (!PAYMENT_CODES.includes(product.payment)) throw fieldError(where, 'expected payment prepaid or postpaid');
  optionalWhole(product.expiration, where, 'expiration', 0, MAX_LICENSE_TIME);
  optionalWhole(product.activationTime, where, 'activationTime', 0, MAX_LICENSE_TIME);
  optionalWhole(product.usagePeriodSeconds, where, 'usagePeriodSeconds', 1, MAX_LICENSE_TIME);
  optionalWhole(product.firstUse, where, 'firstUse', 0, MAX_LICENSE_TIME);
  whole(product.licenseQuantity, where, 'licenseQuantity', 1, 100_000);
  if (product.versions !== undefined) {
    whole(product.versions.min, where, 'versions.min', 0, MAX_CODE);
    whole(product.versions.max, where, 'versions.max', product.versions.min, MAX_CODE);
  }
  optionalWhole(product.maintenanceUntil, where, 'maintenanceUntil', 0, MAX_LICENSE_TIME);
  if (product.namedUser !== undefined) text(product.namedUser, where, 'namedUser');
  if (product.boundTo !== undefined) bytes(product.boundTo, where, 'boundTo', BOUND_TO_LENGTH, BOUND_TO_LENGTH);
  if (product.countries !== undefined) {
    countryList(product.countries.allow, where, 'countries.allow');
    countryList(product.countries.deny, where, 'countries.deny');
  }
  if (product.timeZones !== undefined) {
    whole(product.timeZones.minOffsetMinutes, where, 'timeZones.minOffsetMinutes', -720, 840);
    whole(product.timeZones.maxOffsetMinutes, where, 'timeZones.maxOffsetMinutes', product.timeZones.minOffsetMinutes, 840);
  }
  if (product.overflow !== undefined) {
    whole(product.overflow.seats, where, 'overflow.seats', 1, 100_000);
    optionalWhole(product.overflow.until, where, 'overflow.until', 0, MAX_LICENSE_TIME);
  }
  optionalWhole(product.maxBorrowSeconds, where, 'maxBorrowSeconds', 1, MAX_LICENSE_TIME);
  if (product.standby !== undefined) {
    if (!STANDBY_CODES.includes(product.standby.kind)) throw fieldError(where, 'expected standby.kind hot or cold');
    whole(product.standby.maxSeconds, where, 'standby.maxSeconds', 1, MAX_LICENSE_TIME);
  }
  for (const name of ['userData', 'protectedData', 'hiddenData', 'secretData'] as const) bytes(product[name], where, name, MAX_ITEM_DATA_BYTES);
}

function checkFirm(firm: FirmItem, where: string): void {
  bytes(firm.licensorKey, where, 'licensorKey', ED25519_PUBLIC_KEY_LENGTH, ED25519_PUBLIC_KEY_LENGTH);
  whole(firm.firmCode, where, 'firmCode', 0, MAX_CODE);
  text(firm.text, where, 'text');
  whole(firm.updateCounter, where, 'updateCounter', 0, MAX_UNITS);
  optionalWhole(firm.certifiedTime, where, 'certifiedTime', 0, MAX_LICENSE_TIME);
  if (!Array.isArray(firm.products) || firm.products.length > MAX_PRODUCT_ITEMS_PER_FIRM) throw fieldError(where, `expected at most ${MAX_PRODUCT_ITEMS_PER_FIRM} product items`);
  firm.products.forEach((product, i) => {
    const at = `${where} product ${i}`;
    checkProduct(product, at);
    if (i > 0 && firm.products[i - 1]!.productCode >= product.productCode) throw fieldError(at, 'expected product items in ascending product code order, each code once');
  });
}

/** Throws LicenseError 'input' unless `container` keeps every limit and order of license-model.ts. */
export function checkLicenseContainer(container: LicenseContainer): void {
  if (typeof container !== 'object' || container === null || !Array.isArray(container.firms)) throw fieldError(WHERE, 'expected { firms, clock }');
  whole(container.clock, WHERE, 'clock', 0, MAX_LICENSE_TIME);
  if (container.firms.length > MAX_FIRM_ITEMS) throw fieldError(WHERE, `expected at most ${MAX_FIRM_ITEMS} firm items, got ${container.firms.length}`);
  const keys = new Set<string>();
  container.firms.forEach((firm, i) => {
    const at = `${WHERE} firm ${i}`;
    checkFirm(firm, at);
    if (i > 0 && container.firms[i - 1]!.firmCode >= firm.firmCode) throw fieldError(at, 'expected firm items in ascending firm code order, each code once');
    const key = toHex(firm.licensorKey);
    if (keys.has(key)) throw fieldError(at, 'expected each licensor key in one firm item only');
    keys.add(key);
  });
  // Locking (000 §2.10): only under a lock authority, which the container learnt before.
  if (container.lockAuthority !== undefined) bytes(container.lockAuthority, WHERE, 'lockAuthority', ED25519_PUBLIC_KEY_LENGTH, ED25519_PUBLIC_KEY_LENGTH);
  if (container.lock !== undefined) {
    if (container.lockAuthority === undefined) throw fieldError(WHERE, 'expected a lock only with a lock authority');
    if (typeof container.lock !== 'object' || container.lock === null) throw fieldError(WHERE, 'expected lock as { time, digest }');
    whole(container.lock.time, WHERE, 'lock.time', 0, MAX_LICENSE_TIME);
    bytes(container.lock.digest, WHERE, 'lock.digest', LOCK_DIGEST_LENGTH, LOCK_DIGEST_LENGTH);
  }
  if (container.unlockedAt !== undefined && container.lockAuthority === undefined) throw fieldError(WHERE, 'expected an unlock time only with a lock authority');
  optionalWhole(container.unlockedAt, WHERE, 'unlockedAt', 0, MAX_LICENSE_TIME);
}
