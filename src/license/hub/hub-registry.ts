// The hub's licensor registry (Wibu 000 P002 §2.1: the hub "knows the Restoring Web Services of all licensors who
// support such a restore operation"; opt-in): a licensor registers its restoring service's URL with a request signed by
// its own key (hub-requests.ts of the issuing service). The newest signed time wins; an older or equal one that says
// something else is refused 'replayed', so a captured registration cannot move a licensor back to an old URL.
import { bytesEqual, toHex } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import { IssuingRefusal, verifyHubLicensorRequest, type HubLicensorRequest } from '../issuing/index.js';
import { appendHubAudit, hubTransaction, hubWhole, type HubCaller, type HubLicensorsTable } from './hub-database.js';
import type { HubBackend } from './hub-backend.js';
import type { Selectable } from 'kysely';

export interface RegisteredLicensor {
  readonly licensorKey: Uint8Array;
  readonly name: string;
  readonly restoreUrl: string;
  readonly signedTime: number;
}

/** GET /v1/licensors answers these fields of each. */
export interface LicensorView {
  readonly licensorKey: string;
  readonly name: string;
  readonly restoreUrl: string;
}

const registered = (row: Selectable<HubLicensorsTable>): RegisteredLicensor => ({
  licensorKey: Uint8Array.from(row.licensor_key), name: row.name, restoreUrl: row.restore_url, signedTime: hubWhole(row.signed_time),
});

export const licensorView = (licensor: RegisteredLicensor): LicensorView => ({ licensorKey: toHex(licensor.licensorKey), name: licensor.name, restoreUrl: licensor.restoreUrl });

/** Writes the audit row of a refused request in a transaction of its own (the request's own changed nothing). */
export async function auditRefusal(hub: HubBackend, caller: HubCaller, action: string, subject: string, error: unknown): Promise<void> {
  if (!(error instanceof LicenseError)) return;
  await hubTransaction(hub.database, (tx) => appendHubAudit(tx, hub.now(), caller, { action, subject, outcome: error.reason, detail: error.message.slice(0, 300) }));
}

/**
 * POST /v1/licensors: verifies the signed registration (fresh within ±5 minutes) and stores it when it is newer than
 * the licensor's registration so far. Refusals: 'input', 'signature', 'replayed', and 403 'unauthenticated' for a key
 * the hub's operator has not authorized (000 §2.10: a stranger who could register could lock any container).
 */
export async function registerLicensor(hub: HubBackend, body: unknown, caller: HubCaller): Promise<{ licensor: LicensorView; changed: boolean }> {
  let request: HubLicensorRequest;
  try {
    request = verifyHubLicensorRequest(body, { now: hub.now() });
  } catch (error) {
    const key = typeof body === 'object' && body !== null ? String((body as Record<string, unknown>)['licensorKey']).slice(0, 64) : '?';
    await auditRefusal(hub, caller, 'licensor.register', `licensor ${key}`, error);
    throw error;
  }
  const subject = `licensor ${toHex(request.licensorKey)}`;
  const who = { ...caller, actor: `licensor ${request.name}` };
  try {
    return await hubTransaction(hub.database, async (tx) => {
      const now = hub.now();
      const authorized = await tx.selectFrom('hub_authorized_licensors').select('name').where('licensor_key', '=', request.licensorKey).executeTakeFirst();
      if (authorized === undefined) {
        throw new IssuingRefusal(403, 'unauthenticated', `licensor ${toHex(request.licensorKey).slice(0, 16)}… is not authorized at this hub: its operator runs vsc license hub authorize`);
      }
      const row = await tx.selectFrom('hub_licensors').selectAll().where('licensor_key', '=', request.licensorKey).executeTakeFirst();
      const before = row === undefined ? undefined : registered(row);
      if (before !== undefined) {
        const same = before.signedTime === request.time && before.name === request.name && before.restoreUrl === request.restoreUrl;
        if (same) return { licensor: licensorView(before), changed: false };
        if (request.time <= before.signedTime) {
          throw new LicenseError('replayed', `a registration of this licensor signed at ${before.signedTime} is newer than this one (${request.time})`);
        }
        await tx.updateTable('hub_licensors').set({ name: request.name, restore_url: request.restoreUrl, signed_time: request.time, updated_at: now })
          .where('licensor_key', '=', request.licensorKey).execute();
        // A restoring service registers again on a timer: a newer time alone is no news for the audit.
        if (before.name === request.name && before.restoreUrl === request.restoreUrl) return { licensor: licensorView(before), changed: false };
      } else {
        await tx.insertInto('hub_licensors').values({
          licensor_key: request.licensorKey, name: request.name, restore_url: request.restoreUrl, signed_time: request.time, registered_at: now, updated_at: now,
        }).execute();
      }
      await appendHubAudit(tx, now, who, { action: 'licensor.register', subject, outcome: 'ok', detail: `${before === undefined ? 'new' : 'updated'}: ${request.name} at ${request.restoreUrl}` });
      return { licensor: licensorView({ ...request, signedTime: request.time }), changed: true };
    });
  } catch (error) {
    await auditRefusal(hub, who, 'licensor.register', subject, error);
    throw error;
  }
}

