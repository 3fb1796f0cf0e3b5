// The one place a card is assembled (DESIGN.md "What backs a running card"): card OS, VSC applet, PIV
// applet and license applet ("License containers") over the protected information in encrypted memory,
// whatever backs the card (a server-held card's VSC applet signs through its server,
// server-held-vsc-card.ts); and the one remove sequence ([0057], [0095]): refuse service, detach from
// the reader, let a grant finish, give the final information back, wipe.
import { CardOs, PivApplet, VscApplet, wipePivSecrets, type CardOsOptions, type PivState, type VscCard, type VscKeyMode } from '../apdu/index.js';
import { bytesEqual, wipe } from '../bytes/index.js';
import { VscError } from '../errors/index.js';
import { LicenseError, type LicenseContainer, LicenseApplet } from '../license/index.js';
import type { CardBacking, CounterGrant, OpenedCard, ServerHeldSigner } from './card-backing.js';
import { EncryptedMemory } from './encrypted-memory.js';
import { GrantedVscCard } from './granted-vsc-card.js';
import { MAX_PROTECTED_INFORMATION_BYTES } from '../vsc-protocol/index.js';
import {
  encodedProtectedInformationLength, readCardKind, readCardPublicKey, readCounter, readLicenseContainer, readLicenseFieldLength, readPivState,
  updateProtectedInformation,
} from './protected-information-codec.js';
import { ServerHeldVscCard } from './server-held-vsc-card.js';
import { toBinaryProtectedInformation } from './protected-information.js';

export interface RunningCardOptions {
  readonly cardOs?: CardOsOptions;
  /** A grant asked for ahead failed (the card goes on inside what it has). */
  readonly onGrantFailed?: (error: unknown) => void;
}

export interface CounterStatus {
  /** The value the next signature uses. */
  readonly next: bigint;
  /** A grant received ahead, if any. */
  readonly nextGrant: CounterGrant | undefined;
}

/** What the running card needs of its VSC side, whoever signs: the card itself within grants, or its server. */
interface BackedVscCard extends VscCard {
  readonly nextGrant: CounterGrant | undefined;
  readonly reportedNext: bigint;
  settled(): Promise<void>;
  disable(): void;
}

export class RunningCard {
  readonly os: CardOs;
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  readonly #memory: EncryptedMemory;
  readonly #vsc: BackedVscCard;
  readonly #backing: CardBacking;
  #giveBack: Promise<void> | undefined;
  #disabled = false;
  /** Whether the license container is locked (Wibu 000 §2.10), kept with every stored container. */
  #locked: boolean;

