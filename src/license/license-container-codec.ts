// The binary form of a license container (DESIGN.md "License containers and lost licenses"; Wibu 000 §2.2-2.8): field
// 20 of the card's protected information. Fields as license-field-codec.ts (tag 1 ‖ length 4 ‖ value), in this order:
//   container: format byte 01 · 01 clock (8) · 02 firm item*, ascending firm codes, unique licensor keys ·
//              03 lock authority (32)? · 04 lock (time 8 ‖ digest 32)? · 05 unlocked at (8)? (000 §2.10; absent, a
//              container's bytes are those it had before locking existed)
//   firm item: 01 licensor key (32) · 02 firm code (4) · 03 text · 04 update counter (8) · 05 certified time (8)? ·
//              06 product item*, ascending product codes
//   product:   01 product code (4) · 02 text · 03 feature map (4) · 04 unit limit (8)? · 05 units used (8) ·
//              06 payment (1: 00 prepaid, 01 postpaid) · 07 expiration (8)? · 08 activation time (8)? ·
//              09 usage period (8)? · 0A first use (8)? · 0B license quantity (4) · 0C versions (min 4 ‖ max 4)? ·
//              0D maintenance until (8)? · 0E named user? · 0F bound to (32)? · 10 countries (01 allow? · 02 deny?,
//              each 2 ASCII letters a code)? · 11 time zones (min ‖ max, signed 2 each)? · 12 overflow (seats 4 [‖ until 8])? ·
//              13 max borrow (8)? · 14 standby (kind 1: 00 hot, 01 cold ‖ max seconds 8)? · 15 user data · 16 protected data ·
//              17 hidden data · 18 secret data
// Numbers big-endian; "?" marks a field present only when the item has it. Encoding and decoding both check every
// limit of license-model.ts (license-container-limits.ts), so nothing the card stores can fail to open again.
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { checkLicenseContainer, LOCK_DIGEST_LENGTH, PAYMENT_CODES, STANDBY_CODES } from './license-container-limits.js';
import { decodeBytes, decodeInt16Pair, decodeText, decodeUint, encodeInt16Pair, encodeUint, field, fieldError, FieldReader, joinFields } from './license-field-codec.js';
import { MAX_FIRM_ITEMS, MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM, type CountryRule, type FirmItem, type LicenseContainer, type ProductItem } from './license-model.js';

export const LICENSE_CONTAINER_FORMAT = 0x01;
const BOUND_TO_LENGTH = 32;

const enum C { clock = 0x01, firm = 0x02, lockAuthority = 0x03, lock = 0x04, unlockedAt = 0x05 }
const enum F { key = 0x01, code = 0x02, text = 0x03, updateCounter = 0x04, certifiedTime = 0x05, product = 0x06 }
const enum P {
  code = 0x01, text = 0x02, featureMap = 0x03, unitLimit = 0x04, unitsUsed = 0x05, payment = 0x06, expiration = 0x07, activationTime = 0x08,
  usagePeriod = 0x09, firstUse = 0x0a, licenseQuantity = 0x0b, versions = 0x0c, maintenanceUntil = 0x0d, namedUser = 0x0e, boundTo = 0x0f,
  countries = 0x10, timeZones = 0x11, overflow = 0x12, maxBorrow = 0x13, standby = 0x14, userData = 0x15, protectedData = 0x16,
  hiddenData = 0x17, secretData = 0x18,
}
const enum Countries { allow = 0x01, deny = 0x02 }

const WHERE = 'license container';

// ---- encoding ------------------------------------------------------------------------------------------------------

const ascii = (codes: readonly string[]): Uint8Array => Uint8Array.from(codes.join(''), (char) => char.charCodeAt(0));
const utf8Field = (tag: number, value: string): Uint8Array => field(tag, utf8(value));

