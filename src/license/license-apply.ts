// A licensor's signed update or time certificate applied to a container, as the card does it (Wibu 000 §2.2 "Adding
// Firm Items" and "Remote Activation", §2.6 Firm Update Counter; DESIGN.md "License containers": only the licensor's
// key changes its firm item; replays and foreign updates are refused). Pure and atomic: every operation or none.
import { bytesEqual, toHex } from '../bytes/index.js';
import { LicenseError } from './license-error.js';
import {
  MAX_FIRM_ITEMS, MAX_PRODUCT_ITEMS_PER_FIRM, MAX_UNITS, type FirmItem, type LicenseContainer, type ProductItem,
} from './license-model.js';
import { formatLicenseRecordText, licensorDigest } from './license-record-text.js';
import { licenseBodyDigest, verifyLicenseBody, type SignedLicenseBody, type TimeBody, type UpdateBody, type UpdateOperation } from './license-update.js';

export interface ApplyOptions {
  /** `length` random bytes from the card's generator (generate-secret). */
  readonly random: (length: number) => Uint8Array;
}

export interface AppliedBody {
  readonly container: LicenseContainer;
  /** The record text the card signs (license-record-text.ts): "license update ..." or "license time ...". */
  readonly text: string;
}

type Draft = { -readonly [K in keyof FirmItem]: FirmItem[K] } & { products: ProductItem[] };

const refuse = (reason: LicenseError['reason'], message: string): LicenseError => new LicenseError(reason, message);

/**
 * Applies `signed` to `container` of the card `cardSerial`, or throws LicenseError: 'signature' (does not verify under
 * its licensorKey), 'foreign' (another card; a firm item of that code under another key, or of that key under another
 * code), 'replayed' (not the firm item's next update counter; a time certificate that would reset the clock to a time
 * not newer than the firm item's certified time), 'no-license' (no firm item or product item to change), 'input'
 * (create-firm on an existing firm item, a change that makes no sense), 'capacity' (MAX_FIRM_ITEMS,
 * MAX_PRODUCT_ITEMS_PER_FIRM), 'locked' (a locked container), 'foreign' also for set-lock-authority naming another key
 * than the container's lock authority.
 */
export function applyLicenseBody(container: LicenseContainer, signed: SignedLicenseBody, cardSerial: string, options: ApplyOptions): AppliedBody {
  // A locked container changes only through its unlock (000 §2.10); the applet answers 9116 before it gets here.
  if (container.lock !== undefined) throw refuse('locked', 'the license container is locked');
  if (!verifyLicenseBody(signed)) throw refuse('signature', 'the license update does not verify under its licensor key');
  const { body } = signed;
  if (body.serial !== cardSerial) throw refuse('foreign', `the license update is for card ${body.serial}, not for card ${cardSerial}`);
  const byKey = container.firms.find((firm) => bytesEqual(firm.licensorKey, body.licensorKey));
  const byCode = container.firms.find((firm) => firm.firmCode === body.firmCode);
  if (byKey !== undefined && byKey.firmCode !== body.firmCode) throw refuse('foreign', `the licensor's firm item has firm code ${byKey.firmCode}, the update names ${body.firmCode}`);
  if (byCode !== undefined && byKey === undefined) throw refuse('foreign', `firm code ${body.firmCode} belongs to another licensor's key on this card`);
  return body.kind === 'time' ? applyTime(container, body, byKey) : applyUpdate(container, signed as SignedLicenseBody<UpdateBody>, byKey, options);
}

function applyTime(container: LicenseContainer, body: TimeBody, firm: FirmItem | undefined): AppliedBody {
  if (firm === undefined) throw refuse('no-license', `no firm item ${body.firmCode} of this licensor to certify the time for`);
  const certified = firm.certifiedTime ?? 0;
  // A clock reset moves the clock back: one certificate may do so once, never after a newer certified time.
  if (body.resetClock && body.time <= certified && firm.certifiedTime !== undefined) {
    throw refuse('replayed', `a clock reset to ${body.time} is not newer than firm item ${firm.firmCode}'s certified time ${certified}`);
  }
  const next: FirmItem = { ...firm, certifiedTime: Math.max(certified, body.time) };
  const clock = body.resetClock ? body.time : Math.max(container.clock, body.time);
  const text = formatLicenseRecordText({ kind: 'time', licensor: licensorDigest(body.licensorKey), firmCode: body.firmCode, time: body.time });
  return { container: { ...container, firms: container.firms.map((entry) => (entry === firm ? next : entry)), clock }, text };
}

