// The license applet: the card's license container (DESIGN.md "License containers and lost licenses"; Wibu 000 §2.2-2.8)
// behind a proprietary APDU interface, sharing the card's VscCard with the VSC applet so that its records and the VSC
// applet's signatures take one counter, one at a time. AID F0 56 53 43 00 02, CLA 80, P1 P2 00 00 throughout:
//
// | INS | name             | command data                                              | response data                          |
// |-----|------------------|-----------------------------------------------------------|----------------------------------------|
// | 30  | READ CONTAINER   | –                                                         | container, hidden/secret data emptied  |
// | 32  | APPLY UPDATE     | nonce (16) ‖ signed update file (license-update.ts)       | counter (16) ‖ signature (64) ‖ text   |
// | 34  | USE              | nonce (16) ‖ use request (use-request-codec.ts)           | counter (16) ‖ signature (64) ‖ text   |
// | 36  | READ HIDDEN      | licensor key (32) ‖ product code (4)                      | hidden data sealed to the licensor     |
// | 38  | SECRET CHALLENGE | licensor key (32) ‖ product code (4) ‖ challenge (1..64)  | HMAC-SHA-256(secret data, challenge)   |
// | 3A  | WRITE USER DATA  | licensor key (32) ‖ product code (4) ‖ data (0..1024)     | –                                      |
// | 3C  | BACKUP           | nonce (16) ‖ host time (8)                                | counter (16) ‖ signature (64) ‖ text   |
// |     |                  |                                                           | length (2) ‖ text ‖ field(01, leaf)*   |
// | 3E  | LOCKING          | nonce (16) ‖ lock or unlock sequence (lock-sequence.ts)   | counter (16) ‖ signature (64) ‖ text   |
//
// BACKUP (Wibu 000 §2.1, §2.6): one leaf per firm item (backup-leaf.ts) and one record "license backup items N root R
// at T" over their Merkle root, so 500 firm items cost one SIGN AND INCREMENT; T = max(clock, host time), and the
// clock moves to T first (a host time more than CLOCK_TOLERANCE_SECONDS behind the clock is 9106). LOCKING (000
// §2.10): a lock sequence of the container's lock authority locks it; while locked, READ CONTAINER shows only clock,
// lock authority and lock, LOCKING takes the unlock, and every other command answers 9116 (the card assembly also
// refuses the VSC applet's SIGN AND INCREMENT and the PIV applet's key operations).
//
// APPLY, USE, BACKUP and LOCKING sign the rental record of their text (patent 003 [0056], [0059]): h1 =
// recordHash(nonce, text), then SIGN AND INCREMENT of h1, so the host gets {nonce, text, counter, signature} for its
// trail. Every change is recorded by the store (the card's backing) before the answer: a use is never answered unless
// its count is durable. Should the signature then be refused, the container is put back, so no change stands without
// its record.
//
// Status words: 9000 ok · 6700 wrong data length · 6A80 data that does not parse (update file, use request, lock
// sequence) · 6A86 P1 P2 not 00 00 · 6D00 INS · 6E00 CLA · 6985 card removed or disabled, counter exhausted · 6581 the
// change could not be stored · 91xx a license refusal, xx the index of the reason in LICENSE_REASONS (license-error.ts):
//   9100 input · 9101 no-license · 9102 feature · 9103 expired · 9104 not-yet-active · 9105 exhausted ·
//   9106 clock-set-back · 9107 country · 9108 time-zone · 9109 user · 910A computer · 910B version · 910C maintenance ·
//   910D seats · 910E signature · 910F foreign · 9110 replayed · 9111 capacity · 9112 card · 9113 ticket · 9114 limit ·
//   9115 unauthenticated · 9116 locked · 9117 not-restorable · 9118 approval
import { randomBytes } from 'node:crypto';
import { bytesToUint, concatBytes, toHex, uintToBytes, utf8 } from '../../bytes/index.js';
import { applyLicenseBody } from '../license-apply.js';
import { decideUse } from '../license-decision.js';
import { decodeUseRequest } from '../use-request-codec.js';
import { encodeLicenseContainer, publicView, wipeContainerSecrets } from '../license-container-codec.js';
import { formatLicenseRecordText, licensorDigest } from '../license-record-text.js';
import { LicenseError } from '../license-error.js';
import { CLOCK_TOLERANCE_SECONDS, type LicenseContainer, type UseRequest } from '../license-model.js';
import { MAX_LICENSE_TIME } from '../license-container-limits.js';
import { field, joinFields } from '../license-field-codec.js';
import { buildCardBackup } from '../backup/index.js';
import { applyLockSequence, MAX_LOCK_SEQUENCE_BYTES, parseLockSequence, type SignedLockSequence } from '../locking/index.js';
import { MAX_UPDATE_BYTES, parseSignedBody, type SignedLicenseBody } from '../license-update.js';
import { recordHash } from '../../rental/index.js';
import type { Applet } from '../../apdu/index.js';
import type { CommandApdu } from '../../apdu/index.js';
import { SW, SwError } from '../../apdu/index.js';
import { encodeCounter, SignRefusedError, type VscCard } from '../../apdu/index.js';
import { licenseStatusWord } from './license-status-words.js';
import { readHiddenAnswer, secretChallengeAnswer, withUserData } from './license-item-commands.js';
import type { LicenseStore } from './license-store.js';

