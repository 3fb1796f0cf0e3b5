// A licensor's restore policy (Wibu 000 "CM-Box Backup" §2.3 "Licensor can Decide Restore Policy", §2.8 secret data,
// §2.11 repeated-restore alerts): full, partial (some product items) or none; unit counters by the backup's age
// (restore-degree.ts); secret data not restored, or restored with fixed, random or mixed data; the two chain thresholds.
// JSON, as the restoring service stores it and `PUT /v1/restore-policy` takes it:
//   {"mode": "full"|"partial"|"none", "products"?: [codes] (partial), "units": {"maxTimeSeconds","maxDegreePercent",
//    "minTimeSeconds","minDegreePercent"}, "secretData": {"mode": "none"|"fixed"|"random"|"mixed", "fixed"?: hex,
//    "randomLength"?: n}, "alerts": {"intervalSeconds","alertAt","stopAt"}}
import { fromHex, toHex } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_CODE, MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM } from '../license-model.js';
import { DAY_SECONDS } from '../license-model-options.js';
import { checkUnitRestoreRule, FULL_UNIT_RESTORE, MAX_RULE_SECONDS, type UnitRestoreRule } from './restore-degree.js';

export type RestoreMode = 'full' | 'partial' | 'none';
export type SecretRestoreMode = 'none' | 'fixed' | 'random' | 'mixed';

export interface SecretRestore {
  readonly mode: SecretRestoreMode;
  /** fixed, mixed: the fixed part. */
  readonly fixed?: Uint8Array;
  /** random, mixed: how many random bytes (drawn on the card for random; by the service after the fixed part for mixed). */
  readonly randomLength?: number;
}

/** 000 §2.11: restores along one chain of containers within `intervalSeconds`: at `alertAt` the licensor is told, at `stopAt` automatic restores stop until it approves. */
export interface RestoreAlertRule {
  readonly intervalSeconds: number;
  readonly alertAt: number;
  readonly stopAt: number;
}

export interface RestorePolicy {
  readonly mode: RestoreMode;
  readonly products?: readonly number[];
  readonly units: UnitRestoreRule;
  readonly secretData: SecretRestore;
  readonly alerts: RestoreAlertRule;
}

/** A licensor restores nothing until it says otherwise (000 §2.2: the licensor opts in). */
export const DEFAULT_RESTORE_POLICY: RestorePolicy = Object.freeze({
  mode: 'none',
  units: FULL_UNIT_RESTORE,
  secretData: Object.freeze({ mode: 'none' }),
  alerts: Object.freeze({ intervalSeconds: 30 * DAY_SECONDS, alertAt: 2, stopAt: 3 }),
});

type Json = Record<string, unknown>;
const input = (message: string): LicenseError => new LicenseError('input', `restore policy: ${message}`);

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw input(`expected ${what} to be a JSON object`);
  return value as Json;
}

function onlyKeys(value: Json, what: string, required: readonly string[], optional: readonly string[] = []): void {
  for (const key of required) if (!(key in value)) throw input(`${what}: missing field ${key}`);
  for (const key of Object.keys(value)) if (!required.includes(key) && !optional.includes(key)) throw input(`${what}: unknown field ${JSON.stringify(key.slice(0, 40))}`);
}

function whole(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw input(`expected ${what} as a whole number in ${min}..${max}, got ${JSON.stringify(value)?.slice(0, 30)}`);
  return value;
}

