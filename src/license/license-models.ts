// The catalogue of license models, one entry per row of Wibu 002 Table 1 ("CodeMeter license models"): each built as the
// product item (ProductSpec, license-update.ts) a licensor puts into a container, and which part of the system enforces it.
import { BASE_OPTIONS, type AnyLicenseModel, type LicenseModel, type LicenseModelName, type LicenseModelOptions, type LicenseModelTable } from './license-model-entry.js';
import { modelInput, parseOptionRecord } from './license-model-options.js';
import { CONTAINER_MODELS } from './license-models-container.js';
import { SERVED_MODELS } from './license-models-served.js';
import type { ProductSpec } from './license-update.js';

export { PAY_PER_USE_UNIT_PREFIX } from './license-model-entry.js';
export type {
  AnyLicenseModel, BaseModelOptions, LicenseModel, LicenseModelName, LicenseModelOptions, LicenseModelOptionsByName, LicenseModelServedBy, PayPerUseUnit,
} from './license-model-entry.js';
export type { ModelOptionKind, ModelOptionSpec } from './license-model-options.js';

/** Table 1's rows in the table's order. */
const TABLE_1: readonly LicenseModelName[] = [
  'single-user', 'single-user-vm', 'network', 'feature-on-demand', 'perpetual', 'demo-trial', 'rental-subscription', 'pay-per-use',
  'software-assurance', 'downgrade-right', 'upgrade-right', 'grace-period', 'volume', 'high-availability', 'hot-standby', 'cold-standby',
  'overflow', 'borrowable', 'transferable', 'named-user', 'computer-bound', 'time-zone', 'country-based',
];

const MODELS: LicenseModelTable = { ...CONTAINER_MODELS, ...SERVED_MODELS };

function entry<N extends LicenseModelName>(name: N): LicenseModel<N> {
  const model = MODELS[name] as Omit<LicenseModel<N>, 'name'>;
  return Object.freeze({ name, ...model, options: Object.freeze([...BASE_OPTIONS, ...model.options]) });
}

/** Every row of 002 Table 1, in the table's order. */
export const LICENSE_MODELS: readonly AnyLicenseModel[] = Object.freeze(TABLE_1.map((name) => entry(name) as AnyLicenseModel));

/** For the README: how each row of Table 1 is built, and who enforces it. */
export const LICENSE_MODEL_NOTES: Readonly<Record<LicenseModelName, string>> = Object.freeze(
  Object.fromEntries(LICENSE_MODELS.map((model) => [model.name, `${model.title} (${model.servedBy}): ${model.note}`])) as Record<LicenseModelName, string>,
);

export function licenseModel<N extends LicenseModelName>(name: N): LicenseModel<N>;
export function licenseModel(name: string): AnyLicenseModel;
export function licenseModel(name: string): AnyLicenseModel {
  const model = LICENSE_MODELS.find((item) => item.name === name);
  if (model === undefined) throw modelInput(`unknown model ${JSON.stringify(name.slice(0, 40))}; expected one of ${LICENSE_MODELS.map((item) => item.name).join(', ')}`);
  return model;
}

/** The CLI's `--model NAME --option key=value ...` as the typed options of that model (checked when built). */
export function parseModelOptions<N extends LicenseModelName>(name: N, values: Readonly<Record<string, string>>): LicenseModelOptions<N>;
export function parseModelOptions(name: string, values: Readonly<Record<string, string>>): LicenseModelOptions;
export function parseModelOptions(name: string, values: Readonly<Record<string, string>>): LicenseModelOptions {
  const model = licenseModel(name);
  return parseOptionRecord(model.options, values, model.name) as unknown as LicenseModelOptions;
}

/** parseModelOptions, then build: the spec for `--model NAME --option ...`. */
export function buildModelSpec(name: string, values: Readonly<Record<string, string>>): ProductSpec {
  const model = licenseModel(name);
  return (model as LicenseModel).build(parseModelOptions(model.name, values));
}
