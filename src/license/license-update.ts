// Licensor updates (DESIGN.md "License containers and lost licenses"; Wibu 000 §2.2 "Adding Firm Items" and "Remote
// Activation", §2.6 Firm Update Counter; 002 online and offline activation): the signed sequence that is the only way
// to change a firm item, and the time certificate that is the container's certified time.
//
// File and wire form, UTF-8 JSON:  {"format": "vsc-license-update/1", "body": BODY-TEXT, "signature": 128 hex}
// BODY-TEXT is itself JSON, kept as the exact string the licensor signed (no canonical form is needed): the Ed25519
// signature is over  "vsc-license-update/1\n" ‖ UTF-8(BODY-TEXT)  under the body's licensorKey.
//
//   update   {"kind": "update", "serial", "licensorKey": 64 hex, "firmCode", "updateCounter", "time", "operations": [OP]}
//            applies only to the container of that serial, only when its firm item of that key holds exactly
//            updateCounter updates (0 and no firm item yet for a first update, which must start with create-firm);
//            the counter then moves to updateCounter + 1, so a replayed or reordered update is refused.
//   time     {"kind": "time", "serial", "licensorKey", "firmCode", "time", "nonce": 32 hex, "resetClock"?: true}
//            certified time: moves the firm item's certified time and the container's clock forward, never back
//            (a replay changes nothing). resetClock sets the container's clock to `time` even when it is later:
//            the licensor's remedy for a host clock once set far ahead.
// OP (product fields as in license-model.ts; bytes lowercase hex; times Unix seconds):
//   {"op": "create-firm", "text"}                 {"op": "set-firm-text", "text"}
//   {"op": "put-product", "product": PRODUCT}     adds, or replaces the licensor's fields of, a product item; the
//                                                 card's own fields (unitsUsed, firstUse, userData) are kept
//   {"op": "add-units", "productCode", "units"}   raises the unit limit (a prepaid top-up)
//   {"op": "settle-units", "productCode", "units"} lowers unitsUsed by units billed (postpaid)
//   {"op": "extend", "productCode", "expiration"} a subscription renewed or shortened
//   {"op": "delete-product", "productCode"}       {"op": "delete-firm"} (alone: a transfer's or withdrawal's delete; every
//                                                 product item goes, the firm item stays empty with its update counter,
//                                                 so the licensor's earlier updates can never be replayed onto it)
//   {"op": "generate-secret", "productCode", "length"}  secret data drawn on the card, known to no one
//   {"op": "set-lock-authority", "key": 64 hex}   the central locking authority (000 §2.10) for the whole container:
//                                                 taken when it has none, nothing when it is the same key, refused
//                                                 (foreign) when it names another: the first licensor's choice stands
import { fromHex, toHex, utf8 } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify, sha256, type Ed25519SigningKey } from '../crypto/index.js';
import { LicenseError } from './license-error.js';
import {
  MAX_CODE, MAX_ITEM_DATA_BYTES, MAX_TEXT_BYTES, MAX_UNITS, type CountryRule, type OverflowRule, type Payment, type ProductItem, type StandbyRule,
  type TimeZoneRule, type UnixSeconds, type VersionRule,
} from './license-model.js';

export const UPDATE_FORMAT = 'vsc-license-update/1';
export const MAX_UPDATE_BYTES = 16 * 1024;
export const MAX_OPERATIONS = 64;
export const TIME_NONCE_LENGTH = 16;
const SIGNING_PREFIX = utf8(`${UPDATE_FORMAT}\n`);

/** The licensor's fields of a product item: what put-product sets. */
export type ProductSpec = Omit<ProductItem, 'unitsUsed' | 'firstUse' | 'userData'>;

export type UpdateOperation =
  | { readonly op: 'create-firm'; readonly text: string }
  | { readonly op: 'set-firm-text'; readonly text: string }
  | { readonly op: 'put-product'; readonly product: ProductSpec }
  | { readonly op: 'add-units'; readonly productCode: number; readonly units: number }
  | { readonly op: 'settle-units'; readonly productCode: number; readonly units: number }
  | { readonly op: 'extend'; readonly productCode: number; readonly expiration: UnixSeconds }
  | { readonly op: 'delete-product'; readonly productCode: number }
  | { readonly op: 'delete-firm' }
  | { readonly op: 'generate-secret'; readonly productCode: number; readonly length: number }
  | { readonly op: 'set-lock-authority'; readonly key: Uint8Array };

