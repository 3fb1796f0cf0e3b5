// The PIV card application, the NIST SP 800-73-4 Part 2 subset that OpenSC's piv driver and
// yubico-piv-tool use: SELECT (3.1.1), GET DATA (3.1.2), VERIFY (3.2.1), CHANGE REFERENCE DATA
// (3.2.2), RESET RETRY COUNTER (3.2.3), GENERAL AUTHENTICATE (3.2.4), PUT DATA (3.3.1) and
// GENERATE ASYMMETRIC KEY PAIR (3.3.2), with P-256 keys and a 3DES or AES-128 management key.
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, wipe } from '../../bytes/index.js';
import { blockCipherBlockLength, blockCipherKeyLength, encryptBlock, type BlockCipherAlgorithm, isValidP256PublicKey, p256GenerateKey, p256SharedSecret, p256Sign } from '../../crypto/index.js';
import type { Applet } from '../applet.js';
import type { CommandApdu } from '../command-apdu.js';
import { SW, SwError, swRetriesLeft } from '../status-words.js';
import {
  PIV_AID, PivTag, buildApplicationPropertyTemplate, encodeDynamicAuthenticationTemplate, encodeEcPublicKeyTemplate,
  wrapDataObject,
} from './piv-data-objects.js';
import {
  MAX_DATA_OBJECT_LENGTH, PIN_MAX_RETRIES, PUK_MAX_RETRIES, REFERENCE_DATA_LENGTH, clonePivState, isPivKeySlot,
  isValidPinReference, isValidPukReference, isWholeDiscoveryObject, wipePivSecrets, type PivKeySlot, type PivState,
} from './piv-state.js';
import {
  ALG_P256, DATA_FIELD, DATA_P1P2, MANAGEMENT_KEY_REF, MAX_DIGEST_LENGTH, PIN_PROTECTED_OBJECTS, PIN_REF, PUK_REF, PivIns, TAG_ALGORITHM,
  TAG_CHALLENGE, TAG_CONTROL_TEMPLATE, TAG_EXPONENTIATION, TAG_LIST, TAG_RESPONSE, TAG_WITNESS, decodeData, isWritableTag,
  managementAlgorithmOf, parseTemplate, tagFromBytes, wrongData,
} from './piv-commands.js';

export interface PivAppletOptions {
  /**
   * Stores the new state durably. Called before the answer of every command that changed persistent
   * state (retry counters included); when it throws, the command answers 6581 and nothing changes.
   */
  commit?: (state: PivState) => void | Promise<void>;
  /**
   * Where the state lives between commands ([0027]-[0030]). When given, every command opens a fresh
   * copy, and its secrets are zeroed once the command has its answer; the applet keeps none.
   */
  vault?: () => PivState;
  /**
   * The room the card has for its state, in bytes of whatever `sizeOf` counts (the card's encoded
   * protected information, which a remove must carry). A command whose new state would be larger
   * than `maxBytes` and than the state before answers 6A84 (ISO 7816-4 "not enough memory space",
   * SP 800-73-4 Part 2 3.3.1) and changes nothing; one that does not grow the state always goes on,
   * so a card already past the room can still use its PIN and be emptied.
   */
  capacity?: PivCapacity;
  /**
   * Whether the card is locked (Wibu 000 §2.10: "it cannot longer be used for any encryption or authentication"):
   * GENERAL AUTHENTICATE and GENERATE ASYMMETRIC KEY PAIR then answer 6985. The card's license container says so.
   */
  locked?: () => boolean;
}

export interface PivCapacity {
  readonly maxBytes: number;
  readonly sizeOf: (state: PivState) => number;
}

type ReferenceName = 'pin' | 'puk';

