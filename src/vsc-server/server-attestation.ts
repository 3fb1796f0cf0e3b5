// What the server's attestation key (attestation-key.ts) signs (DESIGN.md "Software rental", trust model): that a
// server-held card's SIGN AND INCREMENT key is sealed to this server and used by it alone (patent 003 [0096]: the
// vendor "may wish to validate the smart card manufacturer and/or personalizer"), through src/card-attestation.
import { toHex } from '../bytes/index.js';
import { issueCardAttestation, type AttestationSigner } from '../card-attestation/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { checkSerial } from './card-records.js';
import type { VscDatabase } from './database.js';

/** The signer of a server's attestations, and the name they carry. */
export interface ServerAttester extends AttestationSigner {
  /** "VSC server" and the start of the server's channel public key: whom a vendor is asked to trust. */
  readonly attester: string;
}

/** The attester of the server whose channel key is `channelPublicKey`, signing with `seed` (not kept). */
export function serverAttester(seed: Uint8Array, channelPublicKey: Uint8Array): ServerAttester {
  const key = ed25519KeyFromSeed(seed);
  return Object.freeze({ publicKey: key.publicKey, sign: (message: Uint8Array) => key.sign(message), attester: `VSC server ${toHex(channelPublicKey).slice(0, 16)}` });
}

/** This server's attestation that card `serial` signs with `publicKey`, a key sealed to it (kind server-held). */
export function attestServerHeld(attester: ServerAttester, serial: string, publicKey: Uint8Array, now: number): Promise<Uint8Array> {
  return issueCardAttestation(attester, { serial, publicKey, keyMode: 'individual', kind: 'server-held', attester: attester.attester, issuedAt: new Date(now).toISOString() });
}

/**
 * `vsc admin attest`: the attestation of a server-held card of this server. Refuses an unknown serial, a destroyed
 * card, and a card whose key its owner's machine generated (exit 3): this server cannot vouch for that key.
 */
export async function attestCard(database: VscDatabase, attester: ServerAttester, serial: string, now = Date.now()): Promise<Uint8Array> {
  checkSerial(serial);
  const row = await database.db.selectFrom('cards').select(['state', 'kind', 'public_key', 'held_seed']).where('serial', '=', serial).executeTakeFirst();
  if (row === undefined) throw new OperationRefused('unknown-card', `no card ${serial}`);
  if (row.state === 'destroyed') throw new OperationRefused('wrong-state', `card ${serial} is destroyed: its key is gone and signs nothing any more`);
  if (row.kind !== 'server-held' || row.public_key === null || row.held_seed === null || row.held_seed === undefined) {
    throw new OperationRefused('wrong-state', `card ${serial} is not server-held: its key was generated on its owner's machine, so this server cannot vouch that it is out of the owner's reach`);
  }
  return attestServerHeld(attester, serial, Uint8Array.from(row.public_key), now);
}
