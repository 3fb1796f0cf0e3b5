// The VSC server as the backing of a running card (patent 004 [0035]-[0060], [0095]-[0100]): open is
// the insert, further counter values come from `extend`, and giving back is the remove, each on a
// protected-channel session of its own. Only the protection key (to seal the upload) and the holder
// secret (to prove the holder at extend and remove) stay, in encrypted memory; the password and the
// auth key are gone once the card is open. Every change of the information is kept on disk, sealed,
// before the card answers (pending-upload.ts), and so is the final upload before it is sent: a
// remove that fails, or a crash, loses nothing. A server-held card (patent 003 [0096]) asks for no
// counter values: each SIGN AND INCREMENT is a `sign` session of its own, run by the server.
import { wipe } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { SignRefusedError, type SignAndIncrementResult } from '../apdu/index.js';
import { EncryptedMemory, readCardKind, readCardPublicKey, toBinaryProtectedInformation, type CardBacking, type CounterGrant, type OpenedCard, type ServerHeldSigner } from '../card/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import type { PendingUploads } from './pending-upload.js';
import { sealProtectedInformation } from './sealing.js';
import { extendCounterWindow, insertCard, removeCard, signOnServer, type HolderCredentials, type OwnerCredentials, type ServerEndpoint } from './server-operations.js';

export interface ServerBackingInit {
  readonly endpoint: ServerEndpoint;
  readonly serial: string;
  /** The owner's password (wiped once the card is open) or keys already derived from it. */
  readonly credentials: OwnerCredentials;
  readonly muk: Uint8Array;
  /** Where this machine keeps uploads until the server has taken them; without it nothing is kept (tests, the demo). */
  readonly pending?: PendingUploads;
}

/** The server did not take the card back; its information waits on disk for the next try. */
export class RemovePendingError extends VscError {
  override readonly name = 'RemovePendingError';
  constructor(
    message: string,
    readonly keptAt: string | undefined,
    options: { cause?: unknown } = {},
  ) {
    super('card.remove-pending', message, { exitCode: ExitCode.other, ...options });
  }
}

const KEY_LENGTH = 32;

