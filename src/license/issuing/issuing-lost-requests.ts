// The customer's requests of the lost-license flows as typed values, and their JSON (Wibu 000 §2.5 restore and §2.12
// transfer, the backup item JSON in them; 001 reactivation and checkpoint renewal). Offline the same JSON travels as
// files, as the activation request does (issuing-requests.ts). Parsing is strict: the route's shape, then what a shape
// cannot say (UTF-8 lengths). The backup item itself is parsed by the backup module when the service verifies it.
import { fromHex, toHex, utf8 } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';
import { encodeRecordLine, recordTextProblem, type AuditRecord } from '../../rental/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_TEXT_BYTES } from '../license-model.js';
import { checkShape, type Shape } from './json-shape.js';
import { checkpointBody, proofBody, reactivationBody, restoreBody } from './issuing-lost-schemas.js';

type Json = Record<string, unknown>;

/** The replacement (or reactivated) container. */
export interface TargetContainer {
  readonly serial: string;
  readonly cardPublicKey: Uint8Array;
  /** Its firm update counter of this licensor; null when it has no firm item of it. */
  readonly firmUpdateCounter: number | null;
}

export interface RestoreRequest {
  /** The backup item file as parsed JSON (backup-file.ts checks it when the service verifies it). */
  readonly item: unknown;
  readonly target: TargetContainer;
  readonly requestId: Uint8Array;
}

export interface ProofRequest {
  /** The source card's record of applying the transfer's delete-firm. */
  readonly record: AuditRecord;
}

export interface ReactivationRequest extends TargetContainer {
  readonly ticket: string;
  readonly requestId: Uint8Array;
  readonly reason: 'same-device' | 'other-device';
}

export interface CheckpointRequest {
  readonly ticket: string;
  readonly serial: string;
  readonly firmUpdateCounter: number;
  readonly requestId: Uint8Array;
}

function fields(shape: Shape, value: unknown, what: string): Json {
  checkShape(shape, value, what);
  return value as Json;
}

function serialOf(value: unknown, what: string): string {
  const serial = value as string;
  if (utf8(serial).length > MAX_TEXT_BYTES) throw new LicenseError('input', `${what}: expected a serial of at most ${MAX_TEXT_BYTES} UTF-8 bytes, got ${utf8(serial).length}`);
  return serial;
}

function target(value: Json, what: string): TargetContainer {
  return { serial: serialOf(value['serial'], `${what}.serial`), cardPublicKey: fromHex(value['cardPublicKey'] as string), firmUpdateCounter: value['firmUpdateCounter'] as number | null };
}

const targetJson = (container: TargetContainer): Json => ({ serial: container.serial, cardPublicKey: toHex(container.cardPublicKey), firmUpdateCounter: container.firmUpdateCounter });

/** POST /v1/restores and POST /v1/transfers bodies (the same shape). */
export function parseRestoreRequest(value: unknown, what = 'restore request'): RestoreRequest {
  const body = fields(restoreBody, value, what);
  serialOf((body['item'] as { box: Json }).box['serial'], `${what}.item.box`);
  return { item: body['item'], target: target(body['target'] as Json, `${what}.target`), requestId: fromHex(body['requestId'] as string) };
}

export function restoreRequestJson(request: RestoreRequest): Json {
  return { item: request.item, target: targetJson(request.target), requestId: toHex(request.requestId) };
}

export function parseProofRequest(value: unknown, what = 'transfer proof'): ProofRequest {
  const record = fields(proofBody, value, what)['record'] as Json;
  const problem = recordTextProblem(record['text']);
  if (problem !== undefined) throw new LicenseError('input', `${what}.record.text: ${problem}`);
  return { record: { nonce: fromHex(record['nonce'] as string), text: record['text'] as string, counter: BigInt(`0x${record['counter'] as string}`), signature: fromHex(record['signature'] as string) } };
}

export const proofRequestJson = (request: ProofRequest): Json => ({ record: JSON.parse(encodeRecordLine(request.record)) as Json });

export function parseReactivationRequest(value: unknown, what = 'reactivation request'): ReactivationRequest {
  const body = fields(reactivationBody, value, what);
  return { ticket: body['ticket'] as string, ...target(body, what), requestId: fromHex(body['requestId'] as string), reason: body['reason'] as ReactivationRequest['reason'] };
}

export function reactivationRequestJson(request: ReactivationRequest): Json {
  return { ticket: request.ticket, ...targetJson(request), requestId: toHex(request.requestId), reason: request.reason };
}

export function parseCheckpointRequest(value: unknown, what = 'checkpoint request'): CheckpointRequest {
  const body = fields(checkpointBody, value, what);
  return { ticket: body['ticket'] as string, serial: serialOf(body['serial'], what), firmUpdateCounter: body['firmUpdateCounter'] as number, requestId: fromHex(body['requestId'] as string) };
}

export function checkpointRequestJson(request: CheckpointRequest): Json {
  return { ticket: request.ticket, serial: request.serial, firmUpdateCounter: request.firmUpdateCounter, requestId: toHex(request.requestId) };
}

/** What makes two requests with one request id the same request: SHA-256 of the request's JSON without the id. */
export function requestDigest(json: Json): Uint8Array {
  const rest = { ...json };
  delete rest['requestId'];
  return sha256(utf8(JSON.stringify(rest)));
}
