// A server-held card's SIGN AND INCREMENT on its server (DESIGN.md "Software rental", trust model; patent 003
// [0053] step [1], [0096]): in ONE transaction the server checks that the card is in use by this holder, takes the
// card's next counter value (its card id's counter range, shared by copies), signs h' = SHA-256(h ‖ counter) with the
// seed sealed to it (opened for this signature, wiped at once), records counter + 1 and commits; only then is the
// answer sent. A crash before the commit answers nothing, and the value goes to the next signature: no value is ever
// answered twice. No counter window exists for such a card, so recover loses no values either.
import { COUNTER_MAX, signedDigest } from '../apdu/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { asBytes, type HeldSignature, type HolderProof } from './card-records.js';
import type { CardTransactions } from './card-transaction.js';
import type { CardsTable } from './database.js';
import { checkHolder, notTheHolder } from './holder-checks.js';
import type { HeldSeedSealer } from './server-held-seed.js';

/** Whether the card's key is sealed to this server. */
export const isServerHeld = (row: CardsTable): boolean => row.kind === 'server-held';

/** The sealed seed of a server-held card that is not destroyed; refused for any other card. */
export function heldSeedOf(serial: string, row: CardsTable): Uint8Array {
  if (!isServerHeld(row)) throw new OperationRefused('wrong-state', `card ${serial} is not server-held: it signs on the machine that holds it`);
  if (row.held_seed === null || row.held_seed === undefined) throw new OperationRefused('wrong-state', `card ${serial} has no key any more (destroyed)`);
  return asBytes(row.held_seed);
}

/** SIGN AND INCREMENT of `serial` for its holder: see the head of this file. `h` is 32 bytes (the message schema says so). */
export function signForHolder(cards: CardTransactions, seeds: HeldSeedSealer, serial: string, holder: HolderProof, h: Uint8Array): Promise<HeldSignature> {
  return cards.run(serial, 'sign', { by: 'holder' }, async (tx, row) => {
    checkHolder(serial, row, holder);
    const sealed = heldSeedOf(serial, row);
    const range = await cards.hot.lockCounterRange(tx, row.card_id);
    const counter = BigInt(range.next_unallocated);
    if (counter >= COUNTER_MAX) throw new OperationRefused('wrong-state', `the counter of card ${serial} reached 2^128-1 and never rolls over`);
    const digest = signedDigest(h, counter, 'individual', serial);
    const signature = seeds.withSeed(serial, sealed, (seed) => ed25519KeyFromSeed(seed).sign(digest));
    const moved = await tx
      .updateTable('counter_ranges')
      .set({ next_unallocated: (counter + 1n).toString() })
      .where('card_id', '=', row.card_id)
      .where('next_unallocated', '=', range.next_unallocated)
      .executeTakeFirst();
    if (moved.numUpdatedRows !== 1n) throw new OperationRefused('busy', 'a copy of this card signed at the same moment; try again');
    return { from: 'in-use', to: 'in-use', detail: `last counter ${counter}`, value: { counter, signature }, counted: true };
  }, () => notTheHolder(serial));
}
