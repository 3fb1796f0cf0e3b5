// The two signed requests a licensor's restoring service sends the hub (000 §2.2 "License Portal", §2.10 central
// locking list): registering the licensor with its restoring service's URL, and reporting a serial to lock.
// Wire form (JSON bodies of POST {hub}/v1/licensors and POST {hub}/v1/locks), each signed by the licensor's Ed25519 key:
//   {"licensorKey","name","restoreUrl","time","signature"}  over "vsc-hub-licensor/1\n" ‖ UTF-8(key hex "\n" restoreUrl "\n" time)
//   {"serial","licensorKey","time","signature"}             over "vsc-hub-lock/1\n" ‖ UTF-8(serial "\n" key hex "\n" time)
import { concatBytes, fromHex, toHex, utf8 } from '../../bytes/index.js';
import { ed25519Verify, type Ed25519SigningKey } from '../../crypto/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_TEXT_BYTES } from '../license-model.js';
import { checkShape, type Shape } from './json-shape.js';

export const HUB_LICENSOR_CONTEXT = 'vsc-hub-licensor/1\n';
export const HUB_LOCK_CONTEXT = 'vsc-hub-lock/1\n';
/** How far a request's time may lie from the verifier's clock by default (both ways). */
export const HUB_REQUEST_MAX_SKEW_SECONDS = 300;
const MAX_URL_LENGTH = 2048;
const MAX_NAME_LENGTH = 128;

export interface HubLicensorRequest {
  readonly licensorKey: Uint8Array;
  readonly name: string;
  /** Where the hub reaches the licensor's restoring service (http or https, no credentials). */
  readonly restoreUrl: string;
  readonly time: number;
  readonly signature: Uint8Array;
}

export interface HubLockRequest {
  readonly serial: string;
  readonly licensorKey: Uint8Array;
  readonly time: number;
  readonly signature: Uint8Array;
}

/** The JSON body as sent on the wire. */
export type HubLicensorRequestJson = { licensorKey: string; name: string; restoreUrl: string; time: number; signature: string };
export type HubLockRequestJson = { serial: string; licensorKey: string; time: number; signature: string };

const HEX_KEY = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const satisfies Shape;
const HEX_SIGNATURE = { type: 'string', pattern: '^[0-9a-f]{128}$' } as const satisfies Shape;
const TIME = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const satisfies Shape;

export const hubLicensorRequestShape = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'name', 'restoreUrl', 'time', 'signature'],
  properties: {
    licensorKey: HEX_KEY, name: { type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH },
    restoreUrl: { type: 'string', minLength: 1, maxLength: MAX_URL_LENGTH, pattern: '^https?://[^\\s]+$' }, time: TIME, signature: HEX_SIGNATURE,
  },
} as const satisfies Shape;

export const hubLockRequestShape = {
  type: 'object', additionalProperties: false, required: ['serial', 'licensorKey', 'time', 'signature'],
  // A serial has no line break: the signed text separates its fields by "\n".
  properties: { serial: { type: 'string', minLength: 1, maxLength: MAX_TEXT_BYTES, pattern: '^[^\\n\\r]+$' }, licensorKey: HEX_KEY, time: TIME, signature: HEX_SIGNATURE },
} as const satisfies Shape;

