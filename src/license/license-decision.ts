// Whether a container allows one use of a product item, and the container after it (Wibu 002 Table 1: every model a
// product item's options express, the unit counter of pay-per-use; DESIGN.md "License containers and lost licenses").
// Pure: the only clock is the container's own and the host time the request reports.
import { bytesEqual, constantTimeEqual } from '../bytes/index.js';
import type { LicenseReason } from './license-error.js';
import {
  CLOCK_TOLERANCE_SECONDS, MAX_CODE, MAX_UNITS, type FirmItem, type LicenseContainer, type ProductItem, type UnixSeconds, type UseRequest,
} from './license-model.js';

export type UseDecision =
  | { readonly ok: true; readonly container: LicenseContainer; readonly firm: FirmItem; readonly product: ProductItem; readonly remaining: number | 'unlimited' }
  | { readonly ok: false; readonly reason: LicenseReason; readonly message: string };

type Refusal = Extract<UseDecision, { ok: false }>;

/** Latest host time a request may report (as the JSON form of a use request and the update times allow). */
const MAX_HOST_TIME = 2 ** 40;

function refuse(reason: LicenseReason, message: string): Refusal {
  return { ok: false, reason, message };
}

/** A time as people read it; never throws (an absurd value is shown as seconds). */
function when(time: UnixSeconds): string {
  const date = new Date(time * 1000);
  return Number.isNaN(date.getTime()) ? `${time} s` : date.toISOString().replace('.000Z', 'Z');
}

/** "1 d 2 h 3 min 4 s" without the zero parts. */
function formatSpan(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['min', 60], ['s', 1]] as const) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0) parts.push(`${count} ${unit}`);
  }
  return parts.length === 0 ? '0 s' : parts.join(' ');
}

function offset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const hexBits = (bits: number): string => `0x${(bits >>> 0).toString(16)}`;

function wholeIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** The request's own shape; the codecs check it already, this keeps a caller that built one by hand honest too. */
function checkRequest(request: UseRequest): Refusal | undefined {
  const bad = (what: string, expected: string, got: unknown): Refusal => refuse('input', `use request: expected ${what} ${expected}, got ${typeof got === 'number' ? got : typeof got}`);
  if (!(request.licensorKey instanceof Uint8Array) || request.licensorKey.length !== 32) return refuse('input', 'use request: expected licensorKey as 32 bytes');
  if (!wholeIn(request.productCode, 0, MAX_CODE)) return bad('productCode', `in 0..${MAX_CODE}`, request.productCode);
  if (!wholeIn(request.features, 0, MAX_CODE)) return bad('features', `in 0..${MAX_CODE}`, request.features);
  if (!wholeIn(request.units, 0, MAX_UNITS)) return bad('units', `in 0..${MAX_UNITS}`, request.units);
  if (!wholeIn(request.hostTime, 0, MAX_HOST_TIME)) return bad('hostTime', `in 0..${MAX_HOST_TIME}`, request.hostTime);
  if (request.computer !== undefined && (!(request.computer instanceof Uint8Array) || request.computer.length !== 32)) return refuse('input', 'use request: expected computer as 32 bytes');
  return undefined;
}

/** The host-reported facts a product item's options restrict (002 Table 1: named user ... country-based). */
function checkHost(product: ProductItem, request: UseRequest, name: string): Refusal | undefined {
  if (product.namedUser !== undefined && product.namedUser !== request.user) {
    return refuse('user', `${name} is licensed to a named user, ${request.user === undefined ? 'and no user was reported' : 'not to this user'}`);
  }
  if (product.boundTo !== undefined && (request.computer === undefined || !constantTimeEqual(product.boundTo, request.computer))) {
    return refuse('computer', `${name} is bound to ${request.computer === undefined ? 'a computer, and no computer digest was reported' : 'another computer'}`);
  }
  const countries = product.countries;
  if (countries !== undefined) {
    const country = request.country;
    if (country === undefined) return refuse('country', `${name} is licensed by country, and no country was reported`);
    if (countries.allow !== undefined && !countries.allow.includes(country)) return refuse('country', `${name} is not licensed in ${country} (allowed: ${countries.allow.join(', ') || 'none'})`);
    if (countries.deny?.includes(country) === true) return refuse('country', `${name} is not licensed in ${country} (excluded)`);
  }
  const zones = product.timeZones;
  if (zones !== undefined) {
    const range = `UTC${offset(zones.minOffsetMinutes)}..UTC${offset(zones.maxOffsetMinutes)}`;
    const reported = request.timeZoneOffsetMinutes;
    if (reported === undefined) return refuse('time-zone', `${name} is licensed for time zones ${range}, and no time zone was reported`);
    if (reported < zones.minOffsetMinutes || reported > zones.maxOffsetMinutes) return refuse('time-zone', `${name} is licensed for time zones ${range}, not UTC${offset(reported)}`);
  }
  const versions = product.versions;
  if (versions !== undefined) {
    const range = `${versions.min}..${versions.max}`;
    if (request.version === undefined) return refuse('version', `${name} covers versions ${range}, and no version was reported`);
    if (request.version < versions.min || request.version > versions.max) return refuse('version', `${name} covers versions ${range}, not ${request.version}`);
  }
  if (product.maintenanceUntil !== undefined) {
    const until = when(product.maintenanceUntil);
    if (request.releaseTime === undefined) return refuse('maintenance', `${name} covers releases up to ${until}, and no release time was reported`);
    if (request.releaseTime > product.maintenanceUntil) return refuse('maintenance', `${name} covers releases up to ${until}, not one released ${when(request.releaseTime)}`);
  }
  return undefined;
}