interface BodyBase {
  readonly serial: string;
  readonly licensorKey: Uint8Array;
  readonly firmCode: number;
  readonly time: UnixSeconds;
}
export interface UpdateBody extends BodyBase {
  readonly kind: 'update';
  readonly updateCounter: number;
  readonly operations: readonly UpdateOperation[];
}
export interface TimeBody extends BodyBase {
  readonly kind: 'time';
  readonly nonce: Uint8Array;
  readonly resetClock: boolean;
}
export type LicenseBody = UpdateBody | TimeBody;

/** A parsed, not yet verified, signed body with the exact text that was signed. */
export interface SignedLicenseBody<B extends LicenseBody = LicenseBody> {
  readonly body: B;
  readonly bodyText: string;
  readonly signature: Uint8Array;
}

function input(message: string): LicenseError {
  return new LicenseError('input', `license update: ${message}`);
}

// ---- encoding -------------------------------------------------------------------------------------------------

function productJson(product: ProductSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { productCode: product.productCode, text: product.text, featureMap: product.featureMap, payment: product.payment, licenseQuantity: product.licenseQuantity };
  const optional: Array<[string, unknown]> = [
    ['unitLimit', product.unitLimit], ['expiration', product.expiration], ['activationTime', product.activationTime],
    ['usagePeriodSeconds', product.usagePeriodSeconds], ['versions', product.versions], ['maintenanceUntil', product.maintenanceUntil],
    ['namedUser', product.namedUser], ['boundTo', product.boundTo === undefined ? undefined : toHex(product.boundTo)],
    ['countries', product.countries], ['timeZones', product.timeZones], ['overflow', product.overflow],
    ['maxBorrowSeconds', product.maxBorrowSeconds], ['standby', product.standby],
  ];
  for (const [key, value] of optional) if (value !== undefined) out[key] = value;
  out['protectedData'] = toHex(product.protectedData);
  out['hiddenData'] = toHex(product.hiddenData);
  out['secretData'] = toHex(product.secretData);
  return out;
}

function operationJson(operation: UpdateOperation): Record<string, unknown> {
  if (operation.op === 'put-product') return { op: operation.op, product: productJson(operation.product) };
  if (operation.op === 'set-lock-authority') return { op: operation.op, key: toHex(operation.key) };
  return { ...operation };
}

/** The body's JSON text, as the licensor signs it. */
export function encodeBody(body: LicenseBody): string {
  const base = { kind: body.kind, serial: body.serial, licensorKey: toHex(body.licensorKey), firmCode: body.firmCode, time: body.time };
  if (body.kind === 'time') return JSON.stringify({ ...base, nonce: toHex(body.nonce), ...(body.resetClock ? { resetClock: true } : {}) });
  return JSON.stringify({ ...base, updateCounter: body.updateCounter, operations: body.operations.map(operationJson) });
}

function signedBytes(bodyText: string): Uint8Array {
  const text = utf8(bodyText);
  const out = new Uint8Array(SIGNING_PREFIX.length + text.length);
  out.set(SIGNING_PREFIX, 0);
  out.set(text, SIGNING_PREFIX.length);
  return out;
}

/** Signs `body` with the licensor's key, which must be the body's licensorKey. */
export function signLicenseBody<B extends LicenseBody>(body: B, key: Ed25519SigningKey): SignedLicenseBody<B> {
  if (toHex(key.publicKey) !== toHex(body.licensorKey)) throw input('the signing key is not the body\'s licensorKey');
  const bodyText = encodeBody(body);
  const signed = { body: parseBodyText(bodyText), bodyText, signature: key.sign(signedBytes(bodyText)) };
  return signed as SignedLicenseBody<B>;
}