function encodeProduct(product: ProductItem): Uint8Array {
  const parts: Uint8Array[] = [field(P.code, encodeUint(product.productCode, 4)), utf8Field(P.text, product.text), field(P.featureMap, encodeUint(product.featureMap, 4))];
  const time = (tag: number, value: number | undefined): void => {
    if (value !== undefined) parts.push(field(tag, encodeUint(value, 8)));
  };
  time(P.unitLimit, product.unitLimit);
  time(P.unitsUsed, product.unitsUsed);
  parts.push(field(P.payment, encodeUint(PAYMENT_CODES.indexOf(product.payment), 1)));
  time(P.expiration, product.expiration);
  time(P.activationTime, product.activationTime);
  time(P.usagePeriod, product.usagePeriodSeconds);
  time(P.firstUse, product.firstUse);
  parts.push(field(P.licenseQuantity, encodeUint(product.licenseQuantity, 4)));
  if (product.versions !== undefined) parts.push(field(P.versions, joinFields([encodeUint(product.versions.min, 4), encodeUint(product.versions.max, 4)])));
  time(P.maintenanceUntil, product.maintenanceUntil);
  if (product.namedUser !== undefined) parts.push(utf8Field(P.namedUser, product.namedUser));
  if (product.boundTo !== undefined) parts.push(field(P.boundTo, product.boundTo));
  if (product.countries !== undefined) {
    const { allow, deny } = product.countries;
    parts.push(field(P.countries, joinFields([...(allow === undefined ? [] : [field(Countries.allow, ascii(allow))]), ...(deny === undefined ? [] : [field(Countries.deny, ascii(deny))])])));
  }
  if (product.timeZones !== undefined) parts.push(field(P.timeZones, encodeInt16Pair(product.timeZones.minOffsetMinutes, product.timeZones.maxOffsetMinutes)));
  if (product.overflow !== undefined) {
    const until = product.overflow.until;
    parts.push(field(P.overflow, joinFields([encodeUint(product.overflow.seats, 4), ...(until === undefined ? [] : [encodeUint(until, 8)])])));
  }
  time(P.maxBorrow, product.maxBorrowSeconds);
  if (product.standby !== undefined) parts.push(field(P.standby, joinFields([encodeUint(STANDBY_CODES.indexOf(product.standby.kind), 1), encodeUint(product.standby.maxSeconds, 8)])));
  parts.push(field(P.userData, product.userData), field(P.protectedData, product.protectedData), field(P.hiddenData, product.hiddenData), field(P.secretData, product.secretData));
  return joinFields(parts);
}

function encodeFirm(firm: FirmItem): Uint8Array {
  return joinFields([
    field(F.key, firm.licensorKey), field(F.code, encodeUint(firm.firmCode, 4)), utf8Field(F.text, firm.text), field(F.updateCounter, encodeUint(firm.updateCounter, 8)),
    ...(firm.certifiedTime === undefined ? [] : [field(F.certifiedTime, encodeUint(firm.certifiedTime, 8))]),
    ...firm.products.map((product) => field(F.product, encodeProduct(product))),
  ]);
}

/** The container's binary form; throws LicenseError 'input' for a container outside the limits of license-model.ts. */
export function encodeLicenseContainer(container: LicenseContainer): Uint8Array {
  checkLicenseContainer(container);
  return joinFields([
    Uint8Array.of(LICENSE_CONTAINER_FORMAT), field(C.clock, encodeUint(container.clock, 8)), ...container.firms.map((firm) => field(C.firm, encodeFirm(firm))),
    ...(container.lockAuthority === undefined ? [] : [field(C.lockAuthority, container.lockAuthority)]),
    ...(container.lock === undefined ? [] : [field(C.lock, concatBytes(encodeUint(container.lock.time, 8), container.lock.digest))]),
    ...(container.unlockedAt === undefined ? [] : [field(C.unlockedAt, encodeUint(container.unlockedAt, 8))]),
  ]);
}

export function encodedLicenseContainerLength(container: LicenseContainer): number {
  return encodeLicenseContainer(container).length;
}

/** Whether the container is the one a card without licenses has (its protected information then carries no field). */
export function isEmptyLicenseContainer(container: LicenseContainer): boolean {
  return container.firms.length === 0 && container.clock === 0 && container.lockAuthority === undefined && container.lock === undefined && container.unlockedAt === undefined;
}

// ---- decoding ------------------------------------------------------------------------------------------------------

function decodeCountries(value: Uint8Array, where: string): CountryRule {
  const reader = new FieldReader(value, `${where} countries`);
  const list = (tag: number, name: string): Partial<Record<'allow' | 'deny', string[]>> => {
    const raw = reader.optional(tag);
    if (raw === undefined) return {};
    if (raw.length % 2 !== 0) throw fieldError(where, `expected ${name} as 2-letter codes`);
    const codes: string[] = [];
    for (let i = 0; i < raw.length; i += 2) codes.push(String.fromCharCode(raw[i]!, raw[i + 1]!));
    return { [name]: codes };
  };
  const rule = { ...list(Countries.allow, 'allow'), ...list(Countries.deny, 'deny') };
  reader.end();
  return rule;
}

