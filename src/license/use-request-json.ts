// A UseRequest (license-model.ts) as JSON, the form it travels in between a program and the machine's license agent
// (license-agent.ts) and to a network license server: keys and digests lowercase hex, times Unix seconds. Strict both
// ways: unknown fields, wrong types and out-of-range values are refused with reason "input".
import { fromHex, toHex, utf8 } from '../bytes/index.js';
import { LicenseError } from './license-error.js';
import { MAX_CODE, MAX_TEXT_BYTES, MAX_UNITS, type UseRequest } from './license-model.js';

const REQUIRED = ['licensorKey', 'productCode', 'features', 'units', 'hostTime'] as const;
const OPTIONAL = ['country', 'timeZoneOffsetMinutes', 'user', 'computer', 'version', 'releaseTime'] as const;

function input(message: string): LicenseError {
  return new LicenseError('input', `use request: ${message}`);
}

function whole(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw input(`expected ${what} as a whole number in ${min}..${max}`);
  return value;
}

function hexBytes(value: unknown, what: string, length: number): Uint8Array {
  if (typeof value !== 'string' || !new RegExp(`^[0-9a-f]{${length * 2}}$`).test(value)) throw input(`expected ${what} as ${length * 2} lowercase hex digits`);
  return fromHex(value);
}

export function useRequestToJson(request: UseRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {
    licensorKey: toHex(request.licensorKey), productCode: request.productCode, features: request.features, units: request.units, hostTime: request.hostTime,
  };
  if (request.country !== undefined) out['country'] = request.country;
  if (request.timeZoneOffsetMinutes !== undefined) out['timeZoneOffsetMinutes'] = request.timeZoneOffsetMinutes;
  if (request.user !== undefined) out['user'] = request.user;
  if (request.computer !== undefined) out['computer'] = toHex(request.computer);
  if (request.version !== undefined) out['version'] = request.version;
  if (request.releaseTime !== undefined) out['releaseTime'] = request.releaseTime;
  return out;
}

export function useRequestFromJson(value: unknown): UseRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw input('expected a JSON object');
  const fields = value as Record<string, unknown>;
  for (const key of REQUIRED) if (!(key in fields)) throw input(`missing field ${key}`);
  for (const key of Object.keys(fields)) if (!(REQUIRED as readonly string[]).includes(key) && !(OPTIONAL as readonly string[]).includes(key)) throw input(`unknown field ${JSON.stringify(key.slice(0, 40))}`);
  const request: { -readonly [K in keyof UseRequest]: UseRequest[K] } = {
    licensorKey: hexBytes(fields['licensorKey'], 'licensorKey', 32),
    productCode: whole(fields['productCode'], 'productCode', 0, MAX_CODE),
    features: whole(fields['features'], 'features', 0, MAX_CODE),
    units: whole(fields['units'], 'units', 0, MAX_UNITS),
    hostTime: whole(fields['hostTime'], 'hostTime', 0, 2 ** 40),
  };
  const country = fields['country'];
  if (country !== undefined) {
    if (typeof country !== 'string' || !/^[A-Z]{2}$/.test(country)) throw input('expected country as an ISO 3166-1 alpha-2 code, upper case');
    request.country = country;
  }
  if (fields['timeZoneOffsetMinutes'] !== undefined) request.timeZoneOffsetMinutes = whole(fields['timeZoneOffsetMinutes'], 'timeZoneOffsetMinutes', -720, 840);
  const user = fields['user'];
  if (user !== undefined) {
    if (typeof user !== 'string' || user.length === 0 || utf8(user).length > MAX_TEXT_BYTES) throw input(`expected user as a name of 1..${MAX_TEXT_BYTES} bytes`);
    request.user = user;
  }
  if (fields['computer'] !== undefined) request.computer = hexBytes(fields['computer'], 'computer', 32);
  if (fields['version'] !== undefined) request.version = whole(fields['version'], 'version', 0, MAX_CODE);
  if (fields['releaseTime'] !== undefined) request.releaseTime = whole(fields['releaseTime'], 'releaseTime', 0, 2 ** 40);
  return request;
}
