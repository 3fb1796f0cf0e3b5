// Puts a new card on a dongle (`vsc dongle init`): the dongle key is made if the dongle has none ([0003]),
// the card's protected information is generated on this machine (or, with --keys-on-token, its signing key
// on the token), sealed in both layers (card-sealing.ts) and written to the dongle with its counter at 0
// in epoch 0; with an issuing authority, the first escrow is left with it before the dongle is written,
// so no card exists that its authority could not replace ([0107] recover).
// A universal-key card (patent 003 [0098]-[0102]) imports the vendor's universal key into the token instead, and
// exists only with keys on the token: every customer's card shares that key, so one copy read out of one
// customer's machine would sign any customer's audit trail.
import { randomBytes } from 'node:crypto';
import type { VscKeyMode } from '../apdu/index.js';
import { wipe } from '../bytes/index.js';
import { encodeProtectedInformation, newProtectedInformation, wipeProtectedInformation } from '../card/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { ExitCode } from '../errors/index.js';
import { deriveOwnerKeys, newKdfParams } from '../vsc-protocol/index.js';
import { describeHolder, encodeCardRecord, encodeCardRecordHeader, SEAL_SALT_LENGTH, type AuthorityReference, type CardRecordHeader } from './card-record.js';
import { counterKey, dongleSealingSecret, sealCounter, sealInner, sealOuter } from './card-sealing.js';
import { DongleError, type Dongle, type DongleIdentity } from './dongle.js';
import { writeEscrow } from './escrow.js';

export interface DongleCardInit {
  readonly dongle: Dongle;
  readonly serial: string;
  /** The owner's new password; wiped. */
  readonly password: Uint8Array;
  readonly keyMode?: VscKeyMode;
  readonly authority?: AuthorityReference;
  /** Generate the card's signing key on the token (it never leaves it; no escrow is possible). */
  readonly keysOnToken?: boolean;
  /** With keyMode universal (and keysOnToken): the vendor's universal Ed25519 private key to import; wiped. */
  readonly universalKey?: Uint8Array;
}

/** Why a universal key never lives anywhere but on a token. */
export const UNIVERSAL_KEY_ON_TOKEN_ONLY =
  'a universal key (patent 003 [0098]) is shared by every customer\'s card: kept in the card\'s information it would be opened on the customer\'s machine at every insert, ' +
  'and once read out there it signs any customer\'s audit trail; it is imported into a token and never leaves it (--keys-on-token --universal-key FILE)';

export function checkCardKeyChoice(keyMode: VscKeyMode, keysOnToken: boolean, universalKey: Uint8Array | undefined): void {
  const usage = (message: string): DongleError => new DongleError('key-mode', message, { exitCode: ExitCode.usage });
  if (keyMode === 'universal' && !keysOnToken) throw usage(`--key-mode universal needs --keys-on-token: ${UNIVERSAL_KEY_ON_TOKEN_ONLY}`);
  if (keyMode === 'universal' && universalKey === undefined) throw usage('--key-mode universal needs the vendor\'s universal key (--universal-key FILE): one generated here would be no other card\'s');
  if (keyMode !== 'universal' && universalKey !== undefined) throw usage('--universal-key belongs to --key-mode universal');
}

export interface InitialisedDongleCard {
  readonly serial: string;
  readonly dongle: DongleIdentity;
  /** The card's Ed25519 signing public key (GET PUBLIC KEY). */
  readonly publicKey: Uint8Array;
  readonly escrowed: boolean;
}

export async function initDongleCard(init: DongleCardInit): Promise<InitialisedDongleCard> {
  const { dongle, serial, password, universalKey } = init;
  const keysOnToken = init.keysOnToken === true;
  const keyMode = init.keyMode ?? 'individual';
  try {
    checkCardKeyChoice(keyMode, keysOnToken, universalKey);
    if (keysOnToken) {
      const why = dongle.cardKeys === undefined ? 'this kind of dongle cannot hold card keys' : await dongle.cardKeys.unsupported();
      if (why !== undefined) throw new DongleError('keys-on-token', `--keys-on-token: ${why}`, { exitCode: ExitCode.refusedByState });
    }
    const identity = await dongle.ensureKey();
    const existing = await dongle.read('card');
    if (existing !== undefined) {
      const holder = describeHolder(existing);
      throw new DongleError('occupied', `the dongle ${identity.description} already holds ${holder}; a dongle holds one card`, { exitCode: ExitCode.refusedByState });
    }
    const header: CardRecordHeader = {
      serial, keyMode, keysOnToken, fresh: false, dongleFingerprint: identity.fingerprint, epoch: 0,
      sealSalt: Uint8Array.from(randomBytes(SEAL_SALT_LENGTH)), kdf: newKdfParams(), authority: init.authority,
    };
    const headerBytes = encodeCardRecordHeader(header);
    const info = newProtectedInformation();
    let publicKey: Uint8Array;
    if (keysOnToken) {
      publicKey = universalKey === undefined ? await dongle.cardKeys!.generate(serial) : await dongle.cardKeys!.importKey(serial, universalKey);
      wipe(info.signingSeed); // no copy of the key anywhere but on the token: the seed stays zeros
    } else {
      publicKey = ed25519KeyFromSeed(info.signingSeed).publicKey;
    }
    const plaintext = encodeProtectedInformation(info);
    wipeProtectedInformation(info);
    const owner = await deriveOwnerKeys(password, header.kdf);
    wipe(owner.authKey);
    const dongleSecret = await dongleSealingSecret(dongle, header);
    const counter = counterKey(owner.protectionKey, dongleSecret, serial);
    try {
      const inner = sealInner(owner.protectionKey, serial, plaintext);
      const escrowed = init.authority !== undefined && writeEscrow(init.authority, header, keysOnToken ? undefined : inner);
      if (init.authority !== undefined && !escrowed) {
        throw new DongleError('escrow', `cannot leave the escrow with the issuing authority at ${init.authority.escrowDirectory} (unreachable, or it already holds a card ${serial}); the dongle was not written`, { exitCode: ExitCode.refusedByState });
      }
      await dongle.write('counter', sealCounter(counter, serial, 0, 0n));
      await dongle.write('card', encodeCardRecord(headerBytes, sealOuter(dongleSecret, headerBytes, inner)));
      return { serial, dongle: identity, publicKey, escrowed };
    } finally {
      wipe(plaintext, owner.protectionKey, dongleSecret, counter);
    }
  } finally {
    wipe(password);
    if (universalKey !== undefined) wipe(universalKey);
  }
}

