// How a program or a license server reaches a license container (DESIGN.md "License containers"): through the machine's
// rental server, which owns the card and the trail (patent 003 [0058]), or in-process in tests and the demo. Every record
// the card signs (a use, an update's receipt) is in the trail before the link answers; the caller does not trust the
// link and checks each record against a card key its licensor vouched for (card-binding.ts).
import type { AuditRecord, TrustRoot } from '../rental/index.js';
import type { CardBinding } from './card-binding.js';
import type { LicenseContainer, UseRequest } from './license-model.js';

export interface LicenseCardLink {
  /** The card as the link reports it: believed only once a licensor's card binding names the same key. */
  readonly card: TrustRoot;
  /** The container's public view (no hidden or secret data). */
  readContainer(): Promise<LicenseContainer>;
  /** The card decides, counts and signs; the record is in the trail when this resolves. Refusals: LicenseError. */
  use(request: UseRequest): Promise<AuditRecord>;
  /** Applies a licensor's signed update or time certificate (file form); the record is the receipt. */
  apply(signedFile: string): Promise<AuditRecord>;
  /**
   * A plain record of `text` signed into the trail (the rental server's Write): what a network license server signs
   * its borrow certificates, overflow seats and standby minutes with (src/license/network). Optional: only links a
   * license server runs on need it.
   */
  writeText?(text: string): Promise<AuditRecord>;
  /** The card bindings kept beside the container, one per licensor that issued one (the customer stores them). */
  bindings(): Promise<readonly CardBinding[]>;
  close(): Promise<void>;
}
