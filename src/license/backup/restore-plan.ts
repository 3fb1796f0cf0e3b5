// What a licensor's restoring service puts onto the replacement container for one backed-up firm item (Wibu 000
// "CM-Box Backup" §2.2: the restore is a sequence of "Adding Firm Items" and "Adding Product Items" operations only the
// licensor can sign; §2.3 the policy; §2.7 hidden data; §2.8 secret data). Pure: the service verifies the item
// (backup-verify.ts), opens its hidden data, and signs the operations this plan gives for the target's serial.
//
// - Product items: all (full), the policy's list (partial), none (refused: not-restorable).
// - Unit counters: the units left (limit − used) restored by the backup's age (restore-degree.ts); the new item starts
//   with that limit and nothing used. A postpaid item keeps its credit: the units used since the last bill are in the
//   backup for the licensor to bill.
// - A usage period that had begun ends where it would have ended (its first use is the card's own field and would
//   otherwise start again): it becomes an expiration.
// - Secret data never left the card: not restored, fixed, drawn on the new card (generate-secret), or fixed ‖ random.
// - User data is the customer's and not protected: the licensor does not restore it (the CLI may, as the user's own).
import { randomBytes } from 'node:crypto';
import { concatBytes } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import type { FirmItem, ProductItem } from '../license-model.js';
import { MAX_OPERATIONS, type ProductSpec, type UpdateOperation } from '../license-update.js';
import { restoredUnits } from './restore-degree.js';
import type { RestorePolicy } from './restore-policy.js';

export interface RestorePlan {
  readonly operations: UpdateOperation[];
  /** Product codes put onto the target. */
  readonly restored: number[];
  /** Product codes the policy leaves out. */
  readonly skipped: number[];
}

export interface RestoreItem {
  readonly firm: FirmItem;
  /** Hidden data opened by the licensor, by product code. */
  readonly hidden: ReadonlyMap<number, Uint8Array>;
}

/** The licensor's fields of a card's product item: without what the card keeps (units used, first use, user data) and without the usage period, set below. */
function licensorFields(product: ProductItem): Omit<ProductSpec, 'secretData' | 'hiddenData'> {
  const fields: Partial<ProductItem> = { ...product };
  for (const key of ['unitsUsed', 'firstUse', 'userData', 'secretData', 'hiddenData', 'usagePeriodSeconds'] as const) delete fields[key];
  return fields as Omit<ProductSpec, 'secretData' | 'hiddenData'>;
}

function restoredSpec(product: ProductItem, hidden: Uint8Array | undefined, policy: RestorePolicy, ageSeconds: number, random: (length: number) => Uint8Array): ProductSpec {
  const { firstUse, usagePeriodSeconds } = product;
  let spec: Omit<ProductSpec, 'secretData' | 'hiddenData'> = licensorFields(product);
  if (usagePeriodSeconds !== undefined) {
    if (firstUse === undefined) spec = { ...spec, usagePeriodSeconds };
    else spec = { ...spec, expiration: Math.min(product.expiration ?? Number.MAX_SAFE_INTEGER, firstUse + usagePeriodSeconds) };
  }
  if (product.unitLimit !== undefined && product.payment === 'prepaid') {
    spec = { ...spec, unitLimit: restoredUnits(Math.max(0, product.unitLimit - product.unitsUsed), policy.units, ageSeconds) };
  }
  const secret = policy.secretData;
  const secretData = secret.mode === 'fixed' ? secret.fixed!.slice()
    : secret.mode === 'mixed' ? concatBytes(secret.fixed!, random(secret.randomLength!))
      : new Uint8Array(0);
  return { ...spec, hiddenData: hidden?.slice() ?? new Uint8Array(0), secretData };
}

/**
 * The operations that rebuild `item` on the target (create-firm first when the target has no firm item of this
 * licensor). Throws LicenseError 'not-restorable' for policy none or when the policy keeps no product of the item,
 * 'capacity' when the operations do not fit into one update (MAX_OPERATIONS).
 */
export function planRestore(item: RestoreItem, policy: RestorePolicy, ageSeconds: number, targetHasFirm: boolean, random: (length: number) => Uint8Array = (length) => Uint8Array.from(randomBytes(length))): RestorePlan {
  if (policy.mode === 'none') throw new LicenseError('not-restorable', `the licensor of firm item ${item.firm.firmCode} does not restore its licenses`);
  const wanted = policy.mode === 'partial' ? new Set(policy.products) : undefined;
  const chosen = item.firm.products.filter((product) => wanted === undefined || wanted.has(product.productCode));
  const skipped = item.firm.products.filter((product) => !chosen.includes(product)).map((product) => product.productCode);
  if (chosen.length === 0 && item.firm.products.length > 0) throw new LicenseError('not-restorable', `the licensor restores none of the product items of firm item ${item.firm.firmCode}`);
  const operations: UpdateOperation[] = targetHasFirm ? [] : [{ op: 'create-firm', text: item.firm.text }];
  for (const product of chosen) {
    operations.push({ op: 'put-product', product: restoredSpec(product, item.hidden.get(product.productCode), policy, ageSeconds, random) });
    if (policy.secretData.mode === 'random') operations.push({ op: 'generate-secret', productCode: product.productCode, length: policy.secretData.randomLength! });
  }
  if (operations.length === 0) operations.push({ op: 'set-firm-text', text: item.firm.text });
  if (operations.length > MAX_OPERATIONS) throw new LicenseError('capacity', `restoring firm item ${item.firm.firmCode} needs ${operations.length} operations, more than the ${MAX_OPERATIONS} of one update`);
  return { operations, restored: chosen.map((product) => product.productCode), skipped };
}
