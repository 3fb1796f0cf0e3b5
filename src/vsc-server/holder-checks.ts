// Who may act on a card: the holder of an in-use card (the machine recorded at insert and the
// process that inserted it), and who gave an idle card back (a repeated remove or recover gets the
// same answer, DESIGN.md "Card states"). Every comparison is constant-time.
import { constantTimeEqual, utf8 } from '../bytes/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { hash, type HolderProof } from './card-records.js';
import type { CardsTable } from './database.js';

const RECOVERY_DOMAIN = utf8('vsc recovered by MUK\0');

/**
 * What a recover leaves in last_holder_hash: a hash of the recovering machine's MUK, domain-separated
 * from the holder-secret hashes a remove leaves there.
 */
export function recoveryMark(muk: Uint8Array): Uint8Array {
  const input = new Uint8Array(RECOVERY_DOMAIN.length + muk.length);
  input.set(RECOVERY_DOMAIN, 0);
  input.set(muk, RECOVERY_DOMAIN.length);
  return hash(input);
}

/** Whether the card is idle because of whoever `mark` names (last_holder_hash): a repeated remove or recover. */
export function gaveBack(row: CardsTable, mark: Uint8Array): boolean {
  return row.state === 'idle' && row.last_holder_hash !== null && constantTimeEqual(mark, row.last_holder_hash);
}

export function isHolder(row: CardsTable, holder: HolderProof): boolean {
  // Both comparisons run, whatever the first one says.
  const muk = row.muk !== null && constantTimeEqual(holder.muk, row.muk);
  const secret = row.holder_hash !== null && constantTimeEqual(holder.holderHash, row.holder_hash);
  return muk && secret;
}

/** The one answer to a holder proof that does not hold: whatever the card's state, or no card at all. */
export const notTheHolder = (serial: string): OperationRefused => new OperationRefused('holder-mismatch', `this machine and process do not hold card ${serial}`);

/**
 * The holder of an in-use card: the machine recorded at insert, and the process that inserted it.
 * Nothing else is said to a peer that is not the holder (the card's state stays unknown to it), except
 * to the holder of a card destroyed under it, which is told so.
 */
export function checkHolder(serial: string, row: CardsTable, holder: HolderProof): void {
  if (row.state === 'destroyed' && row.last_holder_hash !== null && constantTimeEqual(holder.holderHash, row.last_holder_hash)) {
    throw new OperationRefused('wrong-state', `card ${serial} was destroyed while this machine held it`);
  }
  if (row.state !== 'in-use' || !isHolder(row, holder)) throw notTheHolder(serial);
}
