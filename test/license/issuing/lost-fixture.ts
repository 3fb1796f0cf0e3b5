// What the lost-license tests of the restoring service share (Wibu 000 "CM-Box Backup", 001): a real card — the VSC
// and license applets on a software card in the card OS, its container in a MemoryLicenseStore — reached through the
// typed LicenseAppletClient, so that every update is applied, every receipt and backup signed, and every lock applied
// by the applet itself; and a licensor's products, orders and activations made through the running service.
import { randomBytes } from 'node:crypto';
import { CardOs, SoftwareVscCard, VscApplet } from '../../../src/apdu/index.js';
import { bytesEqual } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../../src/crypto/index.js';
import {
  assembleBackup, LicenseApplet, LicenseAppletClient, MemoryLicenseStore, splitBackup, type ActivationRequest, type BackupItemFile, type FirmItem,
  type LicenseContainer, type ProductItem, type TargetContainer,
} from '../../../src/license/index.js';
import type { AuditRecord } from '../../../src/rental/index.js';
import { START, type IssuingHarness, type TestLicensor } from './issuing-fixture.js';


/** A restore policy as PUT /v1/restore-policy takes it: full, units whole, no secret data, alerts at 2, stop at 3 in 30 days. */
export function policy(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: 'full', units: { maxTimeSeconds: 2 ** 40, maxDegreePercent: 100, minTimeSeconds: 2 ** 40, minDegreePercent: 100 }, secretData: { mode: 'none' },
    alerts: { intervalSeconds: 30 * 86_400, alertAt: 2, stopAt: 3 }, ...fields,
  };
}

export const requestId = (): Uint8Array => Uint8Array.from(randomBytes(16));

export class RealCard {
  readonly serial: string;
  readonly publicKey: Uint8Array;
  readonly client: LicenseAppletClient;
  readonly #store: MemoryLicenseStore;

  private constructor(serial: string, card: SoftwareVscCard, store: MemoryLicenseStore, client: LicenseAppletClient) {
    this.serial = serial;
    this.publicKey = card.publicKey;
    this.#store = store;
    this.client = client;
  }

  /** A card with an empty container; the same serial and seed make the same card with its container reset (001). */
  static async open(serial = `CARD-${randomBytes(4).toString('hex')}`, seed = generateEd25519Seed()): Promise<RealCard> {
    const card = new SoftwareVscCard({ serial, keyMode: 'individual', key: ed25519KeyFromSeed(seed), counter: 0n });
    const store = new MemoryLicenseStore();
    const os = new CardOs([new VscApplet(card), new LicenseApplet(card, { store })]);
    os.powerOn();
    const client = new LicenseAppletClient({ transmit: async (command) => os.transmit(command) });
    await client.select();
    return new RealCard(serial, card, store, client);
  }

  /** The container as the card keeps it (hidden and secret data included). */
  container(): LicenseContainer {
    return this.#store.read();
  }

  firm(licensor: TestLicensor): FirmItem | undefined {
    return this.container().firms.find((firm) => bytesEqual(firm.licensorKey, licensor.publicKey));
  }

  counter(licensor: TestLicensor): number | null {
    return this.firm(licensor)?.updateCounter ?? null;
  }

  product(licensor: TestLicensor, code: number): ProductItem | undefined {
    return this.firm(licensor)?.products.find((product) => product.productCode === code);
  }

  target(licensor: TestLicensor): TargetContainer {
    return { serial: this.serial, cardPublicKey: this.publicKey, firmUpdateCounter: this.counter(licensor) };
  }

  activation(ticket: string, licensor: TestLicensor): ActivationRequest {
    return { ticket, ...this.target(licensor), requestId: requestId() };
  }

  /** The applet applies the update file; the answer is the record it signed (the receipt). */
  async apply(update: string): Promise<AuditRecord> {
    const nonce = Uint8Array.from(randomBytes(16));
    return { nonce, ...(await this.client.apply(nonce, update)) };
  }

  /** The applet's backup at `hostTime`, split per licensor: the item of `licensor` (as the hub hands it on, 000 §2.4). */
  async backupItem(licensor: TestLicensor, hostTime = START): Promise<BackupItemFile> {
    const nonce = Uint8Array.from(randomBytes(16));
    const answer = await this.client.backup(nonce, hostTime);
    const file = assembleBackup({
      box: { serial: this.serial, cardPublicKey: this.publicKey, keyMode: 'individual', containerFormat: 1 }, record: { nonce, ...answer.record }, leaves: answer.leaves, user: [],
    });
    const item = splitBackup(file).find((entry) => bytesEqual(entry.item.licensorKey, licensor.publicKey));
    if (item === undefined) throw new Error(`the backup holds no item of ${licensor.name}`);
    return item;
  }
}

/** A product, an order of one ticket, its activation on `card` and the receipt: the ticket. */
export async function activated(h: IssuingHarness, card: RealCard, productCode: number, licensor: TestLicensor = h.a): Promise<string> {
  const { tickets: [ticket] } = await licensor.client.placeOrder({ orderId: `SO-${randomBytes(6).toString('hex')}`, items: [{ productCode, quantity: 1 }] });
  const answer = await h.customer.activate(card.activation(ticket!, licensor));
  const record = await card.apply(answer.update);
  await h.customer.receipt({ ticket: ticket!, serial: card.serial, record });
  return ticket!;
}