/** F0 (proprietary RID range) 56 53 43 ("VSC") 00 02 (application 2, beside the VSC applet's 00 01). */
export const LICENSE_AID = Uint8Array.of(0xf0, 0x56, 0x53, 0x43, 0x00, 0x02);
export const LICENSE_CLA = 0x80;

export const LicenseIns = {
  READ_CONTAINER: 0x30,
  APPLY_UPDATE: 0x32,
  USE: 0x34,
  READ_HIDDEN: 0x36,
  SECRET_CHALLENGE: 0x38,
  WRITE_USER_DATA: 0x3a,
  BACKUP: 0x3c,
  LOCKING: 0x3e,
} as const;

export const LICENSE_NONCE_LENGTH = 16;
export { ITEM_REFERENCE_LENGTH, MAX_CHALLENGE_LENGTH } from './license-item-commands.js';
/** BACKUP's host time: 8 bytes, big-endian Unix seconds. */
export const HOST_TIME_LENGTH = 8;
/** The text length in BACKUP's answer: 2 bytes, big-endian. */
export const BACKUP_TEXT_LENGTH_BYTES = 2;
/** Tag of each leaf in BACKUP's answer (license-field-codec.ts fields). */
export const BACKUP_LEAF_TAG = 0x01;

export interface LicenseAppletOptions {
  readonly store: LicenseStore;
  /** Random bytes for generate-secret; the operating system's generator by default. */
  readonly random?: (length: number) => Uint8Array;
  /** Whether the card is being removed or is disabled ([0057]): every command then answers 6985. */
  readonly disabled?: () => boolean;
}

const EMPTY = new Uint8Array(0);
const KNOWN_INS: ReadonlySet<number> = new Set(Object.values(LicenseIns));

function wrongLength(message: string): SwError {
  return new SwError(SW.WRONG_LENGTH, message);
}

export class LicenseApplet implements Applet {
  readonly aid = LICENSE_AID;
  readonly name = 'License';
  readonly #store: LicenseStore;
  readonly #random: (length: number) => Uint8Array;
  readonly #disabled: () => boolean;

  constructor(
    private readonly card: VscCard,
    options: LicenseAppletOptions,
  ) {
    this.#store = options.store;
    this.#random = options.random ?? ((length) => Uint8Array.from(randomBytes(length)));
    this.#disabled = options.disabled ?? (() => false);
  }

  select(): Uint8Array {
    return EMPTY;
  }

  deselect(): void {}

