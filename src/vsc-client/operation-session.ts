// One operation on a protected-channel session of its own ([0095]): the client says which operation on which
// serial, answers the server's challenge with the owner's auth key (for the owner's operations) and the
// implementation proofs ([0042], [0048]) beside the operation's own fields, and reads the result; transport
// failures are tried again where the operation allows it. Used by server-operations.ts and server-signature.ts.
import { wipe } from '../bytes/index.js';
import { ChannelError, connectSession, type ChannelConnections } from '../channel/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { crashPoint } from '../fault-injection/index.js';
import {
  OperationRefused, SIGN_OPERATION, checkKdfParams, decodeChallenge, decodeResult, decodeSignChallenge, decodeSignResult, deriveOwnerKeys, encodeHello, encodeProof, encodeSignProof,
  keyfileProof, masterProof, newChallengeNonce, openKeyfile, OWNER_AUTHENTICATED_OPERATIONS, type Answer, type Challenge, type KdfParams, type Operation, type OwnerKeys, type Proof,
  type ProofBase, type ProofFields, type Result, type SessionOperation, type SignProof, type SignResult,
} from '../vsc-protocol/index.js';
import type { KnownCards } from './known-cards.js';

/** How this client reaches and proves itself to its server. */
export interface ServerEndpoint {
  readonly url: string;
  /** The server's pinned channel key. */
  readonly serverKey: Uint8Array;
  /** Implementation master key ([0042]); present when the deployment uses it. */
  readonly masterKey?: Uint8Array;
  /** This install's keyfile as issued by `vsc admin keyfile` ([0044]); opened per operation. */
  readonly keyfile?: Uint8Array;
  /** Where the master key and keyfile were read from (an upload kept for later names them). */
  readonly masterKeyFile?: string;
  readonly keyfilePath?: string;
  /** What this machine remembers of its cards: a server lowering KDF parameters or serving an older version is refused. */
  readonly knownCards?: KnownCards;
  readonly timeoutMs?: number;
  /**
   * Kept connections to reuse across operations (a program running many of them, the load generator):
   * each operation still runs its own Noise NK session. Without it each operation opens and closes its own.
   */
  readonly connections?: ChannelConnections;
  /**
   * How long an operation whose outcome is unknown (the connection failed after the proof was
   * sent), or a remove the server could not take yet (unreachable, busy, internal), is retried on new
   * sessions. Default 30 s.
   */
  readonly retryMs?: number;
}

/** Default of ServerEndpoint.retryMs. */
export const DEFAULT_RETRY_MS = 30_000;
const RETRY_FIRST_DELAY_MS = 100;
const RETRY_MAX_DELAY_MS = 2_000;

/** The server said no; the one refusal type of vsc-protocol, re-exported for this module's callers. */
export { OperationRefused };

/** The operations that authenticate the owner by password (OWNER_AUTHENTICATED_OPERATIONS); the others prove the holder or a recovery code. */
type OwnerOperation = 'enroll' | 'insert' | 'recover' | 'destroy';

/** A proof's own fields, without the auth key that `operate` adds for the owner's operations (sign: the holder's and h). */
type OwnFields<O extends SessionOperation> = O extends OwnerOperation ? Omit<ProofFields[O], 'authKey'> : O extends Operation ? ProofFields[O] : Omit<SignProof, keyof ProofBase>;

/** What an operation's session answers: a card operation's result, or a server-held card's signature. */
export type SessionResult<O extends SessionOperation> = O extends Operation ? Result<O> : SignResult;

export interface Exchange<O extends SessionOperation> {
  /** The owner's password or keys: required by the operations that authenticate the owner. */
  readonly credentials?: OwnerCredentials;
  /** Fields of the proof message beyond the authentication ones; may use the owner's keys and the challenge. */
  proof(keys: OwnerKeys | undefined, challenge: Challenge): OwnFields<O>;
}

/** The owner's password, or keys already derived from it (a running card keeps those, not the password). */
export type OwnerCredentials = { readonly password: Uint8Array } | { readonly keys: OwnerKeys };

/** Transport failures: the server may or may not have acted. */
const isTransportFailure = (error: unknown): boolean => error instanceof ChannelError && ['channel.connect', 'channel.closed', 'channel.timeout'].includes(error.code);

/** Refusals after which a remove is worth sending again: the server could not take it yet. */
export const isRetryableRemoveFailure = (error: unknown): boolean =>
  isTransportFailure(error) || (error instanceof OperationRefused && ['busy', 'internal', 'retry-later'].includes(error.reason));

/**
 * One operation. A refusal is an answer and throws OperationRefused at once. A session that fails in
 * transport (refused, dropped, timed out) is tried again on a new session, until `retryMs` has
 * passed, when the server may already have acted on it (the proof was sent: the operations are
 * built so that their holder repeating them gets the same answer); and a remove is tried again when
 * the server could not take it yet (unreachable, busy, internal), so that it is not lost to a server
 * or database restarting. Anything else fails at once. A signature is never sent again: its answer
 * lost, its counter value is skipped, and the application that asked decides whether to ask anew.
 */
