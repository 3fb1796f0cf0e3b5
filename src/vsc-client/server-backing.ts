// The VSC server as the backing of a running card (patent 004 [0035]-[0060], [0095]-[0100]): open is
// the insert, further counter values come from `extend`, and giving back is the remove, each on a
// protected-channel session of its own. The owner's keys, not the password, stay in encrypted memory
// for the holder's later operations.
import { wipe } from '../bytes/index.js';
import { VscError } from '../errors/index.js';
import { EncryptedMemory, type CardBacking, type CounterGrant, type OpenedCard } from '../card/index.js';
import type { OwnerKeys } from './key-derivation.js';
import { extendCounterWindow, insertCard, removeCard, type InsertedCard, type OwnerCredentials, type ServerEndpoint } from './server-operations.js';

export interface ServerBackingInit {
  readonly endpoint: ServerEndpoint;
  readonly serial: string;
  /** The owner's password (wiped once the card is open) or keys already derived from it. */
  readonly credentials: OwnerCredentials;
  readonly muk: Uint8Array;
}

const OWNER_KEY_LENGTH = 32;

export class ServerBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  readonly #init: ServerBackingInit;
  #inserted: Omit<InsertedCard, 'plaintext' | 'keys'> | undefined;
  #ownerKeys: EncryptedMemory | undefined;

  constructor(init: ServerBackingInit) {
    this.#init = init;
  }

  async open(): Promise<OpenedCard> {
    const { endpoint, serial, credentials, muk } = this.#init;
    const inserted = await insertCard(endpoint, serial, credentials, muk);
    if ('password' in credentials) wipe(credentials.password);
    // Only the owner keys are kept, sealed like the card's secrets; the password is gone.
    const keys = new Uint8Array(2 * OWNER_KEY_LENGTH);
    keys.set(inserted.keys.authKey, 0);
    keys.set(inserted.keys.protectionKey, OWNER_KEY_LENGTH);
    wipe(inserted.keys.authKey, inserted.keys.protectionKey);
    this.#ownerKeys = EncryptedMemory.seal(keys);
    this.#inserted = { cardId: inserted.cardId, sealedVersion: inserted.sealedVersion, counterWindow: inserted.counterWindow, holderSecret: inserted.holderSecret };
    return { serial, keyMode: 'individual', plaintext: inserted.plaintext, grant: { start: inserted.counterWindow[0], end: inserted.counterWindow[1] } };
  }

  /** What the server granted at insert, for the story the demo tells. */
  get insertedWindow(): readonly [bigint, bigint] {
    return this.#holder().counterWindow;
  }

  async grantMore(): Promise<CounterGrant> {
    const inserted = this.#holder();
    const [start, end] = await this.#withKeys((keys) =>
      extendCounterWindow(this.#init.endpoint, this.#init.serial, { keys }, { muk: this.#init.muk, holderSecret: inserted.holderSecret }),
    );
    return { start, end };
  }

  /** The server learns the information only at remove; a later version keeps a sealed copy locally. */
  async save(): Promise<void> {}

  async giveBack(snapshot: Uint8Array, nextCounter: bigint): Promise<void> {
    const inserted = this.#holder();
    await this.#withKeys((keys) =>
      removeCard(this.#init.endpoint, this.#init.serial, { keys }, {
        muk: this.#init.muk, holderSecret: inserted.holderSecret, cardId: inserted.cardId, plaintext: snapshot, sealedVersion: inserted.sealedVersion + 1n, nextCounter,
      }),
    );
  }

  async close(): Promise<void> {
    this.#ownerKeys?.destroy();
    if (this.#inserted !== undefined) wipe(this.#inserted.holderSecret);
  }

  #holder(): Omit<InsertedCard, 'plaintext' | 'keys'> {
    if (this.#inserted === undefined) throw new VscError('card.not-open', 'the card is not open');
    return this.#inserted;
  }

  async #withKeys<R>(operation: (keys: OwnerKeys) => Promise<R>): Promise<R> {
    const keys = this.#ownerKeys!.use((bytes) => ({ authKey: bytes.slice(0, OWNER_KEY_LENGTH), protectionKey: bytes.slice(OWNER_KEY_LENGTH) }));
    try {
      return await operation(keys);
    } finally {
      wipe(keys.authKey, keys.protectionKey);
    }
  }
}
