// The JSON shapes of the restore hub's routes (Wibu 000 P002 §2.1-2.2, "CM-Box Backup" §2.4, §2.5, §2.10-2.12): what
// fastify checks every body against (no extra fields, no coercion) and GET /openapi.json describes. The backup inside a
// job body is checked by the backup module's strict parser, the target by hub-target.ts, after this first check.
import { MAX_FIRM_ITEMS } from '../license-model.js';
import { hubLicensorRequestShape, hubLockRequestShape, recordShape, shapeParts, type Shape } from '../issuing/index.js';
import { JOB_ID_PATTERN } from './hub-job-store.js';
import { MAX_FIRM_UPDATE_COUNTER } from './hub-target.js';

/** A Shape, or a plain JSON Schema where a Shape cannot say it (an open object, a map of licensor keys). */
export type HubSchema = Shape | { readonly [keyword: string]: unknown };

const { hex, whole, seconds, object, str } = shapeParts;
const keyHex = (description: string): Shape => hex(32, description);
const selectShape: Shape = { type: 'array', minItems: 1, maxItems: MAX_FIRM_ITEMS, items: keyHex('a licensor key'), description: 'only these licensors\' items (a partial restore, or one split over several containers)' };

export const errorAnswer: Shape = object({
  error: object({ reason: str('a LicenseReason, or "unavailable" when a licensor\'s service did not answer'), message: str() }, ['reason', 'message']),
}, ['error']);

// ---- licensor registry (P002 §2.1) ----

export const licensorShape: Shape = object({ licensorKey: keyHex('the licensor\'s Ed25519 key'), name: str(), restoreUrl: str('the restoring service') }, ['licensorKey', 'name', 'restoreUrl']);
export const registerBody: Shape = hubLicensorRequestShape;
export const registerAnswer: Shape = object({ licensor: licensorShape }, ['licensor']);
export const licensorsAnswer: Shape = object({ licensors: { type: 'array', maxItems: 100_000, items: licensorShape } }, ['licensors']);

// ---- central locking list (000 §2.10) ----

export const lockBody: Shape = hubLockRequestShape;
export const lockAnswer: Shape = object({
  serial: str(), lockSequence: str('the authority\'s lock sequence (vsc-license-lock/1)'), created: { type: 'boolean', description: 'false: the serial was locked already (no double locking)' },
}, ['serial', 'lockSequence', 'created']);
export const locksAnswer: Shape = object({ locks: { type: 'array', maxItems: 1_000_000, items: object({ serial: str(), lockSequence: str() }, ['serial', 'lockSequence']) } }, ['locks']);
export const unlockBody: Shape = object({ serial: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'the locked container' } }, ['serial']);
export const unlockAnswer: Shape = object({ serial: str(), unlockSequence: str('the authority\'s unlock sequence, for the card') }, ['serial', 'unlockSequence']);
export const auditQuery: Shape = object({
  after: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$', description: 'only records after this id' },
  limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: 'at most this many records (1..1000, default 100)' },
}, []);
export const auditAnswer: Shape = object({
  records: {
    type: 'array', maxItems: 1000,
    items: object({ id: whole(1, Number.MAX_SAFE_INTEGER), at: seconds(), actor: str(), client: str(), action: str(), subject: str(), outcome: str(), detail: str() }, ['id', 'at', 'actor', 'action', 'subject', 'outcome']),
  },
}, ['records']);

// ---- restore and transfer jobs (000 §2.4, §2.5, §2.12) ----

export const targetSchema: HubSchema = {
  type: 'object', additionalProperties: false, required: ['serial', 'cardPublicKey', 'firmUpdateCounters'], description: 'the replacement container (its target info file)',
  properties: {
    serial: { type: 'string', minLength: 1, maxLength: 128 },
    cardPublicKey: keyHex('the card\'s Ed25519 public key'),
    firmUpdateCounters: {
      type: 'object', maxProperties: MAX_FIRM_ITEMS, propertyNames: { pattern: '^[0-9a-f]{64}$' },
      additionalProperties: { type: ['integer', 'null'], minimum: 0, maximum: MAX_FIRM_UPDATE_COUNTER },
      description: 'licensor key → the container\'s firm update counter of that licensor, null when it has no firm item of it',
    },
  },
};
const backupSchema: HubSchema = { type: 'object', description: 'the backup file (vsc-license-backup/1), checked strictly by the hub' };

export const restoreJobBody: HubSchema = {
  type: 'object', additionalProperties: false, required: ['backup', 'target'], properties: { backup: backupSchema, target: targetSchema, select: selectShape },
};
export const jobAnswer: Shape = object({ job: { type: 'string', pattern: JOB_ID_PATTERN, description: 'the job id: 16 random bytes, the only handle' } }, ['job']);
export const jobParams: Shape = object({ id: { type: 'string', pattern: JOB_ID_PATTERN } }, ['id']);

const codes: Shape = { type: 'array', maxItems: 64, items: whole(0, 0xffff_ffff) };
export const jobItemShape: Shape = object({
  licensorKey: keyHex('the item\'s licensor'), firmCode: whole(0, 0xffff_ffff), name: str('the registered licensor\'s name, else the firm item\'s text'),
  status: { type: 'string', enum: ['pending', 'restored', 'not-restorable', 'refused', 'approval'] },
  update: str('restored: the signed update for the target'), digest: hex(32), binding: str(), reason: str('why not: a LicenseReason or "unavailable"'), message: str(),
  degreePercent: whole(0, 100, 'unit counters restored, percent'), restored: codes, skipped: codes,
}, ['licensorKey', 'firmCode', 'status']);
export const jobShape: Shape = object({ state: { type: 'string', enum: ['running', 'done'] }, items: { type: 'array', maxItems: MAX_FIRM_ITEMS, items: jobItemShape } }, ['state', 'items']);
export const restoreAnswerFile: Shape = object({
  format: { type: 'string', enum: ['vsc-license-restore-answer/1'] }, updates: { type: 'array', maxItems: MAX_FIRM_ITEMS, items: str('a signed update for the target') },
}, ['format', 'updates']);

export const transferJobBody: HubSchema = {
  type: 'object', additionalProperties: false, required: ['backup', 'target', 'licensorKey'], properties: { backup: backupSchema, target: targetSchema, licensorKey: keyHex('the licensor whose item moves') },
};
export const transferProofBody: Shape = object({
  licensorKey: keyHex('the licensor'), transfer: whole(1, Number.MAX_SAFE_INTEGER, 'the transfer id the licensor answered'), record: recordShape,
}, ['licensorKey', 'transfer', 'record']);
export const reactivationJobBody: HubSchema = {
  type: 'object', additionalProperties: false, required: ['licensorKey', 'request'],
  properties: { licensorKey: keyHex('the licensor'), request: { type: 'object', description: 'the reactivation request (the licensor\'s POST /v1/reactivations body)' } },
};
/** The licensor's answer, as it came. */
export const passedAnswer: HubSchema = { type: 'object', description: 'the licensor\'s answer as it came (status and JSON)' };

// ---- the licensor's alerts through the hub (000 §2.11) ----

export const licensorQuery: Shape = object({ licensorKey: keyHex('the licensor') }, ['licensorKey']);
export const alertParams: Shape = object({ id: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } }, ['id']);
