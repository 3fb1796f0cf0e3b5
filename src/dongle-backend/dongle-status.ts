// `vsc dongle status`: what can be told about a dongle without the owner's password ([0106]: whether it
// answers; [0108]: what its storage holds): its identity, the clear header of its card record, and whether
// its issuing authority's newest list revokes it.
import { toHex } from '../bytes/index.js';
import { decodeCardRecord } from './card-record.js';
import type { Dongle } from './dongle.js';
import { isSerialDestroyed, parseRevocationList, readAuthorityRevocationList, revokedEntry, type RevocationList } from './revocation-list.js';

export interface DongleStatus {
  readonly description: string;
  readonly kind: string;
  readonly fingerprint: string;
  readonly card: {
    readonly serial: string;
    readonly keyMode: string;
    readonly epoch: number;
    readonly keysOnToken: boolean;
    readonly authority: string | null;
  } | null;
  /** Why the dongle is refused, or null. */
  readonly revoked: string | null;
}

export async function describeDongle(dongle: Dongle): Promise<DongleStatus> {
  const identity = await dongle.identify();
  const recordBytes = await dongle.read('card');
  const header = recordBytes === undefined ? undefined : decodeCardRecord(recordBytes).header;
  let revoked: string | null = null;
  if (header?.authority !== undefined) {
    let list: RevocationList | undefined = readAuthorityRevocationList(header.authority);
    if (list === undefined) {
      const carried = await dongle.read('revocations');
      list = carried === undefined ? undefined : parseRevocationList(carried, header.authority.signingKey);
    }
    const entry = list === undefined ? undefined : revokedEntry(list, identity.fingerprint);
    if (list !== undefined && isSerialDestroyed(list, header.serial)) revoked = `card ${header.serial} was destroyed`;
    else if (entry !== undefined) revoked = `revoked (${entry.reason}) on ${entry.revokedAt}`;
  }
  return {
    description: identity.description,
    kind: identity.kind,
    fingerprint: toHex(identity.fingerprint),
    card: header === undefined ? null : {
      serial: header.serial, keyMode: header.keyMode, epoch: header.epoch, keysOnToken: header.keysOnToken,
      authority: header.authority === undefined ? null : toHex(header.authority.signingKey),
    },
    revoked,
  };
}
