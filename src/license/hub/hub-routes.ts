// The restore hub's routes, v1 (Wibu 000 P002 §2.1-2.2; "CM-Box Backup" §2.4, §2.5, §2.10-2.12): one table that the HTTP
// service registers and GET /openapi.json describes. Credentials: registrations and lock reports are signed by the
// licensor's key; unlock and audit need the admin token (000 §2.10 "handled exclusively by" the central authority);
// the licensor's alert routes carry the licensor's own API key on to its service; a restore job's id is its only handle.
import { LicenseError } from '../license-error.js';
import type { HubBackend } from './hub-backend.js';
import type { HubCaller } from './hub-database.js';
import { hubAudit, listCentralLocks, reportLock, unlockSerial } from './hub-locks.js';
import { approveLicensorAlert, licensorAlerts, proveTransfer, startReactivation, startTransfer, type PassedAnswer } from './hub-pass-through.js';
import { licensorView, listRegisteredLicensors, registerLicensor } from './hub-registry.js';
import { restoreAnswer, startRestoreJob, viewRestoreJob } from './hub-restore-jobs.js';
import {
  alertParams, auditAnswer, auditQuery, jobAnswer, jobParams, jobShape, licensorQuery, licensorsAnswer, lockAnswer, lockBody, locksAnswer, passedAnswer, reactivationJobBody,
  registerAnswer, registerBody, restoreAnswerFile, restoreJobBody, transferJobBody, transferProofBody, unlockAnswer, unlockBody, type HubSchema,
} from './hub-schemas.js';
import { checkSerial } from './hub-target.js';

/** Largest body of a job that carries a whole backup file (8 MiB) and its target. */
export const JOB_BODY_LIMIT = 8 * 1024 * 1024 + 64 * 1024;

export interface HubRouteContext {
  readonly hub: HubBackend;
  readonly caller: HubCaller;
  readonly body: unknown;
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  /** The Authorization header, for the licensor routes that pass it on. */
  readonly authorization?: string;
}

/** An answer with its own status and headers (a pass-through, a download). */
export class HubReply {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Readonly<Record<string, string>> = {}) {}
}

export interface HubRoute {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly operationId: string;
  readonly summary: string;
  /** 'admin': the admin token; 'licensor-key': a licensor's API key, passed on; 'none'. */
  readonly auth: 'none' | 'admin' | 'licensor-key';
  readonly body?: HubSchema;
  readonly params?: HubSchema;
  readonly querystring?: HubSchema;
  readonly answer: HubSchema;
  readonly status: 200 | 202;
  readonly bodyLimit?: number;
  handle(context: HubRouteContext): Promise<unknown>;
}

const fields = (context: HubRouteContext): Record<string, unknown> => context.body as Record<string, unknown>;
const passed = (answer: PassedAnswer): HubReply => new HubReply(answer.status, answer.body);

