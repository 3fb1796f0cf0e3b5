// One handler per operation (patent 004 Fig. 4): each takes the decoded proof of its operation,
// acts through the card store's check-and-set transitions and returns its result message; and the
// handler of a server-held card's SIGN AND INCREMENT (patent 003 [0096]).
import { wipe } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { VscError } from '../errors/index.js';
import { checkKdfParams, type KdfParams, type Operation, type Proof, type Result, type SignProof, type SignResult } from '../vsc-protocol/index.js';
import type { CardStore, HolderProof } from './card-store.js';

/** What a handler is given besides its proof: the serial, the owner's verifier and the challenge's KDF parameters. */
export interface HandlerContext {
  readonly store: CardStore;
  readonly serial: string;
  /**
   * Verifier of the owner's auth key (the key itself is already wiped), for the operations that
   * authenticate the owner; the holder's operations and unblock carry none.
   */
  readonly owner: Uint8Array | undefined;
  readonly kdf: KdfParams;
}

export type OperationHandler<O extends Operation> = (context: HandlerContext, proof: Proof<O>) => Promise<Result<O>>;

/** The holder's proof: its MUK, and the hash of the per-insert secret it sent (the secret itself is wiped). */
function holderProof(proof: { readonly muk: Uint8Array; readonly holderSecret: Uint8Array }): HolderProof {
  const holderHash = sha256(proof.holderSecret);
  wipe(proof.holderSecret);
  return { muk: proof.muk, holderHash };
}

/** The owner's verifier, which the session computed for every operation whose proof has an auth key. */
function ownerOf(context: HandlerContext): Uint8Array {
  if (context.owner === undefined) throw new VscError('server.internal', 'an owner-authenticated operation reached its handler without a verifier');
  return context.owner;
}

export const OPERATION_HANDLERS: { readonly [O in Operation]: OperationHandler<O> } = Object.freeze({
  async enroll(context, proof) {
    const { store, serial, kdf } = context;
    checkKdfParams(kdf);
    const recoveryCode = await store.enroll(serial, proof.token, proof.muk, {
      kdfSalt: kdf.salt, kdfMemoryKiB: kdf.memoryKiB, kdfIterations: kdf.iterations, kdfParallelism: kdf.parallelism, authVerifier: ownerOf(context), sealed: proof.sealed, publicKey: proof.publicKey,
    });
    return { recoveryCode };
  },
  async insert(context, proof) {
    const grant = await context.store.insert(context.serial, ownerOf(context), holderProof(proof));
    return {
      cardId: grant.cardId, sealed: grant.sealed, sealedVersion: grant.sealedVersion, windowStart: grant.counterWindow[0], windowEnd: grant.counterWindow[1],
      ...(grant.attestation === undefined ? {} : { attestation: grant.attestation }),
    };
  },
  async extend({ store, serial }, proof) {
    const [windowStart, windowEnd] = await store.extend(serial, holderProof(proof));
    return { windowStart, windowEnd };
  },
  async remove({ store, serial }, proof) {
    await store.remove(serial, holderProof(proof), { sealed: proof.sealed, sealedVersion: proof.sealedVersion, ...(proof.nextCounter === undefined ? {} : { nextCounter: proof.nextCounter }) });
    return {};
  },
  async recover(context, proof) {
    await context.store.recover(context.serial, ownerOf(context), proof.muk);
    return {};
  },
  async destroy(context, proof) {
    await context.store.destroy(context.serial, { verifier: ownerOf(context), muk: proof.muk });
    return {};
  },
  async unblock({ store, serial }, proof) {
    await store.unblockWithRecoveryCode(serial, proof.recoveryCode);
    return {};
  },
});

/** A server-held card's SIGN AND INCREMENT (sign-messages.ts): the holder's proof, then one transaction. */
export function handleSign(store: CardStore, serial: string, proof: SignProof): Promise<SignResult> {
  return store.sign(serial, holderProof(proof), proof.h);
}

/** Runs `operation`'s handler; the one place the operation narrows the proof's type. */
export function handleOperation<O extends Operation>(operation: O, context: HandlerContext, proof: Proof<O>): Promise<Result<O>> {
  return (OPERATION_HANDLERS[operation] as OperationHandler<O>)(context, proof);
}
