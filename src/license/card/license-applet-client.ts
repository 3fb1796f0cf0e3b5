// A typed host-side client of the license applet (src/apdu/license/license-applet.ts; DESIGN.md "License containers
// and lost licenses"): commands longer than a short APDU go out with command chaining (ISO/IEC 7816-4 5.3.3), long
// answers come back through GET RESPONSE, and the applet's 91xx refusals become LicenseError with their reason.
import { commandApdu, COUNTER_LENGTH, MAX_SHORT_NC } from '../../apdu/index.js';
import {
  BACKUP_LEAF_TAG, BACKUP_TEXT_LENGTH_BYTES, HOST_TIME_LENGTH, ITEM_REFERENCE_LENGTH, LICENSE_AID, LICENSE_CLA, LICENSE_NONCE_LENGTH, LicenseIns,
  MAX_CHALLENGE_LENGTH,
} from './license-applet.js';
import { licenseReasonOfStatusWord } from './license-status-words.js';
import { bytesToUint, concatBytes, readUint16, uintToBytes, utf8 } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, SHA256_LENGTH } from '../../crypto/index.js';
import { assertBytes, assertInteger } from '../../errors/index.js';
import { decodeLicenseContainer } from '../license-container-codec.js';
import { encodeUseRequest } from '../use-request-codec.js';
import { LicenseError } from '../license-error.js';
import { MAX_CODE, MAX_ITEM_DATA_BYTES, type LicenseContainer, type UseRequest } from '../license-model.js';
import { MAX_UPDATE_BYTES } from '../license-update.js';
import { MAX_LICENSE_TIME } from '../license-container-limits.js';
import { FieldReader } from '../license-field-codec.js';
import { MAX_BACKUP_FILE_BYTES } from '../backup/index.js';
import { MAX_LOCK_SEQUENCE_BYTES } from '../locking/index.js';
import { CardStatusError } from '../../card-client/index.js';
import { exchange, MalformedResponseError, type CardTransport, type ExchangeOptions } from '../../card-client/index.js';

/** A record the card signed (APPLY UPDATE, USE, BACKUP, LOCKING): with the nonce sent, it is a whole rental trail record. */
export interface CardRecordAnswer {
  readonly counter: bigint;
  readonly signature: Uint8Array;
  readonly text: string;
}

/** BACKUP's answer: the record of "license backup items N root R at T" and the N leaves (backup-leaf.ts) in order. */
export interface CardBackupAnswer {
  readonly record: CardRecordAnswer;
  readonly leaves: Uint8Array[];
}

const CHAINING_BIT = 0x10;
const SELECT = { cla: 0x00, ins: 0xa4, p1: 0x04 /* select by DF name */, p2: 0x00 /* first or only occurrence */ } as const;
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });
const NAMES: Readonly<Record<number, string>> = {
  0x30: 'READ CONTAINER', 0x32: 'APPLY UPDATE', 0x34: 'USE', 0x36: 'READ HIDDEN', 0x38: 'SECRET CHALLENGE', 0x3a: 'WRITE USER DATA', 0x3c: 'BACKUP',
  0x3e: 'LOCKING',
};

const inputError = (message: string): LicenseError => new LicenseError('input', `license applet client: ${message}`);

/** Parses the answer of APPLY UPDATE and USE: counter (16) ‖ signature (64) ‖ text (UTF-8). */
export function parseCardRecordAnswer(data: Uint8Array): CardRecordAnswer {
  const head = COUNTER_LENGTH + ED25519_SIGNATURE_LENGTH;
  if (data.length <= head) throw new MalformedResponseError(`expected a counter, a signature and a text (more than ${head} bytes), got ${data.length}`);
  let text: string;
  try {
    text = FATAL_UTF8.decode(data.subarray(head));
  } catch (cause) {
    throw new MalformedResponseError('expected the record text in UTF-8', { cause });
  }
  return { counter: bytesToUint(data.subarray(0, COUNTER_LENGTH)), signature: data.slice(COUNTER_LENGTH, head), text };
}