export const HUB_ROUTES: readonly HubRoute[] = [
  {
    method: 'GET', url: '/v1/licensors', operationId: 'listLicensors', auth: 'none', answer: licensorsAnswer, status: 200,
    summary: 'the licensors whose restoring services the hub knows (P002 §2.1), by name',
    handle: async (context) => ({ licensors: (await listRegisteredLicensors(context.hub)).map(licensorView) }),
  },
  {
    method: 'POST', url: '/v1/licensors', operationId: 'registerLicensor', auth: 'none', body: registerBody, answer: registerAnswer, status: 200,
    summary: 'a licensor the hub\'s operator authorized (vsc license hub authorize; else 403) registers or moves its restoring service, signed by its key; the newest signed time wins',
    handle: async (context) => ({ licensor: (await registerLicensor(context.hub, context.body, context.caller)).licensor }),
  },
  {
    method: 'POST', url: '/v1/locks', operationId: 'reportLock', auth: 'none', body: lockBody, answer: lockAnswer, status: 200,
    summary: 'an authorized, registered licensor reports a serial it restored elsewhere (000 §2.10; else 403): the authority\'s lock sequence, made once',
    handle: (context) => reportLock(context.hub, context.body, context.caller),
  },
  {
    method: 'GET', url: '/v1/locks', operationId: 'listLocks', auth: 'none', answer: locksAnswer, status: 200,
    summary: 'the central locking list with each lock sequence, for licensors and time services to download',
    handle: (context) => listCentralLocks(context.hub),
  },
  {
    method: 'POST', url: '/v1/unlocks', operationId: 'unlock', auth: 'admin', body: unlockBody, answer: unlockAnswer, status: 200,
    summary: 'the central authority unlocks a serial (000 §2.10): its unlock sequence; the serial leaves the list',
    handle: (context) => unlockSerial(context.hub, checkSerial(fields(context)['serial'], 'serial'), { ...context.caller, actor: 'administrator' }),
  },
  {
    method: 'GET', url: '/v1/audit', operationId: 'readAudit', auth: 'admin', querystring: auditQuery, answer: auditAnswer, status: 200,
    summary: 'the hub\'s audit: registrations, lock reports, locks and unlocks, oldest first',
    handle: async (context) => ({
      records: await hubAudit(context.hub, {
        ...(context.query['after'] === undefined ? {} : { after: Number(context.query['after']) }), ...(context.query['limit'] === undefined ? {} : { limit: Number(context.query['limit']) }),
      }),
    }),
  },
  {
    method: 'POST', url: '/v1/restore-jobs', operationId: 'startRestoreJob', auth: 'none', body: restoreJobBody, answer: jobAnswer, status: 202, bodyLimit: JOB_BODY_LIMIT,
    summary: 'restore a backup onto a replacement container: each licensor gets only its own item, all at once (000 §2.4, §2.5)',
    handle: (context) => startRestoreJob(context.hub, fields(context)),
  },
  {
    method: 'GET', url: '/v1/restore-jobs/:id', operationId: 'viewRestoreJob', auth: 'none', params: jobParams, answer: jobShape, status: 200,
    summary: 'a restore job\'s progress: each item\'s status changes as its licensor answers',
    handle: async (context) => viewRestoreJob(context.hub, context.params['id']!),
  },
  {
    method: 'GET', url: '/v1/restore-jobs/:id/answer', operationId: 'restoreAnswer', auth: 'none', params: jobParams, answer: restoreAnswerFile, status: 200,
    summary: 'the restore answer file of a finished job (the updates of the restored items), for "vsc license apply"',
    handle: async (context) => {
      const { file, targetSerial } = restoreAnswer(context.hub, context.params['id']!);
      const name = `restore-answer-${targetSerial.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60)}.json`;
      return new HubReply(200, file, { 'content-disposition': `attachment; filename="${name}"` });
    },
  },
  {
    method: 'POST', url: '/v1/transfer-jobs', operationId: 'startTransfer', auth: 'none', body: transferJobBody, answer: passedAnswer, status: 200, bodyLimit: JOB_BODY_LIMIT,
    summary: 'transfer one licensor\'s item (000 §2.12): only that item goes to the licensor\'s POST /v1/transfers; its answer passes through',
    handle: async (context) => passed(await startTransfer(context.hub, fields(context))),
  },
  {
    method: 'POST', url: '/v1/transfer-jobs/proof', operationId: 'proveTransfer', auth: 'none', body: transferProofBody, answer: passedAnswer, status: 200,
    summary: 'the source card\'s record of the delete, to the licensor\'s POST /v1/transfers/:id/proof; its answer passes through',
    handle: async (context) => passed(await proveTransfer(context.hub, fields(context))),
  },
  {
    method: 'POST', url: '/v1/reactivation-jobs', operationId: 'startReactivation', auth: 'none', body: reactivationJobBody, answer: passedAnswer, status: 200,
    summary: 'a reactivation request (001) to the licensor\'s POST /v1/reactivations; its answer passes through',
    handle: async (context) => passed(await startReactivation(context.hub, fields(context))),
  },
  {
    method: 'GET', url: '/v1/licensor/alerts', operationId: 'licensorAlerts', auth: 'licensor-key', querystring: licensorQuery, answer: passedAnswer, status: 200,
    summary: 'the licensor\'s alerts (000 §2.11) from its service, with its API key (passed on, never kept)',
    handle: async (context) => passed(await licensorAlerts(context.hub, context.query['licensorKey'], context.authorization)),
  },
  {
    method: 'POST', url: '/v1/licensor/alerts/:id/approve', operationId: 'approveLicensorAlert', auth: 'licensor-key', params: alertParams, querystring: licensorQuery, answer: passedAnswer, status: 200,
    summary: 'the licensor approves what waits on an alert, through its service, with its API key',
    handle: async (context) => passed(await approveLicensorAlert(context.hub, context.query['licensorKey'], context.params['id']!, context.authorization)),
  },
];

/** Throws 401 'unauthenticated' unless `authorization` names some bearer credential (the licensor's service checks it). */
export function requireBearer(authorization: string | undefined): string {
  if (typeof authorization !== 'string' || !/^Bearer \S{1,200}$/.test(authorization)) throw new LicenseError('unauthenticated', 'expected an Authorization: Bearer header with the licensor\'s API key');
  return authorization;
}
