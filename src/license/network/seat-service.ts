// What a network license server does with its seats (Wibu 002 Table 1: network / floating, overflow, borrowable, hot and
// cold standby), apart from HTTP (license-server.ts). Every seat handed out is first a card decision: a use of 0 units
// that the card refuses when the item expired, lacks the features or the clock was set back, and signs into the trail
// otherwise, so the licensor can audit the allocations; overflow seats, standby minutes and borrows are card-signed
// trail records too. One change at a time; a refused or failed change leaves the seats as they were.
import { randomBytes } from 'node:crypto';
import { bytesEqual } from '../../bytes/index.js';
import type { AuditRecord, TrustRoot } from '../../rental/index.js';
import type { CardBinding } from '../card-binding.js';
import type { LicenseCardLink } from '../license-card-link.js';
import { LicenseError, type LicenseReason } from '../license-error.js';
import { CLOCK_TOLERANCE_SECONDS, type FirmItem, type ProductItem, type StandbyRule, type UnixSeconds } from '../license-model.js';
import { licensorDigest } from '../license-record-text.js';
import { encodeBorrowCertificate } from './borrow-certificate.js';
import { borrowCardDigest, formatBorrowRecordText } from './borrow-record-text.js';
import { formatSeatRecordText } from './seat-record-text.js';
import { EMPTY_SEAT_STATE, readSeatState, writeSeatState, type SeatState } from './seat-state-file.js';
import { itemKey, SeatTable, type Seat } from './seat-table.js';
import { StandbyMeter } from './standby-meter.js';
import { seatStatus, type SeatStatus } from './seat-status.js';

export interface StandbyMode {
  readonly kind: 'hot' | 'cold';
  /** A cold standby serves only once its operator started it active (`--standby-active`): the manual switch-over. */
  readonly active: boolean;
}

export interface SeatServiceOptions {
  /** The container on this machine; it must write plain trail records (writeText), as AgentLicenseLink does. */
  readonly link: LicenseCardLink;
  /** The 0600 state file; absent: seats live in memory only. */
  readonly stateFile?: string;
  /** Seconds a lease lasts without a heartbeat (10..86400, default 60). */
  readonly leaseSeconds?: number;
  /** This server is a standby: it serves only items whose standby rule is of its kind, for their maxSeconds. */
  readonly standby?: StandbyMode;
  readonly now?: () => UnixSeconds;
  /** Told of every change and refusal, for a log line (never an id: ids are the holders' handles). */
  readonly onEvent?: (event: SeatEvent) => void;
}

export interface SeatEvent {
  readonly event: 'lease' | 'renew' | 'release' | 'expire' | 'borrow' | 'return' | 'refuse';
  readonly item?: string;
  readonly client?: string;
  readonly overflow?: boolean;
  readonly reason?: LicenseReason;
}

export interface LeaseRequest {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  readonly features: number;
  readonly client: string;
  readonly user?: string;
  /** The client's clock: refused when it differs from the server's by more than CLOCK_TOLERANCE_SECONDS. */
  readonly hostTime?: UnixSeconds;
}

export interface Lease {
  readonly leaseId: string;
  readonly expiresAt: UnixSeconds;
  readonly heartbeatSeconds: number;
  /** The card-signed use record of 0 units: this seat's allocation. */
  readonly record: AuditRecord;
  readonly overflow: boolean;
  /** The licensor's binding of this server's card, which the client checks the record against. */
  readonly binding: CardBinding;
}

export interface BorrowRequest extends Omit<LeaseRequest, 'user' | 'hostTime'> {
  readonly borrowerCard: TrustRoot;
  readonly seconds: number;
}

export interface Borrow {
  readonly borrowId: string;
  readonly until: UnixSeconds;
  /** borrow-certificate.ts's file form. */
  readonly certificate: string;
}

const newId = (): string => randomBytes(12).toString('hex');
const unknownSeat = (kind: string) => new LicenseError('no-license', `no such ${kind} here (it was returned or ran out)${kind === 'lease' ? ': acquire a seat again' : ''}`);

