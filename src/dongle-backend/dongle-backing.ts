// A dongle as the backing of a running card: patent 004 claim 10 step by step ([0104]-[0110]).
//   insert: the card program asks the dongle for its identity and the card record (the "insert
//     information"), checks the dongle against the authority's revocation list, derives the owner's keys
//     from the password and the dongle's sealing secret, opens both layers (card-sealing.ts); the card then
//     re-seals the information under a per-insert temporary key in encrypted memory (RunningCard).
//   operate: every change is written back to the dongle before the card answers; every counter value is
//     written to the dongle's counter slot before a signature with it leaves the card (DESIGN.md
//     "Counters that never roll back": a crash skips values, never repeats one).
//   remove: the updated information goes back to the dongle if it still answers, a fresh escrow goes to
//     the issuing authority, and the session's secrets are erased.
import type { VscKeyMode } from '../apdu/index.js';
import { constantTimeEqual, wipe } from '../bytes/index.js';
import { readCounter, type CardBacking, type CardSigner, type CounterGrant, type OpenedCard } from '../card/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { crashPoint } from '../fault-injection/index.js';
import { deriveOwnerKeys } from '../vsc-protocol/index.js';
import { decodeCardRecord, encodeCardRecord, encodeCardRecordHeader, epochEnd, epochStart, type CardRecordHeader } from './card-record.js';
import { counterKey, dongleSealingSecret, openCounter, openInner, openOuter, sealCounter, sealInner, sealOuter } from './card-sealing.js';
import { DongleAbsentError, DongleAuthenticationError, DongleError, shortFingerprint, type Dongle, type DongleIdentity } from './dongle.js';
import { writeEscrow } from './escrow.js';
import { checkRevocation, type RevocationCache } from './revocation-check.js';

export interface DongleBackingOptions {
  readonly dongle: Dongle;
  /** The owner's password; wiped once the keys are derived. */
  readonly password: Uint8Array;
  /** The newest revocation lists this machine has seen (kept across inserts). */
  readonly revocations?: RevocationCache;
  /** Something worth telling the owner (an escrow that could not be refreshed). */
  readonly warn?: (message: string) => void;
}

/** Keys of one insert, wiped at close. */
interface SessionKeys {
  readonly protectionKey: Uint8Array;
  readonly dongleSecret: Uint8Array;
  readonly counterKey: Uint8Array;
}

export class DongleBacking implements CardBacking {
  readonly grantMode = 'on-demand' as const;
  #identity: DongleIdentity | undefined;
  #header: CardRecordHeader | undefined;
  #headerBytes: Uint8Array | undefined;
  #keys: SessionKeys | undefined;
  /** The value the counter slot holds: no value at or past it has been signed. */
  #counterWritten = 0n;
  /** The inner layer last written, for the escrow. */
  #inner: Uint8Array | undefined;

  constructor(private readonly options: DongleBackingOptions) {}

  get identity(): DongleIdentity | undefined {
    return this.#identity;
  }

  get header(): CardRecordHeader | undefined {
    return this.#header;
  }

