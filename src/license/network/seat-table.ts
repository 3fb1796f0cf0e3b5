// The seats of a network license server (Wibu 002 Table 1: network / floating license, overflow, borrowable): who
// holds which seat of which product item until when. Bookkeeping only, with the time passed in; seat-service.ts asks
// the card before it grants and keeps this table (with the standby meter) in the server's 0600 state file.
import { LicenseError } from '../license-error.js';
import { MAX_CODE, type ProductItem, type UnixSeconds } from '../license-model.js';

export type SeatKind = 'lease' | 'borrow';

export interface Seat {
  /** The lease or borrow id: 24 hex digits, the holder's handle on its seat (never shown in the status). */
  readonly id: string;
  readonly kind: SeatKind;
  /** licensorDigest of the firm item's key. */
  readonly licensor: string;
  readonly firmCode: number;
  readonly productCode: number;
  readonly client: string;
  readonly overflow: boolean;
  readonly expiresAt: UnixSeconds;
  /** A lease's heartbeats cannot carry it past this (the item's expiration or the end of its usage period). */
  readonly validUntil?: UnixSeconds;
  /** A borrow's certificate and borrowCardDigest of its card, handed back when the same client asks again. */
  readonly certificate?: string;
  readonly borrower?: string;
}

export const itemKey = (seat: Pick<Seat, 'licensor' | 'productCode'>): string => `${seat.licensor}/${seat.productCode}`;

export class SeatTable {
  readonly #seats = new Map<string, Seat>();

  constructor(seats: readonly Seat[] = []) {
    for (const seat of seats) this.#seats.set(seat.id, seat);
  }

  get seats(): readonly Seat[] {
    return [...this.#seats.values()];
  }

  /** Frees every seat whose time ran out (a lease without heartbeat, a borrow past its end) and returns them. */
  expire(now: UnixSeconds): Seat[] {
    const gone = this.seats.filter((seat) => seat.expiresAt <= now);
    for (const seat of gone) this.#seats.delete(seat.id);
    return gone;
  }

  of(item: string): Seat[] {
    return this.seats.filter((seat) => itemKey(seat) === item);
  }

  /** The seat `client` holds of `item` already: asking again gives it back, never a second one. */
  heldBy(item: string, client: string, kind: SeatKind, borrower?: string): Seat | undefined {
    return this.of(item).find((seat) => seat.client === client && seat.kind === kind && seat.borrower === borrower);
  }

  /**
   * Whether one more seat of `product` may be taken at `now`: a regular one within licenseQuantity, else an overflow
   * one while the item's overflow rule allows (never for a borrow); else LicenseError 'seats'.
   */
  room(item: string, product: ProductItem, now: UnixSeconds, kind: SeatKind): { overflow: boolean } {
    const held = this.of(item);
    const overflowing = held.filter((seat) => seat.overflow).length;
    if (held.length - overflowing < product.licenseQuantity) return { overflow: false };
    const rule = product.overflow;
    const taken = `all ${product.licenseQuantity} seats of product ${product.productCode} are taken`;
    if (kind === 'borrow') throw new LicenseError('seats', `${taken}: a seat can be borrowed once one returns (overflow seats are not lent)`);
    if (rule === undefined) throw new LicenseError('seats', `${taken}: try again once one returns`);
    if (rule.until !== undefined && now >= rule.until) throw new LicenseError('seats', `${taken}, and its overflow seats ended at ${new Date(rule.until * 1000).toISOString()}`);
    if (overflowing >= rule.seats) throw new LicenseError('seats', `${taken}, and its ${rule.seats} overflow seats too: try again once one returns`);
    return { overflow: true };
  }

  put(seat: Seat): void {
    this.#seats.set(seat.id, seat);
  }

  get(id: string): Seat | undefined {
    return this.#seats.get(id);
  }

  release(id: string): Seat | undefined {
    const seat = this.#seats.get(id);
    this.#seats.delete(id);
    return seat;
  }
}

const MAX_TIME = 2 ** 40;
const SEAT_KEYS = new Set(['id', 'kind', 'licensor', 'firmCode', 'productCode', 'client', 'overflow', 'expiresAt', 'validUntil', 'certificate', 'borrower']);

/** A seat from the state file, checked field by field (a damaged file stops the server rather than hand out seats). */
export function seatFromJson(value: unknown, where: string): Seat {
  const bad = (why: string) => new LicenseError('input', `${where}: expected ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('a seat object');
  const fields = value as Record<string, unknown>;
  const extra = Object.keys(fields).find((key) => !SEAT_KEYS.has(key));
  if (extra !== undefined) throw bad(`no field "${extra.slice(0, 40)}"`);
  const hex = (key: string, digits: number): string => {
    const field = fields[key];
    if (typeof field !== 'string' || field.length !== digits || !/^[0-9a-f]+$/.test(field)) throw bad(`${key} as ${digits} lowercase hex digits`);
    return field;
  };
  const whole = (key: string, max: number): number => {
    const field = fields[key];
    if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 0 || field > max) throw bad(`${key} as a whole number in 0..${max}`);
    return field;
  };
  const kind = fields['kind'];
  if (kind !== 'lease' && kind !== 'borrow') throw bad('kind lease or borrow');
  const client = fields['client'];
  if (typeof client !== 'string' || client.length === 0 || client.length > 64) throw bad('client as a text of 1..64 characters');
  if (typeof fields['overflow'] !== 'boolean') throw bad('overflow as true or false');
  const certificate = fields['certificate'];
  if (certificate !== undefined && (typeof certificate !== 'string' || certificate.length > 8192)) throw bad('certificate as a text');
  if ((kind === 'borrow') !== (certificate !== undefined && fields['borrower'] !== undefined)) throw bad('a certificate and a borrower on borrows only');
  return {
    id: hex('id', 24), kind, licensor: hex('licensor', 32), firmCode: whole('firmCode', MAX_CODE), productCode: whole('productCode', MAX_CODE), client,
    overflow: fields['overflow'], expiresAt: whole('expiresAt', MAX_TIME),
    ...(fields['validUntil'] === undefined ? {} : { validUntil: whole('validUntil', MAX_TIME) }),
    ...(certificate === undefined ? {} : { certificate }),
    ...(fields['borrower'] === undefined ? {} : { borrower: hex('borrower', 32) }),
  };
}