/** The file (and wire) form. */
export function encodeSignedBody(signed: SignedLicenseBody): string {
  return JSON.stringify({ format: UPDATE_FORMAT, body: signed.bodyText, signature: toHex(signed.signature) });
}

/** Whether the signature verifies under the body's own licensorKey (the caller checks that key is the right one). */
export function verifyLicenseBody(signed: SignedLicenseBody): boolean {
  return ed25519Verify(signed.body.licensorKey, signedBytes(signed.bodyText), signed.signature);
}

/** SHA-256 over what was signed and its signature: names one update in receipts and audit logs. */
export function licenseBodyDigest(signed: SignedLicenseBody): Uint8Array {
  return sha256(signedBytes(signed.bodyText), signed.signature);
}

// ---- strict parsing -------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw input(`expected ${what} to be a JSON object`);
  return value as Json;
}

function onlyKeys(value: Json, what: string, required: readonly string[], optional: readonly string[] = []): void {
  for (const key of required) if (!(key in value)) throw input(`${what}: missing field ${key}`);
  for (const key of Object.keys(value)) if (!required.includes(key) && !optional.includes(key)) throw input(`${what}: unknown field ${JSON.stringify(key.slice(0, 40))}`);
}

function integer(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw input(`expected ${what} to be a whole number in ${min}..${max}, got ${JSON.stringify(value)?.slice(0, 40)}`);
  return value;
}

const code = (value: unknown, what: string): number => integer(value, what, 0, MAX_CODE);
const seconds = (value: unknown, what: string): number => integer(value, what, 0, 2 ** 40);

function text(value: unknown, what: string, maxBytes = MAX_TEXT_BYTES): string {
  if (typeof value !== 'string') throw input(`expected ${what} to be a string`);
  if (utf8(value).length > maxBytes) throw input(`expected ${what} to be at most ${maxBytes} UTF-8 bytes`);
  if ([...value].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) throw input(`expected ${what} without control characters`);
  return value;
}

function hex(value: unknown, what: string, length?: number, maxLength = MAX_ITEM_DATA_BYTES): Uint8Array {
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value)) throw input(`expected ${what} as lowercase hex`);
  const bytes = fromHex(value);
  if (length !== undefined && bytes.length !== length) throw input(`expected ${what} to be ${length} bytes, got ${bytes.length}`);
  if (bytes.length > maxLength) throw input(`expected ${what} to be at most ${maxLength} bytes, got ${bytes.length}`);
  return bytes;
}

function countries(value: unknown): CountryRule {
  const rule = object(value, 'countries');
  onlyKeys(rule, 'countries', [], ['allow', 'deny']);
  const list = (entry: unknown, what: string): string[] => {
    if (!Array.isArray(entry) || entry.length > 250 || entry.some((item) => typeof item !== 'string' || !/^[A-Z]{2}$/.test(item))) throw input(`expected ${what} to be a list of ISO 3166-1 alpha-2 codes`);
    return entry as string[];
  };
  return { ...(rule['allow'] === undefined ? {} : { allow: list(rule['allow'], 'countries.allow') }), ...(rule['deny'] === undefined ? {} : { deny: list(rule['deny'], 'countries.deny') }) };
}

function timeZones(value: unknown): TimeZoneRule {
  const rule = object(value, 'timeZones');
  onlyKeys(rule, 'timeZones', ['minOffsetMinutes', 'maxOffsetMinutes']);
  const minOffsetMinutes = integer(rule['minOffsetMinutes'], 'timeZones.minOffsetMinutes', -720, 840);
  const maxOffsetMinutes = integer(rule['maxOffsetMinutes'], 'timeZones.maxOffsetMinutes', minOffsetMinutes, 840);
  return { minOffsetMinutes, maxOffsetMinutes };
}

function versions(value: unknown): VersionRule {
  const rule = object(value, 'versions');
  onlyKeys(rule, 'versions', ['min', 'max']);
  const min = integer(rule['min'], 'versions.min', 0, MAX_CODE);
  return { min, max: integer(rule['max'], 'versions.max', min, MAX_CODE) };
}

