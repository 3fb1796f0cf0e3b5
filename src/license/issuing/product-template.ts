// A product's template (Wibu 002 Table 1 as the issuing back end sells it): the ProductSpec JSON of license-update.ts
// that put-product carries, where absolute times may be replaced by relative ones, plus the issuing rules.
//   durationSeconds          expiration = activation time + duration (rental, leasing, subscription); a renewal moves
//                            the expiration by the duration from the later of now and the current expiration
//   activationDelaySeconds   activationTime = time of activation + delay
//   maxActivations           activations one ticket may carry (volume license; default 1): an order of N seats
//                            makes ceil(N / maxActivations) tickets
//   maxDeactivations, cyclePeriodSeconds   at most that many deactivations of one ticket per period (activation cycling)
//   checkpoint {validityDays, thresholdDays}   001 checkpoint license: expiration = activation + validity, renewed
//                            (POST /v1/checkpoints) once fewer than thresholdDays remain
// For brevity the spec's productCode and text default to the product's own (and must equal them when given),
// featureMap to 0, payment to prepaid, licenseQuantity to 1, protected / hidden / secret data to empty.
import type { UnixSeconds } from '../license-model.js';
import { encodeBody, parseProductSpec, type ProductSpec, type UpdateOperation } from '../license-update.js';
import { IssuingRefusal } from './issuing-refusal.js';

export const MAX_ACTIVATIONS_PER_TICKET = 100_000;
const MAX_TIME = 2 ** 40;
const MAX_PERIOD = 2 ** 32 - 1;
const RULES = ['durationSeconds', 'activationDelaySeconds', 'maxActivations', 'maxDeactivations', 'cyclePeriodSeconds', 'checkpoint'] as const;
const DAY = 86_400;
const MAX_DAYS = 100_000;

/** 001 checkpoint license: "Validity: days from activation; Threshold: remaining days before the next renewal starts". */
export interface CheckpointRule {
  readonly validityDays: number;
  readonly thresholdDays: number;
}
const DEFAULTS: Record<string, unknown> = { featureMap: 0, payment: 'prepaid', licenseQuantity: 1, protectedData: '', hiddenData: '', secretData: '' };

export interface ProductTemplate {
  /** The spec put-product carries, before relative times are made absolute. */
  readonly spec: ProductSpec;
  readonly durationSeconds?: number;
  readonly activationDelaySeconds?: number;
  readonly maxActivations: number;
  readonly maxDeactivations?: number;
  readonly cyclePeriodSeconds?: number;
  readonly checkpoint?: CheckpointRule;
}

const bad = (message: string) => new IssuingRefusal(400, 'input', `product template: ${message}`);

function whole(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw bad(`expected ${what} as a whole number in ${min}..${max}, got ${JSON.stringify(value)?.slice(0, 40)}`);
  return value;
}

/** Parses a template for product `code` / `text` strictly (unknown fields, wrong types and contradictions refused). */
export function parseProductTemplate(value: unknown, product: { readonly code: number; readonly text: string }): ProductTemplate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected a JSON object');
  const fields = { ...(value as Record<string, unknown>) };
  if (fields['productCode'] !== undefined && fields['productCode'] !== product.code) throw bad(`expected productCode ${product.code} (the product's code) or none`);
  if (fields['text'] !== undefined && fields['text'] !== product.text) throw bad('expected text to be the product\'s text or none');
  const rules: Record<string, unknown> = {};
  for (const key of RULES) {
    rules[key] = fields[key];
    delete fields[key];
  }
  const specJson = { ...DEFAULTS, ...fields, productCode: product.code, text: product.text };
  let spec: ProductSpec;
  try {
    spec = parseProductSpec(specJson);
  } catch (error) {
    throw bad((error as Error).message.replace(/^license update: /, ''));
  }
  const template: { -readonly [K in keyof ProductTemplate]: ProductTemplate[K] } = { spec, maxActivations: 1 };
  if (rules['durationSeconds'] !== undefined) {
    if (spec.expiration !== undefined) throw bad('expected expiration or durationSeconds, not both');
    template.durationSeconds = whole(rules['durationSeconds'], 'durationSeconds', 1, MAX_PERIOD);
  }
  if (rules['activationDelaySeconds'] !== undefined) {
    if (spec.activationTime !== undefined) throw bad('expected activationTime or activationDelaySeconds, not both');
    template.activationDelaySeconds = whole(rules['activationDelaySeconds'], 'activationDelaySeconds', 0, MAX_PERIOD);
  }
  if (rules['maxActivations'] !== undefined) template.maxActivations = whole(rules['maxActivations'], 'maxActivations', 1, MAX_ACTIVATIONS_PER_TICKET);
  if ((rules['maxDeactivations'] === undefined) !== (rules['cyclePeriodSeconds'] === undefined)) throw bad('expected maxDeactivations and cyclePeriodSeconds together');
  if (rules['maxDeactivations'] !== undefined) {
    template.maxDeactivations = whole(rules['maxDeactivations'], 'maxDeactivations', 0, MAX_ACTIVATIONS_PER_TICKET);
    template.cyclePeriodSeconds = whole(rules['cyclePeriodSeconds'], 'cyclePeriodSeconds', 1, MAX_PERIOD);
  }
  if (rules['checkpoint'] !== undefined) template.checkpoint = checkpointRule(rules['checkpoint'], spec.expiration !== undefined || template.durationSeconds !== undefined);
  return template;
}

