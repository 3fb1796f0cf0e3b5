// The card behind the VSC applet: serial, signing key and the 128-bit counter of rental
// patent 003 [0052]-[0057]. Software cards live here; a dongle implements the same interface.
import type { Ed25519SigningKey } from '../../crypto/index.js';
import { BoundaryError, VscError } from '../../errors/index.js';
import { COUNTER_MAX, signedDigest, type VscKeyMode } from './vsc-digest.js';

export interface SignAndIncrementResult {
  /** The counter value that went into the signed digest. */
  readonly counter: bigint;
  /** Ed25519 signature of h'. */
  readonly signature: Uint8Array;
}

/** Why a SIGN AND INCREMENT was refused; the applet maps each to a status word. */
export type SignRefusal = 'counter-exhausted' | 'storage-failed' | 'disabled';

export class SignRefusedError extends VscError {
  override readonly name = 'SignRefusedError';
  constructor(readonly reason: SignRefusal, message: string, options?: { cause?: unknown }) {
    super(`card.sign-refused.${reason}`, message, options);
  }
}

/**
 * The card's secret-holding core. `signAndIncrement` is atomic: either the counter moved on
 * durably and the signature is returned, or nothing changed and it throws SignRefusedError.
 */
export interface VscCard {
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  readonly publicKey: Uint8Array;
  counter(): bigint;
  /** May answer synchronously when nothing has to be waited for (the hot path stays promise-free). */
  signAndIncrement(h: Uint8Array): SignAndIncrementResult | Promise<SignAndIncrementResult>;
}

/**
 * Records a counter advance before the signature leaves the card (never after: a crash between
 * the two then skips a value instead of signing it twice). Rejecting refuses the signature.
 */
export type CounterCommit = (next: bigint) => void | Promise<void>;

export interface SoftwareVscCardInit {
  serial: string;
  keyMode: VscKeyMode;
  key: Ed25519SigningKey;
  counter: bigint;
  commit?: CounterCommit;
}

/** A VSC card whose key and counter live in this process. */
export class SoftwareVscCard implements VscCard {
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  readonly publicKey: Uint8Array;
  private readonly key: Ed25519SigningKey;
  private readonly commit: CounterCommit | undefined;
  private current: bigint;
  /** Serialises signAndIncrement calls, whoever makes them. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(init: SoftwareVscCardInit) {
    if (init.serial.length === 0) throw new BoundaryError('expected a non-empty serial number');
    if (init.counter < 0n || init.counter > COUNTER_MAX) {
      throw new BoundaryError(`expected a counter in 0..2^128-1, got ${init.counter}`);
    }
    this.serial = init.serial;
    this.keyMode = init.keyMode;
    this.key = init.key;
    this.publicKey = init.key.publicKey;
    this.current = init.counter;
    this.commit = init.commit;
  }

  counter(): bigint {
    return this.current;
  }

  signAndIncrement(h: Uint8Array): SignAndIncrementResult | Promise<SignAndIncrementResult> {
    const commit = this.commit;
    // Nothing to wait for: one synchronous step is atomic in JavaScript, no queue needed.
    if (commit === undefined) return this.sign(h, this.nextCounter());
    const run = this.tail.then(async () => {
      const counter = this.nextCounter();
      try {
        await commit(counter + 1n);
      } catch (error) {
        throw new SignRefusedError('storage-failed', 'the counter advance could not be recorded', { cause: error });
      }
      return this.sign(h, counter);
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** The counter value to sign with; refuses at 2^128-1, which would need 2^128 afterwards. */
  private nextCounter(): bigint {
    const counter = this.current;
    if (counter >= COUNTER_MAX) {
      throw new SignRefusedError('counter-exhausted', 'the counter reached 2^128-1 and never rolls over');
    }
    return counter;
  }

  /** Signs h' for `counter` and moves the counter past it; the advance is already recorded. */
  private sign(h: Uint8Array, counter: bigint): SignAndIncrementResult {
    const digest = signedDigest(h, counter, this.keyMode, this.serial);
    this.current = counter + 1n;
    return { counter, signature: this.key.sign(digest) };
  }
}
