// Restore jobs (Wibu 000 P002 §2.1: "The Hub Web Service analyses the received sequence and sends each license, which
// supports the restoring, to the corresponding Restoring Web Service"; "CM-Box Backup" §2.4 "Licensor Sees Only Own
// Licenses": each licensor gets its own firm item only; §2.5 one action, all licensors asked at the same time,
// optionally only some of the items). A licensor that is not registered offers no restore: its item is reported
// not-restorable at once. Each answer is checked before the customer sees it: an update for the target, signed by
// the item's licensor.
import { bytesEqual, concatBytes, fromHex, toHex, utf8 } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';
import { backupItemFileJson, decodeBackupLeaf, encodeBackupItemFile, parseBackupFile, splitBackup, type BackupItemFile } from '../backup/index.js';
import { LicenseError } from '../license-error.js';
import { IssuingRefusal } from '../issuing/index.js';
import { licenseBodyDigest, parseSignedBody, verifyLicenseBody } from '../license-update.js';
import type { HubBackend } from './hub-backend.js';
import { forward, refusalOf } from './hub-forward.js';
import { jobView, type JobItem, type RestoreJob, type RestoreJobView } from './hub-job-store.js';
import { findRegisteredLicensor, type RegisteredLicensor } from './hub-registry.js';
import { checkKeyHex, parseHubTarget, type HubTarget } from './hub-target.js';

export const RESTORE_ANSWER_FORMAT = 'vsc-license-restore-answer/1';
const REQUEST_ID_CONTEXT = 'vsc-hub-request/1\n';

/** The restore answer file the customer downloads and `vsc license apply` takes. */
export interface RestoreAnswerFile {
  readonly format: typeof RESTORE_ANSWER_FORMAT;
  readonly updates: readonly string[];
}

/** The backup and target of a job body, checked: the backup strictly (backup-file.ts), the target as hub-target.ts. */
export function parseJobBackup(body: Record<string, unknown>): { items: BackupItemFile[]; target: HubTarget } {
  const backup = parseBackupFile(JSON.stringify(body['backup'] ?? null));
  const target = parseHubTarget(body['target']);
  if (target.serial === backup.box.serial) throw new LicenseError('input', 'target.serial: expected another container than the backed-up one (a restore goes to a replacement)');
  return { items: splitBackup(backup), target };
}

/**
 * The request id a licensor sees for this item and target: the same restore asked again (a page reloaded) gets the
 * same id, so the licensor answers the same update instead of refusing a second restore of the source.
 */
export function restoreRequestId(item: BackupItemFile, target: HubTarget, counter: number | null, kind: 'restore' | 'transfer' = 'restore'): string {
  const text = `${kind}\n${encodeBackupItemFile(item)}\n${target.serial}\n${toHex(target.cardPublicKey)}\n${counter ?? 'none'}`;
  return toHex(sha256(concatBytes(utf8(REQUEST_ID_CONTEXT), utf8(text))).subarray(0, 16));
}

/** The item's firm text from its leaf, for a name when its licensor is not registered. */
function firmText(item: BackupItemFile): string | undefined {
  try {
    return decodeBackupLeaf(item.item.leaf).firm.text;
  } catch {
    return undefined;
  }
}

/** Checks a 200 answer: a signed update of the item's licensor for the target container, as the digest says. */
function restoredItem(item: JobItem, answer: Record<string, unknown>, target: HubTarget): void {
  const update = answer['update'];
  const digest = answer['digest'];
  const binding = answer['binding'];
  const degree = answer['degreePercent'];
  const codes = (value: unknown): number[] | undefined => (Array.isArray(value) && value.length <= 64 && value.every((code) => Number.isSafeInteger(code)) ? (value as number[]) : undefined);
  let valid = answer['status'] === 'restored' && typeof update === 'string' && update.length <= 64 * 1024 && typeof digest === 'string' && typeof binding === 'string' && binding.length <= 4096;
  if (valid) {
    try {
      const signed = parseSignedBody(update as string);
      valid = signed.body.kind === 'update' && signed.body.serial === target.serial && bytesEqual(signed.body.licensorKey, fromHex(item.licensorKey))
        && verifyLicenseBody(signed) && toHex(licenseBodyDigest(signed)) === digest;
    } catch {
      valid = false;
    }
  }
  if (!valid) {
    Object.assign(item, { status: 'refused', reason: 'signature', message: 'the licensor\'s answer is not an update for the target container signed by the licensor\'s key' });
    return;
  }
  const restored = codes(answer['restored']);
  const skipped = codes(answer['skipped']);
  Object.assign(item, {
    status: 'restored', update, digest, binding, ...(typeof degree === 'number' && degree >= 0 && degree <= 100 ? { degreePercent: degree } : {}),
    ...(restored === undefined ? {} : { restored }), ...(skipped === undefined ? {} : { skipped }),
  });
}