function decodeProduct(value: Uint8Array, where: string): ProductItem {
  const r = new FieldReader(value, where);
  const u = (raw: Uint8Array, length: 1 | 4 | 8, name: string): number => decodeUint(raw, length, where, name);
  const opt = <T>(tag: number, read: (raw: Uint8Array) => T): T | undefined => {
    const raw = r.optional(tag);
    return raw === undefined ? undefined : read(raw);
  };
  const time = (tag: number, name: string): number | undefined => opt(tag, (raw) => u(raw, 8, name));
  const productCode = u(r.required(P.code, 'productCode'), 4, 'productCode');
  const productText = decodeText(r.required(P.text, 'text'), where, 'text');
  const featureMap = u(r.required(P.featureMap, 'featureMap'), 4, 'featureMap');
  const unitLimit = time(P.unitLimit, 'unitLimit');
  const unitsUsed = u(r.required(P.unitsUsed, 'unitsUsed'), 8, 'unitsUsed');
  const payment = PAYMENT_CODES[u(r.required(P.payment, 'payment'), 1, 'payment')];
  if (payment === undefined) throw fieldError(where, 'expected payment 00 (prepaid) or 01 (postpaid)');
  const expiration = time(P.expiration, 'expiration');
  const activationTime = time(P.activationTime, 'activationTime');
  const usagePeriodSeconds = time(P.usagePeriod, 'usagePeriodSeconds');
  const firstUse = time(P.firstUse, 'firstUse');
  const licenseQuantity = u(r.required(P.licenseQuantity, 'licenseQuantity'), 4, 'licenseQuantity');
  const versions = opt(P.versions, (raw) => {
    if (raw.length !== 8) throw fieldError(where, `expected versions to be 8 bytes, got ${raw.length}`);
    return { min: u(raw.subarray(0, 4), 4, 'versions.min'), max: u(raw.subarray(4), 4, 'versions.max') };
  });
  const maintenanceUntil = time(P.maintenanceUntil, 'maintenanceUntil');
  const namedUser = opt(P.namedUser, (raw) => decodeText(raw, where, 'namedUser'));
  const boundTo = opt(P.boundTo, (raw) => decodeBytes(raw, where, 'boundTo', BOUND_TO_LENGTH));
  const countries = opt(P.countries, (raw) => decodeCountries(raw, where));
  const timeZones = opt(P.timeZones, (raw) => {
    const [minOffsetMinutes, maxOffsetMinutes] = decodeInt16Pair(raw, where, 'timeZones');
    return { minOffsetMinutes, maxOffsetMinutes };
  });
  const overflow = opt(P.overflow, (raw) => {
    if (raw.length !== 4 && raw.length !== 12) throw fieldError(where, `expected overflow to be 4 or 12 bytes, got ${raw.length}`);
    const seats = u(raw.subarray(0, 4), 4, 'overflow.seats');
    return raw.length === 4 ? { seats } : { seats, until: u(raw.subarray(4), 8, 'overflow.until') };
  });
  const maxBorrowSeconds = time(P.maxBorrow, 'maxBorrowSeconds');
  const standby = opt(P.standby, (raw) => {
    if (raw.length !== 9) throw fieldError(where, `expected standby to be 9 bytes, got ${raw.length}`);
    const kind = STANDBY_CODES[raw[0]!];
    if (kind === undefined) throw fieldError(where, 'expected standby kind 00 (hot) or 01 (cold)');
    return { kind, maxSeconds: u(raw.subarray(1), 8, 'standby.maxSeconds') };
  });
  const data = (tag: number, name: string): Uint8Array => decodeBytes(r.required(tag, name), where, name, { max: MAX_ITEM_DATA_BYTES });
  const userData = data(P.userData, 'userData');
  const protectedData = data(P.protectedData, 'protectedData');
  const hiddenData = data(P.hiddenData, 'hiddenData');
  const secretData = data(P.secretData, 'secretData');
  r.end();
  const optional = {
    unitLimit, expiration, activationTime, usagePeriodSeconds, firstUse, versions, maintenanceUntil, namedUser, boundTo, countries, timeZones,
    overflow, maxBorrowSeconds, standby,
  };
  const present = Object.fromEntries(Object.entries(optional).filter(([, entry]) => entry !== undefined));
  return { productCode, text: productText, featureMap, unitsUsed, payment, licenseQuantity, ...present, userData, protectedData, hiddenData, secretData };
}

