// The operation messages of one protected-channel session ([0095]: one session per operation),
// defined once for client and server: the client's hello (operation and serial), the server's
// challenge (KDF parameters, nonce ri1 [0042]), the client's proof (owner auth key, implementation
// proofs [0048], and the operation's own fields), then the server's result or refusal.
import { WRAPPED_CARD_ID_LENGTH, WRAPPED_CARD_KEY_LENGTH } from './enrollment-wrap.js';
import { KDF_BOUNDS, KDF_SALT_LENGTH } from './kdf-params.js';
import { bytesField, decodeFields, encodeFields, oneOfField, textField, u32Field, U128_FIELD, type FieldSpec, type MessageSchema } from './message-codec.js';
import { ProtocolError } from './protocol-error.js';
import { REFUSALS, type Refusal } from './operation-refusal.js';

export const OPERATIONS = ['enroll', 'insert', 'extend', 'remove', 'recover', 'destroy', 'unblock'] as const;
export type Operation = (typeof OPERATIONS)[number];
/**
 * What a hello may name: the card's operations, and SIGN AND INCREMENT of a server-held card (patent 003
 * [0096]), which its holder runs on the server one session per signature (sign-messages.ts).
 */
export const SESSION_OPERATIONS = [...OPERATIONS, 'sign'] as const;
export type SessionOperation = (typeof SESSION_OPERATIONS)[number];

/** Serial numbers as the card store accepts them. */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Protected information is small (keys, PIV objects): anything bigger is refused. */
export const MAX_SEALED_BYTES = 48 * 1024;
/** A card attestation file (src/card-attestation) is far smaller. */
export const MAX_ATTESTATION_BYTES = 16 * 1024;
/** A refusal's message: one line, short. */
export const REFUSAL_MESSAGE_PATTERN = /^[^\n]{1,400}$/;

export interface Hello {
  readonly operation: SessionOperation;
  readonly serial: string;
}

export interface Challenge {
  readonly salt: Uint8Array;
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
  readonly ri1: Uint8Array;
  /** The server's keyfile-signing public key, which clients check keyfiles against. */
  readonly keyfileKey: Uint8Array;
  /**
   * Enroll only: the card id the new card's information is sealed under, wrapped under the enrollment
   * token (enrollment-wrap.ts): random bytes for a serial that awaits no enrollment.
   */
  readonly wrappedCardId?: Uint8Array;
  /**
   * Enroll only: what kind of key the card has (and a server-held card's public key), wrapped like the
   * card id (enrollment-wrap.ts), so the client seals no signing seed for a card whose key its server holds.
   * Absent from an older server: the card is then one whose key the client generates.
   */
  readonly wrappedCardKey?: Uint8Array;
}

/**
 * What every proof carries: the implementation proofs. The owner's auth key (a secret) is a field of
 * the operations that authenticate the owner; the holder's own operations (extend, remove) prove the
 * holder instead, and unblock proves the recovery code.
 */
export interface ProofBase {
  readonly ri2: Uint8Array;
  readonly masterProof?: Uint8Array;
  readonly installId?: string;
  readonly keyfileProof?: Uint8Array;
}

/** Each operation's own proof fields. */
export interface ProofFields {
  readonly enroll: { readonly authKey: Uint8Array; readonly muk: Uint8Array; readonly token: string; readonly sealed: Uint8Array; readonly publicKey: Uint8Array };
  /** The holder secret itself: the server stores only its hash, and a repeated insert must prove the secret. */
  readonly insert: { readonly authKey: Uint8Array; readonly muk: Uint8Array; readonly holderSecret: Uint8Array };
  readonly extend: { readonly muk: Uint8Array; readonly holderSecret: Uint8Array };
  /**
   * Without `nextCounter` the whole granted window counts as used: an upload kept on disk by a card
   * process that then died (the card may have signed past it), sent in place of a recover.
   */
  readonly remove: { readonly muk: Uint8Array; readonly holderSecret: Uint8Array; readonly sealed: Uint8Array; readonly sealedVersion: bigint; readonly nextCounter?: bigint };
  readonly recover: { readonly authKey: Uint8Array; readonly muk: Uint8Array };
  /** The MUK only says which machine's failure bucket a wrong password counts in. */
  readonly destroy: { readonly authKey: Uint8Array; readonly muk: Uint8Array };
  readonly unblock: { readonly recoveryCode: string };
}
export type Proof<O extends Operation> = ProofBase & ProofFields[O];

/** Each operation's result fields. */
export interface ResultFields {
  /** Shown to the owner once: it unblocks the card's password after too many failures. */
  readonly enroll: { readonly recoveryCode: string };
  /**
   * For a server-held card the window is empty: windowStart = windowEnd = the counter value the server
   * signs with next. `attestation` is the server's attestation of a server-held card's key (card-attestation).
   */
  readonly insert: {
    readonly cardId: Uint8Array; readonly sealed: Uint8Array; readonly sealedVersion: bigint; readonly windowStart: bigint; readonly windowEnd: bigint; readonly attestation?: Uint8Array;
  };
  readonly extend: { readonly windowStart: bigint; readonly windowEnd: bigint };
  readonly remove: Record<never, never>;
  readonly recover: Record<never, never>;
  readonly destroy: Record<never, never>;
  readonly unblock: Record<never, never>;
}
export type Result<O extends Operation> = ResultFields[O];

