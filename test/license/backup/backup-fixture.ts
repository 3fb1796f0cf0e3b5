// Signed backups for tests (Wibu 000 §2.1, §2.6): a container of three licensors' firm items, and a backup of it
// signed by a real SoftwareVscCard as the license applet's BACKUP does (record of the backup text over the leaves' root).
import { SoftwareVscCard, type VscKeyMode } from '../../../src/apdu/index.js';
import { toHex } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../../src/crypto/index.js';
import {
  assembleBackup, buildCardBackup, formatLicenseRecordText, type BackupFile, type LicenseContainer, type UserItemEntry,
} from '../../../src/license/index.js';
import { recordHash } from '../../../src/rental/index.js';
import { CARD_SERIAL, containerWith, FIRM_CODE, FULL_PRODUCT, OTHER_LICENSOR, productItem, simpleProduct, T0, TEST_SEED } from '../../support/index.js';

/** A third licensor, beside LICENSOR and OTHER_LICENSOR. */
export const THIRD_LICENSOR_SEED = new Uint8Array(32).fill(0x33);
export const THIRD_LICENSOR = ed25519KeyFromSeed(THIRD_LICENSOR_SEED);
/** Another card's key, for records of another card. */
export const OTHER_CARD = ed25519KeyFromSeed(new Uint8Array(32).fill(0xc2));

/** LICENSOR (firm 10101: FULL_PRODUCT with hidden data, units used), OTHER_LICENSOR (10102), THIRD_LICENSOR (10103). */
export const THREE_FIRMS: LicenseContainer = {
  clock: T0,
  firms: [
    containerWith([productItem(FULL_PRODUCT, { unitsUsed: 40 }), productItem(simpleProduct(9, 10, { hiddenData: Uint8Array.of(9, 9), secretData: Uint8Array.of(1) }))], { updateCounter: 3 }).firms[0]!,
    { licensorKey: OTHER_LICENSOR.publicKey, firmCode: FIRM_CODE + 1, text: 'Other Soft', updateCounter: 1, products: [productItem(simpleProduct(1, 500), { unitsUsed: 7 })] },
    { licensorKey: THIRD_LICENSOR.publicKey, firmCode: FIRM_CODE + 2, text: 'Third', updateCounter: 2, certifiedTime: T0, products: [productItem(simpleProduct(4, 'unlimited'))] },
  ],
};

export interface SignedBackupInit {
  readonly container?: LicenseContainer;
  readonly keyMode?: VscKeyMode;
  /** The serial the card has (and the box names). */
  readonly serial?: string;
  /** The serial written into the leaves (a card that lies). */
  readonly leafSerial?: string;
  readonly time?: number;
  /** The time the record text names (a card that lies). */
  readonly recordTime?: number;
  readonly cardKey?: typeof OTHER_CARD;
  readonly user?: readonly UserItemEntry[];
}

/** A backup as a card answers it and the host assembles it. */
export async function signedBackup(init: SignedBackupInit = {}): Promise<BackupFile> {
  const serial = init.serial ?? CARD_SERIAL;
  const keyMode = init.keyMode ?? 'individual';
  const time = init.time ?? T0 + 600;
  const card = new SoftwareVscCard({ serial, keyMode, key: init.cardKey ?? ed25519KeyFromSeed(TEST_SEED), counter: 41n });
  let salt = 0;
  const { leaves, root } = buildCardBackup(init.container ?? THREE_FIRMS, init.leafSerial ?? serial, time, (n) => new Uint8Array(n).fill(++salt));
  const text = formatLicenseRecordText({ kind: 'backup', items: leaves.length, root: toHex(root), at: init.recordTime ?? time });
  const nonce = new Uint8Array(16).fill(0xbb);
  const { counter, signature } = await card.signAndIncrement(recordHash(nonce, text));
  return assembleBackup({ box: { serial, cardPublicKey: card.publicKey, keyMode, containerFormat: 1 }, record: { nonce, counter, signature, text }, leaves, user: init.user ?? [] });
}