/** Asks one licensor for its item and writes the outcome into the job's item. */
async function restoreOne(hub: HubBackend, item: JobItem, file: BackupItemFile, licensor: RegisteredLicensor, target: HubTarget): Promise<void> {
  const counter = target.firmUpdateCounters.get(item.licensorKey) ?? null;
  const outcome = await forward({
    method: 'POST', base: licensor.restoreUrl, path: 'v1/restores', timeoutMs: hub.forwardTimeoutMs, fetch: hub.fetch,
    body: { item: backupItemFileJson(file), target: { serial: target.serial, cardPublicKey: toHex(target.cardPublicKey), firmUpdateCounter: counter }, requestId: restoreRequestId(file, target, counter) },
  });
  if (outcome.kind === 'unreachable') {
    Object.assign(item, { status: 'refused', reason: 'unavailable', message: `the restoring service of ${licensor.name} ${outcome.message}: try again later` });
    return;
  }
  if (outcome.status === 200 && typeof outcome.body === 'object' && outcome.body !== null) return restoredItem(item, outcome.body as Record<string, unknown>, target);
  const refusal = refusalOf(outcome.body);
  if (refusal === undefined || outcome.status < 400 || outcome.status >= 500) {
    Object.assign(item, { status: 'refused', reason: 'unavailable', message: `the restoring service of ${licensor.name} answered HTTP ${outcome.status}: try again later` });
    return;
  }
  const status = refusal.reason === 'approval' ? 'approval' : refusal.reason === 'not-restorable' || refusal.reason === 'no-license' ? 'not-restorable' : 'refused';
  Object.assign(item, { status, reason: refusal.reason, message: refusal.message ?? `${licensor.name} refused: ${refusal.reason}` });
}

/**
 * POST /v1/restore-jobs: splits the backup, reports the items of licensors that are not registered as not-restorable,
 * and asks every other licensor for its own item, all at once. Answers the job id at once; the job runs on.
 */
export async function startRestoreJob(hub: HubBackend, body: Record<string, unknown>): Promise<{ job: string }> {
  const { items, target } = parseJobBackup(body);
  let chosen = items;
  if (body['select'] !== undefined) {
    if (!Array.isArray(body['select'])) throw new LicenseError('input', 'select: expected an array of licensor keys');
    const select = body['select'].map((key, i) => checkKeyHex(key, `select[${i}]`));
    if (new Set(select).size !== select.length) throw new LicenseError('input', 'select: expected each licensor key once');
    for (const key of select) if (!items.some((file) => toHex(file.item.licensorKey) === key)) throw new LicenseError('input', `select: the backup holds no item of licensor ${key}`);
    chosen = items.filter((file) => select.includes(toHex(file.item.licensorKey)));
  }
  if (chosen.length === 0) throw new LicenseError('input', 'backup: expected at least one firm item to restore, got none');
  const licensors = await Promise.all(chosen.map((file) => findRegisteredLicensor(hub, file.item.licensorKey)));
  const jobItems: JobItem[] = chosen.map((file, i) => {
    const licensorKey = toHex(file.item.licensorKey);
    const name = licensors[i]?.name ?? firmText(file);
    const base = { licensorKey, firmCode: file.item.firmCode, ...(name === undefined ? {} : { name }) };
    if (licensors[i] !== undefined) return { ...base, status: 'pending' };
    return { ...base, status: 'not-restorable', reason: 'not-restorable', message: `licensor ${name ?? licensorKey} offers no restore: it is not registered at this hub; ask the licensor` };
  });
  const job = hub.jobs.create(target.serial, jobItems);
  void runJob(hub, job, chosen, licensors, target);
  return { job: job.id };
}

async function runJob(hub: HubBackend, job: RestoreJob, files: readonly BackupItemFile[], licensors: ReadonlyArray<RegisteredLicensor | undefined>, target: HubTarget): Promise<void> {
  await Promise.all(files.map(async (file, i) => {
    const licensor = licensors[i];
    const item = job.items[i]!;
    if (licensor === undefined) return;
    try {
      await restoreOne(hub, item, file, licensor, target);
    } catch {
      Object.assign(item, { status: 'refused', reason: 'unavailable', message: `the answer of ${licensor.name} could not be read: try again later` });
    }
  }));
  job.state = 'done';
}

/** GET /v1/restore-jobs/:id. */
export function viewRestoreJob(hub: HubBackend, id: string): RestoreJobView {
  const job = hub.jobs.get(id);
  if (job === undefined) throw new LicenseError('no-license', 'no such restore job (jobs are kept for an hour)');
  return jobView(job);
}

/** GET /v1/restore-jobs/:id/answer: the updates of the restored items, once every licensor answered. */
export function restoreAnswer(hub: HubBackend, id: string): { file: RestoreAnswerFile; targetSerial: string } {
  const job = hub.jobs.get(id);
  if (job === undefined) throw new LicenseError('no-license', 'no such restore job (jobs are kept for an hour)');
  if (job.state !== 'done') throw new IssuingRefusal(409, 'input', 'the restore job is still running: ask again when its state is done');
  const updates = job.items.flatMap((item) => (item.status === 'restored' && item.update !== undefined ? [item.update] : []));
  return { file: { format: RESTORE_ANSWER_FORMAT, updates }, targetSerial: job.targetSerial };
}