/** A management-key challenge the card sent and waits to see answered (Part 2 appendix A.1). */
interface PendingChallenge {
  kind: 'witness' | 'challenge';
  algorithm: BlockCipherAlgorithm;
  plaintext: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export class PivApplet implements Applet {
  readonly aid = PIV_AID;
  readonly name = 'PIV';
  private readonly commit: PivAppletOptions['commit'];
  private readonly applicationProperties = buildApplicationPropertyTemplate();
  private readonly vault: PivAppletOptions['vault'];
  private readonly capacity: PivCapacity | undefined;
  private readonly locked: () => boolean;
  /** The last committed state (opened from the vault for one command); replaced only after a successful commit. */
  private state: PivState;
  // Security status (Part 2 3.2): volatile, cleared when the application is deselected.
  private pinVerified = false;
  private pukVerified = false;
  /** 9C is "PIN always" (Part 1 table 4b): one signature per VERIFY. */
  private signatureAllowed = false;
  private managementAuthenticated = false;
  private pending: PendingChallenge | undefined;

  constructor(state: PivState, options: PivAppletOptions = {}) {
    this.state = clonePivState(state);
    this.commit = options.commit;
    this.vault = options.vault;
    this.capacity = options.capacity;
    this.locked = options.locked ?? (() => false);
    if (this.vault !== undefined) wipePivSecrets(this.state);
  }

  select(): Uint8Array {
    return this.applicationProperties;
  }

  deselect(): void {
    this.pinVerified = false;
    this.pukVerified = false;
    this.signatureAllowed = false;
    this.managementAuthenticated = false;
    this.dropPending();
  }

  process(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    if (this.vault === undefined) return this.dispatch(command);
    this.state = this.vault();
    const done = () => wipePivSecrets(this.state);
    let answer: Uint8Array | Promise<Uint8Array>;
    try {
      answer = this.dispatch(command);
    } catch (error) {
      done();
      throw error;
    }
    if (answer instanceof Promise) return answer.finally(done);
    done();
    return answer;
  }

  private dispatch(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    if (command.cla !== 0x00) throw new SwError(SW.CLA_NOT_SUPPORTED);
    // A management challenge is answered by the very next command, or not at all.
    if (command.ins !== PivIns.GENERAL_AUTHENTICATE || command.p2 !== MANAGEMENT_KEY_REF) this.dropPending();
    switch (command.ins) {
      case PivIns.GET_DATA:
        return this.getData(command);
      case PivIns.VERIFY:
        return this.verify(command);
      case PivIns.CHANGE_REFERENCE_DATA:
        return this.changeReferenceData(command);
      case PivIns.RESET_RETRY_COUNTER:
        return this.resetRetryCounter(command);
      case PivIns.GENERAL_AUTHENTICATE:
        this.refuseWhileLocked();
        return this.generalAuthenticate(command);
      case PivIns.GENERATE_ASYMMETRIC_KEY_PAIR:
        this.refuseWhileLocked();
        return this.generateKeyPair(command);
      case PivIns.PUT_DATA:
        return this.putData(command);
      case PivIns.SET_MANAGEMENT_KEY:
        return this.setManagementKey(command);
      default:
        // Vendor probes (YubiKey FD version, F8 serial, ...) land here too.
        throw new SwError(SW.INS_NOT_SUPPORTED);
    }
  }

  // ---- persistence -----------------------------------------------------------------------------

  /**
   * Commits `next` and makes it current; on failure the current state stays as it was (6581). A
   * state that would outgrow the card's room is refused first (6A84), before anything is stored.
   */
  private async store(next: PivState): Promise<void> {
    if (this.capacity !== undefined) {
      const { maxBytes, sizeOf } = this.capacity;
      const size = sizeOf(next);
      if (size > maxBytes && size > sizeOf(this.state)) {
        throw new SwError(SW.NOT_ENOUGH_MEMORY, `the card's information would grow to ${size} bytes; it has room for ${maxBytes}`);
      }
    }
    if (this.commit !== undefined) {
      try {
        await this.commit(clonePivState(next));
      } catch {
        throw new SwError(SW.MEMORY_FAILURE, 'the PIV state could not be stored');
      }
    }
    this.state = next;
  }

  private dropPending(): void {
    if (this.pending !== undefined) wipe(this.pending.plaintext);
    this.pending = undefined;
  }

  // ---- GET DATA / PUT DATA ---------------------------------------------------------------------

  private getData(command: CommandApdu): Uint8Array {
    if (((command.p1 << 8) | command.p2) !== DATA_P1P2) throw new SwError(SW.INCORRECT_P1P2);
    const objects = decodeData(command.data);
    const list = objects[0];
    if (objects.length !== 1 || list === undefined || list.tag !== TAG_LIST) throw wrongData('expected one 5C tag list');
    const tag = tagFromBytes(list.value);
    // Absence is answered first, as for the free objects: tools probe for objects before any VERIFY.
    const content = this.state.dataObjects.get(tag);
    if (content === undefined) throw new SwError(SW.FILE_NOT_FOUND);
    if (PIN_PROTECTED_OBJECTS.has(tag) && !this.pinVerified) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
    return wrapDataObject(tag, content);
  }

  private async putData(command: CommandApdu): Promise<Uint8Array> {
    if (((command.p1 << 8) | command.p2) !== DATA_P1P2) throw new SwError(SW.INCORRECT_P1P2);
    if (!this.managementAuthenticated) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
    const objects = decodeData(command.data);
    const [list, object] = objects;
    if (objects.length !== 2 || list === undefined || object === undefined || list.tag !== TAG_LIST) {
      throw wrongData('expected a 5C tag list and one data object');
    }
    const tag = tagFromBytes(list.value);
    if (!isWritableTag(tag)) throw wrongData('expected the tag of a PIV data object');
    // The discovery object is written whole (7E ...); every other container as 53 content.
    let content: Uint8Array;
    if (tag === PivTag.DISCOVERY) {
      content = command.data.slice(list.end);
      if (!isWholeDiscoveryObject(content)) throw wrongData('expected a 7E data object');
    } else {
      if (object.tag !== DATA_FIELD) throw wrongData('expected the data in tag 53');
      content = object.value.slice();
    }
    if (content.length > MAX_DATA_OBJECT_LENGTH) throw new SwError(SW.NOT_ENOUGH_MEMORY);
    const dataObjects = new Map(this.state.dataObjects);
    // An empty 53 deletes the object, as on YubiKeys.
    if (tag !== PivTag.DISCOVERY && content.length === 0) dataObjects.delete(tag);
    else dataObjects.set(tag, content);
    await this.store({ ...this.state, dataObjects });
    return EMPTY;
  }

  private async setManagementKey(command: CommandApdu): Promise<Uint8Array> {
    try {
      if (command.p1 !== 0xff || (command.p2 !== 0xff && command.p2 !== 0xfe)) throw new SwError(SW.INCORRECT_P1P2);
      if (!this.managementAuthenticated) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
      const [algorithmId, reference, length] = command.data;
      const algorithm = managementAlgorithmOf(algorithmId ?? -1);
      if (algorithm === undefined || reference !== MANAGEMENT_KEY_REF) throw wrongData('expected algorithm 03 or 08, key reference 9B, and the key');
      const keyLength = blockCipherKeyLength(algorithm);
      if (length !== keyLength || command.data.length !== 3 + keyLength) throw wrongData(`expected a ${keyLength}-byte key`);
      const key = command.data.slice(3);
      const old = this.state.managementKey.key;
      try {
        await this.store({ ...this.state, managementKey: { algorithm, key } });
      } catch (error) {
        wipe(key);
        throw error;
      }
      wipe(old);
      // The session stays authenticated, as on YubiKeys: tools chain set-mgm-key with further steps.
      return EMPTY;
    } finally {
      wipe(command.data);
    }
  }

  // ---- PIN and PUK -----------------------------------------------------------------------------

  private referenceOf(p2: number): ReferenceName {
    if (p2 === PIN_REF) return 'pin';
    if (p2 === PUK_REF) return 'puk';
    throw new SwError(SW.INCORRECT_P1P2);
  }

  private retriesLeft(reference: ReferenceName): number {
    return reference === 'pin' ? this.state.pinRetriesLeft : this.state.pukRetriesLeft;
  }

  private setVerified(reference: ReferenceName, verified: boolean): void {
    if (reference === 'pin') {
      this.pinVerified = verified;
      if (!verified) this.signatureAllowed = false;
    } else {
      this.pukVerified = verified;
    }
  }

  /**
   * Checks reference data against `candidate` in constant time. The try is counted and committed
   * before the comparison, so a failing commit (or a power cut) never yields a free guess; a match
   * then commits `onMatch` of the state with the counter reset. A mismatch throws 63Cx.
   */
  private async checkReference(reference: ReferenceName, candidate: Uint8Array, onMatch: (state: PivState) => PivState): Promise<void> {
    const left = this.retriesLeft(reference);
    if (left === 0) throw new SwError(SW.AUTH_METHOD_BLOCKED);
    const counted = reference === 'pin' ? { ...this.state, pinRetriesLeft: left - 1 } : { ...this.state, pukRetriesLeft: left - 1 };
    await this.store(counted);
    if (!constantTimeEqual(candidate, this.state[reference])) {
      this.setVerified(reference, false);
      throw new SwError(swRetriesLeft(left - 1), `wrong ${reference.toUpperCase()}`);
    }
    const reset = reference === 'pin' ? { ...this.state, pinRetriesLeft: PIN_MAX_RETRIES } : { ...this.state, pukRetriesLeft: PUK_MAX_RETRIES };
    await this.store(onMatch(reset));
  }

  private isValidReference(reference: ReferenceName, value: Uint8Array): boolean {
    return reference === 'pin' ? isValidPinReference(value) : isValidPukReference(value);
  }

  private verify(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    if (command.p1 !== 0x00 && command.p1 !== 0xff) throw new SwError(SW.INCORRECT_P1P2);
    const reference = this.referenceOf(command.p2);
    const data = command.data;
    if (command.p1 === 0xff) {
      // Part 2 3.2.1: P1 = FF resets the security status of the key reference.
      if (data.length !== 0) throw new SwError(SW.WRONG_LENGTH, 'expected no data with P1 = FF');
      this.setVerified(reference, false);
      return EMPTY;
    }
    const left = this.retriesLeft(reference);
    if (data.length === 0) {
      // Status query: verified, blocked, or the tries left.
      if (reference === 'pin' ? this.pinVerified : this.pukVerified) return EMPTY;
      throw new SwError(left === 0 ? SW.AUTH_METHOD_BLOCKED : swRetriesLeft(left));
    }
    if (data.length !== REFERENCE_DATA_LENGTH) throw new SwError(SW.WRONG_LENGTH, `expected ${REFERENCE_DATA_LENGTH} bytes of reference data`);
    if (left === 0) throw new SwError(SW.AUTH_METHOD_BLOCKED);
    // A value no PIN can have is refused without costing a try (its format is not secret).
    if (!this.isValidReference(reference, data)) throw wrongData(`expected ${reference === 'pin' ? '6 to 8 digits' : '6 to 8 bytes'} padded with FF`);
    return this.checkReference(reference, data, (state) => state).then(() => {
      this.setVerified(reference, true);
      if (reference === 'pin') this.signatureAllowed = true;
      return EMPTY;
    });
  }

  private async changeReferenceData(command: CommandApdu): Promise<Uint8Array> {
    if (command.p1 !== 0x00) throw new SwError(SW.INCORRECT_P1P2);
    const reference = this.referenceOf(command.p2);
    if (command.data.length !== 2 * REFERENCE_DATA_LENGTH) throw new SwError(SW.WRONG_LENGTH, 'expected old and new reference data, 8 bytes each');
    if (this.retriesLeft(reference) === 0) throw new SwError(SW.AUTH_METHOD_BLOCKED);
    const current = command.data.subarray(0, REFERENCE_DATA_LENGTH);
    const next = command.data.slice(REFERENCE_DATA_LENGTH);
    try {
      if (!this.isValidReference(reference, next)) throw wrongData(`expected a new ${reference.toUpperCase()} of ${reference === 'pin' ? '6 to 8 digits' : '6 to 8 bytes'}`);
      const old = this.state[reference];
      await this.checkReference(reference, current, (state) => (reference === 'pin' ? { ...state, pin: next } : { ...state, puk: next }));
      wipe(old);
    } catch (error) {
      if (this.state[reference] !== next) wipe(next);
      throw error;
    } finally {
      wipe(command.data);
    }
    // Part 2 3.2.2: success sets the security status of the key reference.
    this.setVerified(reference, true);
    return EMPTY;
  }

  private async resetRetryCounter(command: CommandApdu): Promise<Uint8Array> {
    if (command.p1 !== 0x00 || command.p2 !== PIN_REF) throw new SwError(SW.INCORRECT_P1P2);
    if (command.data.length !== 2 * REFERENCE_DATA_LENGTH) throw new SwError(SW.WRONG_LENGTH, 'expected the PUK and a new PIN, 8 bytes each');
    if (this.state.pukRetriesLeft === 0) throw new SwError(SW.AUTH_METHOD_BLOCKED);
    const puk = command.data.subarray(0, REFERENCE_DATA_LENGTH);
    const pin = command.data.slice(REFERENCE_DATA_LENGTH);
    try {
      if (!isValidPinReference(pin)) throw wrongData('expected a new PIN of 6 to 8 digits');
      const old = this.state.pin;
      await this.checkReference('puk', puk, (state) => ({ ...state, pin, pinRetriesLeft: PIN_MAX_RETRIES }));
      wipe(old);
    } catch (error) {
      if (this.state.pin !== pin) wipe(pin);
      throw error;
    } finally {
      wipe(command.data);
    }
    this.setVerified('pin', false);
    return EMPTY;
  }

  /** The key operations of a locked card answer 6985 (conditions of use not satisfied). */
  private refuseWhileLocked(): void {
    if (this.locked()) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'the card is locked');
  }