/** The operator authorizes a licensor key (000 §2.10); authorizing it again renames it. Audited. */
export async function authorizeLicensor(hub: HubBackend, licensorKey: Uint8Array, name: string, caller: HubCaller): Promise<{ changed: boolean }> {
  return hubTransaction(hub.database, async (tx) => {
    const now = hub.now();
    const row = await tx.selectFrom('hub_authorized_licensors').select('name').where('licensor_key', '=', licensorKey).executeTakeFirst();
    if (row?.name === name) return { changed: false };
    if (row === undefined) await tx.insertInto('hub_authorized_licensors').values({ licensor_key: licensorKey, name, authorized_at: now }).execute();
    else await tx.updateTable('hub_authorized_licensors').set({ name }).where('licensor_key', '=', licensorKey).execute();
    await appendHubAudit(tx, now, caller, { action: 'licensor.authorize', subject: `licensor ${toHex(licensorKey)}`, outcome: 'ok', detail: name });
    return { changed: true };
  });
}

/** The operator revokes a licensor: no more registrations or lock reports, and its registration is gone. Audited. */
export async function revokeLicensor(hub: HubBackend, licensorKey: Uint8Array, caller: HubCaller): Promise<{ revoked: boolean }> {
  return hubTransaction(hub.database, async (tx) => {
    const removed = await tx.deleteFrom('hub_authorized_licensors').where('licensor_key', '=', licensorKey).executeTakeFirst();
    await tx.deleteFrom('hub_licensors').where('licensor_key', '=', licensorKey).execute();
    const revoked = Number(removed.numDeletedRows) > 0;
    await appendHubAudit(tx, hub.now(), caller, { action: 'licensor.revoke', subject: `licensor ${toHex(licensorKey)}`, outcome: revoked ? 'ok' : 'not-authorized' });
    return { revoked };
  });
}

/**
 * The registrations of authorized licensors only: a registration row whose key is not (or no longer) authorized — one
 * stored before the hub checked authorization, say — is neither listed, nor forwarded to, nor takes lock reports.
 */
const authorizedRegistrations = (hub: HubBackend) => hub.database.db.selectFrom('hub_licensors')
  .innerJoin('hub_authorized_licensors', 'hub_authorized_licensors.licensor_key', 'hub_licensors.licensor_key').selectAll('hub_licensors');

/** Every registered (hence authorized) licensor, by name. */
export async function listRegisteredLicensors(hub: HubBackend): Promise<RegisteredLicensor[]> {
  const rows = await authorizedRegistrations(hub).orderBy('hub_licensors.name').orderBy('hub_licensors.licensor_key').execute();
  return rows.map(registered);
}

/** The registered (hence authorized) licensor of `licensorKey`, or undefined. */
export async function findRegisteredLicensor(hub: HubBackend, licensorKey: Uint8Array): Promise<RegisteredLicensor | undefined> {
  const row = await authorizedRegistrations(hub).where('hub_licensors.licensor_key', '=', licensorKey).executeTakeFirst();
  const found = row === undefined ? undefined : registered(row);
  return found !== undefined && bytesEqual(found.licensorKey, licensorKey) ? found : undefined;
}