function overflow(value: unknown): OverflowRule {
  const rule = object(value, 'overflow');
  onlyKeys(rule, 'overflow', ['seats'], ['until']);
  return { seats: integer(rule['seats'], 'overflow.seats', 1, 100_000), ...(rule['until'] === undefined ? {} : { until: seconds(rule['until'], 'overflow.until') }) };
}

function standby(value: unknown): StandbyRule {
  const rule = object(value, 'standby');
  onlyKeys(rule, 'standby', ['kind', 'maxSeconds']);
  if (rule['kind'] !== 'hot' && rule['kind'] !== 'cold') throw input('expected standby.kind to be hot or cold');
  return { kind: rule['kind'], maxSeconds: integer(rule['maxSeconds'], 'standby.maxSeconds', 1, 2 ** 40) };
}

const PRODUCT_REQUIRED = ['productCode', 'text', 'featureMap', 'payment', 'licenseQuantity', 'protectedData', 'hiddenData', 'secretData'] as const;
const PRODUCT_OPTIONAL = ['unitLimit', 'expiration', 'activationTime', 'usagePeriodSeconds', 'versions', 'maintenanceUntil', 'namedUser', 'boundTo', 'countries', 'timeZones', 'overflow', 'maxBorrowSeconds', 'standby'] as const;

export function parseProductSpec(value: unknown): ProductSpec {
  const p = object(value, 'product');
  onlyKeys(p, 'product', PRODUCT_REQUIRED, PRODUCT_OPTIONAL);
  if (p['payment'] !== 'prepaid' && p['payment'] !== 'postpaid') throw input('expected product.payment to be prepaid or postpaid');
  const optional = <T>(key: string, parse: (v: unknown, what: string) => T): Partial<Record<string, T>> => (p[key] === undefined ? {} : { [key]: parse(p[key], `product.${key}`) });
  return {
    productCode: code(p['productCode'], 'product.productCode'),
    text: text(p['text'], 'product.text'),
    featureMap: code(p['featureMap'], 'product.featureMap'),
    payment: p['payment'] as Payment,
    licenseQuantity: integer(p['licenseQuantity'], 'product.licenseQuantity', 1, 100_000),
    ...optional('unitLimit', (v, w) => integer(v, w, 0, MAX_UNITS)),
    ...optional('expiration', seconds),
    ...optional('activationTime', seconds),
    ...optional('usagePeriodSeconds', (v, w) => integer(v, w, 1, 2 ** 40)),
    ...optional('versions', versions),
    ...optional('maintenanceUntil', seconds),
    ...optional('namedUser', (v, w) => text(v, w)),
    ...optional('boundTo', (v, w) => hex(v, w, 32)),
    ...optional('countries', countries),
    ...optional('timeZones', timeZones),
    ...optional('overflow', overflow),
    ...optional('maxBorrowSeconds', (v, w) => integer(v, w, 1, 2 ** 40)),
    ...optional('standby', standby),
    protectedData: hex(p['protectedData'], 'product.protectedData'),
    hiddenData: hex(p['hiddenData'], 'product.hiddenData'),
    secretData: hex(p['secretData'], 'product.secretData'),
  } as ProductSpec;
}

