// The client's side of the card operations (patent 004 [0035]-[0060], [0095]-[0098]) and of a server-held
// card's SIGN AND INCREMENT (patent 003 [0096]): each opens its own protected-channel session, says which
// operation on which serial, answers the server's challenge with the owner's auth key (or the holder's proof)
// and the implementation proofs, and reads the result (operation-session.ts).
import { randomBytes } from 'node:crypto';
import { wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import {
  OperationRefused, SIGN_OPERATION, checkKeyfileCard, openKeyfile, unwrapCardId, unwrapCardKey, type EnrolledCardKey, type OwnerKeys, type SignResult,
} from '../vsc-protocol/index.js';
import { encodeProtectedInformation, newProtectedInformation, readCardPublicKey, toBinaryProtectedInformation, wipeProtectedInformation } from '../card/index.js';
import { operate, type OwnerCredentials, type ServerEndpoint } from './operation-session.js';
import { openProtectedInformation, sealProtectedInformation } from './sealing.js';

export { DEFAULT_RETRY_MS, OperationRefused, isRetryableRemoveFailure, type OwnerCredentials, type ServerEndpoint } from './operation-session.js';

/**
 * Enrollment: this machine generates the card's keys, seals them under the password, uploads. The
 * card id comes wrapped under the enrollment token (a wrong token fails here, before any proof), and
 * so does the card's key kind: a server-held card's signing key was generated on its server and stays
 * there, so its information carries that key's public half and no seed (patent 003 [0096]).
 * Returns the card's public key and kind and the recovery code the owner must keep (shown once).
 */
export async function enrollCard(
  endpoint: ServerEndpoint, serial: string, token: string, password: Uint8Array, muk: Uint8Array,
): Promise<{ publicKey: Uint8Array; recoveryCode: string; kind: EnrolledCardKey['kind'] }> {
  // Made at the first proof (a proof sent again carries the same information).
  let made: { plaintext: Uint8Array; publicKey: Uint8Array; kind: EnrolledCardKey['kind'] } | undefined;
  try {
    const { recoveryCode } = await operate(endpoint, 'enroll', serial, {
      credentials: { password },
      proof: (keys, challenge) => {
        if (challenge.wrappedCardId === undefined) throw new OperationRefused('protocol', 'the server did not name the card id to seal under');
        const cardId = unwrapCardId(token, serial, challenge.ri1, challenge.wrappedCardId);
        // A server that does not say (an older one) has every card's key generated here.
        const cardKey: EnrolledCardKey = challenge.wrappedCardKey === undefined ? { kind: 'software' } : unwrapCardKey(token, serial, challenge.ri1, challenge.wrappedCardKey);
        made ??= newCardInformation(cardKey);
        return { muk, token, sealed: sealProtectedInformation(keys!.protectionKey, cardId, 1n, made.plaintext), publicKey: made.publicKey };
      },
    });
    return { publicKey: made!.publicKey, recoveryCode, kind: made!.kind };
  } finally {
    if (made !== undefined) wipe(made.plaintext);
  }
}

/** A new card's information (encoded; the caller wipes it) for a key generated here, or for the server's. */
function newCardInformation(cardKey: EnrolledCardKey): { plaintext: Uint8Array; publicKey: Uint8Array; kind: EnrolledCardKey['kind'] } {
  const info = cardKey.kind === 'server-held' ? newProtectedInformation({ serverHeldPublicKey: cardKey.publicKey }) : newProtectedInformation();
  try {
    const publicKey = cardKey.kind === 'server-held' ? cardKey.publicKey.slice() : ed25519KeyFromSeed(info.signingSeed).publicKey;
    return { plaintext: encodeProtectedInformation(info), publicKey, kind: cardKey.kind };
  } finally {
    wipeProtectedInformation(info);
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
  /** A server-held card: its server's attestation of the card's key (src/card-attestation), when the server gave one. */
  readonly attestation?: Uint8Array;
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
  const inserted: InsertedCard = { cardId, plaintext, sealedVersion, counterWindow, holderSecret, keys, ...(result.attestation === undefined ? {} : { attestation: result.attestation }) };
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
  try {
    checkKeyfileCard(keyfile, { serial, publicKey: readCardPublicKey(binary) });
  } catch (error) {
    const upload = unchangedUpload(inserted, muk, inserted.counterWindow[0]);
    await removeCard(endpoint, serial, upload).finally(() => wipe(upload.sealed, inserted.plaintext, inserted.holderSecret, inserted.keys.authKey, inserted.keys.protectionKey));
    throw error;
  } finally {
    wipe(keyfile.as1, binary);
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
 * Holder-only: a server-held card's SIGN AND INCREMENT (patent 003 [0096]), one session per signature. The
 * server signs SHA-256(h ‖ counter) with the card's next counter value and commits counter + 1 before it
 * answers. Never sent twice: a lost answer skips its counter value, it never repeats one.
 */
export function signOnServer(endpoint: ServerEndpoint, serial: string, holder: HolderCredentials, h: Uint8Array): Promise<SignResult> {
  return operate(endpoint, SIGN_OPERATION, serial, { proof: () => ({ muk: holder.muk, holderSecret: holder.holderSecret, h }) });
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
