// One handler per operation (patent 004 Fig. 4): each takes the decoded proof of its operation,
// acts through the card store's check-and-set transitions and returns its result message.
import { wipe } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { checkKdfParams, type KdfParams, type Operation, type Proof, type Result } from '../vsc-protocol/index.js';
import type { CardStore, HolderProof } from './card-store.js';

/** What a handler is given besides its proof: the serial, the owner's verifier and the challenge's KDF parameters. */
export interface HandlerContext {
  readonly store: CardStore;
  readonly serial: string;
  /** Verifier of the owner's auth key (the key itself is already wiped). */
  readonly owner: Uint8Array;
  readonly kdf: KdfParams;
}

export type OperationHandler<O extends Operation> = (context: HandlerContext, proof: Proof<O>) => Promise<Result<O>>;

/** The holder's proof for extend and remove: its MUK, and the per-insert secret whose hash insert stored. */
function holderProof(proof: { readonly muk: Uint8Array; readonly holderSecret: Uint8Array }): HolderProof {
  const holderHash = sha256(proof.holderSecret);
  wipe(proof.holderSecret);
  return { muk: proof.muk, holderHash };
}

export const OPERATION_HANDLERS: { readonly [O in Operation]: OperationHandler<O> } = Object.freeze({
  async enroll({ store, serial, owner, kdf }, proof) {
    checkKdfParams(kdf);
    await store.enroll(serial, proof.token, {
      kdfSalt: kdf.salt, kdfMemoryKiB: kdf.memoryKiB, kdfIterations: kdf.iterations, kdfParallelism: kdf.parallelism, authVerifier: owner, sealed: proof.sealed, publicKey: proof.publicKey,
    });
    return {};
  },
  async insert({ store, serial, owner }, proof) {
    const grant = await store.insert(serial, owner, { muk: proof.muk, holderHash: proof.holderHash });
    return { cardId: grant.cardId, sealed: grant.sealed, sealedVersion: grant.sealedVersion, windowStart: grant.counterWindow[0], windowEnd: grant.counterWindow[1] };
  },
  async extend({ store, serial, owner }, proof) {
    const [windowStart, windowEnd] = await store.extend(serial, owner, holderProof(proof));
    return { windowStart, windowEnd };
  },
  async remove({ store, serial, owner }, proof) {
    await store.remove(serial, owner, holderProof(proof), { sealed: proof.sealed, sealedVersion: proof.sealedVersion, nextCounter: proof.nextCounter });
    return {};
  },
  async recover({ store, serial, owner }, proof) {
    await store.recover(serial, owner, proof.muk);
    return {};
  },
  async destroy({ store, serial, owner }) {
    await store.destroy(serial, { owner });
    return {};
  },
});

/** Runs `operation`'s handler; the one place the operation narrows the proof's type. */
export function handleOperation<O extends Operation>(operation: O, context: HandlerContext, proof: Proof<O>): Promise<Result<O>> {
  return (OPERATION_HANDLERS[operation] as OperationHandler<O>)(context, proof);
}
