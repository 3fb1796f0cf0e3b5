// SIGN AND INCREMENT of a server-held card (DESIGN.md "Software rental", trust model; patent 003 [0096]) as one
// session operation: its holder sends h, the server signs SHA-256(h ‖ counter) with the key sealed to it and
// answers the counter it used and the signature ([0053] step [1]). One session per signature, like every
// operation ([0095]); the holder proves itself as at extend and remove (MUK and per-insert holder secret).
import { bytesField, decodeFields, encodeFields, U128_FIELD, type MessageSchema } from './message-codec.js';
import { CHALLENGE_FIELDS, HOLDER_SECRET_FIELD, MESSAGE_TYPES, MUK_FIELD, PROOF_BASE, decodeAnswer, type Answer, type Challenge, type ProofBase } from './operation-messages.js';

export const SIGN_OPERATION = 'sign' as const;
export const SIGN_HASH_LENGTH = 32;
export const SIGN_SIGNATURE_LENGTH = 64;

/** The holder's proof and the hash h to sign. */
export interface SignProof extends ProofBase {
  readonly muk: Uint8Array;
  readonly holderSecret: Uint8Array;
  readonly h: Uint8Array;
}

/** The counter value that went into h' = SHA-256(h ‖ counter), and the Ed25519 signature of h'. */
export interface SignResult {
  readonly counter: bigint;
  readonly signature: Uint8Array;
}

export const SIGN_SCHEMAS = Object.freeze({
  challenge: Object.freeze({ what: 'sign challenge', type: MESSAGE_TYPES.challenge, fields: CHALLENGE_FIELDS }) satisfies MessageSchema,
  proof: Object.freeze({
    what: 'sign proof',
    type: MESSAGE_TYPES.proof,
    fields: [...PROOF_BASE, MUK_FIELD, HOLDER_SECRET_FIELD, { tag: 50, name: 'h', value: bytesField(SIGN_HASH_LENGTH) }],
  }) satisfies MessageSchema,
  result: Object.freeze({
    what: 'sign result',
    type: MESSAGE_TYPES.result,
    fields: [{ tag: 51, name: 'counter', value: U128_FIELD }, { tag: 52, name: 'signature', value: bytesField(SIGN_SIGNATURE_LENGTH) }],
  }) satisfies MessageSchema,
});

export const encodeSignChallenge = (challenge: Challenge): Uint8Array => encodeFields(SIGN_SCHEMAS.challenge, challenge as unknown as Record<string, unknown>);
export const decodeSignChallenge = (bytes: Uint8Array): Answer<Challenge> => decodeAnswer(bytes, () => decodeFields(SIGN_SCHEMAS.challenge, bytes) as unknown as Challenge);

/** The encoded proof holds the holder secret: the caller wipes it once sent. */
export const encodeSignProof = (proof: SignProof): Uint8Array => encodeFields(SIGN_SCHEMAS.proof, proof as unknown as Record<string, unknown>);
/** The decoded proof's byte fields are copies: the caller wipes the holder secret after use. */
export const decodeSignProof = (bytes: Uint8Array): SignProof => decodeFields(SIGN_SCHEMAS.proof, bytes) as unknown as SignProof;

export const encodeSignResult = (result: SignResult): Uint8Array => encodeFields(SIGN_SCHEMAS.result, result as unknown as Record<string, unknown>);
export const decodeSignResult = (bytes: Uint8Array): Answer<SignResult> => decodeAnswer(bytes, () => decodeFields(SIGN_SCHEMAS.result, bytes) as unknown as SignResult);