function checkpointRule(value: unknown, expires: boolean): CheckpointRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected checkpoint as {"validityDays", "thresholdDays"}');
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (key !== 'validityDays' && key !== 'thresholdDays') throw bad(`checkpoint: unknown field ${JSON.stringify(key.slice(0, 40))}`);
  if (expires) throw bad('expected a checkpoint or an expiration (or durationSeconds), not both: the checkpoint sets the expiration');
  const validityDays = whole(fields['validityDays'], 'checkpoint.validityDays', 1, MAX_DAYS);
  // A threshold at or above the validity makes every contact a renewal: allowed (a licensor that wants that).
  return { validityDays, thresholdDays: whole(fields['thresholdDays'], 'checkpoint.thresholdDays', 0, MAX_DAYS) };
}

/** A checkpoint license's expiration when activated or renewed at `now`: now + validity. */
export function checkpointExpiration(rule: CheckpointRule, now: UnixSeconds): UnixSeconds {
  const expiration = now + rule.validityDays * DAY;
  if (expiration > MAX_TIME) throw bad('the checkpoint expiration would pass 2^40');
  return expiration;
}

/** When a checkpoint renewal is due: once fewer than thresholdDays remain before `expiration`. */
export const checkpointDue = (rule: CheckpointRule, expiration: UnixSeconds): UnixSeconds => expiration - rule.thresholdDays * DAY;

/**
 * A spec as its product JSON (license-update.ts keeps that encoder to itself: it is read back out of the body text of a
 * put-product update, which is exactly what the card will see).
 */
export function productSpecJson(spec: ProductSpec): Record<string, unknown> {
  const body = encodeBody({ kind: 'update', serial: '-', licensorKey: new Uint8Array(32), firmCode: 0, time: 0, updateCounter: 0, operations: [{ op: 'put-product', product: spec }] });
  return (JSON.parse(body) as { operations: [{ product: Record<string, unknown> }] }).operations[0].product;
}

/** The template as JSON: what the database stores and the service answers (parseProductTemplate reads it back). */
export function encodeProductTemplate(template: ProductTemplate): Record<string, unknown> {
  const out: Record<string, unknown> = productSpecJson(template.spec);
  for (const key of RULES) if (template[key] !== undefined) out[key] = key === 'checkpoint' ? { ...template.checkpoint } : template[key];
  return out;
}

/** The spec put-product carries for an activation at `now`, relative times made absolute. */
export function activationSpec(template: ProductTemplate, now: UnixSeconds): ProductSpec {
  const activationTime = template.activationDelaySeconds === undefined ? template.spec.activationTime : now + template.activationDelaySeconds;
  const expiration = template.checkpoint !== undefined ? checkpointExpiration(template.checkpoint, activationTime ?? now)
    : template.durationSeconds === undefined ? template.spec.expiration : (activationTime ?? now) + template.durationSeconds;
  if ((expiration ?? 0) > MAX_TIME || (activationTime ?? 0) > MAX_TIME) throw bad('the activation or expiration time would pass 2^40');
  return { ...template.spec, ...(activationTime === undefined ? {} : { activationTime }), ...(expiration === undefined ? {} : { expiration }) };
}

/** Whether a renewal of the product does anything: it extends a duration or adds an instalment of units. */
export const isRenewable = (template: ProductTemplate): boolean => template.durationSeconds !== undefined || (template.spec.unitLimit ?? 0) > 0;

/**
 * What a renewal ticket puts onto a container (Wibu 002: instalments and subscriptions): `extend` by the duration from the
 * later of now and the current expiration, `add-units` of one instalment (the spec's unit limit), or both.
 */
export function renewalOperations(template: ProductTemplate, currentExpiration: UnixSeconds | undefined, now: UnixSeconds): { operations: UpdateOperation[]; expiration?: UnixSeconds } {
  const operations: UpdateOperation[] = [];
  const productCode = template.spec.productCode;
  let expiration: UnixSeconds | undefined;
  if (template.durationSeconds !== undefined) {
    expiration = Math.max(now, currentExpiration ?? now) + template.durationSeconds;
    if (expiration > MAX_TIME) throw bad('the renewed expiration would pass 2^40');
    operations.push({ op: 'extend', productCode, expiration });
  }
  const units = template.spec.unitLimit ?? 0;
  if (units > 0) operations.push({ op: 'add-units', productCode, units });
  return expiration === undefined ? { operations } : { operations, expiration };
}
