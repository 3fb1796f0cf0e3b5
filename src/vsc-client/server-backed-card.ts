// An inserted server-backed card ([0099]-[0100]): its protected information lives in encrypted
// memory under a per-insert temporary key and is opened for one operation at a time. SIGN AND
// INCREMENT signs only counter values inside the window the server granted at insert, so no value
// is ever signed twice, even after a crash and a recover from an older upload.
import { wipe } from '../bytes/index.js';
import { CardOs } from '../apdu/card-os.js';
import { PivApplet, clonePivState, type PivState } from '../apdu/piv/index.js';
import { COUNTER_MAX, SignRefusedError, VscApplet, signedDigest, type SignAndIncrementResult, type VscCard } from '../apdu/vsc/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { EncryptedMemory } from './encrypted-memory.js';
import { decodeProtectedInformation, encodeProtectedInformation } from './protected-information.js';

export interface ServerBackedCardInit {
  readonly serial: string;
  /** The opened protected information; moved into encrypted memory and wiped. */
  readonly plaintext: Uint8Array;
  readonly counterWindow: readonly [bigint, bigint];
}

/** The VSC side of an inserted card: key and counter opened per signature only. */
class WindowedVscCard implements VscCard {
  readonly keyMode = 'individual' as const;
  readonly publicKey: Uint8Array;
  disabled = false;

  constructor(
    readonly serial: string,
    private readonly memory: EncryptedMemory,
    private next: bigint,
    private readonly windowEnd: bigint,
  ) {
    this.publicKey = memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      try {
        return ed25519KeyFromSeed(info.signingSeed).publicKey;
      } finally {
        wipe(info.signingSeed);
      }
    });
  }

  counter(): bigint {
    return this.next;
  }

  signAndIncrement(h: Uint8Array): SignAndIncrementResult {
    if (this.disabled) throw new SignRefusedError('disabled', 'the card is being removed');
    const counter = this.next;
    if (counter >= this.windowEnd || counter >= COUNTER_MAX) throw new SignRefusedError('counter-exhausted', 'the counter window granted at insert is used up; remove and insert again');
    this.next = counter + 1n; // moved on before the signature exists
    return this.memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      try {
        return { counter, signature: ed25519KeyFromSeed(info.signingSeed).sign(signedDigest(h, counter, this.keyMode, this.serial)) };
      } finally {
        wipe(info.signingSeed);
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
    wipe(info.signingSeed);
    this.memory = EncryptedMemory.seal(init.plaintext);
    this.vsc = new WindowedVscCard(init.serial, this.memory, start, init.counterWindow[1]);
    const piv = new PivApplet(clonePivState(info.piv), { commit: (next) => this.storePiv(next) });
    this.os = new CardOs([new VscApplet(this.vsc), piv]);
  }

  /** The next counter value, reported at remove. */
  get nextCounter(): bigint {
    return this.vsc.counter();
  }

  /** [0057], [0095]: from now on the card refuses service. */
  disable(): void {
    this.vsc.disabled = true;
  }

  /** The protected information as it stands, counter included, for the upload at remove (caller wipes). */
  snapshot(): Uint8Array {
    return this.memory.use((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      const encoded = encodeProtectedInformation({ ...info, counter: this.vsc.counter() });
      wipe(info.signingSeed);
      return encoded;
    });
  }

  destroy(): void {
    this.memory.destroy();
  }

  private storePiv(next: PivState): void {
    this.memory.update((plaintext) => {
      const info = decodeProtectedInformation(plaintext);
      const encoded = encodeProtectedInformation({ ...info, piv: clonePivState(next) });
      wipe(info.signingSeed);
      return encoded;
    });
  }
}