/** Parses BACKUP's answer: counter (16) ‖ signature (64) ‖ text length (2) ‖ text ‖ field(01, leaf)*. */
export function parseCardBackupAnswer(data: Uint8Array): CardBackupAnswer {
  const head = COUNTER_LENGTH + ED25519_SIGNATURE_LENGTH;
  if (data.length < head + BACKUP_TEXT_LENGTH_BYTES) throw new MalformedResponseError(`expected a counter, a signature and a text length (${head + BACKUP_TEXT_LENGTH_BYTES} bytes), got ${data.length}`);
  const textEnd = head + BACKUP_TEXT_LENGTH_BYTES + readUint16(data, head);
  if (textEnd > data.length) throw new MalformedResponseError(`expected a text of ${textEnd - head - BACKUP_TEXT_LENGTH_BYTES} bytes, got ${data.length - head - BACKUP_TEXT_LENGTH_BYTES}`);
  const record = parseCardRecordAnswer(concatBytes(data.subarray(0, head), data.subarray(head + BACKUP_TEXT_LENGTH_BYTES, textEnd)));
  let leaves: Uint8Array[];
  try {
    const reader = new FieldReader(data.subarray(textEnd), 'backup leaves');
    leaves = reader.many(BACKUP_LEAF_TAG).map((leaf) => leaf.slice());
    reader.end();
  } catch (cause) {
    throw new MalformedResponseError('expected the backup leaves as fields 01', { cause });
  }
  return { record, leaves };
}

function itemReference(licensorKey: Uint8Array, productCode: number): Uint8Array {
  assertBytes('the licensor key', licensorKey, ED25519_PUBLIC_KEY_LENGTH, inputError);
  assertInteger('the product code', productCode, 0, MAX_CODE, inputError);
  return concatBytes(licensorKey, uintToBytes(BigInt(productCode), ITEM_REFERENCE_LENGTH - ED25519_PUBLIC_KEY_LENGTH));
}

function checkNonce(nonce: Uint8Array): void {
  assertBytes('the nonce', nonce, LICENSE_NONCE_LENGTH, inputError);
}

export class LicenseAppletClient {
  constructor(private readonly transport: CardTransport) {}

  async select(): Promise<void> {
    await exchange(this.transport, commandApdu({ ...SELECT, data: LICENSE_AID }));
  }

  /** The container as the card shows it: hidden and secret data empty. */
  async readContainer(): Promise<LicenseContainer> {
    // A container may outgrow 64 KiB where its store has no such limit (a card's protected information keeps it smaller).
    const answer = await this.#send(LicenseIns.READ_CONTAINER, new Uint8Array(0), { maxResponseBytes: MAX_BACKUP_FILE_BYTES });
    try {
      return decodeLicenseContainer(answer);
    } catch (cause) {
      throw new MalformedResponseError('expected READ CONTAINER to answer a license container', { cause });
    }
  }