export async function operate<O extends SessionOperation>(endpoint: ServerEndpoint, operation: O, serial: string, exchange: Exchange<O>): Promise<SessionResult<O>> {
  const deadline = Date.now() + (endpoint.retryMs ?? DEFAULT_RETRY_MS);
  // Once a proof went out unanswered, the outcome stays unknown until an attempt gets an answer.
  const attempt = { proofSent: false };
  for (let delay = RETRY_FIRST_DELAY_MS; ; delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS)) {
    try {
      return await operateOnce(endpoint, operation, serial, exchange, attempt);
    } catch (error) {
      const retry = operation === 'remove' ? isRetryableRemoveFailure(error) : operation !== SIGN_OPERATION && isTransportFailure(error) && attempt.proofSent;
      if (!retry || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** One operation in one session. Returns the result; refusals throw OperationRefused. */
async function operateOnce<O extends SessionOperation>(endpoint: ServerEndpoint, operation: O, serial: string, exchange: Exchange<O>, attempt: { proofSent: boolean }): Promise<SessionResult<O>> {
  const codec = codecOf(operation);
  const connections = endpoint.connections === undefined ? {} : { connections: endpoint.connections };
  const session = await connectSession(endpoint.url, endpoint.serverKey, { timeoutMs: endpoint.timeoutMs ?? 30_000, ...connections });
  try {
    await session.send(encodeHello({ operation, serial }));
    const answer = codec.challenge(await session.receive());
    // A refusal closes the connection (the server keeps it only after an operation done).
    if (answer.refused) throw new OperationRefused(answer.refusal.reason, answer.refusal.message);
    const challenge = answer.message;
    const kdf: KdfParams = { algorithm: 'argon2id', salt: challenge.salt, memoryKiB: challenge.memoryKiB, iterations: challenge.iterations, parallelism: challenge.parallelism };
    const { ri1, keyfileKey } = challenge;
    crashPoint(`client.${operation}.challenge`);
    let keys: OwnerKeys | undefined;
    const ownerAuthenticated = (OWNER_AUTHENTICATED_OPERATIONS as readonly SessionOperation[]).includes(operation);
    if (ownerAuthenticated) {
      const credentials = exchange.credentials;
      if (credentials === undefined) throw new VscError('client.credentials', `${operation} needs the owner's password`);
      if ('password' in credentials) {
        checkKdfParams(kdf); // a hostile server must not make us burn unbounded memory, nor weaken the KDF
        if (operation !== 'enroll') endpoint.knownCards?.checkKdf(serial, kdf);
        keys = await deriveOwnerKeys(credentials.password, kdf);
      } else {
        keys = { authKey: credentials.keys.authKey.slice(), protectionKey: credentials.keys.protectionKey.slice() };
      }
    }
    try {
      const ri2 = newChallengeNonce();
      let proofs: ProofBase & { authKey?: Uint8Array } = { ri2, ...(keys === undefined ? {} : { authKey: keys.authKey }) };
      if (endpoint.masterKey !== undefined) proofs = { ...proofs, masterProof: masterProof(endpoint.masterKey, ri1, ri2, serial) };
      if (endpoint.keyfile !== undefined) {
        if (endpoint.masterKey === undefined) throw new VscError('keyfile.unusable', 'a keyfile needs the master key and a server that signs keyfiles', { exitCode: ExitCode.authenticationFailed });
        const keyfile = openKeyfile(endpoint.keyfile, { masterKey: endpoint.masterKey, serverSigningPublicKey: keyfileKey });
        proofs = { ...proofs, installId: keyfile.installId, keyfileProof: keyfileProof(keyfile.as1, ri1, ri2, serial) };
        wipe(keyfile.as1);
      }
      const proof = codec.proof({ ...proofs, ...exchange.proof(keys, challenge) });
      attempt.proofSent = true;
      await session.send(proof);
      wipe(proof);
      crashPoint(`client.${operation}.proof-sent`);
    } finally {
      if (keys !== undefined) wipe(keys.authKey, keys.protectionKey);
    }
    const result = codec.result(await session.receive());
    if (result.refused) throw new OperationRefused(result.refusal.reason, result.refusal.message);
    // The result is the server's last message: the connection may carry the next session.
    session.end();
    crashPoint(`client.${operation}.answered`);
    if (ownerAuthenticated && 'password' in exchange.credentials!) endpoint.knownCards?.remember(serial, kdf, operation === 'enroll' ? 1n : 0n);
    return result.message as SessionResult<O>;
  } finally {
    // Ended above when the server's last message came; else the session is abandoned with its connection.
    session.close();
  }
}


/** The messages of `operation`'s session: a card operation's schema, or a server-held card's signature (sign-messages.ts). */
function codecOf(operation: SessionOperation): {
  challenge(bytes: Uint8Array): Answer<Challenge>;
  proof(proof: Record<string, unknown>): Uint8Array;
  result(bytes: Uint8Array): Answer<unknown>;
} {
  if (operation === SIGN_OPERATION) {
    return { challenge: decodeSignChallenge, proof: (proof) => encodeSignProof(proof as unknown as SignProof), result: decodeSignResult };
  }
  return {
    challenge: (bytes) => decodeChallenge(operation, bytes),
    proof: (proof) => encodeProof(operation, proof as unknown as Proof<typeof operation>),
    result: (bytes) => decodeResult(operation, bytes),
  };
}
