// The client's side of the five operations (patent 004 [0035]-[0060], [0095]-[0098]): each opens
// its own protected-channel session, says which operation on which serial, answers the server's
// challenge with the owner's auth key and the implementation proofs, and reads the result.
import { randomBytes } from 'node:crypto';
import { wipe } from '../bytes/index.js';
import { ChannelError, connectSession } from '../channel/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { crashPoint } from '../fault-injection/index.js';
import {
  OperationRefused, checkKdfParams, decodeChallenge, decodeResult, encodeHello, encodeProof, keyfileProof,
  masterProof, newChallengeNonce, openKeyfile, checkKeyfileCard, unwrapCardId, OWNER_AUTHENTICATED_OPERATIONS, type Challenge, type KdfParams, type Operation, type Proof, type ProofBase,
  type ProofFields, type Result,
} from '../vsc-protocol/index.js';
import type { KnownCards } from './known-cards.js';
import { deriveOwnerKeys, type OwnerKeys } from '../vsc-protocol/index.js';
import { encodeProtectedInformation, newProtectedInformation, readSigningSeed, toBinaryProtectedInformation } from '../card/index.js';
import { openProtectedInformation, sealProtectedInformation } from './sealing.js';

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

/** A proof's own fields, without the auth key that `operate` adds for the owner's operations. */
type OwnFields<O extends Operation> = O extends OwnerOperation ? Omit<ProofFields[O], 'authKey'> : ProofFields[O];