function operation(value: unknown, index: number): UpdateOperation {
  const op = object(value, `operation ${index}`);
  const what = `operation ${index} (${String(op['op']).slice(0, 20)})`;
  switch (op['op']) {
    case 'create-firm':
    case 'set-firm-text':
      onlyKeys(op, what, ['op', 'text']);
      return { op: op['op'], text: text(op['text'], `${what}.text`) };
    case 'put-product':
      onlyKeys(op, what, ['op', 'product']);
      return { op: 'put-product', product: parseProductSpec(op['product']) };
    case 'add-units':
    case 'settle-units':
      onlyKeys(op, what, ['op', 'productCode', 'units']);
      return { op: op['op'], productCode: code(op['productCode'], `${what}.productCode`), units: integer(op['units'], `${what}.units`, 1, MAX_UNITS) };
    case 'extend':
      onlyKeys(op, what, ['op', 'productCode', 'expiration']);
      return { op: 'extend', productCode: code(op['productCode'], `${what}.productCode`), expiration: seconds(op['expiration'], `${what}.expiration`) };
    case 'delete-product':
      onlyKeys(op, what, ['op', 'productCode']);
      return { op: 'delete-product', productCode: code(op['productCode'], `${what}.productCode`) };
    case 'delete-firm':
      onlyKeys(op, what, ['op']);
      return { op: 'delete-firm' };
    case 'generate-secret':
      onlyKeys(op, what, ['op', 'productCode', 'length']);
      return { op: 'generate-secret', productCode: code(op['productCode'], `${what}.productCode`), length: integer(op['length'], `${what}.length`, 1, MAX_ITEM_DATA_BYTES) };
    case 'set-lock-authority':
      onlyKeys(op, what, ['op', 'key']);
      return { op: 'set-lock-authority', key: hex(op['key'], `${what}.key`, ED25519_PUBLIC_KEY_LENGTH) };
    default:
      throw input(`operation ${index}: unknown op ${JSON.stringify(String(op['op']).slice(0, 40))}`);
  }
}

function parseJson(textValue: string, what: string): unknown {
  try {
    return JSON.parse(textValue);
  } catch {
    throw input(`${what} is not valid JSON`);
  }
}

/** Parses a body text strictly: every field checked, nothing unknown accepted. */
export function parseBodyText(bodyText: string): LicenseBody {
  const body = object(parseJson(bodyText, 'the body'), 'the body');
  const base = (): BodyBase => ({
    serial: text(body['serial'], 'serial'),
    licensorKey: hex(body['licensorKey'], 'licensorKey', ED25519_PUBLIC_KEY_LENGTH),
    firmCode: code(body['firmCode'], 'firmCode'),
    time: seconds(body['time'], 'time'),
  });
  if (body['kind'] === 'time') {
    onlyKeys(body, 'time certificate', ['kind', 'serial', 'licensorKey', 'firmCode', 'time', 'nonce'], ['resetClock']);
    if (body['resetClock'] !== undefined && body['resetClock'] !== true) throw input('expected resetClock to be true when present');
    return { kind: 'time', ...base(), nonce: hex(body['nonce'], 'nonce', TIME_NONCE_LENGTH), resetClock: body['resetClock'] === true };
  }
  if (body['kind'] !== 'update') throw input('expected kind update or time');
  onlyKeys(body, 'update', ['kind', 'serial', 'licensorKey', 'firmCode', 'time', 'updateCounter', 'operations']);
  const list = body['operations'];
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_OPERATIONS) throw input(`expected 1..${MAX_OPERATIONS} operations`);
  const operations = list.map(operation);
  if (operations.some((op) => op.op === 'delete-firm') && operations.length !== 1) throw input('expected delete-firm alone in its update');
  if (operations.slice(1).some((op) => op.op === 'create-firm')) throw input('expected create-firm only as the first operation');
  return { kind: 'update', ...base(), updateCounter: integer(body['updateCounter'], 'updateCounter', 0, 2 ** 32), operations };
}

/** Parses the file (and wire) form strictly; the signature is checked by verifyLicenseBody or by the card. */
export function parseSignedBody(bytes: Uint8Array | string): SignedLicenseBody {
  const size = typeof bytes === 'string' ? utf8(bytes).length : bytes.length;
  if (size > MAX_UPDATE_BYTES) throw input(`expected at most ${MAX_UPDATE_BYTES} bytes, got ${size}`);
  let textValue: string;
  try {
    textValue = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw input('not UTF-8');
  }
  const file = object(parseJson(textValue, 'the file'), 'the file');
  onlyKeys(file, 'the file', ['format', 'body', 'signature']);
  if (file['format'] !== UPDATE_FORMAT) throw input(`expected format ${UPDATE_FORMAT}`);
  if (typeof file['body'] !== 'string') throw input('expected body to be the signed JSON text');
  return { body: parseBodyText(file['body']), bodyText: file['body'], signature: hex(file['signature'], 'signature', ED25519_SIGNATURE_LENGTH) };
}