export interface RefusalMessage {
  readonly reason: Refusal;
  readonly message: string;
}

/** What the server answers to a hello or a proof: the expected message, or a refusal. */
export type Answer<T> = { readonly refused: false; readonly message: T } | { readonly refused: true; readonly refusal: RefusalMessage };

/** Message type bytes. */
export const MESSAGE_TYPES = Object.freeze({ hello: 1, challenge: 2, proof: 3, result: 4, refused: 5 });

const KEY = bytesField(32);
export const MUK_FIELD: FieldSpec = { tag: 20, name: 'muk', value: KEY };
const MUK = MUK_FIELD;
const SEALED = bytesField(1, MAX_SEALED_BYTES);

const HELLO: MessageSchema = {
  what: 'hello',
  type: MESSAGE_TYPES.hello,
  fields: [
    { tag: 1, name: 'operation', value: oneOfField(SESSION_OPERATIONS) },
    { tag: 2, name: 'serial', value: textField(SERIAL_PATTERN, 64) },
  ],
};

/** The challenge of every operation but enroll. */
export const CHALLENGE_FIELDS: readonly FieldSpec[] = [
  { tag: 1, name: 'salt', value: bytesField(KDF_SALT_LENGTH) },
  // The challenge accepts what the KDF bounds accept; checkKdfParams says so again before any Argon2 runs.
  { tag: 2, name: 'memoryKiB', value: u32Field(KDF_BOUNDS.memoryKiB.min, KDF_BOUNDS.memoryKiB.max) },
  { tag: 3, name: 'iterations', value: u32Field(KDF_BOUNDS.iterations.min, KDF_BOUNDS.iterations.max) },
  { tag: 4, name: 'parallelism', value: u32Field(KDF_BOUNDS.parallelism.min, KDF_BOUNDS.parallelism.max) },
  { tag: 5, name: 'ri1', value: KEY },
  { tag: 6, name: 'keyfileKey', value: KEY },
];

/** The implementation proofs every proof carries. */
export const PROOF_BASE: readonly FieldSpec[] = [
  { tag: 2, name: 'ri2', value: KEY },
  { tag: 3, name: 'masterProof', value: KEY, optional: true },
  { tag: 4, name: 'installId', value: textField(/^[\x21-\x7e]{1,128}$/, 128), optional: true },
  { tag: 5, name: 'keyfileProof', value: KEY, optional: true },
];

const AUTH_KEY: FieldSpec = { tag: 1, name: 'authKey', value: KEY };
export const HOLDER_SECRET_FIELD: FieldSpec = { tag: 22, name: 'holderSecret', value: KEY };
const HOLDER_SECRET = HOLDER_SECRET_FIELD;
/** Recovery codes: RECOVERY_CODE_LENGTH characters of RFC 4648 base32. */
export const RECOVERY_CODE_PATTERN = /^[A-Z2-7]{32}$/;
const RECOVERY_CODE: FieldSpec = { tag: 35, name: 'recoveryCode', value: textField(RECOVERY_CODE_PATTERN, 32) };

/** The operations whose proof carries the owner's auth key (tag 1, before the implementation proofs). */
export const OWNER_AUTHENTICATED_OPERATIONS: readonly Operation[] = ['enroll', 'insert', 'recover', 'destroy'];

const PROOF_FIELDS: Readonly<Record<Operation, readonly FieldSpec[]>> = {
  enroll: [
    MUK,
    { tag: 30, name: 'token', value: textField(/^[A-Za-z0-9_-]{16,128}$/, 128) },
    { tag: 31, name: 'sealed', value: SEALED },
    { tag: 32, name: 'publicKey', value: KEY },
  ],
  insert: [MUK, HOLDER_SECRET],
  extend: [MUK, HOLDER_SECRET],
  remove: [
    MUK,
    HOLDER_SECRET,
    { tag: 31, name: 'sealed', value: SEALED },
    { tag: 33, name: 'sealedVersion', value: U128_FIELD },
    { tag: 34, name: 'nextCounter', value: U128_FIELD, optional: true },
  ],
  recover: [MUK],
  destroy: [MUK],
  unblock: [RECOVERY_CODE],
};

const WINDOW: readonly FieldSpec[] = [
  { tag: 40, name: 'windowStart', value: U128_FIELD },
  { tag: 41, name: 'windowEnd', value: U128_FIELD },
];

const RESULT_FIELDS: Readonly<Record<Operation, readonly FieldSpec[]>> = {
  enroll: [RECOVERY_CODE],
  insert: [
    { tag: 7, name: 'cardId', value: bytesField(16) }, { tag: 31, name: 'sealed', value: SEALED }, { tag: 33, name: 'sealedVersion', value: U128_FIELD }, ...WINDOW,
    { tag: 42, name: 'attestation', value: bytesField(1, MAX_ATTESTATION_BYTES), optional: true },
  ],
  extend: WINDOW,
  remove: [],
  recover: [],
  destroy: [],
  unblock: [],
};