export class ServerBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  readonly #init: ServerBackingInit;
  #inserted: { cardId: Uint8Array; sealedVersion: bigint; counterWindow: readonly [bigint, bigint] } | undefined;
  /** Protection key ‖ holder secret. */
  #secrets: EncryptedMemory | undefined;
  #attestation: Uint8Array | undefined;

  constructor(init: ServerBackingInit) {
    this.#init = init;
  }

  async open(): Promise<OpenedCard> {
    const { endpoint, serial, credentials, muk } = this.#init;
    const inserted = await insertCard(endpoint, serial, credentials, muk);
    if ('password' in credentials) wipe(credentials.password);
    const secrets = new Uint8Array(2 * KEY_LENGTH);
    secrets.set(inserted.keys.protectionKey, 0);
    secrets.set(inserted.holderSecret, KEY_LENGTH);
    wipe(inserted.keys.authKey, inserted.keys.protectionKey, inserted.holderSecret);
    this.#secrets = EncryptedMemory.seal(secrets);
    this.#inserted = { cardId: inserted.cardId, sealedVersion: inserted.sealedVersion, counterWindow: inserted.counterWindow };
    this.#attestation = inserted.attestation;
    const grant = { start: inserted.counterWindow[0], end: inserted.counterWindow[1] };
    const opened = { serial, keyMode: 'individual' as const, plaintext: inserted.plaintext, grant };
    const heldKey = serverHeldKey(inserted.plaintext);
    return heldKey === undefined ? opened : { ...opened, serverHeld: this.#serverSigner(heldKey, grant.start) };
  }

  /** The server's attestation of a server-held card's key, as the insert carried it. */
  get attestation(): Uint8Array | undefined {
    return this.#attestation?.slice();
  }

  /** SIGN AND INCREMENT on the server, as the holder; a refusal (not the holder, destroyed, busy) becomes 6985. */
  #serverSigner(publicKey: Uint8Array, next: bigint): ServerHeldSigner {
    return {
      publicKey,
      next,
      signAndIncrement: (h: Uint8Array): Promise<SignAndIncrementResult> =>
        this.#withSecrets((_, holder) => signOnServer(this.#init.endpoint, this.#init.serial, holder, h)).catch((error: unknown) => {
          if (error instanceof OperationRefused && error.reason !== 'internal') throw new SignRefusedError('disabled', `the server refused the signature: ${error.message}`, { cause: error });
          throw error;
        }),
    };
  }

  /** What the server granted at insert, for the story the demo tells. */
  get insertedWindow(): readonly [bigint, bigint] {
    return this.#holder().counterWindow;
  }

  async grantMore(): Promise<CounterGrant> {
    const [start, end] = await this.#withSecrets((_, holder) => extendCounterWindow(this.#init.endpoint, this.#init.serial, holder));
    return { start, end };
  }

  /** The information changed: its sealed upload is kept on disk before the card answers. */
  async save(snapshot: Uint8Array): Promise<void> {
    if (this.#init.pending === undefined) return;
    this.#secrets!.use((secrets) => {
      const sealed = this.#seal(secrets.subarray(0, KEY_LENGTH), snapshot);
      try {
        this.#keep(sealed, secrets.subarray(KEY_LENGTH), undefined);
      } finally {
        wipe(sealed);
      }
    });
  }

  /**
   * The remove: the final upload is kept on disk first, then sent (tried again while the server is
   * unreachable, busy or failing, for the endpoint's retryMs), and deleted once the server took it.
   * When it could not be delivered it stays, and RemovePendingError says where.
   */
  async giveBack(snapshot: Uint8Array, nextCounter: bigint): Promise<void> {
    const { endpoint, serial, pending } = this.#init;
    await this.#withSecrets(async (protectionKey, holder) => {
      // Sealed once: the bytes kept on disk are the bytes sent. Kept before the first try; a failure
      // to keep them is the file system's, and is thrown as it is.
      const sealed = this.#seal(protectionKey, snapshot);
      try {
        const keptAt = pending === undefined ? undefined : this.#keep(sealed, holder.holderSecret, nextCounter);
        try {
          await removeCard(endpoint, serial, { ...holder, sealed, sealedVersion: this.#holder().sealedVersion + 1n, nextCounter });
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error);
          const where = keptAt === undefined ? 'its changes are lost' : `its changes are kept in ${keptAt} and sent again at the next "vsc card insert", "remove", "status" or "recover" on this machine`;
          throw new RemovePendingError(`the server did not take card ${serial} back (${why}); ${where}`, keptAt, { cause: error });
        }
      } finally {
        wipe(sealed);
      }
    });
    pending?.done(serial);
  }

  async close(): Promise<void> {
    this.#secrets?.destroy();
  }

  /** Writes the sealed next version, with the holder secret, to the pending file; returns its path. */
  #keep(sealed: Uint8Array, holderSecret: Uint8Array, nextCounter: bigint | undefined): string {
    const { endpoint, serial, pending } = this.#init;
    return pending!.keep({
      serial, url: endpoint.url, serverKey: endpoint.serverKey,
      ...(endpoint.masterKeyFile === undefined ? {} : { masterKeyFile: endpoint.masterKeyFile }),
      ...(endpoint.keyfilePath === undefined ? {} : { keyfile: endpoint.keyfilePath }),
      holderSecret, sealed, sealedVersion: this.#holder().sealedVersion + 1n,
      ...(nextCounter === undefined ? {} : { nextCounter }),
    });
  }

  #seal(protectionKey: Uint8Array, snapshot: Uint8Array): Uint8Array {
    const inserted = this.#holder();
    return sealProtectedInformation(protectionKey, inserted.cardId, inserted.sealedVersion + 1n, snapshot);
  }

  #holder(): { cardId: Uint8Array; sealedVersion: bigint; counterWindow: readonly [bigint, bigint] } {
    if (this.#inserted === undefined) throw new VscError('card.not-open', 'the card is not open');
    return this.#inserted;
  }

  async #withSecrets<R>(operation: (protectionKey: Uint8Array, holder: HolderCredentials) => Promise<R>): Promise<R> {
    const secrets = this.#secrets!.use((bytes) => bytes.slice());
    try {
      return await operation(secrets.subarray(0, KEY_LENGTH), { muk: this.#init.muk, holderSecret: secrets.subarray(KEY_LENGTH) });
    } finally {
      wipe(secrets);
    }
  }
}

/** A server-held card's public key, read from its information; undefined for a card that holds its own seed. */
function serverHeldKey(plaintext: Uint8Array): Uint8Array | undefined {
  const binary = toBinaryProtectedInformation(plaintext);
  try {
    return readCardKind(binary) === 'server-held' ? readCardPublicKey(binary) : undefined;
  } finally {
    wipe(binary);
  }
}