  // ---- GENERAL AUTHENTICATE --------------------------------------------------------------------

  private generalAuthenticate(command: CommandApdu): Uint8Array {
    if (command.p2 === MANAGEMENT_KEY_REF) return this.managementAuthenticate(command);
    const slot = command.p2;
    if (!isPivKeySlot(slot)) throw new SwError(SW.INCORRECT_P1P2);
    if (command.p1 !== ALG_P256) throw new SwError(SW.INCORRECT_P1P2, 'expected algorithm 11 (ECC P-256)');
    const pair = this.state.keys.get(slot);
    if (pair === undefined) throw new SwError(SW.REFERENCED_DATA_NOT_FOUND);

    const template = parseTemplate(command.data);
    const response = template.get(TAG_RESPONSE);
    const challenge = template.get(TAG_CHALLENGE);
    const point = template.get(TAG_EXPONENTIATION);
    if (response === undefined || response.length !== 0 || template.size !== 2 || (challenge === undefined) === (point === undefined)) {
      throw wrongData('expected 7C { 82 00, and 81 digest or 85 point }');
    }
    if (challenge !== undefined && (challenge.length === 0 || challenge.length > MAX_DIGEST_LENGTH)) {
      throw wrongData(`expected a digest of 1 to ${MAX_DIGEST_LENGTH} bytes`);
    }
    if (point !== undefined && !isValidP256PublicKey(point)) throw wrongData('expected an uncompressed P-256 point on the curve');
    this.authorizeKeyUse(slot);

    if (challenge !== undefined) return encodeDynamicAuthenticationTemplate([[TAG_RESPONSE, p256Sign(pair.privateKey, challenge)]]);
    const shared = p256SharedSecret(pair.privateKey, point!);
    const answer = encodeDynamicAuthenticationTemplate([[TAG_RESPONSE, shared]]);
    wipe(shared);
    return answer;
  }

