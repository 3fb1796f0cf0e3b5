// The VSC side of a server-held card (DESIGN.md "Software rental", trust model; patent 003 [0096]): the signing key
// never reaches this machine. SIGN AND INCREMENT sends h to the card's VSC server, which signs inside the counter's
// transaction and answers the counter it used and the signature; this side checks the answer against the card's
// public key before any application sees it. GET COUNTER answers the value last learned (at insert, then after each
// signature): the card is in use on this machine only. Signatures are serialised across all applications.
import { COUNTER_MAX, SignRefusedError, signedDigest, type SignAndIncrementResult, type VscCard } from '../apdu/index.js';
import { ed25519Verifier } from '../crypto/index.js';
import type { ServerHeldSigner } from './card-backing.js';

export class ServerHeldVscCard implements VscCard {
  readonly keyMode = 'individual' as const;
  readonly publicKey: Uint8Array;
  readonly #signer: ServerHeldSigner;
  readonly #verify: (message: Uint8Array, signature: Uint8Array) => boolean;
  #next: bigint;
  #disabled = false;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly serial: string,
    signer: ServerHeldSigner,
  ) {
    this.#signer = signer;
    this.publicKey = signer.publicKey.slice();
    this.#verify = ed25519Verifier(this.publicKey);
    this.#next = signer.next;
  }

  counter(): bigint {
    return this.#next;
  }

  /** A server-held card is granted nothing ahead: its counter lives on the server. */
  get nextGrant(): undefined {
    return undefined;
  }

  /** What a remove reports; the server ignores it for a server-held card (its own counter is the truth). */
  get reportedNext(): bigint {
    return this.#next;
  }

  /** Resolves once no signature is under way. */
  async settled(): Promise<void> {
    await this.#tail;
  }

  /** [0057], [0095]: from now on the card refuses to sign. */
  disable(): void {
    this.#disabled = true;
  }

  signAndIncrement(h: Uint8Array): Promise<SignAndIncrementResult> {
    const hash = h.slice();
    const run = this.#tail.then(() => this.#sign(hash));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #sign(h: Uint8Array): Promise<SignAndIncrementResult> {
    if (this.#disabled) throw new SignRefusedError('disabled', 'the card is being removed');
    if (this.#next >= COUNTER_MAX) throw new SignRefusedError('counter-exhausted', 'the counter reached 2^128-1 and never rolls over');
    let answer: SignAndIncrementResult;
    try {
      answer = await this.#signer.signAndIncrement(h);
    } catch (error) {
      if (error instanceof SignRefusedError) throw error;
      throw new SignRefusedError('storage-failed', 'the card\'s VSC server did not answer the signature', { cause: error });
    }
    // A counter below one already learned, or a signature by another key, never reaches an application.
    const { counter, signature } = answer;
    if (typeof counter !== 'bigint' || counter < this.#next || counter >= COUNTER_MAX) {
      throw new SignRefusedError('storage-failed', `the server answered counter ${String(counter)}, expected at least ${this.#next}`);
    }
    if (!this.#verify(signedDigest(h, counter, this.keyMode, this.serial), signature)) {
      throw new SignRefusedError('storage-failed', 'the server\'s signature does not verify with the card\'s public key');
    }
    this.#next = counter + 1n;
    return { counter, signature: signature.slice() };
  }
}
