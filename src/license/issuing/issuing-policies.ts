// A licensor's policy for lost licenses, kept by its restoring service (Wibu 000 "CM-Box Backup" §2.3 restore policy,
// §2.8 secret data, §2.11 repeated-restore alerts; 001 "Reactivating a License": the ISV defines the rules — how often,
// how often per time, manual approval — and "Using Blacklists": the old license is withdrawn, or the container
// blacklisted, optionally as a honey-pot license). JSON: the restore policy (restore-policy.ts) plus
// "reactivation" and "honeyPot". No row: the defaults — nothing is restored until the licensor opts in.
import { DEFAULT_RESTORE_POLICY, parseRestorePolicy, restorePolicyJson, type RestorePolicy } from '../backup/index.js';
import { LicenseError } from '../license-error.js';
import { appendAudit, lockLicensor, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, type IssuingTransaction } from './issuing-database.js';
import { refuse } from './issuing-refusal.js';

export interface ReactivationRules {
  /** Reactivations of one ticket within periodSeconds (0: none at all). */
  readonly maxPerPeriod: number;
  readonly periodSeconds: number;
  /** manual: each reactivation waits for the licensor's approval (an alert). */
  readonly approval: 'auto' | 'manual';
  /** At a reactivation on another device: withdraw the license from the old container, or lock the whole container. */
  readonly blacklist: 'license' | 'container';
}

export interface LicensorPolicy {
  readonly restore: RestorePolicy;
  readonly reactivation: ReactivationRules;
  /** 001: a withdrawn license becomes a honey-pot item instead of being deleted. */
  readonly honeyPot: boolean;
}

export const DEFAULT_REACTIVATION_RULES: ReactivationRules = Object.freeze({ maxPerPeriod: 1, periodSeconds: 365 * 86_400, approval: 'manual', blacklist: 'license' });
export const DEFAULT_LICENSOR_POLICY: LicensorPolicy = Object.freeze({ restore: DEFAULT_RESTORE_POLICY, reactivation: DEFAULT_REACTIVATION_RULES, honeyPot: false });

const bad = (message: string) => refuse.input(`restore policy: ${message}`);

function reactivationRules(value: unknown): ReactivationRules {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected reactivation to be a JSON object');
  const rules = value as Record<string, unknown>;
  for (const key of Object.keys(rules)) if (!['maxPerPeriod', 'periodSeconds', 'approval', 'blacklist'].includes(key)) throw bad(`reactivation: unknown field ${JSON.stringify(key.slice(0, 40))}`);
  const whole = (key: string, min: number, max: number): number => {
    const number = rules[key];
    if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) throw bad(`expected reactivation.${key} as a whole number in ${min}..${max}`);
    return number;
  };
  const approval = rules['approval'];
  const blacklist = rules['blacklist'];
  if (approval !== 'auto' && approval !== 'manual') throw bad('expected reactivation.approval auto or manual');
  if (blacklist !== 'license' && blacklist !== 'container') throw bad('expected reactivation.blacklist license or container');
  return { maxPerPeriod: whole('maxPerPeriod', 0, 100_000), periodSeconds: whole('periodSeconds', 1, 2 ** 40), approval, blacklist };
}

/** Parses the PUT /v1/restore-policy body strictly (400 'input' naming the field). */
export function parseLicensorPolicy(value: unknown): LicensorPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected a JSON object');
  const { reactivation, honeyPot, ...restore } = value as Record<string, unknown>;
  if (honeyPot !== undefined && typeof honeyPot !== 'boolean') throw bad('expected honeyPot true or false');
  let parsed: RestorePolicy;
  try {
    parsed = parseRestorePolicy(restore);
  } catch (error) {
    if (error instanceof LicenseError) throw refuse.input(error.message);
    throw error;
  }
  return { restore: parsed, reactivation: reactivation === undefined ? DEFAULT_REACTIVATION_RULES : reactivationRules(reactivation), honeyPot: honeyPot === true };
}

export function licensorPolicyJson(policy: LicensorPolicy): Record<string, unknown> {
  return { ...restorePolicyJson(policy.restore), reactivation: { ...policy.reactivation }, honeyPot: policy.honeyPot };
}

/** The licensor's policy (the defaults when it set none). */
export async function licensorPolicy(tx: IssuingTransaction, licensorId: number): Promise<LicensorPolicy> {
  const row = await tx.selectFrom('issuing_restore_policies').select('policy').where('licensor_id', '=', licensorId).executeTakeFirst();
  return row === undefined ? DEFAULT_LICENSOR_POLICY : parseLicensorPolicy(JSON.parse(row.policy));
}

/** PUT /v1/restore-policy: sets the licensor's policy; answers it as stored. */
export async function setLicensorPolicy(backend: IssuingBackend, licensor: LicensorRecord, body: unknown, caller: Caller): Promise<Record<string, unknown>> {
  const policy = parseLicensorPolicy(body);
  const json = licensorPolicyJson(policy);
  return issuingTransaction(backend.database, async (tx) => {
    await lockLicensor(backend, tx, licensor.id);
    const now = backend.now();
    const text = JSON.stringify(json);
    const existing = await tx.selectFrom('issuing_restore_policies').select('licensor_id').where('licensor_id', '=', licensor.id).executeTakeFirst();
    if (existing === undefined) await tx.insertInto('issuing_restore_policies').values({ licensor_id: licensor.id, policy: text, updated_at: now }).execute();
    else await tx.updateTable('issuing_restore_policies').set({ policy: text, updated_at: now }).where('licensor_id', '=', licensor.id).execute();
    const { reactivation } = policy;
    await appendAudit(backend, tx, caller, {
      licensorId: licensor.id, action: 'restore-policy.set', subject: `licensor ${licensor.name}`, outcome: 'ok',
      detail: `restore ${policy.restore.mode}, alerts ${policy.restore.alerts.alertAt}/${policy.restore.alerts.stopAt} per ${policy.restore.alerts.intervalSeconds} s, reactivation ${reactivation.maxPerPeriod} per ${reactivation.periodSeconds} s ${reactivation.approval} blacklist ${reactivation.blacklist}${policy.honeyPot ? ', honey pot' : ''}`,
    });
    return json;
  });
}

/** GET /v1/restore-policy. */
export async function getLicensorPolicy(backend: IssuingBackend, licensor: LicensorRecord): Promise<Record<string, unknown>> {
  return licensorPolicyJson(await issuingTransaction(backend.database, (tx) => licensorPolicy(tx, licensor.id)));
}
