// Certified time (Wibu 000 §2.6 Certified Box Clock; license-update.ts kind 'time'): POST /v1/time answers a time
// certificate for one container, signed by the licensor of the firm code asked for, over the container's fresh nonce.
// It moves the firm item's certified time and the container's clock forward only; anyone may ask (it grants nothing).
// A locked container is refused (000 §2.10: "a Certified Time Server partner a request for a Certified Time Stamp").
import { toHex } from '../../bytes/index.js';
import { appendAudit, licensorRecord, signForLicensor, type Caller, type IssuingBackend } from './issuing-backend.js';
import { issuingTransaction } from './issuing-database.js';
import { refuse } from './issuing-refusal.js';
import type { TimeRequest } from './issuing-requests.js';
import { refuseLocked } from './issuing-locks.js';
import { deliverWithdrawal } from './issuing-withdrawals.js';

export interface TimeAnswer {
  /** The signed time certificate (license-update.ts file form). */
  readonly certificate: string;
  readonly time: number;
  /** A license withdrawn from this container after its reactivation elsewhere (001): a signed update to apply. */
  readonly withdrawal?: { readonly update: string; readonly digest: string };
}

/** POST /v1/time. */
export async function certifyTime(backend: IssuingBackend, request: TimeRequest, caller: Caller): Promise<TimeAnswer> {
  return issuingTransaction(backend.database, async (tx) => {
    const row = await tx.selectFrom('issuing_licensors').selectAll().where('firm_code', '=', request.firmCode).executeTakeFirst();
    if (row === undefined) throw refuse.noLicense(`no licensor of firm code ${request.firmCode} here`);
    const licensor = licensorRecord(row);
    await refuseLocked(tx, licensor.id, request.serial, 'a time certificate');
    const withdrawal = await deliverWithdrawal(backend, tx, licensor, request.serial, undefined);
    const time = backend.now();
    const signed = signForLicensor(backend, licensor, {
      kind: 'time', serial: request.serial, licensorKey: licensor.publicKey, firmCode: licensor.firmCode, time, nonce: request.nonce, resetClock: false,
    });
    await appendAudit(backend, tx, caller, { licensorId: licensor.id, action: 'time', subject: `serial ${request.serial}`, outcome: 'ok', detail: `time ${time}, nonce ${toHex(request.nonce)}` });
    return { certificate: signed.text, time, ...(withdrawal === undefined ? {} : { withdrawal: { update: withdrawal.update, digest: withdrawal.digest } }) };
  });
}
