// A server-held card's insert and remove (DESIGN.md "Software rental", trust model; patent 003 [0096]): the same
// transitions as any card's (card-store.ts), but without counter windows: the server keeps the counter and signs
// itself (server-held-signing.ts), so insert grants nothing ahead and remove takes no counter back.
import type { Transaction } from 'kysely';
import { OperationRefused } from '../vsc-protocol/index.js';
import { NO_HOLDER, asBytes, toBigInt, type HolderProof, type InsertGrant, type Upload } from './card-records.js';
import type { CardTransactions, TransitionOutcome } from './card-transaction.js';
import type { CardsTable, VscDatabaseSchema } from './database.js';
import { isHolder } from './holder-checks.js';
import { attestServerHeld, type ServerAttester } from './server-attestation.js';

/**
 * Insert of a server-held card: as for any card, but no counter window: the grant is empty at the counter
 * value the server signs with next, and carries this server's attestation of the card's key.
 */
export async function insertServerHeld(
  cards: CardTransactions, attester: ServerAttester | undefined, tx: Transaction<VscDatabaseSchema>, serial: string, row: CardsTable, holder: HolderProof,
): Promise<TransitionOutcome<InsertGrant>> {
  const next = BigInt((await cards.hot.lockCounterRange(tx, row.card_id)).next_unallocated);
  const attestation = attester === undefined || row.public_key === null ? undefined : await attestServerHeld(attester, serial, asBytes(row.public_key), cards.now());
  const grant: InsertGrant = Object.freeze({
    cardId: asBytes(row.card_id), sealed: asBytes(row.sealed!), sealedVersion: toBigInt(row.sealed_version), counterWindow: [next, next] as const, ...(attestation === undefined ? {} : { attestation }),
  });
  if (row.state === 'in-use' && isHolder(row, holder)) return { from: 'in-use', to: 'in-use', detail: `repeated for its holder: server-held, next counter ${next}`, value: grant };
  if (row.state !== 'idle') throw new OperationRefused('wrong-state', `card ${serial} is ${row.state}, not idle`);
  if (!(await cards.hot.markInUse(tx, serial, holder, [null, null], cards.now()))) throw new OperationRefused('wrong-state', `card ${serial} is no longer idle`);
  await cards.owners.rememberMachine(tx, serial, holder.muk);
  return { from: 'idle', to: 'in-use', detail: `server-held, next counter ${next}`, value: grant };
}

/** Remove of a server-held card: the upload only; the counter the client reports is not the truth, the server's is. */
export async function removeServerHeld(cards: CardTransactions, tx: Transaction<VscDatabaseSchema>, serial: string, row: CardsTable, holder: HolderProof, upload: Upload): Promise<TransitionOutcome<void>> {
  if (upload.sealedVersion !== toBigInt(row.sealed_version) + 1n) throw new OperationRefused('wrong-state', `expected sealed version ${toBigInt(row.sealed_version) + 1n}, got ${upload.sealedVersion}`);
  await tx
    .updateTable('cards')
    .set({ state: 'idle', ...NO_HOLDER, last_holder_hash: holder.holderHash, sealed: upload.sealed, sealed_version: upload.sealedVersion.toString(), updated_at: cards.now() })
    .where('serial', '=', serial)
    .where('state', '=', 'in-use')
    .execute();
  return { from: 'in-use', to: 'idle', detail: 'server-held: its counter stays on the server', value: undefined };
}