  /** PIN policies of Part 1 table 4b: 9E none, 9A and 9D once per session, 9C before every use. */
  private authorizeKeyUse(slot: PivKeySlot): void {
    if (slot === 0x9e) return;
    if (!this.pinVerified) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
    if (slot === 0x9c) {
      if (!this.signatureAllowed) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED, 'the digital signature key needs a VERIFY before each use');
      this.signatureAllowed = false;
    }
  }

  /**
   * Card management key authentication (Part 2 appendix A.1-A.2): mutual (7C{80 00} → encrypted
   * witness; 7C{80 witness, 81 challenge} → 7C{82 encrypted challenge}) and external
   * (7C{81 00} → challenge; 7C{82 encrypted challenge}).
   */
  private managementAuthenticate(command: CommandApdu): Uint8Array {
    const pending = this.pending;
    this.pending = undefined;
    try {
      const { algorithm, key } = this.state.managementKey;
      if (managementAlgorithmOf(command.p1) !== algorithm) throw new SwError(SW.INCORRECT_P1P2, 'expected the algorithm of the management key');
      const blockLength = blockCipherBlockLength(algorithm);
      const template = parseTemplate(command.data);
      const witness = template.get(TAG_WITNESS);
      const challenge = template.get(TAG_CHALLENGE);
      const response = template.get(TAG_RESPONSE);

      if (template.size === 1 && witness?.length === 0) {
        const plaintext = Uint8Array.from(randomBytes(blockLength));
        this.pending = { kind: 'witness', algorithm, plaintext };
        return encodeDynamicAuthenticationTemplate([[TAG_WITNESS, encryptBlock(algorithm, key, plaintext)]]);
      }
      if (template.size === 1 && challenge?.length === 0) {
        const plaintext = Uint8Array.from(randomBytes(blockLength));
        this.pending = { kind: 'challenge', algorithm, plaintext: plaintext.slice() };
        return encodeDynamicAuthenticationTemplate([[TAG_CHALLENGE, plaintext]]);
      }
      const isMutual = witness !== undefined && challenge !== undefined && (template.size === 2 || (template.size === 3 && response?.length === 0));
      if (isMutual) {
        if (witness.length !== blockLength || challenge.length !== blockLength) throw wrongData(`expected a ${blockLength}-byte witness and challenge`);
        if (pending?.kind !== 'witness' || pending.algorithm !== algorithm) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'no witness was requested');
        this.expectManagementProof(constantTimeEqual(witness, pending.plaintext));
        return encodeDynamicAuthenticationTemplate([[TAG_RESPONSE, encryptBlock(algorithm, key, challenge)]]);
      }
      if (template.size === 1 && response !== undefined && response.length > 0) {
        if (response.length !== blockLength) throw wrongData(`expected a ${blockLength}-byte response`);
        if (pending?.kind !== 'challenge' || pending.algorithm !== algorithm) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'no challenge was requested');
        const expected = encryptBlock(algorithm, key, pending.plaintext);
        try {
          this.expectManagementProof(constantTimeEqual(response, expected));
        } finally {
          wipe(expected);
        }
        return EMPTY;
      }
      throw wrongData('expected a management key witness or challenge request, or the answer to one');
    } catch (error) {
      this.managementAuthenticated = false;
      throw error;
    } finally {
      if (pending !== undefined) wipe(pending.plaintext);
    }
  }

  private expectManagementProof(matches: boolean): void {
    if (!matches) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED, 'management key authentication failed');
    this.managementAuthenticated = true;
  }

  // ---- GENERATE ASYMMETRIC KEY PAIR ------------------------------------------------------------

  private async generateKeyPair(command: CommandApdu): Promise<Uint8Array> {
    const slot = command.p2;
    if (command.p1 !== 0x00 || !isPivKeySlot(slot)) throw new SwError(SW.INCORRECT_P1P2);
    if (!this.managementAuthenticated) throw new SwError(SW.SECURITY_STATUS_NOT_SATISFIED);
    const objects = decodeData(command.data);
    const template = objects[0];
    if (objects.length !== 1 || template === undefined || template.tag !== TAG_CONTROL_TEMPLATE) {
      throw wrongData('expected one AC control reference template');
    }
    const inner = decodeData(template.value);
    const algorithm = inner[0];
    if (inner.length !== 1 || algorithm === undefined || algorithm.tag !== TAG_ALGORITHM || algorithm.value.length !== 1) {
      throw wrongData('expected AC { 80 01 algorithm }');
    }
    if (algorithm.value[0] !== ALG_P256) throw wrongData('expected algorithm 11 (ECC P-256)');

    const pair = p256GenerateKey();
    const previous = this.state.keys.get(slot);
    const keys = new Map(this.state.keys).set(slot, { privateKey: pair.privateKey, publicKey: pair.publicKey });
    try {
      // The slot's certificate stays until PUT DATA replaces it, as on real cards.
      await this.store({ ...this.state, keys });
    } catch (error) {
      wipe(pair.privateKey);
      throw error;
    }
    if (previous !== undefined) wipe(previous.privateKey);
    return encodeEcPublicKeyTemplate(pair.publicKey);
  }
}