  /** Applies a licensor's signed update or time certificate (the file form of license-update.ts); the answer is its record. */
  async apply(nonce: Uint8Array, fileBytes: Uint8Array | string): Promise<CardRecordAnswer> {
    checkNonce(nonce);
    const file = typeof fileBytes === 'string' ? utf8(fileBytes) : fileBytes;
    assertBytes('the update file', file, { min: 1, max: MAX_UPDATE_BYTES }, inputError);
    return parseCardRecordAnswer(await this.#send(LicenseIns.APPLY_UPDATE, concatBytes(nonce, file)));
  }

  /** One use: the card decides, counts, stores the count and signs its record; refusals are LicenseError. */
  async use(nonce: Uint8Array, request: UseRequest): Promise<CardRecordAnswer> {
    checkNonce(nonce);
    return parseCardRecordAnswer(await this.#send(LicenseIns.USE, concatBytes(nonce, encodeUseRequest(request))));
  }

  /** The item's hidden data sealed to its licensor (license-hidden-data.ts openHiddenData opens it). */
  async readHidden(licensorKey: Uint8Array, productCode: number): Promise<Uint8Array> {
    return this.#send(LicenseIns.READ_HIDDEN, itemReference(licensorKey, productCode));
  }

  /** HMAC-SHA-256 of `challenge` under the item's secret data, which never leaves the card. */
  async secretChallenge(licensorKey: Uint8Array, productCode: number, challenge: Uint8Array): Promise<Uint8Array> {
    const reference = itemReference(licensorKey, productCode);
    assertBytes('the challenge', challenge, { min: 1, max: MAX_CHALLENGE_LENGTH }, inputError);
    const answer = await this.#send(LicenseIns.SECRET_CHALLENGE, concatBytes(reference, challenge));
    if (answer.length !== SHA256_LENGTH) throw new MalformedResponseError(`expected a ${SHA256_LENGTH}-byte HMAC, got ${answer.length} bytes`);
    return answer;
  }

  async writeUserData(licensorKey: Uint8Array, productCode: number, data: Uint8Array): Promise<void> {
    const reference = itemReference(licensorKey, productCode);
    assertBytes('the user data', data, { max: MAX_ITEM_DATA_BYTES }, inputError);
    await this.#send(LicenseIns.WRITE_USER_DATA, concatBytes(reference, data));
  }

  /**
   * A backup of every firm item (Wibu 000 §2.1): the card moves its clock to max(clock, hostTime) and signs one record
   * over the leaves' root. backup-file.ts assembleBackup makes the file of it.
   */
  async backup(nonce: Uint8Array, hostTime: number): Promise<CardBackupAnswer> {
    checkNonce(nonce);
    assertInteger('the host time', hostTime, 0, MAX_LICENSE_TIME, inputError);
    const data = concatBytes(nonce, uintToBytes(BigInt(hostTime), HOST_TIME_LENGTH));
    return parseCardBackupAnswer(await this.#send(LicenseIns.BACKUP, data, { maxResponseBytes: MAX_BACKUP_FILE_BYTES }));
  }

  /** Applies the central authority's lock or unlock sequence (lock-sequence.ts file form, 000 §2.10); the answer is its record. */
  async locking(nonce: Uint8Array, sequenceFile: Uint8Array | string): Promise<CardRecordAnswer> {
    checkNonce(nonce);
    const file = typeof sequenceFile === 'string' ? utf8(sequenceFile) : sequenceFile;
    assertBytes('the lock sequence', file, { min: 1, max: MAX_LOCK_SEQUENCE_BYTES }, inputError);
    return parseCardRecordAnswer(await this.#send(LicenseIns.LOCKING, concatBytes(nonce, file)));
  }

  /** Sends one command, chained in short APDUs when its data needs more than one; 91xx becomes LicenseError. */
  async #send(ins: number, data: Uint8Array = new Uint8Array(0), options: ExchangeOptions = {}): Promise<Uint8Array> {
    try {
      let offset = 0;
      for (; data.length - offset > MAX_SHORT_NC; offset += MAX_SHORT_NC) {
        await exchange(this.transport, commandApdu({ cla: LICENSE_CLA | CHAINING_BIT, ins, data: data.subarray(offset, offset + MAX_SHORT_NC) }));
      }
      return await exchange(this.transport, commandApdu({ cla: LICENSE_CLA, ins, data: data.subarray(offset), ne: 256 }), options);
    } catch (error) {
      const reason = error instanceof CardStatusError ? licenseReasonOfStatusWord(error.sw) : undefined;
      if (reason === undefined) throw error;
      throw new LicenseError(reason, `the card refused ${NAMES[ins] ?? 'the command'}: ${reason}`, { cause: error });
    }
  }
}