export class SeatService {
  #table: SeatTable;
  #meter: StandbyMeter;
  #tail: Promise<unknown> = Promise.resolve();
  readonly #link: LicenseCardLink & { writeText(text: string): Promise<AuditRecord> };
  readonly #leaseSeconds: number;
  readonly #now: () => UnixSeconds;
  readonly #tell: (event: SeatEvent) => void;

  constructor(private readonly options: SeatServiceOptions) {
    const { link } = options;
    if (typeof link?.writeText !== 'function') throw new TypeError('expected a license card link that writes trail records (writeText), as AgentLicenseLink does');
    this.#link = link as LicenseCardLink & { writeText(text: string): Promise<AuditRecord> };
    this.#leaseSeconds = options.leaseSeconds ?? 60;
    if (!Number.isSafeInteger(this.#leaseSeconds) || this.#leaseSeconds < 10 || this.#leaseSeconds > 86_400) throw new TypeError(`expected a lease of 10..86400 s, got ${String(options.leaseSeconds)}`);
    if (options.standby !== undefined && options.standby.kind !== 'hot' && options.standby.kind !== 'cold') throw new TypeError('expected standby kind hot or cold');
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#tell = options.onEvent ?? (() => undefined);
    const state = options.stateFile === undefined ? EMPTY_SEAT_STATE : readSeatState(options.stateFile);
    this.#table = new SeatTable(state.seats);
    this.#meter = new StandbyMeter(state.standby);
  }

  get card(): TrustRoot {
    return this.#link.card;
  }

  /** Seconds between the heartbeats a client should send: a third of the lease, so two may be lost. */
  get heartbeatSeconds(): number {
    return Math.max(1, Math.floor(this.#leaseSeconds / 3));
  }

  get state(): SeatState {
    return { seats: this.#table.seats, standby: this.#meter.items };
  }

  /** Takes a seat for `request.client`, or gives back the one it holds (renewed, with a fresh card decision). */
  acquire(request: LeaseRequest): Promise<Lease> {
    return this.#change(async (at) => {
      if (request.hostTime !== undefined && Math.abs(request.hostTime - at) > CLOCK_TOLERANCE_SECONDS) {
        throw new LicenseError('clock-set-back', `this host's clock and the license server's differ by ${Math.abs(request.hostTime - at)} s, more than ${CLOCK_TOLERANCE_SECONDS}: set them right`);
      }
      const { firm, product, item } = await this.#item(request.licensorKey, request.productCode);
      const standby = this.#standbyRule(product, item);
      const binding = await this.#binding(request.licensorKey);
      const again = this.#table.heldBy(item, request.client, 'lease');
      const overflow = again?.overflow ?? this.#table.room(item, product, at, 'lease').overflow;
      const record = await this.#link.use({ licensorKey: request.licensorKey, productCode: request.productCode, features: request.features, units: 0, hostTime: at, ...(request.user === undefined ? {} : { user: request.user }) });
      const leaseId = again?.id ?? newId();
      const names = { licensor: licensorDigest(request.licensorKey), firmCode: firm.firmCode, productCode: product.productCode };
      if (overflow && again === undefined) await this.#link.writeText(formatSeatRecordText({ kind: 'overflow', ...names, lease: leaseId, at }));
      const validUntil = validityEnd(product, at);
      const expiresAt = await this.#leaseEnd(item, names, standby, at, validUntil);
      this.#table.put({ id: leaseId, kind: 'lease', ...names, client: request.client, overflow, expiresAt, ...(validUntil === undefined ? {} : { validUntil }) });
      this.#tell({ event: again === undefined ? 'lease' : 'renew', item, client: request.client, overflow });
      return { leaseId, expiresAt, heartbeatSeconds: this.heartbeatSeconds, record, overflow, binding };
    });
  }

  /**
   * Extends a lease by its period, never past the item's validity nor a standby's time. The item is read again (no
   * record: a heartbeat is no use), so a licensor's update that deleted or shortened it ends the lease.
   */
  heartbeat(leaseId: string): Promise<{ leaseId: string; expiresAt: UnixSeconds; heartbeatSeconds: number }> {
    return this.#change(async (at) => {
      const seat = this.#table.get(leaseId);
      if (seat?.kind !== 'lease') throw unknownSeat('lease');
      const item = itemKey(seat);
      const { product } = await this.#item(seat.licensor, seat.productCode);
      const standby = this.#standbyRule(product, item);
      const validUntil = validityEnd(product, at);
      const expiresAt = await this.#leaseEnd(item, { licensor: seat.licensor, firmCode: seat.firmCode, productCode: seat.productCode }, standby, at, validUntil);
      this.#table.put({ ...seat, expiresAt: Math.max(seat.expiresAt, expiresAt), ...(validUntil === undefined ? {} : { validUntil }) });
      this.#tell({ event: 'renew', item: itemKey(seat), client: seat.client, overflow: seat.overflow });
      return { leaseId, expiresAt: Math.max(seat.expiresAt, expiresAt), heartbeatSeconds: this.heartbeatSeconds };
    }, this.options.standby !== undefined);
  }

  release(leaseId: string): Promise<void> {
    return this.#change(async (at) => this.#free(leaseId, 'lease', at));
  }

  /** Lends a seat to `borrowerCard` until at most `seconds` from now (the item's maxBorrowSeconds). */
  borrow(request: BorrowRequest): Promise<Borrow> {
    return this.#change(async (at) => {
      if (this.options.standby !== undefined) throw new LicenseError('seats', 'a standby license server does not lend seats: borrow from the primary');
      const { firm, product, item } = await this.#item(request.licensorKey, request.productCode);
      if (product.maxBorrowSeconds === undefined) throw new LicenseError('limit', `product ${product.productCode} may not be borrowed`);
      if (request.seconds > product.maxBorrowSeconds) throw new LicenseError('limit', `product ${product.productCode} may be borrowed for at most ${product.maxBorrowSeconds} s, ${request.seconds} asked`);
      const binding = await this.#binding(request.licensorKey);
      const card = borrowCardDigest(request.borrowerCard);
      const again = this.#table.heldBy(item, request.client, 'borrow', card);
      if (again?.certificate !== undefined) return { borrowId: again.id, until: again.expiresAt, certificate: again.certificate };
      this.#table.room(item, product, at, 'borrow');
      await this.#link.use({ licensorKey: request.licensorKey, productCode: request.productCode, features: request.features, units: 0, hostTime: at });
      const validUntil = validityEnd(product, at);
      const until = Math.min(at + request.seconds, validUntil ?? Infinity);
      const names = { licensor: licensorDigest(request.licensorKey), firmCode: firm.firmCode, productCode: product.productCode };
      const borrowId = newId();
      const record = await this.#link.writeText(formatBorrowRecordText({ ...names, features: request.features, card, until, id: borrowId }));
      const certificate = encodeBorrowCertificate({ record, binding });
      this.#table.put({ id: borrowId, kind: 'borrow', ...names, client: request.client, overflow: false, expiresAt: until, certificate, borrower: card });
      this.#tell({ event: 'borrow', item, client: request.client });
      return { borrowId, until, certificate };
    });
  }

  /** An early return: the seat is free again at once (a kept copy of the certificate still works offline until its end). */
  returnBorrowed(borrowId: string): Promise<void> {
    return this.#change(async (at) => this.#free(borrowId, 'borrow', at));
  }

  status(): Promise<SeatStatus> {
    return this.#change(async () => seatStatus(await this.#link.readContainer(), this.#table.seats, this.#meter, this.#link.card, this.options.standby), false);
  }

  /**
   * One change at a time (seats are counted without races); on a refusal or failure the seats are as before. `persist`
   * false: not worth a write of the state file (a lease's renewal, lost at a restart, is only asked for again).
   */
  #change<T>(job: (at: UnixSeconds) => Promise<T>, persist = true): Promise<T> {
    const run = this.#tail.then(async () => {
      const before = this.state;
      try {
        const at = this.#now();
        for (const seat of this.#table.expire(at)) this.#tell({ event: 'expire', item: itemKey(seat), client: seat.client });
        const result = await job(at);
        if (persist && this.options.stateFile !== undefined) writeSeatState(this.options.stateFile, this.state);
        return result;
      } catch (error) {
        this.#table = new SeatTable(before.seats);
        this.#meter = new StandbyMeter(before.standby);
        if (error instanceof LicenseError) this.#tell({ event: 'refuse', reason: error.reason });
        throw error;
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #free(id: string, kind: Seat['kind'], at: UnixSeconds): void {
    const seat = this.#table.get(id);
    if (seat?.kind !== kind) throw unknownSeat(kind);
    this.#table.release(id);
    const item = itemKey(seat);
    if (this.options.standby !== undefined) this.#meter.refund(item, Math.max(at, ...this.#table.of(item).map((other) => other.expiresAt)));
    this.#tell({ event: kind === 'lease' ? 'release' : 'return', item, client: seat.client });
  }

  /** The product item of the licensor (its key, or its digest as a seat names it). */
  async #item(licensor: Uint8Array | string, productCode: number): Promise<{ firm: FirmItem; product: ProductItem; item: string }> {
    const container = await this.#link.readContainer();
    const firm = container.firms.find((entry) => (typeof licensor === 'string' ? licensorDigest(entry.licensorKey) === licensor : bytesEqual(entry.licensorKey, licensor)));
    const product = firm?.products.find((entry) => entry.productCode === productCode);
    if (firm === undefined || product === undefined) throw new LicenseError('no-license', `this license server's container holds no product ${productCode} of that licensor`);
    return { firm, product, item: itemKey({ licensor: licensorDigest(firm.licensorKey), productCode }) };
  }

  async #binding(licensorKey: Uint8Array): Promise<CardBinding> {
    const binding = (await this.#link.bindings()).find((entry) => bytesEqual(entry.licensorKey, licensorKey));
    if (binding === undefined) throw new LicenseError('no-license', 'this license server keeps no card binding of that licensor, so its programs could not trust it: activate it with the licensor\'s binding');
    return binding;
  }

  /** A standby serves an item only while its rule allows: of the server's kind, switched over if cold, time left. */
  #standbyRule(product: ProductItem, item: string): StandbyRule | undefined {
    const mode = this.options.standby;
    if (mode === undefined) return undefined;
    const rule = product.standby;
    if (rule?.kind !== mode.kind) throw new LicenseError('no-license', `this is a ${mode.kind} standby license server, and product ${product.productCode} has no ${mode.kind} standby license`);
    if (mode.kind === 'cold' && !mode.active) throw new LicenseError('seats', 'this cold standby license server serves only once its operator switched it over (--standby-active)');
    if (this.#meter.used(item).seconds >= rule.maxSeconds) throw new LicenseError('expired', `the ${Math.floor(rule.maxSeconds / 60)} min of standby service product ${product.productCode} allows are used up`);
    return rule;
  }

  /** A lease's end from `at`: its period, cut at the item's validity and, on a standby, where its time runs out. */
  async #leaseEnd(item: string, names: { licensor: string; firmCode: number; productCode: number }, standby: StandbyRule | undefined, at: UnixSeconds, validUntil: UnixSeconds | undefined): Promise<UnixSeconds> {
    const end = Math.min(at + this.#leaseSeconds, validUntil ?? Infinity);
    if (end <= at) throw new LicenseError('expired', `product ${names.productCode} is no longer valid: the lease cannot be renewed`);
    if (standby === undefined) return end;
    const covered = this.#meter.cover(item, at, end, standby.maxSeconds);
    for (const minute of covered.minutes) await this.#link.writeText(formatSeatRecordText({ kind: 'standby', ...names, minute, at }));
    return covered.until;
  }
}

/** The end of an item's validity as of `at`: its expiration or the end of its usage period. */
function validityEnd(product: ProductItem, at: UnixSeconds): UnixSeconds | undefined {
  const ends = [product.expiration, product.usagePeriodSeconds === undefined ? undefined : (product.firstUse ?? at) + product.usagePeriodSeconds].filter((end): end is number => end !== undefined);
  return ends.length === 0 ? undefined : Math.min(...ends);
}