function checkUrl(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LicenseError('input', `${what}: expected an http or https URL, got text that is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new LicenseError('input', `${what}: expected an http or https URL, got the scheme ${parsed.protocol}`);
  if (parsed.username !== '' || parsed.password !== '') throw new LicenseError('input', `${what}: expected a URL without credentials`);
  if (/[\s]/u.test(url) || url.length > MAX_URL_LENGTH) throw new LicenseError('input', `${what}: expected a URL of at most ${MAX_URL_LENGTH} characters without spaces`);
  return url;
}

function checkSerial(serial: string, what: string): string {
  const size = utf8(serial).length;
  if (size === 0 || size > MAX_TEXT_BYTES) throw new LicenseError('input', `${what}: expected a serial of 1..${MAX_TEXT_BYTES} UTF-8 bytes, got ${size}`);
  if (/[\n\r]/u.test(serial)) throw new LicenseError('input', `${what}: expected a serial without line breaks`);
  return serial;
}

function checkTime(time: number, what: string): number {
  if (!Number.isSafeInteger(time) || time < 0) throw new LicenseError('input', `${what}: expected a whole number of Unix seconds, got ${String(time)}`);
  return time;
}

function licensorMessage(licensorKey: Uint8Array, restoreUrl: string, time: number): Uint8Array {
  return concatBytes(utf8(HUB_LICENSOR_CONTEXT), utf8(`${toHex(licensorKey)}\n${restoreUrl}\n${time}`));
}

function lockMessage(serial: string, licensorKey: Uint8Array, time: number): Uint8Array {
  return concatBytes(utf8(HUB_LOCK_CONTEXT), utf8(`${serial}\n${toHex(licensorKey)}\n${time}`));
}

export interface HubVerifyOptions {
  /** The verifier's clock; when given, a request whose time lies more than maxSkewSeconds away is refused 'replayed'. */
  readonly now?: number;
  readonly maxSkewSeconds?: number;
}

function checkFresh(time: number, options: HubVerifyOptions, what: string): void {
  if (options.now === undefined) return;
  const skew = options.maxSkewSeconds ?? HUB_REQUEST_MAX_SKEW_SECONDS;
  if (Math.abs(options.now - time) > skew) throw new LicenseError('replayed', `${what}: expected a time within ${skew} s of ${options.now}, got ${time}`);
}

/** Signs the registration of a licensor's restoring service at the hub; answers the POST {hub}/v1/licensors body. */
export function signHubLicensorRequest(fields: { readonly name: string; readonly restoreUrl: string; readonly time: number }, key: Ed25519SigningKey): HubLicensorRequestJson {
  const what = 'hub licensor request';
  if (fields.name.length < 1 || fields.name.length > MAX_NAME_LENGTH) throw new LicenseError('input', `${what}.name: expected 1..${MAX_NAME_LENGTH} characters, got ${fields.name.length}`);
  const restoreUrl = checkUrl(fields.restoreUrl, `${what}.restoreUrl`);
  const time = checkTime(fields.time, `${what}.time`);
  const signature = key.sign(licensorMessage(key.publicKey, restoreUrl, time));
  return { licensorKey: toHex(key.publicKey), name: fields.name, restoreUrl, time, signature: toHex(signature) };
}

/**
 * Checks a POST {hub}/v1/licensors body strictly: LicenseError 'input' (malformed), 'signature' (not signed by the
 * licensorKey it names), 'replayed' (too old or too far ahead, when options.now is given).
 */
export function verifyHubLicensorRequest(body: unknown, options: HubVerifyOptions = {}): HubLicensorRequest {
  const what = 'hub licensor request';
  checkShape(hubLicensorRequestShape, body, what);
  const json = body as HubLicensorRequestJson;
  const request: HubLicensorRequest = {
    licensorKey: fromHex(json.licensorKey), name: json.name, restoreUrl: checkUrl(json.restoreUrl, `${what}.restoreUrl`), time: json.time, signature: fromHex(json.signature),
  };
  if (!ed25519Verify(request.licensorKey, licensorMessage(request.licensorKey, request.restoreUrl, request.time), request.signature)) {
    throw new LicenseError('signature', `${what}: the signature does not verify under the licensor key`);
  }
  checkFresh(request.time, options, what);
  return request;
}

/** Signs the report of a serial for the central locking list; answers the POST {hub}/v1/locks body. */
export function signHubLockRequest(fields: { readonly serial: string; readonly time: number }, key: Ed25519SigningKey): HubLockRequestJson {
  const what = 'hub lock request';
  const serial = checkSerial(fields.serial, `${what}.serial`);
  const time = checkTime(fields.time, `${what}.time`);
  const signature = key.sign(lockMessage(serial, key.publicKey, time));
  return { serial, licensorKey: toHex(key.publicKey), time, signature: toHex(signature) };
}

/** Checks a POST {hub}/v1/locks body strictly; refusals as verifyHubLicensorRequest. */
export function verifyHubLockRequest(body: unknown, options: HubVerifyOptions = {}): HubLockRequest {
  const what = 'hub lock request';
  checkShape(hubLockRequestShape, body, what);
  const json = body as HubLockRequestJson;
  const request: HubLockRequest = { serial: checkSerial(json.serial, `${what}.serial`), licensorKey: fromHex(json.licensorKey), time: json.time, signature: fromHex(json.signature) };
  if (!ed25519Verify(request.licensorKey, lockMessage(request.serial, request.licensorKey, request.time), request.signature)) {
    throw new LicenseError('signature', `${what}: the signature does not verify under the licensor key`);
  }
  checkFresh(request.time, options, what);
  return request;
}
