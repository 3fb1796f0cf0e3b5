// What the self-service page asks of one licensor through the hub (Wibu 000 "CM-Box Backup" §2.12 "Platform for License
// Transfer", §2.11 the licensor's Repeated Restoring Alert List; 001 reactivation): a transfer (the same splitting as a
// restore, one licensor), its proof, a reactivation, and the licensor's own alerts and approvals. The licensor's answer
// passes through as it is (status and JSON); its API key passes through in the Authorization header and is never kept.
import { toHex } from '../../bytes/index.js';
import { backupItemFileJson } from '../backup/index.js';
import { LicenseError } from '../license-error.js';
import { fromHex } from '../../bytes/index.js';
import type { HubBackend } from './hub-backend.js';
import { forward, shownText, type ForwardCall } from './hub-forward.js';
import { findRegisteredLicensor, type RegisteredLicensor } from './hub-registry.js';
import { parseJobBackup, restoreRequestId } from './hub-restore-jobs.js';
import { checkKeyHex } from './hub-target.js';

/** An answer the hub sends on as it came: the licensor's status and JSON body. */
export interface PassedAnswer {
  readonly status: number;
  readonly body: unknown;
}

async function licensorOf(hub: HubBackend, keyHex: unknown, where: string): Promise<RegisteredLicensor> {
  const key = checkKeyHex(keyHex, where);
  const licensor = await findRegisteredLicensor(hub, fromHex(key));
  if (licensor === undefined) throw new LicenseError('no-license', `licensor ${key} is not registered at this hub: it offers no restoring service here`);
  return licensor;
}

/** Calls the licensor's service; its 2xx and 4xx JSON answers pass through, anything else is 502 'unavailable'. */
async function pass(hub: HubBackend, licensor: RegisteredLicensor, call: Omit<ForwardCall, 'base' | 'timeoutMs' | 'fetch'>): Promise<PassedAnswer> {
  const outcome = await forward({ ...call, base: licensor.restoreUrl, timeoutMs: hub.forwardTimeoutMs, fetch: hub.fetch });
  const unavailable = (why: string): PassedAnswer => ({ status: 502, body: { error: { reason: 'unavailable', message: `the restoring service of ${shownText(licensor.name) ?? 'the licensor'} ${why}: try again later` } } });
  if (outcome.kind === 'unreachable') return unavailable(outcome.message);
  if (outcome.status < 200 || outcome.status >= 500 || typeof outcome.body !== 'object' || outcome.body === null) return unavailable(`answered HTTP ${outcome.status}`);
  return { status: outcome.status, body: outcome.body };
}

/** POST /v1/transfer-jobs {"backup", "target", "licensorKey"}: only that licensor's item goes to its /v1/transfers. */
export async function startTransfer(hub: HubBackend, body: Record<string, unknown>): Promise<PassedAnswer> {
  const { items, target } = parseJobBackup(body);
  const key = checkKeyHex(body['licensorKey'], 'licensorKey');
  const file = items.find((candidate) => toHex(candidate.item.licensorKey) === key);
  if (file === undefined) throw new LicenseError('input', `licensorKey: the backup holds no item of licensor ${key}`);
  const licensor = await licensorOf(hub, key, 'licensorKey');
  const counter = target.firmUpdateCounters.get(key) ?? null;
  return pass(hub, licensor, {
    method: 'POST', path: 'v1/transfers',
    body: { item: backupItemFileJson(file), target: { serial: target.serial, cardPublicKey: toHex(target.cardPublicKey), firmUpdateCounter: counter }, requestId: restoreRequestId(file, target, counter, 'transfer') },
  });
}

/** POST /v1/transfer-jobs/proof {"licensorKey", "transfer", "record"}: to the licensor's /v1/transfers/:id/proof. */
export async function proveTransfer(hub: HubBackend, body: Record<string, unknown>): Promise<PassedAnswer> {
  const licensor = await licensorOf(hub, body['licensorKey'], 'licensorKey');
  const transfer = body['transfer'];
  if (!Number.isSafeInteger(transfer) || (transfer as number) < 1) throw new LicenseError('input', 'transfer: expected the transfer id the licensor answered');
  return pass(hub, licensor, { method: 'POST', path: `v1/transfers/${String(transfer)}/proof`, body: { record: body['record'] } });
}

/** POST /v1/reactivation-jobs {"licensorKey", "request"}: the request to the licensor's /v1/reactivations (001). */
export async function startReactivation(hub: HubBackend, body: Record<string, unknown>): Promise<PassedAnswer> {
  const licensor = await licensorOf(hub, body['licensorKey'], 'licensorKey');
  return pass(hub, licensor, { method: 'POST', path: 'v1/reactivations', body: body['request'] });
}

/** GET /v1/licensor/alerts?licensorKey=: the licensor's alerts, with its API key (000 §2.11). */
export async function licensorAlerts(hub: HubBackend, licensorKey: unknown, authorization: string | undefined): Promise<PassedAnswer> {
  const licensor = await licensorOf(hub, licensorKey, 'licensorKey');
  return pass(hub, licensor, { method: 'GET', path: 'v1/alerts', ...(authorization === undefined ? {} : { authorization }) });
}

/** POST /v1/licensor/alerts/:id/approve?licensorKey=: the licensor approves what waits on an alert. */
export async function approveLicensorAlert(hub: HubBackend, licensorKey: unknown, id: string, authorization: string | undefined): Promise<PassedAnswer> {
  const licensor = await licensorOf(hub, licensorKey, 'licensorKey');
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw new LicenseError('input', 'id: expected the alert\'s id');
  return pass(hub, licensor, { method: 'POST', path: `v1/alerts/${id}/approve`, ...(authorization === undefined ? {} : { authorization }) });
}
