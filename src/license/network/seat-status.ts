// GET /v1/status of a network license server (Wibu 002 Table 1 network, overflow, borrowable, standby): its card, every
// item of its container with the seats in use, the leases and the borrows. Nothing secret: no lease or borrow id (an id
// is its holder's handle on the seat), no certificate.
import { toHex } from '../../bytes/index.js';
import type { TrustRoot } from '../../rental/index.js';
import type { LicenseContainer, UnixSeconds } from '../license-model.js';
import { licensorDigest } from '../license-record-text.js';
import { itemKey, type Seat } from './seat-table.js';
import type { StandbyMeter } from './standby-meter.js';

export interface SeatStatus {
  readonly card: { readonly serial: string; readonly publicKey: string; readonly keyMode: string };
  readonly standby?: { readonly kind: 'hot' | 'cold'; readonly active: boolean };
  readonly items: ReadonlyArray<{
    readonly licensor: string;
    readonly firmCode: number;
    readonly productCode: number;
    readonly text: string;
    readonly licenseQuantity: number;
    readonly overflowSeats: number;
    readonly overflowUntil?: UnixSeconds;
    readonly maxBorrowSeconds?: number;
    readonly standby?: { readonly kind: 'hot' | 'cold'; readonly maxSeconds: number; readonly usedSeconds: number };
    readonly leases: number;
    readonly overflowLeases: number;
    readonly borrows: number;
  }>;
  readonly leases: ReadonlyArray<{ readonly licensor: string; readonly productCode: number; readonly client: string; readonly overflow: boolean; readonly expiresAt: UnixSeconds }>;
  readonly borrows: ReadonlyArray<{ readonly licensor: string; readonly productCode: number; readonly client: string; readonly borrower: string; readonly until: UnixSeconds }>;
}

export function seatStatus(container: LicenseContainer, seats: readonly Seat[], meter: StandbyMeter, card: TrustRoot, standby?: { kind: 'hot' | 'cold'; active: boolean }): SeatStatus {
  const items = container.firms.flatMap((firm) => firm.products.map((product) => {
    const licensor = licensorDigest(firm.licensorKey);
    const item = itemKey({ licensor, productCode: product.productCode });
    const held = seats.filter((seat) => itemKey(seat) === item);
    return {
      licensor, firmCode: firm.firmCode, productCode: product.productCode, text: product.text, licenseQuantity: product.licenseQuantity,
      overflowSeats: product.overflow?.seats ?? 0,
      ...(product.overflow?.until === undefined ? {} : { overflowUntil: product.overflow.until }),
      ...(product.maxBorrowSeconds === undefined ? {} : { maxBorrowSeconds: product.maxBorrowSeconds }),
      ...(product.standby === undefined ? {} : { standby: { ...product.standby, usedSeconds: meter.used(item).seconds } }),
      leases: held.filter((seat) => seat.kind === 'lease').length,
      overflowLeases: held.filter((seat) => seat.overflow).length,
      borrows: held.filter((seat) => seat.kind === 'borrow').length,
    };
  }));
  return {
    card: { serial: card.serial, publicKey: toHex(card.publicKey), keyMode: card.keyMode },
    ...(standby === undefined ? {} : { standby: { kind: standby.kind, active: standby.active } }),
    items,
    leases: seats.filter((seat) => seat.kind === 'lease').map((seat) => ({ licensor: seat.licensor, productCode: seat.productCode, client: seat.client, overflow: seat.overflow, expiresAt: seat.expiresAt })),
    borrows: seats.filter((seat) => seat.kind === 'borrow').map((seat) => ({ licensor: seat.licensor, productCode: seat.productCode, client: seat.client, borrower: seat.borrower ?? '', until: seat.expiresAt })),
  };
}
