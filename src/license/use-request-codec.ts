// A UseRequest (license-model.ts) in the binary form the card's license applet takes (INS 34 USE), fields as
// license-field-codec.ts in this order: 01 licensor key (32) · 02 product code (4) · 03 features (4) · 04 units (8) ·
// 05 host time (8) · 06 country (2 ASCII letters)? · 07 time zone offset (minutes, signed 2)? · 08 user (UTF-8)? ·
// 09 computer (32)? · 0A version (4)? · 0B release time (8)?   ("?" only when the request has it). The limits are
// those of use-request-json.ts; anything else is LicenseError 'input'.
import { ED25519_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { decodeBytes, decodeText, decodeUint, encodeUint, field, fieldError, FieldReader, joinFields, textProblem } from './license-field-codec.js';
import { MAX_CODE, MAX_TEXT_BYTES, MAX_UNITS, type UseRequest } from './license-model.js';
import { utf8 } from '../bytes/index.js';

const enum U { key = 0x01, product = 0x02, features = 0x03, units = 0x04, hostTime = 0x05, country = 0x06, timeZone = 0x07, user = 0x08, computer = 0x09, version = 0x0a, releaseTime = 0x0b }
const WHERE = 'use request';
const MAX_TIME = 2 ** 40;
const COMPUTER_LENGTH = 32;

function whole(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw fieldError(WHERE, `expected ${name} as a whole number in ${min}..${max}, got ${typeof value === 'number' ? value : typeof value}`);
  return value;
}

function checkBytes(value: unknown, name: string, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) throw fieldError(WHERE, `expected ${name} as ${length} bytes`);
}

function checkCountry(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Z]{2}$/.test(value)) throw fieldError(WHERE, 'expected country as an ISO 3166-1 alpha-2 code, upper case');
  return value;
}

function checkUser(value: unknown): string {
  const problem = textProblem(value, MAX_TEXT_BYTES);
  if (problem !== undefined || value === '') throw fieldError(WHERE, `expected user as a name of 1..${MAX_TEXT_BYTES} bytes without control characters`);
  return value as string;
}

/** Throws LicenseError 'input' unless every field of `request` is within its limits. */
export function checkUseRequest(request: UseRequest): void {
  if (typeof request !== 'object' || request === null) throw fieldError(WHERE, 'expected an object');
  checkBytes(request.licensorKey, 'licensorKey', ED25519_PUBLIC_KEY_LENGTH);
  whole(request.productCode, 'productCode', 0, MAX_CODE);
  whole(request.features, 'features', 0, MAX_CODE);
  whole(request.units, 'units', 0, MAX_UNITS);
  whole(request.hostTime, 'hostTime', 0, MAX_TIME);
  if (request.country !== undefined) checkCountry(request.country);
  if (request.timeZoneOffsetMinutes !== undefined) whole(request.timeZoneOffsetMinutes, 'timeZoneOffsetMinutes', -720, 840);
  if (request.user !== undefined) checkUser(request.user);
  if (request.computer !== undefined) checkBytes(request.computer, 'computer', COMPUTER_LENGTH);
  if (request.version !== undefined) whole(request.version, 'version', 0, MAX_CODE);
  if (request.releaseTime !== undefined) whole(request.releaseTime, 'releaseTime', 0, MAX_TIME);
}

export function encodeUseRequest(request: UseRequest): Uint8Array {
  checkUseRequest(request);
  const parts = [
    field(U.key, request.licensorKey), field(U.product, encodeUint(request.productCode, 4)), field(U.features, encodeUint(request.features, 4)),
    field(U.units, encodeUint(request.units, 8)), field(U.hostTime, encodeUint(request.hostTime, 8)),
  ];
  if (request.country !== undefined) parts.push(field(U.country, utf8(request.country)));
  if (request.timeZoneOffsetMinutes !== undefined) {
    const offset = new Uint8Array(2);
    new DataView(offset.buffer).setInt16(0, request.timeZoneOffsetMinutes);
    parts.push(field(U.timeZone, offset));
  }
  if (request.user !== undefined) parts.push(field(U.user, utf8(request.user)));
  if (request.computer !== undefined) parts.push(field(U.computer, request.computer));
  if (request.version !== undefined) parts.push(field(U.version, encodeUint(request.version, 4)));
  if (request.releaseTime !== undefined) parts.push(field(U.releaseTime, encodeUint(request.releaseTime, 8)));
  return joinFields(parts);
}

export function decodeUseRequest(bytes: Uint8Array): UseRequest {
  const r = new FieldReader(bytes, WHERE);
  const request: { -readonly [K in keyof UseRequest]: UseRequest[K] } = {
    licensorKey: decodeBytes(r.required(U.key, 'licensorKey'), WHERE, 'licensorKey', ED25519_PUBLIC_KEY_LENGTH),
    productCode: decodeUint(r.required(U.product, 'productCode'), 4, WHERE, 'productCode'),
    features: decodeUint(r.required(U.features, 'features'), 4, WHERE, 'features'),
    units: decodeUint(r.required(U.units, 'units'), 8, WHERE, 'units'),
    hostTime: decodeUint(r.required(U.hostTime, 'hostTime'), 8, WHERE, 'hostTime'),
  };
  const country = r.optional(U.country);
  if (country !== undefined) request.country = checkCountry(decodeText(country, WHERE, 'country'));
  const timeZone = r.optional(U.timeZone);
  if (timeZone !== undefined) {
    if (timeZone.length !== 2) throw fieldError(WHERE, `expected timeZoneOffsetMinutes to be 2 bytes, got ${timeZone.length}`);
    request.timeZoneOffsetMinutes = new DataView(timeZone.buffer, timeZone.byteOffset, 2).getInt16(0);
  }
  const user = r.optional(U.user);
  if (user !== undefined) request.user = checkUser(decodeText(user, WHERE, 'user'));
  const computer = r.optional(U.computer);
  if (computer !== undefined) request.computer = decodeBytes(computer, WHERE, 'computer', COMPUTER_LENGTH);
  const version = r.optional(U.version);
  if (version !== undefined) request.version = decodeUint(version, 4, WHERE, 'version');
  const releaseTime = r.optional(U.releaseTime);
  if (releaseTime !== undefined) request.releaseTime = decodeUint(releaseTime, 8, WHERE, 'releaseTime');
  r.end();
  checkUseRequest(request);
  return request;
}