  async process(command: CommandApdu): Promise<Uint8Array> {
    if (command.cla !== LICENSE_CLA) throw new SwError(SW.CLA_NOT_SUPPORTED);
    if (!KNOWN_INS.has(command.ins)) throw new SwError(SW.INS_NOT_SUPPORTED);
    if (command.p1 !== 0 || command.p2 !== 0) throw new SwError(SW.INCORRECT_P1P2);
    if (this.#disabled()) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'the card is being removed');
    // Each command opens its own copy of the container, once; its hidden and secret data are zeroed once it is answered.
    const opened: LicenseContainer[] = [];
    try {
      const container = this.#store.read();
      opened.push(container);
      if (container.lock !== undefined && command.ins !== LicenseIns.READ_CONTAINER && command.ins !== LicenseIns.LOCKING) {
        throw new LicenseError('locked', 'the card is locked (000 §2.10): it serves no license until its lock authority unlocks it');
      }
      return await this.#dispatch(command, () => container, opened);
    } catch (error) {
      if (error instanceof LicenseError) throw new SwError(licenseStatusWord(error.reason), error.message);
      throw error;
    } finally {
      for (const container of opened) wipeContainerSecrets(container);
    }
  }

  #dispatch(command: CommandApdu, read: () => LicenseContainer, changed: LicenseContainer[]): Uint8Array | Promise<Uint8Array> {
    const data = command.data;
    switch (command.ins) {
      case LicenseIns.READ_CONTAINER:
        if (data.length !== 0) throw wrongLength(`expected no command data, got ${data.length} bytes`);
        return encodeLicenseContainer(publicView(read()));
      case LicenseIns.APPLY_UPDATE:
        return this.#apply(data, read, changed);
      case LicenseIns.USE:
        return this.#use(data, read, changed);
      case LicenseIns.READ_HIDDEN:
        return readHiddenAnswer(read(), this.card.serial, data);
      case LicenseIns.SECRET_CHALLENGE:
        return secretChallengeAnswer(read(), data);
      case LicenseIns.BACKUP:
        return this.#backup(data, read, changed);
      case LicenseIns.LOCKING:
        return this.#locking(data, read, changed);
      default:
        return this.#writeUserData(data, read, changed);
    }
  }

  #apply(data: Uint8Array, read: () => LicenseContainer, changed: LicenseContainer[]): Promise<Uint8Array> {
    if (data.length <= LICENSE_NONCE_LENGTH || data.length > LICENSE_NONCE_LENGTH + MAX_UPDATE_BYTES) {
      throw wrongLength(`expected a ${LICENSE_NONCE_LENGTH}-byte nonce and an update file of 1..${MAX_UPDATE_BYTES} bytes, got ${data.length} bytes`);
    }
    const nonce = data.slice(0, LICENSE_NONCE_LENGTH);
    let signed: SignedLicenseBody;
    try {
      signed = parseSignedBody(data.subarray(LICENSE_NONCE_LENGTH));
    } catch (error) {
      if (error instanceof LicenseError) throw new SwError(SW.WRONG_DATA, error.message);
      throw error;
    }
    const before = read();
    const applied = applyLicenseBody(before, signed, this.card.serial, { random: this.#random });
    changed.push(applied.container);
    return this.#recordAnswer(before, applied.container, nonce, applied.text);
  }

  #use(data: Uint8Array, read: () => LicenseContainer, changed: LicenseContainer[]): Promise<Uint8Array> {
    if (data.length <= LICENSE_NONCE_LENGTH) throw wrongLength(`expected a ${LICENSE_NONCE_LENGTH}-byte nonce and a use request, got ${data.length} bytes`);
    const nonce = data.slice(0, LICENSE_NONCE_LENGTH);
    let request: UseRequest;
    try {
      request = decodeUseRequest(data.subarray(LICENSE_NONCE_LENGTH));
    } catch (error) {
      if (error instanceof LicenseError) throw new SwError(SW.WRONG_DATA, error.message);
      throw error;
    }
    const before = read();
    const decision = decideUse(before, request);
    if (!decision.ok) throw new LicenseError(decision.reason, decision.message);
    changed.push(decision.container);
    const text = formatLicenseRecordText({
      kind: 'use', licensor: licensorDigest(request.licensorKey), firmCode: decision.firm.firmCode, productCode: request.productCode,
      features: request.features, units: request.units, left: decision.remaining, at: request.hostTime,
    });
    return this.#recordAnswer(before, decision.container, nonce, text);
  }