/** Units (002 Table 1 pay-per-use; DESIGN.md unit counters): prepaid counts toward the limit, postpaid toward the credit; no limit: only counted. */
function checkUnits(product: ProductItem, units: number, name: string): Refusal | undefined {
  const next = product.unitsUsed + units;
  if (product.unitLimit === undefined) {
    return next > MAX_UNITS ? refuse('exhausted', `${name} has counted ${product.unitsUsed} units, the most a counter holds`) : undefined;
  }
  if (next <= product.unitLimit) return undefined;
  const left = Math.max(0, product.unitLimit - product.unitsUsed);
  const limit = product.payment === 'prepaid' ? `${left} of ${product.unitLimit} units left` : `${left} of a credit of ${product.unitLimit} units left until the next bill`;
  return refuse('exhausted', `${name} has ${limit}, ${units} asked`);
}

/**
 * Decides one use: refusals in the order the rules are listed (clock, licence, features, time, host, units). On success the
 * container comes back with that one product item counted (and its first use set) and the clock moved to the host time
 * when that is later; on refusal nothing changes.
 */
export function decideUse(container: LicenseContainer, request: UseRequest): UseDecision {
  const invalid = checkRequest(request);
  if (invalid !== undefined) return invalid;

  // Time the customer cannot turn back: a host clock behind the newest time the container saw (README "License containers").
  if (request.hostTime + CLOCK_TOLERANCE_SECONDS < container.clock) {
    return refuse('clock-set-back', `the host clock is ${formatSpan(container.clock - request.hostTime)} behind the container's clock (${when(container.clock)}); set it right or get a time certificate from the licensor`);
  }

  const firmIndex = container.firms.findIndex((item) => bytesEqual(item.licensorKey, request.licensorKey));
  const firm = container.firms[firmIndex];
  if (firm === undefined) return refuse('no-license', `no firm item of this licensor in the container (product ${request.productCode} asked)`);
  const productIndex = firm.products.findIndex((item) => item.productCode === request.productCode);
  const product = firm.products[productIndex];
  const name = `product ${request.productCode} of firm ${firm.firmCode}`;
  if (product === undefined) return refuse('no-license', `no ${name} in the container`);

  // Feature on demand (002 Table 1): every bit asked must be unlocked.
  const missing = (request.features & ~product.featureMap) >>> 0;
  if (missing !== 0) return refuse('feature', `${name} does not unlock features ${hexBits(missing)} (unlocked: ${hexBits(product.featureMap)})`);

  const now = Math.max(request.hostTime, container.clock, firm.certifiedTime ?? 0);
  if (product.activationTime !== undefined && product.activationTime > now) return refuse('not-yet-active', `${name} is not active before ${when(product.activationTime)}`);
  if (product.expiration !== undefined && product.expiration <= now) return refuse('expired', `${name} expired at ${when(product.expiration)}`);
  // Demo / trial (002 Table 1): the usage period runs from the first use, which this use is when none came before.
  const firstUse = product.firstUse ?? now;
  if (product.usagePeriodSeconds !== undefined && firstUse + product.usagePeriodSeconds <= now) {
    return refuse('expired', `${name}'s usage period of ${formatSpan(product.usagePeriodSeconds)} ended at ${when(firstUse + product.usagePeriodSeconds)}`);
  }

  const host = checkHost(product, request, name);
  if (host !== undefined) return host;
  const units = checkUnits(product, request.units, name);
  if (units !== undefined) return units;

  const unitsUsed = product.unitsUsed + request.units;
  const nextProduct: ProductItem = { ...product, unitsUsed, firstUse };
  const nextFirm: FirmItem = { ...firm, products: firm.products.map((item, index) => (index === productIndex ? nextProduct : item)) };
  return {
    ok: true,
    container: { ...container, firms: container.firms.map((item, index) => (index === firmIndex ? nextFirm : item)), clock: Math.max(container.clock, request.hostTime) },
    firm: nextFirm,
    product: nextProduct,
    remaining: product.unitLimit === undefined ? 'unlimited' : product.unitLimit - unitsUsed,
  };
}