function decodeFirm(value: Uint8Array, where: string): FirmItem {
  const r = new FieldReader(value, where);
  const licensorKey = decodeBytes(r.required(F.key, 'licensorKey'), where, 'licensorKey', ED25519_PUBLIC_KEY_LENGTH);
  const firmCode = decodeUint(r.required(F.code, 'firmCode'), 4, where, 'firmCode');
  const firmText = decodeText(r.required(F.text, 'text'), where, 'text');
  const updateCounter = decodeUint(r.required(F.updateCounter, 'updateCounter'), 8, where, 'updateCounter');
  const certified = r.optional(F.certifiedTime);
  const certifiedTime = certified === undefined ? undefined : decodeUint(certified, 8, where, 'certifiedTime');
  const rawProducts = r.many(F.product);
  r.end();
  if (rawProducts.length > MAX_PRODUCT_ITEMS_PER_FIRM) throw fieldError(where, `expected at most ${MAX_PRODUCT_ITEMS_PER_FIRM} product items, got ${rawProducts.length}`);
  const products = rawProducts.map((raw, i) => decodeProduct(raw, `${where} product ${i}`));
  return { licensorKey, firmCode, text: firmText, updateCounter, ...(certifiedTime === undefined ? {} : { certifiedTime }), products };
}

/** Parses and checks a container strictly; anything malformed is LicenseError 'input'. */
export function decodeLicenseContainer(bytes: Uint8Array): LicenseContainer {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes[0] !== LICENSE_CONTAINER_FORMAT) {
    throw fieldError(WHERE, `expected format ${LICENSE_CONTAINER_FORMAT}, got ${bytes instanceof Uint8Array && bytes.length > 0 ? `format ${bytes[0]}` : 'no bytes'}`);
  }
  const r = new FieldReader(bytes.subarray(1), WHERE);
  const clock = decodeUint(r.required(C.clock, 'clock'), 8, WHERE, 'clock');
  const rawFirms = r.many(C.firm);
  const rawAuthority = r.optional(C.lockAuthority);
  const rawLock = r.optional(C.lock);
  const rawUnlocked = r.optional(C.unlockedAt);
  r.end();
  if (rawFirms.length > MAX_FIRM_ITEMS) throw fieldError(WHERE, `expected at most ${MAX_FIRM_ITEMS} firm items, got ${rawFirms.length}`);
  const lockAuthority = rawAuthority === undefined ? undefined : decodeBytes(rawAuthority, WHERE, 'lockAuthority', ED25519_PUBLIC_KEY_LENGTH);
  let lock: LicenseContainer['lock'];
  if (rawLock !== undefined) {
    if (rawLock.length !== 8 + LOCK_DIGEST_LENGTH) throw fieldError(WHERE, `expected lock to be ${8 + LOCK_DIGEST_LENGTH} bytes, got ${rawLock.length}`);
    lock = { time: decodeUint(rawLock.subarray(0, 8), 8, WHERE, 'lock.time'), digest: rawLock.slice(8) };
  }
  const container: LicenseContainer = {
    firms: rawFirms.map((raw, i) => decodeFirm(raw, `${WHERE} firm ${i}`)), clock,
    ...(lockAuthority === undefined ? {} : { lockAuthority }), ...(lock === undefined ? {} : { lock }),
    ...(rawUnlocked === undefined ? {} : { unlockedAt: decodeUint(rawUnlocked, 8, WHERE, 'unlockedAt') }),
  };
  checkLicenseContainer(container);
  return container;
}

// ---- views ---------------------------------------------------------------------------------------------------------

/**
 * The container as anyone may see it (READ CONTAINER): hidden data and secret data emptied (000 §2.7, §2.8); a locked
 * container shows no firm item at all ("even the most PIO data cannot be longer read", 000 §2.10).
 */
export function publicView(container: LicenseContainer): LicenseContainer {
  const empty = new Uint8Array(0);
  return {
    clock: container.clock,
    firms: container.lock !== undefined ? [] : container.firms.map((firm) => ({ ...firm, products: firm.products.map((product) => ({ ...product, hiddenData: empty, secretData: empty })) })),
    ...(container.lockAuthority === undefined ? {} : { lockAuthority: container.lockAuthority.slice() }),
    ...(container.lock === undefined ? {} : { lock: { time: container.lock.time, digest: container.lock.digest.slice() } }),
    ...(container.unlockedAt === undefined ? {} : { unlockedAt: container.unlockedAt }),
  };
}

/** Zeroes the hidden and secret data of a decoded copy nobody uses any more. */
export function wipeContainerSecrets(container: LicenseContainer): void {
  for (const firm of container.firms) for (const product of firm.products) wipe(product.hiddenData, product.secretData);
}
