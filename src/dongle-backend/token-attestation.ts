// `vsc dongle attest`: the dongle's issuing authority inspects a card whose signing key lives on its token and
// vouches for it to software vendors (patent 003 [0096]: the vendor "may wish to validate the smart card
// manufacturer and/or personalizer"; DESIGN.md "Software rental", trust model, and "Dongle-backed card"). It attests
// only what it checked on the token itself, with the dongle in hand:
//   - the dongle is a PKCS#11 token, not the emulated one (a directory anyone can copy, key and all);
//   - it holds a card sealed to it, with keys on the token, issued under this authority (which can revoke it), and
//     neither the dongle nor the card is on the authority's revocation list;
//   - the card's key object is an Ed25519 private key the token generated and never let out (token-key-check.ts),
//     and the token signs for the public key object the card shows with GET PUBLIC KEY.
// Then it signs {serial, publicKey, keyMode, kind "token", attester} with its Ed25519 signing key
// (card-attestation.ts). An imported universal key ([0098]-[0102]) is never CKA_LOCAL: it is attested only by the
// authority that imported it, at init, right after the import (`importedHere`).
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { issueCardAttestation, readCardAttestation, type CardAttestation } from '../card-attestation/index.js';
import { bytesEqual, concatBytes, toHex, utf8 } from '../bytes/index.js';
import { ed25519Verify } from '../crypto/index.js';
import { ExitCode } from '../errors/index.js';
import { decodeCardRecord } from './card-record.js';
import { DongleError, shortFingerprint, type Dongle, type DongleIdentity } from './dongle.js';
import { escrowPath, readEscrowRegistration } from './escrow.js';
import { withAuthorityAttester } from './issuing-authority.js';
import { DongleRevokedError } from './revocation-check.js';
import { isSerialDestroyed, revokedEntry } from './revocation-list.js';
import { tokenKeyProblems } from './token-key-check.js';

/**
 * What the card key signs to show it matches the public key object. The card key otherwise signs only 32-byte SIGN
 * AND INCREMENT digests ([0053], [0098]); this message is longer, so its signature can never stand for an audit record's.
 */
const POSSESSION = utf8('vsc token attestation possession/1\0');

export interface TokenAttestationRequest {
  /** The issuing authority's data directory (its signing key attests). */
  readonly authorityDir: string;
  readonly dongle: Dongle;
  /** At init: the public key just generated or imported; the token's key must be that one. */
  readonly expectedPublicKey?: Uint8Array;
  /** At init, when this process imported the (universal) key itself a moment ago: CKA_LOCAL may be false. */
  readonly importedHere?: boolean;
  readonly now?: Date;
}

export interface TokenAttestation {
  readonly attestation: CardAttestation;
  /** The attestation file's bytes. */
  readonly bytes: Uint8Array;
  readonly dongle: DongleIdentity;
}

function refused(code: string, message: string): DongleError {
  return new DongleError(code, `not attested: ${message}`, { exitCode: ExitCode.refusedByState });
}

export async function attestTokenCard(request: TokenAttestationRequest): Promise<TokenAttestation> {
  const { dongle } = request;
  if (request.importedHere === true && request.expectedPublicKey === undefined) {
    // Waiving CKA_LOCAL is sound only for the very key this process just imported: never for whatever the token holds.
    throw new DongleError('argument', 'importedHere needs the expectedPublicKey of the key just imported', { exitCode: ExitCode.usage });
  }
  const root = resolve(request.authorityDir);
  const identity = await dongle.identify();
  const name = shortFingerprint(identity.fingerprint);
  if (identity.kind !== 'pkcs11') {
    throw refused('not-a-token', `${identity.description} is not duplication-protected: whoever copies its directory has a second, equal dongle, so no key on it is out of its owner's reach`);
  }
  const recordBytes = await dongle.read('card');
  if (recordBytes === undefined) throw refused('no-card', `dongle ${name} holds no card`);
  const { header } = decodeCardRecord(recordBytes);
  const { serial } = header;
  if (!bytesEqual(header.dongleFingerprint, identity.fingerprint)) {
    throw refused('foreign-record', `the record of card ${serial} on dongle ${name} was sealed to dongle ${shortFingerprint(header.dongleFingerprint)}: it was copied here`);
  }
  if (!header.keysOnToken) {
    throw refused('keys-not-on-token', `card ${serial} does not keep its key on the token: its key is opened on the owner's machine at every insert, where the owner can read it ("vsc dongle init --keys-on-token" makes a card whose key never leaves the token)`);
  }
  const cardKeys = dongle.cardKeys;
  if (cardKeys === undefined) throw refused('no-card-keys', `dongle ${name} cannot hold card keys`);
  return withAuthorityAttester(root, async ({ name: attester, signer, list }) => {
    if (header.authority === undefined || !bytesEqual(header.authority.signingKey, signer.publicKey)) {
      const other = header.authority === undefined ? 'names no issuing authority' : `names another issuing authority (${toHex(header.authority.signingKey).slice(0, 16)}…)`;
      throw refused('other-authority', `card ${serial} ${other}; only the authority a card was issued under attests it, since only it can revoke the dongle`);
    }
    if (isSerialDestroyed(list, serial)) throw new DongleRevokedError(`not attested: card ${serial} was destroyed by this authority; destroyed is final`);
    const entry = revokedEntry(list, identity.fingerprint);
    if (entry !== undefined) throw new DongleRevokedError(`not attested: dongle ${name} is on this authority's revocation list (${entry.reason} on ${entry.revokedAt})`);
    const registration = readEscrowRegistration(escrowPath(root, serial));
    if (registration === undefined || registration.serial !== serial) {
      throw refused('unregistered', `this authority holds no registration of card ${serial} (made by "vsc dongle init --authority ${root}"), so it could not revoke its dongle`);
    }
    if (!bytesEqual(registration.dongleFingerprint, identity.fingerprint)) {
      throw refused('unregistered', `this authority registered card ${serial} on dongle ${shortFingerprint(registration.dongleFingerprint)}, not on dongle ${name}`);
    }
    const facts = await cardKeys.inspect(serial);
    const problems = tokenKeyProblems(facts, { importedHere: request.importedHere === true });
    if (problems.length > 0) throw refused('key-attributes', `the key of card ${serial} on ${identity.description} fails: ${problems.join('; ')}`);
    if (request.expectedPublicKey !== undefined && !bytesEqual(facts.publicKey, request.expectedPublicKey)) {
      throw refused('key-changed', `the key of card ${serial} on the token is not the one just put there`);
    }
    const message = concatBytes(POSSESSION, identity.fingerprint, Uint8Array.from(randomBytes(32)));
    if (!ed25519Verify(facts.publicKey, message, await cardKeys.sign(serial, message))) {
      throw refused('key-mismatch', `the private key of card ${serial} does not sign for the public key the card shows`);
    }
    const bytes = await issueCardAttestation(signer, {
      serial, publicKey: facts.publicKey, keyMode: header.keyMode, kind: 'token', attester, issuedAt: (request.now ?? new Date()).toISOString(),
    });
    return { attestation: readCardAttestation(bytes), bytes, dongle: identity };
  });
}
