// The seats of a network license server (Wibu 002 Table 1: network / floating, overflow, borrowable, hot and cold
// standby): who holds which seat of which product item until when. Pure bookkeeping with the time passed in; the
// server (license-server.ts) asks the card before it grants, and keeps this table in a 0600 state file.
import { randomBytes } from 'node:crypto';
import { LicenseError } from '../license-error.js';
import type { ProductItem, UnixSeconds } from '../license-model.js';

export type SeatKind = 'lease' | 'borrow';

export interface Seat {
  readonly id: string;
  readonly kind: SeatKind;
  /** licensorDigest and product code: `LD/PRODUCT`. */
  readonly item: string;
  readonly client: string;
  readonly overflow: boolean;
  expiresAt: UnixSeconds;
}

export interface SeatTableState {
  readonly seats: readonly Seat[];
  /** Seconds of standby service used so far, by item. */
  readonly standbySeconds: Readonly<Record<string, number>>;
}

export class SeatTable {
  readonly #seats = new Map<string, Seat>();
  readonly #standby = new Map<string, number>();

  constructor(state: SeatTableState = { seats: [], standbySeconds: {} }) {
    for (const seat of state.seats) this.#seats.set(seat.id, { ...seat });
    for (const [item, seconds] of Object.entries(state.standbySeconds)) this.#standby.set(item, seconds);
  }

  get state(): SeatTableState {
    return { seats: [...this.#seats.values()].map((seat) => ({ ...seat })), standbySeconds: Object.fromEntries(this.#standby) };
  }

  /** Frees every seat whose time ran out: a lease without heartbeat, a borrow past its end. */
  expire(now: UnixSeconds): Seat[] {
    const gone = [...this.#seats.values()].filter((seat) => seat.expiresAt <= now);
    for (const seat of gone) this.#seats.delete(seat.id);
    return gone;
  }

  held(item: string): Seat[] {
    return [...this.#seats.values()].filter((seat) => seat.item === item);
  }

  /** The seat `client` holds of `item` already, if any (asking again gives the same seat, never a second one). */
  heldBy(item: string, client: string, kind: SeatKind): Seat | undefined {
    return this.held(item).find((seat) => seat.client === client && seat.kind === kind);
  }

  /**
   * Takes a seat of `product` for `client` until `expiresAt`: within licenseQuantity, or as an overflow seat while the
   * item's overflow rule allows one; else LicenseError 'seats'.
   */
  take(item: string, product: ProductItem, client: string, kind: SeatKind, expiresAt: UnixSeconds, now: UnixSeconds): Seat {
    const held = this.held(item);
    const regular = held.filter((seat) => !seat.overflow).length;
    let overflow = false;
    if (regular >= product.licenseQuantity) {
      const rule = product.overflow;
      const overflowing = held.length - regular;
      if (rule === undefined || (rule.until !== undefined && now >= rule.until) || overflowing >= rule.seats) {
        throw new LicenseError('seats', `all ${product.licenseQuantity} seats of product ${product.productCode} are taken${rule === undefined ? '' : ` and its ${rule.seats} overflow seats too`}: try again when one returns`);
      }
      overflow = true;
    }
    const seat: Seat = { id: randomBytes(12).toString('hex'), kind, item, client, overflow, expiresAt };
    this.#seats.set(seat.id, seat);
    return seat;
  }

  get(id: string): Seat | undefined {
    return this.#seats.get(id);
  }

  release(id: string): Seat | undefined {
    const seat = this.#seats.get(id);
    this.#seats.delete(id);
    return seat;
  }

  standbyUsed(item: string): number {
    return this.#standby.get(item) ?? 0;
  }

  addStandby(item: string, seconds: number): void {
    this.#standby.set(item, this.standbyUsed(item) + Math.max(0, seconds));
  }
}
