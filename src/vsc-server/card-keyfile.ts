// `vsc admin keyfile` on the server's side (patent 004 [0044]-[0047]): a keyfile for one client
// install and one enrolled card, naming the card's serial and the public key it enrolled with
// (cards.public_key), or, for enrollment, naming no card.
import { OperationRefused, issueKeyfile } from '../vsc-protocol/index.js';
import { checkSerial } from './card-records.js';
import type { VscDatabase } from './database.js';
import type { ServerKeys } from './server-data.js';

export interface CardKeyfileRequest {
  readonly installId: string;
  /** The card the keyfile is for; `enrollment` issues one that names no card, for `vsc card enroll` only. */
  readonly card: { readonly serial: string } | 'enrollment';
}

/** The card's serial and public key as enrolled; refuses an unknown, destroyed or not yet enrolled card (exit 3). */
export async function enrolledCardKey(database: VscDatabase, serial: string): Promise<{ serial: string; publicKey: Uint8Array }> {
  checkSerial(serial);
  const row = await database.db.selectFrom('cards').select(['state', 'enrolled', 'public_key']).where('serial', '=', serial).executeTakeFirst();
  if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
  if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed`);
  if (Number(row.enrolled) !== 1 || row.public_key === null) {
    throw new OperationRefused('not-enrolled', `card ${serial} is not enrolled yet: its public key exists once the owner enrolls it (for \`vsc card enroll\`, issue a keyfile with --enrollment)`);
  }
  return { serial, publicKey: Uint8Array.from(row.public_key) };
}

/** The keyfile for `request`, signed with the server's key; the caller writes it out. */
export async function issueCardKeyfile(database: VscDatabase, keys: ServerKeys, request: CardKeyfileRequest): Promise<Uint8Array> {
  const base = { signingSeed: keys.signingSeed, keyfileSecret: keys.keyfileSecret, masterKey: keys.masterKey, installId: request.installId };
  if (request.card === 'enrollment') return issueKeyfile(base);
  return issueKeyfile({ ...base, card: await enrolledCardKey(database, request.card.serial) });
}
