// A test double of the license server's card (src/license/network tests): an in-memory LicenseCardLink that decides
// uses with the real decideUse (license-decision.ts) and signs real trail records with a software Ed25519 key, exactly
// as SIGN AND INCREMENT does (recordHash of patent 003 [0059] step [2], signedDigest of [0053]). It stands for the card
// behind the machine's license agent; license-server-agent.test.ts and the lead's end-to-end tests use real cards.
import { randomBytes } from 'node:crypto';
import { signedDigest } from '../../../src/apdu/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, type Ed25519SigningKey } from '../../../src/crypto/index.js';
import {
  decideUse, formatLicenseRecordText, LicenseError, licensorDigest, signCardBinding, type CardBinding, type LicenseCardLink, type LicenseContainer,
  type ProductSpec, type UseRequest,
} from '../../../src/license/index.js';
import { recordHash, type AuditRecord, type TrustRoot } from '../../../src/rental/index.js';
import { containerWith, LICENSOR, productItem, T0 } from '../../support/index.js';

let cards = 0;

export class CardDouble implements LicenseCardLink {
  readonly card: TrustRoot;
  /** Every record the "card" signed, in counter order: the trail. */
  readonly trail: AuditRecord[] = [];
  /** While true every call fails as an agent that cannot reach its card does. */
  broken = false;
  #container: LicenseContainer;
  #counter = 0n;
  readonly #key: Ed25519SigningKey;
  readonly #bindings: CardBinding[];

  constructor(products: readonly ProductSpec[], options: { readonly licensor?: typeof LICENSOR; readonly bound?: boolean } = {}) {
    this.#key = ed25519KeyFromSeed(generateEd25519Seed());
    this.card = { publicKey: this.#key.publicKey, serial: `VSC-NET-${++cards}`, keyMode: 'individual' };
    const licensor = options.licensor ?? LICENSOR;
    this.#container = containerWith(products.map((spec) => productItem(spec)), { licensorKey: licensor.publicKey }, T0);
    this.#bindings = options.bound === false ? [] : [signCardBinding(licensor, { serial: this.card.serial, cardPublicKey: this.card.publicKey, keyMode: 'individual' })];
  }

  /** The texts of the trail that start with `prefix`. */
  texts(prefix = ''): string[] {
    return this.trail.map((record) => record.text).filter((text) => text.startsWith(prefix));
  }

  async readContainer(): Promise<LicenseContainer> {
    this.#check();
    return this.#container;
  }

  async use(request: UseRequest): Promise<AuditRecord> {
    this.#check();
    const decision = decideUse(this.#container, request);
    if (!decision.ok) throw new LicenseError(decision.reason, decision.message);
    this.#container = decision.container;
    return this.#sign(formatLicenseRecordText({
      kind: 'use', licensor: licensorDigest(request.licensorKey), firmCode: decision.firm.firmCode, productCode: request.productCode,
      features: request.features, units: request.units, left: decision.remaining, at: request.hostTime,
    }));
  }

  async writeText(text: string): Promise<AuditRecord> {
    this.#check();
    return this.#sign(text);
  }

  async apply(): Promise<AuditRecord> {
    throw new LicenseError('input', 'the card double applies no updates: give it its products');
  }

  async bindings(): Promise<readonly CardBinding[]> {
    this.#check();
    return this.#bindings;
  }

  async close(): Promise<void> {}

  #check(): void {
    if (this.broken) throw new Error('the license agent does not answer');
  }

  #sign(text: string): AuditRecord {
    const nonce = Uint8Array.from(randomBytes(16));
    const counter = this.#counter++;
    const record = { nonce, text, counter, signature: this.#key.sign(signedDigest(recordHash(nonce, text), counter, 'individual', this.card.serial)) };
    this.trail.push(record);
    return record;
  }
}