function secretRestore(value: unknown): SecretRestore {
  const secret = object(value, 'secretData');
  onlyKeys(secret, 'secretData', ['mode'], ['fixed', 'randomLength']);
  const mode = secret['mode'];
  if (mode !== 'none' && mode !== 'fixed' && mode !== 'random' && mode !== 'mixed') throw input('expected secretData.mode none, fixed, random or mixed');
  const wantsFixed = mode === 'fixed' || mode === 'mixed';
  const wantsRandom = mode === 'random' || mode === 'mixed';
  if (wantsFixed !== (secret['fixed'] !== undefined)) throw input(`secretData.fixed: ${wantsFixed ? 'required' : 'not allowed'} with mode ${mode}`);
  if (wantsRandom !== (secret['randomLength'] !== undefined)) throw input(`secretData.randomLength: ${wantsRandom ? 'required' : 'not allowed'} with mode ${mode}`);
  let fixed: Uint8Array | undefined;
  if (wantsFixed) {
    const hex = secret['fixed'];
    if (typeof hex !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(hex)) throw input('expected secretData.fixed as lowercase hex, at least one byte');
    fixed = fromHex(hex);
  }
  const randomLength = wantsRandom ? whole(secret['randomLength'], 'secretData.randomLength', 1, MAX_ITEM_DATA_BYTES) : undefined;
  if ((fixed?.length ?? 0) + (randomLength ?? 0) > MAX_ITEM_DATA_BYTES) throw input(`expected secret data of at most ${MAX_ITEM_DATA_BYTES} bytes in all`);
  return { mode, ...(fixed === undefined ? {} : { fixed }), ...(randomLength === undefined ? {} : { randomLength }) };
}

function alertRule(value: unknown): RestoreAlertRule {
  const alerts = object(value, 'alerts');
  onlyKeys(alerts, 'alerts', ['intervalSeconds', 'alertAt', 'stopAt']);
  const alertAt = whole(alerts['alertAt'], 'alerts.alertAt', 1, 1000);
  return {
    intervalSeconds: whole(alerts['intervalSeconds'], 'alerts.intervalSeconds', 1, MAX_RULE_SECONDS),
    alertAt,
    stopAt: whole(alerts['stopAt'], 'alerts.stopAt', alertAt, 1000),
  };
}

function unitRule(value: unknown): UnitRestoreRule {
  const units = object(value, 'units');
  onlyKeys(units, 'units', ['maxTimeSeconds', 'maxDegreePercent', 'minTimeSeconds', 'minDegreePercent']);
  try {
    return checkUnitRestoreRule({
      maxTimeSeconds: units['maxTimeSeconds'] as number, maxDegreePercent: units['maxDegreePercent'] as number,
      minTimeSeconds: units['minTimeSeconds'] as number, minDegreePercent: units['minDegreePercent'] as number,
    });
  } catch (error) {
    if (error instanceof LicenseError) throw input(error.message);
    throw error;
  }
}

/** Parses a policy strictly: every field checked, nothing unknown accepted; LicenseError 'input' names the field. */
export function parseRestorePolicy(value: unknown): RestorePolicy {
  const policy = object(value, 'the policy');
  onlyKeys(policy, 'the policy', ['mode', 'units', 'secretData', 'alerts'], ['products']);
  const mode = policy['mode'];
  if (mode !== 'full' && mode !== 'partial' && mode !== 'none') throw input('expected mode full, partial or none');
  if ((mode === 'partial') !== (policy['products'] !== undefined)) throw input(`products: ${mode === 'partial' ? 'required' : 'only'} with mode partial`);
  let products: number[] | undefined;
  if (mode === 'partial') {
    const list = policy['products'];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PRODUCT_ITEMS_PER_FIRM) throw input(`expected products as 1..${MAX_PRODUCT_ITEMS_PER_FIRM} product codes`);
    products = list.map((code, index) => whole(code, `products[${index}]`, 0, MAX_CODE));
    if (new Set(products).size !== products.length) throw input('expected each product code once');
  }
  return {
    mode, ...(products === undefined ? {} : { products }), units: unitRule(policy['units']), secretData: secretRestore(policy['secretData']), alerts: alertRule(policy['alerts']),
  };
}

export function restorePolicyJson(policy: RestorePolicy): Record<string, unknown> {
  const { secretData } = policy;
  return {
    mode: policy.mode,
    ...(policy.products === undefined ? {} : { products: [...policy.products] }),
    units: { ...policy.units },
    secretData: { mode: secretData.mode, ...(secretData.fixed === undefined ? {} : { fixed: toHex(secretData.fixed) }), ...(secretData.randomLength === undefined ? {} : { randomLength: secretData.randomLength }) },
    alerts: { ...policy.alerts },
  };
}