  /**
   * BACKUP (000 §2.1, §2.6): the clock moves to the backup time T, one leaf per firm item, one record over their root.
   * The answer carries the text's length, since the leaves follow it.
   */
  async #backup(data: Uint8Array, read: () => LicenseContainer, changed: LicenseContainer[]): Promise<Uint8Array> {
    if (data.length !== LICENSE_NONCE_LENGTH + HOST_TIME_LENGTH) throw wrongLength(`expected a ${LICENSE_NONCE_LENGTH}-byte nonce and an ${HOST_TIME_LENGTH}-byte host time, got ${data.length} bytes`);
    const nonce = data.slice(0, LICENSE_NONCE_LENGTH);
    const hostTime = bytesToUint(data.subarray(LICENSE_NONCE_LENGTH));
    if (hostTime > BigInt(MAX_LICENSE_TIME)) throw new LicenseError('input', `expected a host time in 0..${MAX_LICENSE_TIME}`);
    const before = read();
    if (Number(hostTime) < before.clock - CLOCK_TOLERANCE_SECONDS) throw new LicenseError('clock-set-back', `the host time ${hostTime} lies before the container's clock ${before.clock}`);
    const time = Math.max(before.clock, Number(hostTime));
    const after: LicenseContainer = time === before.clock ? before : { ...before, clock: time };
    changed.push(after);
    const { leaves, root } = buildCardBackup(before, this.card.serial, time, this.#random);
    const text = formatLicenseRecordText({ kind: 'backup', items: leaves.length, root: toHex(root), at: time });
    const signed = await this.#recordChange(before, after, nonce, text);
    const textBytes = utf8(text);
    return concatBytes(signed, uintToBytes(BigInt(textBytes.length), BACKUP_TEXT_LENGTH_BYTES), textBytes, joinFields(leaves.map((leaf) => field(BACKUP_LEAF_TAG, leaf))));
  }

  /** LOCKING (000 §2.10): a lock or unlock sequence of the container's lock authority (lock-apply.ts). */
  #locking(data: Uint8Array, read: () => LicenseContainer, changed: LicenseContainer[]): Promise<Uint8Array> {
    if (data.length <= LICENSE_NONCE_LENGTH || data.length > LICENSE_NONCE_LENGTH + MAX_LOCK_SEQUENCE_BYTES) {
      throw wrongLength(`expected a ${LICENSE_NONCE_LENGTH}-byte nonce and a lock sequence of 1..${MAX_LOCK_SEQUENCE_BYTES} bytes, got ${data.length} bytes`);
    }
    const nonce = data.slice(0, LICENSE_NONCE_LENGTH);
    let signed: SignedLockSequence;
    try {
      signed = parseLockSequence(data.subarray(LICENSE_NONCE_LENGTH));
    } catch (error) {
      if (error instanceof LicenseError) throw new SwError(SW.WRONG_DATA, error.message);
      throw error;
    }
    const before = read();
    const applied = applyLockSequence(before, signed, this.card.serial);
    changed.push(applied.container);
    return this.#recordAnswer(before, applied.container, nonce, applied.text);
  }

  /** The answer of a command that signs a record: counter (16) ‖ signature (64) ‖ text. */
  async #recordAnswer(before: LicenseContainer, after: LicenseContainer, nonce: Uint8Array, text: string): Promise<Uint8Array> {
    return concatBytes(await this.#recordChange(before, after, nonce, text), utf8(text));
  }

  /**
   * Stores `after` (unless it is `before`), then signs the record of `text`: counter (16) ‖ signature (64). A refused
   * signature puts `before` back (a signature refused leaves the counter as it was, so no record exists); if even that
   * cannot be stored, the change stays unrecorded, which costs the customer, never the licensor.
   */
  async #recordChange(before: LicenseContainer, after: LicenseContainer, nonce: Uint8Array, text: string): Promise<Uint8Array> {
    if (after !== before) await this.#write(after);
    try {
      const { counter, signature } = await this.card.signAndIncrement(recordHash(nonce, text));
      return concatBytes(encodeCounter(counter), signature);
    } catch (error) {
      try {
        if (after !== before) await this.#store.write(before);
      } catch {
        // See above: the change stays without its record.
      }
      if (!(error instanceof SignRefusedError)) throw error;
      throw new SwError(error.reason === 'storage-failed' ? SW.MEMORY_FAILURE : SW.CONDITIONS_NOT_SATISFIED, error.message);
    }
  }

  /** A storage failure answers 6581 and leaves the container as it was; a refusal (capacity) stays a LicenseError. */
  async #write(next: LicenseContainer): Promise<void> {
    try {
      await this.#store.write(next);
    } catch (error) {
      if (error instanceof LicenseError) throw error;
      throw new SwError(SW.MEMORY_FAILURE, 'the license container could not be stored');
    }
  }

  async #writeUserData(data: Uint8Array, read: () => LicenseContainer, changed: LicenseContainer[]): Promise<Uint8Array> {
    const after = withUserData(read(), data);
    changed.push(after);
    await this.#write(after);
    return EMPTY;
  }
}
