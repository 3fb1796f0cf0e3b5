// A RentalCard for the rental tests: the real VSC applet on a software card in the in-process card OS, reached
// through the in-process reader and the typed VSC applet client, as the rental server reaches a card.
import { CardOs, SoftwareVscCard, VscApplet, type VscKeyMode } from '../../src/apdu/index.js';
import { VscAppletClient } from '../../src/card-client/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../../src/reader-driver/index.js';
import type { RentalCard, TrustRoot } from '../../src/rental/index.js';

export interface RentalCardInit {
  readonly serial?: string;
  readonly keyMode?: VscKeyMode;
  readonly counter?: bigint;
  /** The card's key seed: the same seed again makes the same card (a restored or rolled-back copy). */
  readonly seed?: Uint8Array;
}

let readers = 0;

export async function vscRentalCard(init: RentalCardInit = {}) {
  const serial = init.serial ?? 'SN-RENT-1';
  const keyMode = init.keyMode ?? 'individual';
  const seed = init.seed ?? generateEd25519Seed();
  const card = new SoftwareVscCard({ serial, keyMode, key: ed25519KeyFromSeed(seed), counter: init.counter ?? 0n });
  const os = new CardOs([new VscApplet(card)]);
  const system = new ReaderSystem();
  const name = `Rental Test Reader ${String(readers++).padStart(2, '0')}`;
  system.addReader(name).insert(os);
  const handle = await establishContext(system).connect(name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  const client = new VscAppletClient(handle);
  await client.select();
  const rental: RentalCard = {
    signAndIncrement: (h1) => client.signAndIncrement(h1, keyMode),
    getCounter: () => client.counter(),
  };
  // What the keyfile would name: read here from the card object, standing in for `vsc keyfile create`.
  const trustRoot: TrustRoot = { publicKey: card.publicKey, serial, keyMode };
  return { card, client, rental, trustRoot, seed };
}