  private constructor(opened: OpenedCard, backing: CardBacking, options: RunningCardOptions) {
    this.serial = opened.serial;
    this.keyMode = opened.keyMode;
    this.#backing = backing;
    this.#memory = EncryptedMemory.seal(toBinaryProtectedInformation(opened.plaintext));
    this.#locked = this.#memory.use(readLicenseContainer).lock !== undefined;
    if (opened.serverHeld !== undefined) {
      this.#vsc = new ServerHeldVscCard(opened.serial, checkServerHeld(opened, this.#memory));
    } else {
      if (this.#memory.use(readCardKind) === 'server-held') {
        throw new VscError('card.server-held', `card ${opened.serial} is server-held: its SIGN AND INCREMENT runs on its VSC server, which does not back it here`);
      }
      const informationCounter = this.#memory.use(readCounter);
      this.#vsc = new GrantedVscCard(opened.serial, opened.keyMode, this.#memory, backing, opened.grant, informationCounter, () => this.snapshot(), {
        ...(options.onGrantFailed === undefined ? {} : { onGrantFailed: options.onGrantFailed }),
      }, opened.signer);
    }
    // The PIV applet opens its state from encrypted memory for one command at a time and records a
    // change (a PIN try, a new key) with the backing before it answers. Whatever the backing, the
    // information never grows past what a remove can carry, so the card can always be given back.
    const piv = new PivApplet(this.#memory.use(readPivState), {
      commit: (next) => this.#storePiv(next),
      vault: () => this.#memory.use(readPivState),
      capacity: { maxBytes: MAX_PROTECTED_INFORMATION_BYTES, sizeOf: (state) => encodedProtectedInformationLength(state, this.#memory.use(readLicenseFieldLength)) },
      locked: () => this.#locked,
    });
    // The license applet opens its container the same way and signs its records with the VSC applet's card, so
    // both take one counter. Its changes share the room of the PIV state.
    const license = new LicenseApplet(this.#vsc, {
      store: { read: () => this.#memory.use(readLicenseContainer), write: (next) => this.#storeLicense(next) },
      disabled: () => this.#disabled,
    });
    // A locked container locks the card: no signature of the VSC applet, no PIV key operation (the license applet
    // still signs the records of its own commands, its unlock among them).
    this.os = new CardOs([new VscApplet(this.#vsc, { locked: () => this.#locked }), piv, license], options.cardOs);
  }

  /** Opens the card from its backing and assembles it; a card that cannot be assembled closes its backing. */
  static async open(backing: CardBacking, options: RunningCardOptions = {}): Promise<RunningCard> {
    let opened: OpenedCard;
    try {
      opened = await backing.open();
    } catch (error) {
      await backing.close();
      throw error;
    }
    try {
      return new RunningCard(opened, backing, options);
    } catch (error) {
      await backing.close();
      throw error;
    } finally {
      wipe(opened.plaintext);
    }
  }

  /** The Ed25519 public key of the card's signing key (GET PUBLIC KEY; the key a keyfile names, [0044]). */
  get publicKey(): Uint8Array {
    return this.#vsc.publicKey.slice();
  }

  get counterStatus(): CounterStatus {
    return { next: this.#vsc.counter(), nextGrant: this.#vsc.nextGrant };
  }

  /** The next counter value as the backing should count it: inside the newest grant. */
  get nextCounter(): bigint {
    return this.#vsc.reportedNext;
  }

  /** [0057]: refuse service at once (a MUK or PID change, the card being removed). */
  disable(): void {
    this.#disabled = true;
    this.#vsc.disable();
  }

  /** The information as it stands, counter included (caller wipes). */
  snapshot(): Uint8Array {
    return this.#memory.use((plaintext) => updateProtectedInformation(plaintext, { counter: this.#vsc.reportedNext }));
  }

  /**
   * The remove sequence, once for every backing: refuse service, `detach` (stop the reader bridge),
   * wait for a grant in flight, give the final information back, wipe the card's memory. Repeated
   * calls share the first one's outcome.
   */
  giveBack(detach: () => Promise<void> = async () => undefined): Promise<void> {
    this.#giveBack ??= (async () => {
      this.disable();
      await detach();
      await this.#vsc.settled();
      const snapshot = this.snapshot();
      try {
        await this.#backing.giveBack(snapshot, this.#vsc.reportedNext);
      } finally {
        wipe(snapshot);
      }
    })();
    return this.#giveBack;
  }

  /** Forgets everything: the card's memory and the backing's secrets (after giveBack, or after a failure). */
  async destroy(): Promise<void> {
    this.disable();
    this.#memory.destroy();
    await this.#backing.close();
  }

  /**
   * Records a new license container with the backing first and only then in memory, so a failed save leaves the card
   * as it was; a container that would grow the information past its room is refused ('capacity') before that.
   */
  async #storeLicense(next: LicenseContainer): Promise<void> {
    const current = this.#memory.use((plaintext) => plaintext.length);
    const snapshot = this.#memory.use((plaintext) => updateProtectedInformation(plaintext, { license: next, counter: this.#vsc.reportedNext }));
    try {
      if (snapshot.length > MAX_PROTECTED_INFORMATION_BYTES && snapshot.length > current) {
        throw new LicenseError('capacity', `the card's information would grow to ${snapshot.length} bytes; it has room for ${MAX_PROTECTED_INFORMATION_BYTES}`);
      }
      await this.#backing.save(snapshot);
    } finally {
      wipe(snapshot);
    }
    this.#memory.update((plaintext) => updateProtectedInformation(plaintext, { license: next }));
    this.#locked = next.lock !== undefined;
  }

  async #storePiv(next: PivState): Promise<void> {
    this.#memory.update((plaintext) => updateProtectedInformation(plaintext, { piv: next }));
    wipePivSecrets(next); // the applet's copy for this commit
    const snapshot = this.snapshot();
    try {
      await this.#backing.save(snapshot);
    } finally {
      wipe(snapshot);
    }
  }
}

/**
 * A server-held backing only for information that says so, naming the key the information names: a server that
 * answered for another card would otherwise have its signatures refused one by one.
 */
function checkServerHeld(opened: OpenedCard, memory: EncryptedMemory): ServerHeldSigner {
  const signer = opened.serverHeld!;
  if (opened.keyMode !== 'individual') throw new VscError('card.server-held', `card ${opened.serial}: a server-held card has an individual key, not a ${opened.keyMode} one`);
  if (memory.use(readCardKind) !== 'server-held') throw new VscError('card.server-held', `card ${opened.serial} holds its own signing seed, but its backing says its server holds the key`);
  if (!bytesEqual(memory.use(readCardPublicKey), signer.publicKey)) throw new VscError('card.server-held', `card ${opened.serial}: the server names another public key than the card's information`);
  return signer;
}