function applyUpdate(container: LicenseContainer, signed: SignedLicenseBody<UpdateBody>, existing: FirmItem | undefined, options: ApplyOptions): AppliedBody {
  const { body } = signed;
  const expected = existing?.updateCounter ?? 0;
  if (body.updateCounter !== expected) {
    throw refuse('replayed', `the update names firm update counter ${body.updateCounter}, firm item ${body.firmCode} is at ${existing === undefined ? 'none (no firm item)' : expected}`);
  }
  let draft: Draft | undefined = existing === undefined ? undefined : { ...existing, products: [...existing.products] };
  let lockAuthority = container.lockAuthority;
  for (const operation of body.operations) {
    if (operation.op === 'create-firm') {
      // parseBodyText lets create-firm stand only first: here it may only make a new firm item.
      if (existing !== undefined) throw refuse('input', `firm item ${body.firmCode} exists already: create-firm refused`);
      if (container.firms.length >= MAX_FIRM_ITEMS) throw refuse('capacity', `the container holds ${MAX_FIRM_ITEMS} firm items already`);
      draft = { licensorKey: body.licensorKey.slice(), firmCode: body.firmCode, text: operation.text, updateCounter: 0, products: [] };
    } else if (draft === undefined) {
      throw refuse('no-license', `no firm item ${body.firmCode} on this card (its first update must begin with create-firm)`);
    } else if (operation.op === 'set-lock-authority') {
      lockAuthority = takeLockAuthority(lockAuthority, operation.key);
    } else if (operation.op === 'delete-firm') {
      // The firm item stays as an empty shell that keeps its update counter: were it removed, the licensor's first
      // update (counter 0, create-firm) could be replayed and would bring every deleted license back.
      draft.products = [];
    } else {
      applyOperation(draft, operation, options);
    }
  }
  if (draft === undefined) throw refuse('no-license', `no firm item ${body.firmCode} on this card`);
  const updated: Draft = draft;
  const others = container.firms.filter((firm) => firm !== existing);
  const certifiedTime = Math.max(updated.certifiedTime ?? 0, body.time);
  const next: FirmItem = { ...updated, updateCounter: body.updateCounter + 1, certifiedTime };
  const firms = [...others, next].sort((a, b) => a.firmCode - b.firmCode);
  const text = formatLicenseRecordText({
    kind: 'update', licensor: licensorDigest(body.licensorKey), firmCode: body.firmCode, counter: body.updateCounter + 1, digest: toHex(licenseBodyDigest(signed)),
  });
  return { container: { ...container, firms, clock: Math.max(container.clock, body.time), ...(lockAuthority === undefined ? {} : { lockAuthority }) }, text };
}

/**
 * The lock authority after a licensor's set-lock-authority (000 §2.10): the first licensor's key stands. The owner
 * accepted that licensor's update; a second licensor naming another authority could otherwise move the container out
 * of the first one's locking list.
 */
function takeLockAuthority(current: Uint8Array | undefined, key: Uint8Array): Uint8Array {
  if (current === undefined) return key.slice();
  if (!bytesEqual(current, key)) throw refuse('foreign', 'the container has another lock authority already');
  return current;
}

function productIndex(draft: Draft, productCode: number): number {
  const index = draft.products.findIndex((product) => product.productCode === productCode);
  if (index < 0) throw refuse('no-license', `no product item ${productCode} in firm item ${draft.firmCode}`);
  return index;
}

function change(draft: Draft, productCode: number, edit: (product: ProductItem) => ProductItem): void {
  const index = productIndex(draft, productCode);
  draft.products[index] = edit(draft.products[index]!);
}

function applyOperation(draft: Draft, operation: Exclude<UpdateOperation, { op: 'create-firm' | 'delete-firm' | 'set-lock-authority' }>, options: ApplyOptions): void {
  switch (operation.op) {
    case 'set-firm-text':
      draft.text = operation.text;
      return;
    case 'put-product': {
      const spec = operation.product;
      const index = draft.products.findIndex((product) => product.productCode === spec.productCode);
      if (index < 0) {
        if (draft.products.length >= MAX_PRODUCT_ITEMS_PER_FIRM) throw refuse('capacity', `firm item ${draft.firmCode} holds ${MAX_PRODUCT_ITEMS_PER_FIRM} product items already`);
        draft.products.push({ ...spec, unitsUsed: 0, userData: new Uint8Array(0) });
        draft.products.sort((a, b) => a.productCode - b.productCode);
        return;
      }
      // The card's own fields stay: the units used so far, the first use, the customer's user data.
      const old = draft.products[index]!;
      draft.products[index] = { ...spec, unitsUsed: old.unitsUsed, userData: old.userData, ...(old.firstUse === undefined ? {} : { firstUse: old.firstUse }) };
      return;
    }
    case 'add-units':
      change(draft, operation.productCode, (product) => {
        if (product.unitLimit === undefined) throw refuse('input', `product item ${product.productCode} has no unit limit to raise`);
        const unitLimit = product.unitLimit + operation.units;
        if (unitLimit > MAX_UNITS) throw refuse('input', `product item ${product.productCode}'s unit limit would pass ${MAX_UNITS}`);
        return { ...product, unitLimit };
      });
      return;
    case 'settle-units':
      change(draft, operation.productCode, (product) => {
        if (operation.units > product.unitsUsed) throw refuse('input', `product item ${product.productCode} has used ${product.unitsUsed} units, fewer than the ${operation.units} settled`);
        return { ...product, unitsUsed: product.unitsUsed - operation.units };
      });
      return;
    case 'extend':
      change(draft, operation.productCode, (product) => ({ ...product, expiration: operation.expiration }));
      return;
    case 'delete-product':
      draft.products.splice(productIndex(draft, operation.productCode), 1);
      return;
    case 'generate-secret':
      change(draft, operation.productCode, (product) => {
        const secretData = options.random(operation.length);
        if (!(secretData instanceof Uint8Array) || secretData.length !== operation.length) throw new TypeError(`expected ${operation.length} random bytes`);
        return { ...product, secretData };
      });
      return;
  }
}
