// An inserted server-backed card ([0099]-[0100]): its protected information lives in encrypted
// memory under a per-insert temporary key and is opened for one operation at a time. SIGN AND
// INCREMENT signs only counter values inside the window the server granted at insert, so no value
// is ever signed twice, even after a crash and a recover from an older upload.
import { wipe } from '../bytes/index.js';
import { CardOs } from '../apdu/card-os.js';
import { PivApplet, wipePivSecrets, type PivState } from '../apdu/piv/index.js';
import { COUNTER_MAX, SignRefusedError, VscApplet, signedDigest, type SignAndIncrementResult, type VscCard } from '../apdu/vsc/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { EncryptedMemory } from './encrypted-memory.js';
import { decodeProtectedInformation, encodeProtectedInformation, wipeProtectedInformation } from './protected-information.js';

export interface ServerBackedCardInit {
  readonly serial: string;
  /** The opened protected information; moved into encrypted memory and wiped. */
  readonly plaintext: Uint8Array;
  readonly counterWindow: readonly [bigint, bigint];
  /** Called once when the window runs low; answer with grant() or askAgain(). */
  readonly onCounterWindowLow?: () => void;
}

/**
 * The VSC side of an inserted card: key and counter opened per signature only. Signs inside the
 * granted window; asks for the next window once a quarter of the current one is left, and moves to
 * it when the current one runs out.
 */
class WindowedVscCard implements VscCard {
  readonly keyMode = 'individual' as const;
  readonly publicKey: Uint8Array;
  disabled = false;
  private readonly lowWater: bigint;
  private pending: readonly [bigint, bigint] | undefined;
  private asked = false;

  constructor(
    readonly serial: string,
    private readonly memory: EncryptedMemory,
    private next: bigint,
    private windowEnd: bigint,
    windowSize: bigint,
    private readonly onLow: () => void,
  ) {
    this.lowWater = windowSize / 4n;
    this.publicKey = memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      try {
        return ed25519KeyFromSeed(info.signingSeed).publicKey;
      } finally {
        wipeProtectedInformation(info);
      }
    });
  }

  counter(): bigint {
    return this.next;
  }

  /** A window granted while online that the card moves to when the current one runs out. */
  nextWindow(): readonly [bigint, bigint] | undefined {
    return this.pending;
  }

  /** The next value the server may count as unused: inside the newest window it granted. */
  reportedNext(): bigint {
    return this.pending === undefined ? this.next : this.pending[0];
  }

  /** A further window from the server; it must lie wholly past the current one. */
  grant(window: readonly [bigint, bigint]): void {
    if (window[0] < this.windowEnd || window[1] <= window[0]) throw new RangeError(`the server granted window ${window[0]}..${window[1]}, which overlaps values this card may already have signed`);
    this.pending = window;
    this.asked = false;
  }

  /** An extension request failed; the next signature may ask again. */
  askAgain(): void {
    this.asked = false;
  }

  signAndIncrement(h: Uint8Array): SignAndIncrementResult {
    if (this.disabled) throw new SignRefusedError('disabled', 'the card is being removed');
    if (this.next >= this.windowEnd && this.pending !== undefined) {
      [this.next, this.windowEnd] = this.pending;
      this.pending = undefined;
    }
    const counter = this.next;
    if (counter >= this.windowEnd || counter >= COUNTER_MAX) throw new SignRefusedError('counter-exhausted', 'the counter window is used up and the server has not granted the next one yet');
    this.next = counter + 1n; // moved on before the signature exists
    if (this.windowEnd - this.next <= this.lowWater && this.pending === undefined && !this.asked) {
      this.asked = true;
      this.onLow();
    }
    return this.memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      try {
        return { counter, signature: ed25519KeyFromSeed(info.signingSeed).sign(signedDigest(h, counter, this.keyMode, this.serial)) };
      } finally {
        wipeProtectedInformation(info);
      }
    });
  }
}

export class ServerBackedCard {
  readonly os: CardOs;
  private readonly memory: EncryptedMemory;
  private readonly vsc: WindowedVscCard;

  constructor(init: ServerBackedCardInit) {
    const info = decodeProtectedInformation(init.plaintext);
    // The card starts past anything it signed before and inside the window granted now.
    const start = info.counter > init.counterWindow[0] ? info.counter : init.counterWindow[0];
    this.memory = EncryptedMemory.seal(init.plaintext);
    const [windowStart, windowEnd] = init.counterWindow;
    this.vsc = new WindowedVscCard(init.serial, this.memory, start, windowEnd, windowEnd - windowStart, init.onCounterWindowLow ?? (() => undefined));
    // The PIV applet opens its state from encrypted memory for one command at a time.
    const piv = new PivApplet(info.piv, { commit: (next) => this.storePiv(next), vault: () => this.openPiv() });
    wipeProtectedInformation(info);
    this.os = new CardOs([new VscApplet(this.vsc), piv]);
  }

  /** The next counter value, reported at remove: inside the newest window the server granted. */
  get nextCounter(): bigint {
    return this.vsc.reportedNext();
  }

  /** What `vsc card status` shows: the value the next signature uses, and a window granted ahead. */
  get counterStatus(): { next: bigint; nextWindow: readonly [bigint, bigint] | undefined } {
    return { next: this.vsc.counter(), nextWindow: this.vsc.nextWindow() };
  }

  grantCounterWindow(window: readonly [bigint, bigint]): void {
    this.vsc.grant(window);
  }

  counterWindowRefused(): void {
    this.vsc.askAgain();
  }

  /** [0057], [0095]: from now on the card refuses service. */
  disable(): void {
    this.vsc.disabled = true;
  }

  /** The protected information as it stands, counter included, for the upload at remove (caller wipes). */
  snapshot(): Uint8Array {
    return this.memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      const encoded = encodeProtectedInformation({ ...info, counter: this.vsc.reportedNext() });
      wipeProtectedInformation(info);
      return encoded;
    });
  }

  destroy(): void {
    this.memory.destroy();
  }

  private storePiv(next: PivState): void {
    this.memory.update((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      const encoded = encodeProtectedInformation({ ...info, piv: next });
      wipeProtectedInformation(info);
      wipePivSecrets(next); // the applet's copy for this commit
      return encoded;
    });
  }

  private openPiv(): PivState {
    return this.memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      wipe(info.signingSeed);
      return info.piv;
    });
  }
}