const ENROLL_CHALLENGE_FIELDS: readonly FieldSpec[] = [
  ...CHALLENGE_FIELDS,
  { tag: 8, name: 'wrappedCardId', value: bytesField(WRAPPED_CARD_ID_LENGTH) },
  { tag: 9, name: 'wrappedCardKey', value: bytesField(WRAPPED_CARD_KEY_LENGTH), optional: true },
];

const REFUSED: MessageSchema = {
  what: 'refusal',
  type: MESSAGE_TYPES.refused,
  fields: [
    { tag: 1, name: 'reason', value: oneOfField(REFUSALS) },
    { tag: 2, name: 'message', value: textField(REFUSAL_MESSAGE_PATTERN, 1600) },
  ],
};

const perOperation = (kind: 'challenge' | 'proof' | 'result', fields: (operation: Operation) => readonly FieldSpec[]): Readonly<Record<Operation, MessageSchema>> =>
  Object.freeze(Object.fromEntries(OPERATIONS.map((operation) => [operation, Object.freeze({ what: `${operation} ${kind}`, type: MESSAGE_TYPES[kind], fields: fields(operation) })])) as Record<Operation, MessageSchema>);

/** Every message's schema, by operation: the single definition both sides encode and decode with. */
export const MESSAGE_SCHEMAS = Object.freeze({
  hello: HELLO,
  challenge: perOperation('challenge', (operation) => (operation === 'enroll' ? ENROLL_CHALLENGE_FIELDS : CHALLENGE_FIELDS)),
  proof: perOperation('proof', (operation) => [...(OWNER_AUTHENTICATED_OPERATIONS.includes(operation) ? [AUTH_KEY] : []), ...PROOF_BASE, ...PROOF_FIELDS[operation]]),
  result: perOperation('result', (operation) => RESULT_FIELDS[operation]),
  refused: REFUSED,
});

function checkOperation(operation: Operation): void {
  if (!OPERATIONS.includes(operation)) throw new ProtocolError(`expected an operation of ${OPERATIONS.join(', ')}, got ${JSON.stringify(String(operation))}`);
}

export const encodeHello = (hello: Hello): Uint8Array => encodeFields(HELLO, hello as unknown as Record<string, unknown>);
export const decodeHello = (bytes: Uint8Array): Hello => decodeFields(HELLO, bytes) as unknown as Hello;

export function encodeChallenge(operation: Operation, challenge: Challenge): Uint8Array {
  checkOperation(operation);
  return encodeFields(MESSAGE_SCHEMAS.challenge[operation], challenge as unknown as Record<string, unknown>);
}
export function decodeChallenge(operation: Operation, bytes: Uint8Array): Answer<Challenge> {
  checkOperation(operation);
  return decodeAnswer(bytes, () => decodeFields(MESSAGE_SCHEMAS.challenge[operation], bytes) as unknown as Challenge);
}

/** The encoded proof holds secrets (auth key, holder secret): the caller wipes it once sent. */
export function encodeProof<O extends Operation>(operation: O, proof: Proof<O>): Uint8Array {
  checkOperation(operation);
  return encodeFields(MESSAGE_SCHEMAS.proof[operation], proof as unknown as Record<string, unknown>);
}
/** The decoded proof's byte fields are copies: the caller wipes the secret ones after use. */
export function decodeProof<O extends Operation>(operation: O, bytes: Uint8Array): Proof<O> {
  checkOperation(operation);
  return decodeFields(MESSAGE_SCHEMAS.proof[operation], bytes) as unknown as Proof<O>;
}

export function encodeResult<O extends Operation>(operation: O, result: Result<O>): Uint8Array {
  checkOperation(operation);
  return encodeFields(MESSAGE_SCHEMAS.result[operation], result as unknown as Record<string, unknown>);
}
export function decodeResult<O extends Operation>(operation: O, bytes: Uint8Array): Answer<Result<O>> {
  checkOperation(operation);
  return decodeAnswer(bytes, () => decodeFields(MESSAGE_SCHEMAS.result[operation], bytes) as unknown as Result<O>);
}

export const encodeRefusal = (refusal: RefusalMessage): Uint8Array => encodeFields(REFUSED, refusal as unknown as Record<string, unknown>);
export const decodeRefusal = (bytes: Uint8Array): RefusalMessage => decodeFields(REFUSED, bytes) as unknown as RefusalMessage;

/** A server answer is either the expected message or a refusal, told apart by the type byte. */
export function decodeAnswer<T>(bytes: Uint8Array, decode: () => T): Answer<T> {
  if (bytes instanceof Uint8Array && bytes[0] === MESSAGE_TYPES.refused) return { refused: true, refusal: decodeRefusal(bytes) };
  return { refused: false, message: decode() };
}
