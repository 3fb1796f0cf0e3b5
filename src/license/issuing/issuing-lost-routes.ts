// The restoring service's routes (issue 17, lost licenses; Wibu 000 "CM-Box Backup" §2.2-2.12, 001): the issuing
// service is the licensor's restoring service ("License Generator", 000 §2.2). Licensor routes (API key): the restore
// policy, the locking list, the alerts and their approval. Customer routes, the credential being what the card signed
// (a backup item, a delete-firm record) or the ticket: restores, transfers, reactivations, checkpoint renewals.
import { approveAlert, listAlerts } from './issuing-alerts.js';
import { renewCheckpoint } from './issuing-checkpoints.js';
import { listLocks } from './issuing-locks.js';
import { parseCheckpointRequest, parseProofRequest, parseReactivationRequest, parseRestoreRequest } from './issuing-lost-requests.js';
import {
  alertAnswer, alertParams, alertsAnswer, checkpointAnswer, checkpointBody, locksAnswer, policyAnswer, policyShape, proofBody, reactivationBody, restoreAnswer, restoreBody,
  RESTORE_BODY_LIMIT, transferAnswer, transferBody, transferParams, transferredAnswer,
} from './issuing-lost-schemas.js';
import { getLicensorPolicy, setLicensorPolicy } from './issuing-policies.js';
import { reactivate } from './issuing-reactivations.js';
import { restoreItem } from './issuing-restores.js';
import type { IssuingRoute, RouteContext } from './issuing-routes.js';
import { signedAnswer } from './issuing-schemas.js';
import { proveTransfer, startTransfer } from './issuing-transfers.js';

const licensorOf = (context: RouteContext) => context.licensor!;
const lockAuthority = (context: RouteContext) => (context.hub === undefined ? {} : { lockAuthority: context.hub.authorityKey });

export const LOST_LICENSE_ROUTES: readonly IssuingRoute[] = [
  {
    method: 'PUT', url: '/v1/restore-policy', operationId: 'setRestorePolicy', licensor: true, body: policyShape, answer: policyAnswer, status: 200,
    summary: 'the licensor\'s restore policy (000 §2.3, §2.8, §2.11), reactivation rules and honey-pot setting (001); restore mode none until set',
    handle: (context) => setLicensorPolicy(context.backend, licensorOf(context), context.body, context.caller),
  },
  {
    method: 'GET', url: '/v1/restore-policy', operationId: 'getRestorePolicy', licensor: true, answer: policyAnswer, status: 200,
    summary: 'the licensor\'s restore policy, reactivation rules and honey-pot setting',
    handle: (context) => getLicensorPolicy(context.backend, licensorOf(context)),
  },
  {
    method: 'POST', url: '/v1/restores', operationId: 'restore', licensor: false, body: restoreBody, answer: restoreAnswer, status: 200, bodyLimit: RESTORE_BODY_LIMIT,
    summary: 'restore one backed-up firm item onto a replacement container (000 §2.2): the signed update for it; the source is locked (§2.10)',
    handle: async (context) => {
      const outcome = await restoreItem(context.backend, parseRestoreRequest(context.body, 'body'), context.caller, lockAuthority(context));
      context.hub?.reportSoon();
      return outcome.answer;
    },
  },
  {
    method: 'POST', url: '/v1/transfers', operationId: 'transfer', licensor: false, body: transferBody, answer: transferAnswer, status: 200, bodyLimit: RESTORE_BODY_LIMIT,
    summary: 'start a transfer of one backed-up firm item (000 §2.12): the signed delete-firm for the source container',
    handle: (context) => startTransfer(context.backend, parseRestoreRequest(context.body, 'body'), context.caller, lockAuthority(context)),
  },
  {
    method: 'POST', url: '/v1/transfers/:id/proof', operationId: 'proveTransfer', licensor: false, params: transferParams, body: proofBody, answer: transferredAnswer, status: 200,
    summary: 'the source card\'s record of the applied delete-firm: the signed update for the target (sent again: the same answer)',
    handle: (context) => proveTransfer(context.backend, Number(context.params['id']), parseProofRequest(context.body, 'body'), context.caller, lockAuthority(context)),
  },
  {
    method: 'GET', url: '/v1/locks', operationId: 'listLocks', licensor: true, answer: locksAnswer, status: 200,
    summary: 'the licensor\'s local locking list (000 §2.10), with the central lock sequence of each serial the hub locked',
    handle: (context) => listLocks(context.backend, licensorOf(context), context.caller),
  },
  {
    method: 'GET', url: '/v1/alerts', operationId: 'listAlerts', licensor: true, answer: alertsAnswer, status: 200,
    summary: 'the licensor\'s alerts: repeated restores along a chain (000 §2.11), reactivations waiting for approval (001)',
    handle: (context) => listAlerts(context.backend, licensorOf(context), context.caller),
  },
  {
    method: 'POST', url: '/v1/alerts/:id/approve', operationId: 'approveAlert', licensor: true, params: alertParams, answer: alertAnswer, status: 200,
    summary: 'approve a stopped restore or reactivation: the same request then goes ahead, once',
    handle: (context) => approveAlert(context.backend, licensorOf(context), Number(context.params['id']), context.caller),
  },
  {
    method: 'POST', url: '/v1/reactivations', operationId: 'reactivate', licensor: false, body: reactivationBody, answer: signedAnswer, status: 200,
    summary: 'reactivate a ticket on a reset container or on another device (001), within the licensor\'s rules; the old container is blacklisted',
    handle: async (context) => {
      const outcome = await reactivate(context.backend, parseReactivationRequest(context.body, 'body'), context.caller);
      if (outcome.locked !== undefined) context.hub?.reportSoon();
      return outcome.answer;
    },
  },
  {
    method: 'POST', url: '/v1/checkpoints', operationId: 'renewCheckpoint', licensor: false, body: checkpointBody, answer: checkpointAnswer, status: 200,
    summary: 'renew a checkpoint license (001) once fewer than its threshold days remain (earlier: 409 limit with dueAt)',
    handle: (context) => renewCheckpoint(context.backend, parseCheckpointRequest(context.body, 'body'), context.caller),
  },
];
