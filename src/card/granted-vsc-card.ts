// The VSC side of a running card (DESIGN.md "Counters that never roll back"): SIGN AND INCREMENT signs
// only counter values its backing granted, opening just the signing seed from encrypted memory for
// one signature ([0027]-[0030]) and zeroing it afterwards.
import { COUNTER_MAX, SignRefusedError, signedDigest, type SignAndIncrementResult, type VscCard, type VscKeyMode } from '../apdu/index.js';
import { wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import type { CardBacking, CardSigner, CounterGrant } from './card-backing.js';
import type { EncryptedMemory } from './encrypted-memory.js';
import { readSigningSeed } from './protected-information-codec.js';

export interface GrantedVscCardEvents {
  /** A grant asked for ahead failed; the card goes on inside what it has and asks again later. */
  readonly onGrantFailed?: (error: unknown) => void;
}

export class GrantedVscCard implements VscCard {
  readonly publicKey: Uint8Array;
  #disabled = false;
  #next: bigint;
  #end: bigint;
  #lowWater: bigint;
  #pending: CounterGrant | undefined;
  #asking: Promise<void> | undefined;
  /** Serialises signatures that wait for an on-demand grant. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly serial: string,
    readonly keyMode: VscKeyMode,
    private readonly memory: EncryptedMemory,
    private readonly backing: CardBacking,
    first: CounterGrant,
    /** The counter the information carries: the card never starts below it. */
    informationCounter: bigint,
    private readonly snapshot: () => Uint8Array,
    private readonly events: GrantedVscCardEvents = {},
    /** A key outside the card's memory that signs instead of the information's seed (keys on a token). */
    private readonly signer?: CardSigner,
  ) {
    if (signer !== undefined && backing.grantMode !== 'on-demand') throw new TypeError('a card signer outside memory needs a backing that grants on demand');
    this.#next = informationCounter > first.start ? informationCounter : first.start;
    this.#end = first.end;
    this.#lowWater = (first.end - first.start) / 4n;
    this.publicKey = signer !== undefined ? signer.publicKey.slice() : memory.use((plaintext) => {
      const seed = readSigningSeed(plaintext);
      try {
        return ed25519KeyFromSeed(seed).publicKey;
      } finally {
        wipe(seed);
      }
    });
  }

  counter(): bigint {
    return this.#next;
  }

  /** A grant received ahead that the card moves to when the current one runs out. */
  get nextGrant(): CounterGrant | undefined {
    return this.#pending;
  }

  /** The next value the backing may count as unused: inside the newest grant. */
  get reportedNext(): bigint {
    return this.#pending === undefined ? this.#next : this.#pending.start;
  }

  /** Resolves once no grant request is in flight (the server serialises operations on a serial). */
  async settled(): Promise<void> {
    await this.#asking;
    await this.#tail;
  }

  /** [0057], [0095]: from now on the card refuses to sign. */
  disable(): void {
    this.#disabled = true;
  }

  signAndIncrement(h: Uint8Array): SignAndIncrementResult | Promise<SignAndIncrementResult> {
    if (this.backing.grantMode === 'ahead') return this.#signInGrant(h);
    const run = this.#tail.then(async () => {
      if (this.#next >= this.#end && !this.#disabled && this.#next < COUNTER_MAX) {
        try {
          this.#accept(await this.backing.grantMore(this.#next, this.snapshot));
        } catch (error) {
          throw new SignRefusedError('storage-failed', 'the counter advance could not be recorded', { cause: error });
        }
        this.#moveToPending();
      }
      return this.#signInGrant(h);
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #signInGrant(h: Uint8Array): SignAndIncrementResult | Promise<SignAndIncrementResult> {
    if (this.#disabled) throw new SignRefusedError('disabled', 'the card is being removed');
    if (this.#next >= this.#end) this.#moveToPending();
    const counter = this.#next;
    if (counter >= COUNTER_MAX) throw new SignRefusedError('counter-exhausted', 'the counter reached 2^128-1 and never rolls over');
    if (counter >= this.#end) throw new SignRefusedError('counter-exhausted', 'the counter values granted are used up and the next grant has not arrived yet');
    this.#next = counter + 1n; // moved on before the signature exists
    if (this.backing.grantMode === 'ahead' && this.#end - this.#next <= this.#lowWater) this.#askAhead();
    const digest = signedDigest(h, counter, this.keyMode, this.serial);
    if (this.signer !== undefined) {
      return this.signer.sign(digest).then(
        (signature) => ({ counter, signature }),
        (error: unknown) => {
          throw new SignRefusedError('storage-failed', 'the token holding the card key did not sign', { cause: error });
        },
      );
    }
    return this.memory.use((plaintext) => {
      const seed = readSigningSeed(plaintext);
      try {
        return { counter, signature: ed25519KeyFromSeed(seed).sign(digest) };
      } finally {
        wipe(seed);
      }
    });
  }

  #askAhead(): void {
    if (this.#pending !== undefined || this.#asking !== undefined) return;
    this.#asking = (async () => {
      try {
        this.#accept(await this.backing.grantMore(this.#end, this.snapshot));
      } catch (error) {
        this.events.onGrantFailed?.(error);
      } finally {
        this.#asking = undefined;
      }
    })();
  }

  /** A further grant must lie wholly past the current one: values below its end may already be signed. */
  #accept(grant: CounterGrant): void {
    if (grant.start < this.#end || grant.end <= grant.start) {
      throw new RangeError(`the backing granted counter values ${grant.start}..${grant.end}, which overlap values this card may already have signed`);
    }
    this.#pending = grant;
  }

  #moveToPending(): void {
    if (this.#pending === undefined) return;
    this.#next = this.#pending.start;
    this.#end = this.#pending.end;
    this.#lowWater = (this.#end - this.#next) / 4n;
    this.#pending = undefined;
  }
}
