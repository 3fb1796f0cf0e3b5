// The license applet's commands on one product item (license-applet.ts INS 36, 38, 3A; Wibu 000 §2.7 hidden data
// only sealed to its licensor, §2.8 secret data never out of the card, user data the customer's): the item named by
// licensor key (32) ‖ product code (4), and each command's answer or new container. Length errors are 6700 (SwError);
// refusals LicenseError, which the applet turns into 91xx.
import { bytesEqual } from '../../bytes/index.js';
import { hmacSha256 } from '../../crypto/index.js';
import { SW, SwError } from '../../apdu/index.js';
import { LicenseError } from '../license-error.js';
import { sealHiddenData } from '../license-hidden-data.js';
import { MAX_ITEM_DATA_BYTES, type FirmItem, type LicenseContainer, type ProductItem } from '../license-model.js';

export const MAX_CHALLENGE_LENGTH = 64;
/** Licensor key (32) ‖ product code (4): names one product item. */
export const ITEM_REFERENCE_LENGTH = 36;

interface ItemReference {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
}

function parseItemReference(data: Uint8Array): ItemReference {
  return { licensorKey: data.slice(0, 32), productCode: new DataView(data.buffer, data.byteOffset + 32, 4).getUint32(0) };
}

function findItem(container: LicenseContainer, item: ItemReference): { firm: FirmItem; product: ProductItem } {
  const firm = container.firms.find((entry) => bytesEqual(entry.licensorKey, item.licensorKey));
  if (firm === undefined) throw new LicenseError('no-license', 'no firm item of this licensor on the card');
  const product = firm.products.find((entry) => entry.productCode === item.productCode);
  if (product === undefined) throw new LicenseError('no-license', `no product item ${item.productCode} in firm item ${firm.firmCode}`);
  return { firm, product };
}

/** READ HIDDEN: the item's hidden data sealed to its licensor, bound to card, item and update counter. */
export function readHiddenAnswer(container: LicenseContainer, serial: string, data: Uint8Array): Uint8Array {
  if (data.length !== ITEM_REFERENCE_LENGTH) throw new SwError(SW.WRONG_LENGTH, `expected a licensor key and a product code (${ITEM_REFERENCE_LENGTH} bytes), got ${data.length} bytes`);
  const { firm, product } = findItem(container, parseItemReference(data));
  const context = { serial, firmCode: firm.firmCode, productCode: product.productCode, updateCounter: firm.updateCounter };
  return sealHiddenData(firm.licensorKey, context, product.hiddenData);
}

/** SECRET CHALLENGE: HMAC-SHA-256 of the challenge under the item's secret data. */
export function secretChallengeAnswer(container: LicenseContainer, data: Uint8Array): Uint8Array {
  if (data.length <= ITEM_REFERENCE_LENGTH || data.length > ITEM_REFERENCE_LENGTH + MAX_CHALLENGE_LENGTH) {
    throw new SwError(SW.WRONG_LENGTH, `expected a licensor key, a product code and a challenge of 1..${MAX_CHALLENGE_LENGTH} bytes, got ${data.length} bytes`);
  }
  const { product } = findItem(container, parseItemReference(data));
  if (product.secretData.length === 0) throw new LicenseError('no-license', `product item ${product.productCode} has no secret data`);
  return hmacSha256(product.secretData, data.subarray(ITEM_REFERENCE_LENGTH));
}

/** WRITE USER DATA: the container with the item's user data replaced. */
export function withUserData(container: LicenseContainer, data: Uint8Array): LicenseContainer {
  if (data.length < ITEM_REFERENCE_LENGTH || data.length > ITEM_REFERENCE_LENGTH + MAX_ITEM_DATA_BYTES) {
    throw new SwError(SW.WRONG_LENGTH, `expected a licensor key, a product code and 0..${MAX_ITEM_DATA_BYTES} bytes of user data, got ${data.length} bytes`);
  }
  const { firm, product } = findItem(container, parseItemReference(data));
  const userData = data.slice(ITEM_REFERENCE_LENGTH);
  const nextFirm: FirmItem = { ...firm, products: firm.products.map((entry) => (entry === product ? { ...product, userData } : entry)) };
  return { ...container, firms: container.firms.map((entry) => (entry === firm ? nextFirm : entry)) };
}