  async open(): Promise<OpenedCard> {
    const { dongle } = this.options;
    const password = this.options.password;
    try {
      const identity = await dongle.identify();
      this.#identity = identity;
      const recordBytes = await dongle.read('card');
      if (recordBytes === undefined) {
        throw new DongleError('no-card', `the dongle ${identity.description} holds no card ("vsc dongle init" puts one on it)`, { exitCode: ExitCode.refusedByState });
      }
      const record = decodeCardRecord(recordBytes);
      const { header } = record;
      if (!constantTimeEqual(header.dongleFingerprint, identity.fingerprint)) {
        throw new DongleAuthenticationError(
          `card ${header.serial} was sealed to dongle ${shortFingerprint(header.dongleFingerprint)}, not to this one (${shortFingerprint(identity.fingerprint)}): a copy of its contents on another token does not open`,
        );
      }
      // Refused before the password is even tried: a revoked dongle is refused whatever it holds.
      const newerList = await checkRevocation({ dongle, header, identity, ...(this.options.revocations === undefined ? {} : { cache: this.options.revocations }) });
      const owner = await deriveOwnerKeys(password, header.kdf);
      wipe(owner.authKey);
      const dongleSecret = await dongleSealingSecret(dongle, header);
      const keys: SessionKeys = { protectionKey: owner.protectionKey, dongleSecret, counterKey: counterKey(owner.protectionKey, dongleSecret, header.serial) };
      this.#keys = keys;
      const inner = openOuter(dongleSecret, record.headerBytes, record.sealed);
      if (inner === undefined) {
        throw new DongleAuthenticationError(`the card record on dongle ${shortFingerprint(identity.fingerprint)} does not open with its key: it was altered or made for another dongle`);
      }
      const plaintext = openInner(keys.protectionKey, header.serial, inner);
      if (plaintext === undefined) throw new DongleAuthenticationError(`wrong password for card ${header.serial}`);
      this.#inner = inner;
      crashPoint('dongle.insert.opened');
      let next = await this.#readCounter(header);
      const informationCounter = readCounter(plaintext);
      if (informationCounter > next) next = informationCounter;
      this.#header = { ...header, fresh: false };
      this.#headerBytes = encodeCardRecordHeader(this.#header);
      if (header.fresh) {
        // A new card or a replacement: its counter slot is written before the record stops saying "fresh",
        // so from now on a missing counter slot is refused rather than restarted.
        await this.#writeCounter(next);
        await this.#writeRecord(plaintext);
      }
      this.#counterWritten = next;
      if (newerList !== undefined) await dongle.write('revocations', newerList.bytes);
      return { serial: header.serial, keyMode: header.keyMode as VscKeyMode, plaintext, grant: { start: next, end: next }, ...(await this.#signer(header)) };
    } catch (error) {
      this.#wipeKeys();
      throw error;
    } finally {
      wipe(password);
    }
  }

  /** One value at a time: the dongle records the counter past `next` before the card signs with it. */
  async grantMore(next: bigint): Promise<CounterGrant> {
    const header = this.#requireOpen();
    if (next + 1n > epochEnd(header.epoch)) {
      throw new DongleError('counter-exhausted', `card ${header.serial} used up the counter values of epoch ${header.epoch}; the issuing authority's replacement starts the next`, { exitCode: ExitCode.refusedByState });
    }
    await this.#writeCounter(next + 1n);
    crashPoint('dongle.grant.counter-written');
    return { start: next, end: next + 1n };
  }

  async save(snapshot: Uint8Array): Promise<void> {
    this.#requireOpen();
    await this.#writeRecord(snapshot);
    crashPoint('dongle.save.written');
  }

  /**
   * [0107] remove: the final information goes back only if the dongle still answers (every change was
   * already written when it happened); then the escrow is refreshed with the authority ([0107] recover).
   */
  async giveBack(snapshot: Uint8Array, nextCounter: bigint): Promise<void> {
    const header = this.#requireOpen();
    try {
      await this.options.dongle.identify();
      await this.#writeRecord(snapshot);
      crashPoint('dongle.remove.record-written');
      if (nextCounter > this.#counterWritten) await this.#writeCounter(nextCounter);
    } catch (error) {
      // Gone before or during the write: the two copies keep the version of the last change.
      if (error instanceof DongleAbsentError) return;
      throw error;
    }
    if (header.authority !== undefined && !header.keysOnToken && this.#inner !== undefined) {
      if (!writeEscrow(header.authority, header, this.#inner)) {
        this.options.warn?.(`the escrow of card ${header.serial} could not be refreshed at ${header.authority.escrowDirectory}; the authority keeps the previous one`);
      }
    }
  }

  async close(): Promise<void> {
    this.#wipeKeys();
    await this.options.dongle.close();
  }

  async #signer(header: CardRecordHeader): Promise<{ signer?: CardSigner }> {
    if (!header.keysOnToken) return {};
    const cardKeys = this.options.dongle.cardKeys;
    if (cardKeys === undefined) throw new DongleError('no-card-keys', `card ${header.serial} keeps its key on its token, but this dongle cannot hold card keys`);
    const publicKey = await cardKeys.publicKey(header.serial);
    return { signer: { publicKey, sign: (message) => cardKeys.sign(header.serial, message) } };
  }

  async #readCounter(header: CardRecordHeader): Promise<bigint> {
    const keys = this.#keys!;
    const bytes = await this.options.dongle.read('counter');
    if (bytes === undefined) {
      if (header.fresh) return epochStart(header.epoch);
      throw new DongleError('counter-missing', `the counter of card ${header.serial} is missing from the dongle; the card refuses to run rather than risk signing a counter value twice`, { exitCode: ExitCode.refusedByState });
    }
    let counter;
    try {
      counter = openCounter(keys.counterKey, header.serial, bytes);
    } catch (error) {
      // A replacement dongle may carry a counter left by something else: its epoch starts afresh.
      if (header.fresh) return epochStart(header.epoch);
      throw error;
    }
    if (counter.epoch > header.epoch) throw new DongleError('counter', `the dongle's counter is in epoch ${counter.epoch}, past the card's epoch ${header.epoch}`, { exitCode: ExitCode.refusedByState });
    const start = epochStart(header.epoch);
    return counter.next > start ? counter.next : start;
  }

  async #writeCounter(next: bigint): Promise<void> {
    const header = this.#header!;
    await this.options.dongle.write('counter', sealCounter(this.#keys!.counterKey, header.serial, header.epoch, next));
    this.#counterWritten = next;
  }

  /** Seals `plaintext` (wiped by the caller) in both layers and writes it to the dongle. */
  async #writeRecord(plaintext: Uint8Array): Promise<void> {
    const header = this.#header!;
    const keys = this.#keys!;
    const inner = sealInner(keys.protectionKey, header.serial, plaintext);
    await this.options.dongle.write('card', encodeCardRecord(this.#headerBytes!, sealOuter(keys.dongleSecret, this.#headerBytes!, inner)));
    this.#inner = inner;
  }

  #requireOpen(): CardRecordHeader {
    if (this.#header === undefined || this.#keys === undefined) throw new VscError('dongle.not-open', 'the dongle-backed card is not open');
    return this.#header;
  }

  #wipeKeys(): void {
    const keys = this.#keys;
    this.#keys = undefined;
    if (keys !== undefined) wipe(keys.protectionKey, keys.dongleSecret, keys.counterKey);
  }
}

