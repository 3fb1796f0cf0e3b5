// The customer's requests to the issuing back end as typed values, and their JSON (Wibu 002: activation online, or
// offline through files). Offline activation carries the same JSON in files: the request file is the POST
// /v1/activations body, the update file is the answer's update text, the receipt file is the POST /v1/receipts body
// (and a deactivation request file the POST /v1/deactivations body). Parsing is strict both ways: the route's shape
// (issuing-schemas.ts), then the UTF-8 lengths and the record's text that a shape cannot say.
import { fromHex, toHex, utf8 } from '../../bytes/index.js';
import { encodeRecordLine, recordTextProblem, type AuditRecord } from '../../rental/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_TEXT_BYTES } from '../license-model.js';
import { checkShape, type Shape } from './json-shape.js';
import { activationBody, deactivationBody, receiptBody, timeBody } from './issuing-schemas.js';

/** Largest request file read (the route's body limit). */
export const MAX_REQUEST_FILE_BYTES = 64 * 1024;

export interface ActivationRequest {
  readonly ticket: string;
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  /** The container's firm update counter of this licensor; null when it has no firm item of it. */
  readonly firmUpdateCounter: number | null;
  /** 16 bytes: a retry with the same id gets the same answer. */
  readonly requestId: Uint8Array;
}

export interface ReceiptRequest {
  /** The activation's ticket; absent for the updates of the lost-license flows (restore, transfer, withdrawal, ...). */
  readonly ticket?: string;
  readonly serial: string;
  /** The card-signed record of applying the update: `license update LD FIRM counter N digest D`. */
  readonly record: AuditRecord;
}

export interface DeactivationRequest {
  readonly ticket: string;
  readonly serial: string;
  readonly requestId: Uint8Array;
  readonly firmUpdateCounter?: number;
}

export interface TimeRequest {
  readonly serial: string;
  readonly firmCode: number;
  readonly nonce: Uint8Array;
}

type Json = Record<string, unknown>;

function parseText(value: string | Uint8Array | unknown, what: string): unknown {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) return value;
  const size = typeof value === 'string' ? utf8(value).length : value.length;
  if (size > MAX_REQUEST_FILE_BYTES) throw new LicenseError('input', `${what}: expected at most ${MAX_REQUEST_FILE_BYTES} bytes, got ${size}`);
  let text: string;
  try {
    text = typeof value === 'string' ? value : new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    throw new LicenseError('input', `${what}: expected UTF-8 text`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new LicenseError('input', `${what}: expected JSON, got text that is not JSON`);
  }
}

/** Checks `value` (a parsed body, or a file's text or bytes) against `shape`; returns its fields. */
function fields(shape: Shape, value: unknown, what: string): Json {
  const parsed = parseText(value, what);
  checkShape(shape, parsed, what);
  return parsed as Json;
}

function serialOf(value: unknown, what: string): string {
  const serial = value as string;
  if (utf8(serial).length > MAX_TEXT_BYTES) throw new LicenseError('input', `${what}.serial: expected at most ${MAX_TEXT_BYTES} UTF-8 bytes, got ${utf8(serial).length}`);
  return serial;
}

export function parseActivationRequest(value: unknown, what = 'activation request'): ActivationRequest {
  const body = fields(activationBody, value, what);
  return {
    ticket: body['ticket'] as string, serial: serialOf(body['serial'], what), cardPublicKey: fromHex(body['cardPublicKey'] as string),
    firmUpdateCounter: body['firmUpdateCounter'] as number | null, requestId: fromHex(body['requestId'] as string),
  };
}

export function activationRequestJson(request: ActivationRequest): Json {
  return { ticket: request.ticket, serial: request.serial, cardPublicKey: toHex(request.cardPublicKey), firmUpdateCounter: request.firmUpdateCounter, requestId: toHex(request.requestId) };
}

/** The request file: exactly the POST /v1/activations body (checked, so a bad request is never written). */
export function encodeActivationRequest(request: ActivationRequest): string {
  const json = activationRequestJson(request);
  parseActivationRequest(json);
  return `${JSON.stringify(json)}\n`;
}

export function parseReceiptRequest(value: unknown, what = 'receipt'): ReceiptRequest {
  const body = fields(receiptBody, value, what);
  const record = body['record'] as Json;
  const problem = recordTextProblem(record['text']);
  if (problem !== undefined) throw new LicenseError('input', `${what}.record.text: ${problem}`);
  return {
    ...(body['ticket'] === undefined ? {} : { ticket: body['ticket'] as string }), serial: serialOf(body['serial'], what),
    record: { nonce: fromHex(record['nonce'] as string), text: record['text'] as string, counter: BigInt(`0x${record['counter'] as string}`), signature: fromHex(record['signature'] as string) },
  };
}

export function receiptRequestJson(request: ReceiptRequest): Json {
  return { ...(request.ticket === undefined ? {} : { ticket: request.ticket }), serial: request.serial, record: JSON.parse(encodeRecordLine(request.record)) as Json };
}

/** The receipt file: exactly the POST /v1/receipts body. */
export function encodeReceiptRequest(request: ReceiptRequest): string {
  const json = receiptRequestJson(request);
  parseReceiptRequest(json);
  return `${JSON.stringify(json)}\n`;
}

export function parseDeactivationRequest(value: unknown, what = 'deactivation request'): DeactivationRequest {
  const body = fields(deactivationBody, value, what);
  return {
    ticket: body['ticket'] as string, serial: serialOf(body['serial'], what), requestId: fromHex(body['requestId'] as string),
    ...(body['firmUpdateCounter'] === undefined ? {} : { firmUpdateCounter: body['firmUpdateCounter'] as number }),
  };
}

export function deactivationRequestJson(request: DeactivationRequest): Json {
  return { ticket: request.ticket, serial: request.serial, requestId: toHex(request.requestId), ...(request.firmUpdateCounter === undefined ? {} : { firmUpdateCounter: request.firmUpdateCounter }) };
}

/** The deactivation request file: exactly the POST /v1/deactivations body. */
export function encodeDeactivationRequest(request: DeactivationRequest): string {
  const json = deactivationRequestJson(request);
  parseDeactivationRequest(json);
  return `${JSON.stringify(json)}\n`;
}

export function parseTimeRequest(value: unknown, what = 'time request'): TimeRequest {
  const body = fields(timeBody, value, what);
  return { serial: serialOf(body['serial'], what), firmCode: body['firmCode'] as number, nonce: fromHex(body['nonce'] as string) };
}

export function timeRequestJson(request: TimeRequest): Json {
  return { serial: request.serial, firmCode: request.firmCode, nonce: toHex(request.nonce) };
}
