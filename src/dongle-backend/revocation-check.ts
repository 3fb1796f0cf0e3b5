// The card program refuses a revoked dongle whenever it has the list (DESIGN.md "Dongle-backed card";
// patent 004 [0107] recover and destroy). Lists come from three places, and the newest valid one wins:
// the issuing authority's directory (when reachable), the dongle itself (a replacement carries the list
// that revoked its predecessor), and this machine's cache of the newest list it has seen, so a machine
// that once saw a revocation keeps refusing the old dongle even offline.
import { toHex } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import type { CardRecordHeader } from './card-record.js';
import { shortFingerprint, type Dongle, type DongleIdentity } from './dongle.js';
import { isSerialDestroyed, newer, parseRevocationList, readAuthorityRevocationList, revokedEntry, type RevocationList } from './revocation-list.js';

/** Where a machine keeps the newest list of each authority it has seen. */
export interface RevocationCache {
  read(authorityKey: Uint8Array): Uint8Array | undefined;
  write(authorityKey: Uint8Array, list: Uint8Array): void;
}

/** The dongle is on its authority's revocation list, or its card was destroyed ([0107]). */
export class DongleRevokedError extends VscError {
  override readonly name = 'DongleRevokedError';
  constructor(message: string) {
    super('dongle.revoked', message, { exitCode: ExitCode.refusedByState });
  }
}

export interface RevocationCheck {
  readonly dongle: Dongle;
  readonly header: CardRecordHeader;
  readonly identity: DongleIdentity;
  readonly cache?: RevocationCache;
}

/**
 * Throws DongleRevokedError when the newest list this program can find names the dongle or destroys the card.
 * Otherwise returns that list when the dongle carries an older one (or none), for the caller to write to it.
 */
export async function checkRevocation({ dongle, header, identity, cache }: RevocationCheck): Promise<RevocationList | undefined> {
  const authority = header.authority;
  if (authority === undefined) return undefined;
  const candidates: RevocationList[] = [];
  const fromAuthority = readAuthorityRevocationList(authority);
  if (fromAuthority !== undefined) candidates.push(fromAuthority);
  let carried: RevocationList | undefined;
  for (const [index, bytes] of [await dongle.read('revocations'), cache?.read(authority.signingKey)].entries()) {
    if (bytes === undefined) continue;
    try {
      const list = parseRevocationList(bytes, authority.signingKey);
      candidates.push(list);
      if (index === 0) carried = list;
    } catch {
      // A damaged or foreign copy proves nothing either way; the others still count.
    }
  }
  const newest = candidates.reduce<RevocationList | undefined>((best, list) => (best === undefined ? list : newer(best, list)), undefined);
  if (newest === undefined) return undefined;
  cache?.write(authority.signingKey, newest.bytes);
  if (isSerialDestroyed(newest, header.serial)) {
    throw new DongleRevokedError(`card ${header.serial} was destroyed by its issuing authority (${toHex(authority.signingKey).slice(0, 16)}…); destroyed is final`);
  }
  const entry = revokedEntry(newest, identity.fingerprint);
  if (entry !== undefined) {
    throw new DongleRevokedError(`dongle ${shortFingerprint(identity.fingerprint)} was revoked (${entry.reason}) by its issuing authority on ${entry.revokedAt}; use the replacement dongle`);
  }
  // Returned for the dongle to carry once the card opened (never written by a refused insert), so the list
  // travels with the dongle offline.
  return carried === undefined || newest.sequence > carried.sequence ? newest : undefined;
}
