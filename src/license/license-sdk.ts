// The API a licensed program calls (DESIGN.md "License containers"; in the style of the rental SDK, patent 003 [0063]):
//
//   const license = await License.open({ licensorKey: LICENSOR_KEY, productCode: 7 });
//   const decision = await license.use(FEATURE_EXPORT, 1);      // counts a unit: the card decides, counts and signs
//   if (decision.allowed) { ...the feature... } else { show(decision.message) }
//
// The program carries its licensor's public key. It believes the card only through the licensor's card binding
// (card-binding.ts) and checks every record the card signs for it: the card's signature under the bound key, and a
// text naming this licensor, product, features, units and the time the program asked at. A license agent that lied
// (another card, an old answer, an invented "left") is caught. Every refusal is a denied decision with its reason,
// never an exception: the program chooses its limited mode. Only a programming mistake (bad options) throws.
import { bytesEqual } from '../bytes/index.js';
import { UsageError } from '../errors/index.js';
import { verifyRecord, type AuditRecord, type TrustRoot } from '../rental/index.js';
import { verifyCardBinding, type CardBinding } from './card-binding.js';
import { AgentLicenseLink } from './license-agent-link.js';
import type { LicenseCardLink } from './license-card-link.js';
import { LicenseError, type LicenseReason } from './license-error.js';
import type { LicenseContainer, ProductItem, UseRequest } from './license-model.js';
import { licensorDigest, parseLicenseRecordText } from './license-record-text.js';

/** What the host reports with every use: where and as whom the program runs, and which release it is. */
export interface LicenseContext {
  readonly country?: string;
  readonly timeZoneOffsetMinutes?: number;
  readonly user?: string;
  readonly computer?: Uint8Array;
  readonly version?: number;
  readonly releaseTime?: number;
}

export interface LicenseOpenOptions {
  /** The licensor's Ed25519 public key, built into the program. */
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  /** The license agent's socket (the rental server's; default its usual place). */
  readonly socket?: string;
  /** Another way to reach the container (a network license server's own link, tests). */
  readonly link?: LicenseCardLink;
  readonly context?: LicenseContext;
  /** Seconds since 1970; default the system clock. The container bounds it: a clock set back is refused. */
  readonly clock?: () => number;
}

export type LicenseDecision =
  | { readonly allowed: true; readonly remaining: number | 'unlimited'; readonly record: AuditRecord }
  | { readonly allowed: false; readonly reason: LicenseReason; readonly message: string };

function denied(reason: LicenseReason, message: string): LicenseDecision {
  return { allowed: false, reason, message };
}

function deniedBy(error: unknown): LicenseDecision {
  if (error instanceof LicenseError) return denied(error.reason, error.message);
  return denied('card', `the license container could not be reached: ${error instanceof Error ? error.message : String(error)}`);
}

export class License {
  private constructor(
    private readonly link: LicenseCardLink | undefined,
    private readonly root: TrustRoot | undefined,
    private readonly options: LicenseOpenOptions,
    /** Why the license could not be opened: every decision is this denial. */
    private readonly failure: LicenseDecision | undefined,
  ) {}

  /** Connects and finds the licensor's card binding; a failure is kept and every decision denies with it. */
  static async open(options: LicenseOpenOptions): Promise<License> {
    if (!(options.licensorKey instanceof Uint8Array) || options.licensorKey.length !== 32) throw new UsageError('License.open: expected licensorKey as 32 bytes');
    if (!Number.isInteger(options.productCode) || options.productCode < 0 || options.productCode > 0xffff_ffff) throw new UsageError('License.open: expected productCode as a whole number 0..2^32-1');
    let link: LicenseCardLink | undefined = options.link;
    try {
      link ??= await AgentLicenseLink.connect(options.socket);
      const binding = (await link.bindings()).find((entry) => bytesEqual(entry.licensorKey, options.licensorKey));
      if (binding === undefined) return new License(link, undefined, options, denied('no-license', 'no card binding of this licensor on this machine: activate a license first'));
      verifyCardBinding(binding, options.licensorKey);
      if (!boundTo(binding, link.card)) return new License(link, undefined, options, denied('foreign', `the licensor bound card ${binding.serial}, but the license agent reaches card ${link.card.serial} with another key`));
      return new License(link, { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode }, options, undefined);
    } catch (error) {
      return new License(link, undefined, options, deniedBy(error));
    }
  }

  /**
   * Counts `units` of the product (0: a check that counts nothing but still proves, with a card-signed record in the
   * trail, that the license held at this time). Allowed only with a record the bound card signed for exactly this use.
   */
  async use(features = 0, units = 1): Promise<LicenseDecision> {
    if (this.failure !== undefined) return this.failure;
    const request = this.request(features, units);
    let record: AuditRecord;
    try {
      record = await this.link!.use(request);
    } catch (error) {
      return deniedBy(error);
    }
    return this.checkRecord(record, request);
  }

  /** A counted check: `use(features, 0)`. */
  check(features = 0): Promise<LicenseDecision> {
    return this.use(features, 0);
  }

  /**
   * The product item as the agent shows it (unverified: for display, such as units left or the expiration date).
   * Decisions come from use() and check().
   */
  async item(): Promise<ProductItem | undefined> {
    if (this.link === undefined) return undefined;
    const container: LicenseContainer = await this.link.readContainer();
    const firm = container.firms.find((entry) => bytesEqual(entry.licensorKey, this.options.licensorKey));
    return firm?.products.find((product) => product.productCode === this.options.productCode);
  }

  async close(): Promise<void> {
    await this.link?.close();
  }

  private request(features: number, units: number): UseRequest {
    const now = this.options.clock?.() ?? Math.floor(Date.now() / 1000);
    return { licensorKey: this.options.licensorKey, productCode: this.options.productCode, features, units, hostTime: now, ...this.options.context };
  }

  private checkRecord(record: AuditRecord, request: UseRequest): LicenseDecision {
    const root = this.root!;
    if (!verifyRecord(record, root)) return denied('signature', `the record at counter ${record.counter} was not signed by the licensor's bound card ${root.serial}`);
    let text;
    try {
      text = parseLicenseRecordText(record.text);
    } catch {
      return denied('signature', 'the card signed a record that is not a license use');
    }
    const expected = text.kind === 'use' && text.licensor === licensorDigest(request.licensorKey) && text.productCode === request.productCode
      && text.features === request.features && text.units === request.units && text.at === request.hostTime;
    if (!expected || text.kind !== 'use') return denied('signature', `the card's record at counter ${record.counter} is not this use: ${record.text}`);
    return { allowed: true, remaining: text.left, record };
  }
}

function boundTo(binding: CardBinding, card: TrustRoot): boolean {
  return binding.serial === card.serial && bytesEqual(binding.cardPublicKey, card.publicKey) && binding.keyMode === card.keyMode;
}