interface Exchange<O extends Operation> {
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
 * or database restarting. Anything else fails at once.
 */
async function operate<O extends Operation>(endpoint: ServerEndpoint, operation: O, serial: string, exchange: Exchange<O>): Promise<Result<O>> {
  const deadline = Date.now() + (endpoint.retryMs ?? DEFAULT_RETRY_MS);
  // Once a proof went out unanswered, the outcome stays unknown until an attempt gets an answer.
  const attempt = { proofSent: false };
  for (let delay = RETRY_FIRST_DELAY_MS; ; delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS)) {
    try {
      return await operateOnce(endpoint, operation, serial, exchange, attempt);
    } catch (error) {
      const retry = operation === 'remove' ? isRetryableRemoveFailure(error) : isTransportFailure(error) && attempt.proofSent;
      if (!retry || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** One operation in one session. Returns the result; refusals throw OperationRefused. */
async function operateOnce<O extends Operation>(endpoint: ServerEndpoint, operation: O, serial: string, exchange: Exchange<O>, attempt: { proofSent: boolean }): Promise<Result<O>> {
  const session = await connectSession(endpoint.url, endpoint.serverKey, { timeoutMs: endpoint.timeoutMs ?? 30_000 });
  try {
    await session.send(encodeHello({ operation, serial }));
    const answer = decodeChallenge(operation, await session.receive());
    if (answer.refused) throw new OperationRefused(answer.refusal.reason, answer.refusal.message);
    const challenge = answer.message;
    const kdf: KdfParams = { algorithm: 'argon2id', salt: challenge.salt, memoryKiB: challenge.memoryKiB, iterations: challenge.iterations, parallelism: challenge.parallelism };
    const { ri1, keyfileKey } = challenge;
    crashPoint(`client.${operation}.challenge`);
    let keys: OwnerKeys | undefined;
    if (OWNER_AUTHENTICATED_OPERATIONS.includes(operation)) {
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
      const proof = encodeProof(operation, { ...proofs, ...exchange.proof(keys, challenge) } as Proof<O>);
      attempt.proofSent = true;
      await session.send(proof);
      wipe(proof);
      crashPoint(`client.${operation}.proof-sent`);
    } finally {
      if (keys !== undefined) wipe(keys.authKey, keys.protectionKey);
    }
    const result = decodeResult(operation, await session.receive());
    if (result.refused) throw new OperationRefused(result.refusal.reason, result.refusal.message);
    crashPoint(`client.${operation}.answered`);
    if (OWNER_AUTHENTICATED_OPERATIONS.includes(operation) && 'password' in exchange.credentials!) endpoint.knownCards?.remember(serial, kdf, operation === 'enroll' ? 1n : 0n);
    return result.message;
  } finally {
    session.close();
  }
}

/**
 * Enrollment: this machine generates the card's keys, seals them under the password, uploads. The
 * card id comes wrapped under the enrollment token (a wrong token fails here, before any proof).
 * Returns the card's public key and the recovery code the owner must keep (shown once).
 */
export async function enrollCard(endpoint: ServerEndpoint, serial: string, token: string, password: Uint8Array, muk: Uint8Array): Promise<{ publicKey: Uint8Array; recoveryCode: string }> {
  const info = newProtectedInformation();
  const publicKey = ed25519KeyFromSeed(info.signingSeed).publicKey;
  const plaintext = encodeProtectedInformation(info);
  try {
    const { recoveryCode } = await operate(endpoint, 'enroll', serial, {
      credentials: { password },
      proof: (keys, challenge) => {
        if (challenge.wrappedCardId === undefined) throw new OperationRefused('protocol', 'the server did not name the card id to seal under');
        const cardId = unwrapCardId(token, serial, challenge.ri1, challenge.wrappedCardId);
        return { muk, token, sealed: sealProtectedInformation(keys!.protectionKey, cardId, 1n, plaintext), publicKey };
      },
    });
    return { publicKey, recoveryCode };
  } finally {
    wipe(plaintext, info.signingSeed);
  }
}

/** What an insert hands to the card process; `keys` and `holderSecret` are the caller's to keep sealed. */
export interface InsertedCard {
  readonly cardId: Uint8Array;
  /** The opened protected information (plaintext: wipe after moving it into encrypted memory). */
  readonly plaintext: Uint8Array;
  readonly sealedVersion: bigint;
  readonly counterWindow: readonly [bigint, bigint];
  /** Proves at extend and remove that this process inserted the card. */
  readonly holderSecret: Uint8Array;
  readonly keys: OwnerKeys;
}

/** Insert ([0035]): the server moves idle → in-use for this MUK and downloads the sealed information. */
export async function insertCard(endpoint: ServerEndpoint, serial: string, credentials: OwnerCredentials, muk: Uint8Array): Promise<InsertedCard> {
  const holderSecret = new Uint8Array(randomBytes(32));
  let kept: OwnerKeys | undefined;
  let keyfileKey: Uint8Array | undefined;
  const result = await operate(endpoint, 'insert', serial, {
    credentials,
    proof: (keys, challenge) => {
      kept = { authKey: keys!.authKey.slice(), protectionKey: keys!.protectionKey.slice() };
      keyfileKey = challenge.keyfileKey;
      return { muk, holderSecret };
    },
  });
  const { cardId, sealed, sealedVersion } = result;
  const counterWindow = [result.windowStart, result.windowEnd] as const;
  const keys = kept!;
  try {
    endpoint.knownCards?.checkSealedVersion(serial, sealedVersion);
  } catch (error) {
    wipe(keys.authKey, keys.protectionKey, holderSecret, sealed);
    throw error;
  }
  const plaintext = openProtectedInformation(keys.protectionKey, cardId, sealedVersion, sealed);
  wipe(sealed);
  endpoint.knownCards?.remember(serial, undefined, sealedVersion);
  const inserted: InsertedCard = { cardId, plaintext, sealedVersion, counterWindow, holderSecret, keys };
  if (endpoint.keyfile !== undefined) await checkKeyfileNamesCard(endpoint, serial, muk, keyfileKey!, inserted);
  return inserted;
}

/**
 * [0044]-[0047]: this install's keyfile names the card it was issued for (serial and signing public
 * key). A keyfile for another card is refused once the card is open, and the card, unchanged, is given
 * straight back so that it does not stay in use on the server.
 */
async function checkKeyfileNamesCard(endpoint: ServerEndpoint, serial: string, muk: Uint8Array, serverSigningPublicKey: Uint8Array, inserted: InsertedCard): Promise<void> {
  const keyfile = openKeyfile(endpoint.keyfile!, { masterKey: endpoint.masterKey!, serverSigningPublicKey });
  const binary = toBinaryProtectedInformation(inserted.plaintext);
  const seed = readSigningSeed(binary);
  try {
    checkKeyfileCard(keyfile, { serial, publicKey: ed25519KeyFromSeed(seed).publicKey });
  } catch (error) {
    const upload = unchangedUpload(inserted, muk, inserted.counterWindow[0]);
    await removeCard(endpoint, serial, upload).finally(() => wipe(upload.sealed, inserted.plaintext, inserted.holderSecret, inserted.keys.authKey, inserted.keys.protectionKey));
    throw error;
  } finally {
    wipe(keyfile.as1, binary, seed);
  }
}

/** What proves the holder of an in-use card: this machine's MUK and the per-insert secret. */
export interface HolderCredentials {
  readonly muk: Uint8Array;
  readonly holderSecret: Uint8Array;
}

/** Holder-only: a further counter window while the card is in use (no password: it proves the holder). */
export async function extendCounterWindow(endpoint: ServerEndpoint, serial: string, holder: HolderCredentials): Promise<readonly [bigint, bigint]> {
  const result = await operate(endpoint, 'extend', serial, { proof: () => ({ muk: holder.muk, holderSecret: holder.holderSecret }) });
  const window = [result.windowStart, result.windowEnd] as const;
  if (window[1] <= window[0]) throw new OperationRefused('protocol', 'the server granted an empty counter window');
  return window;
}

/**
 * Remove ([0057], [0095]) on a session of its own, proving the holder by MUK and holder secret, with
 * the information sealed by the caller (it keeps the same upload on disk until this succeeds).
 */
export async function removeCard(
  endpoint: ServerEndpoint,
  serial: string,
  upload: HolderCredentials & { sealed: Uint8Array; sealedVersion: bigint; nextCounter?: bigint },
): Promise<void> {
  await operate(endpoint, 'remove', serial, {
    proof: () => ({
      muk: upload.muk, holderSecret: upload.holderSecret, sealed: upload.sealed, sealedVersion: upload.sealedVersion,
      ...(upload.nextCounter === undefined ? {} : { nextCounter: upload.nextCounter }),
    }),
  });
  endpoint.knownCards?.remember(serial, undefined, upload.sealedVersion);
}

/** Recover ([0058]-[0060]): only from the machine whose MUK the server recorded at insert. */
export async function recoverCard(endpoint: ServerEndpoint, serial: string, password: Uint8Array, muk: Uint8Array): Promise<void> {
  await operate(endpoint, 'recover', serial, { credentials: { password }, proof: () => ({ muk }) });
}

/** Destroy ([0098]): owner-authenticated, terminal. */
export async function destroyCard(endpoint: ServerEndpoint, serial: string, credentials: OwnerCredentials, muk: Uint8Array): Promise<void> {
  await operate(endpoint, 'destroy', serial, { credentials, proof: () => ({ muk }) });
}

/** The owner's recovery code lifts the back-off and block of every failure bucket of the card. */
export async function unblockCard(endpoint: ServerEndpoint, serial: string, recoveryCode: string): Promise<void> {
  await operate(endpoint, 'unblock', serial, { proof: () => ({ recoveryCode }) });
}

/**
 * The remove upload of a card `insertCard` opened, unchanged: its information sealed as the next
 * version under the owner's protection key (a running card seals its own, see ServerBacking).
 */
export function unchangedUpload(inserted: InsertedCard, muk: Uint8Array, nextCounter: bigint): HolderCredentials & { sealed: Uint8Array; sealedVersion: bigint; nextCounter: bigint } {
  const sealedVersion = inserted.sealedVersion + 1n;
  return { muk, holderSecret: inserted.holderSecret, sealed: sealProtectedInformation(inserted.keys.protectionKey, inserted.cardId, sealedVersion, inserted.plaintext), sealedVersion, nextCounter };
}
