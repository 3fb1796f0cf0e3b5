// What one license model of Wibu 002 Table 1 is (license-models.ts): its typed options, who enforces it, and the plain
// product item every model's build() starts from.
import { checkText, checkWhole, DAY_SECONDS, HOUR_SECONDS, MAX_MODEL_TIME, type ModelOptionSpec } from './license-model-options.js';
import { MAX_CODE, type Payment, type UnixSeconds } from './license-model.js';
import type { ProductSpec } from './license-update.js';

/**
 * Who enforces a model: the container (decideUse, on the card), the network license server (seats, standby,
 * overflow, borrowing), the issuing service (how many activations, transfers, renewals) or the protected program itself.
 */
export type LicenseModelServedBy = 'container' | 'license-server' | 'issuing-service' | 'program';

/** Options every model takes: the item's product code, its text (default: the model's title) and feature map (default 0). */
export interface BaseModelOptions {
  readonly productCode: number;
  readonly text?: string;
  readonly featureMap?: number;
}

export interface Seats { readonly seats: number }
export interface Standby extends Seats { readonly maxHours: number }

export interface LicenseModelOptionsByName {
  'single-user': BaseModelOptions;
  'single-user-vm': BaseModelOptions & { readonly vmDigest: Uint8Array };
  network: BaseModelOptions & Seats & { readonly overflowSeats?: number };
  'feature-on-demand': BaseModelOptions & { readonly featureMap: number };
  perpetual: BaseModelOptions;
  'demo-trial': BaseModelOptions & { readonly days: number };
  'rental-subscription': BaseModelOptions & { readonly periodDays: number; readonly start: UnixSeconds };
  /** Prepaid: `units` is the limit (needed); postpaid: the credit until the next bill (absent: unlimited, only counted). */
  'pay-per-use': BaseModelOptions & { readonly payment: Payment; readonly unit: PayPerUseUnit; readonly units?: number };
  'software-assurance': BaseModelOptions & { readonly maintenanceUntil: UnixSeconds };
  'downgrade-right': BaseModelOptions & { readonly version: number; readonly oldest?: number };
  'upgrade-right': BaseModelOptions & { readonly version: number; readonly newest?: number };
  'grace-period': BaseModelOptions;
  volume: BaseModelOptions & { readonly policing: 'activation' | 'audit' };
  'high-availability': BaseModelOptions & Seats;
  'hot-standby': BaseModelOptions & Standby;
  'cold-standby': BaseModelOptions & Standby;
  overflow: BaseModelOptions & Seats & { readonly overflowSeats: number; readonly until?: UnixSeconds };
  borrowable: BaseModelOptions & Seats & { readonly maxBorrowDays: number };
  transferable: BaseModelOptions;
  'named-user': BaseModelOptions & { readonly user: string };
  'computer-bound': BaseModelOptions & { readonly computerDigest: Uint8Array };
  'time-zone': BaseModelOptions & { readonly minOffsetMinutes: number; readonly maxOffsetMinutes: number };
  'country-based': BaseModelOptions & { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
}

export type LicenseModelName = keyof LicenseModelOptionsByName;
export type LicenseModelOptions<N extends LicenseModelName = LicenseModelName> = LicenseModelOptionsByName[N];
export type PayPerUseUnit = 'minutes' | 'calls';

export interface LicenseModel<N extends LicenseModelName = LicenseModelName> {
  /** kebab-case, as `--model` takes it. */
  readonly name: N;
  /** The row's name in Table 1. */
  readonly title: string;
  /** What the row grants, after Table 1. */
  readonly description: string;
  readonly servedBy: LicenseModelServedBy;
  /** How the row is built here (README). */
  readonly note: string;
  /** The model's own options (the base options productCode, text, featureMap come on top). */
  readonly options: readonly ModelOptionSpec[];
  build(options: LicenseModelOptions<N>): ProductSpec;
}

export type AnyLicenseModel = { [N in LicenseModelName]: LicenseModel<N> }[LicenseModelName];

/** The spec of every pay-per-use item names its unit in its protected data, so program and bill count alike. */
export const PAY_PER_USE_UNIT_PREFIX = 'vsc-unit:';

export const BASE_OPTIONS: readonly ModelOptionSpec[] = [
  { key: 'productCode', kind: 'whole', required: true, help: `the product code, 0..${MAX_CODE}` },
  { key: 'text', kind: 'text', required: false, help: 'the product text (default: the model title)' },
  { key: 'featureMap', kind: 'whole', required: false, help: 'feature bits the item unlocks (default 0)' },
];

export const SEATS: ModelOptionSpec = { key: 'seats', kind: 'whole', required: true, help: 'seats served at once, 1..100000' };
export const MAX_HOURS: ModelOptionSpec = { key: 'maxHours', kind: 'whole', required: true, help: 'hours of standby use allowed in all' };

/** The item every model starts from: one seat, prepaid, no limit, no data. */
export function base(options: BaseModelOptions, title: string): { -readonly [K in keyof ProductSpec]: ProductSpec[K] } {
  return {
    productCode: checkWhole(options.productCode, 'productCode', 0, MAX_CODE),
    text: checkText(options.text ?? title, 'text'),
    featureMap: checkWhole(options.featureMap ?? 0, 'featureMap', 0, MAX_CODE),
    payment: 'prepaid',
    licenseQuantity: 1,
    protectedData: new Uint8Array(0),
    hiddenData: new Uint8Array(0),
    secretData: new Uint8Array(0),
  };
}

export const seats = (options: Seats): number => checkWhole(options.seats, 'seats', 1, 100_000);
export const standbySeconds = (options: Standby): number => checkWhole(options.maxHours, 'maxHours', 1, Math.floor(MAX_MODEL_TIME / HOUR_SECONDS)) * HOUR_SECONDS;
export const days = (value: unknown, what: string): number => checkWhole(value, what, 1, 100_000) * DAY_SECONDS;

/** The table of rows, without their names (the key is the name). */
export type LicenseModelTable<N extends LicenseModelName = LicenseModelName> = { readonly [K in N]: Omit<LicenseModel<K>, 'name'> };
