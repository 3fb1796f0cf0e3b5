// A small typed host-side client of the PIV applet (NIST SP 800-73-4 Part 2: SELECT 3.1.1, GET DATA
// 3.1.2, VERIFY 3.2.1): wrong PINs become WrongPinError { retriesLeft }, a blocked one PinBlockedError.
import { commandApdu, decodeTlv, encodeTag, encodeTlv, PIV_AID, PivIns, type CommandApdu, type Tlv } from '../apdu/index.js';
import { wipe } from '../bytes/index.js';
import { BoundaryError } from '../errors/index.js';
import { exchange, MalformedResponseError, type CardTransport } from './card-transport.js';
import { WrongPinError } from './card-status-errors.js';

/** Key reference of the PIV Card Application PIN (Part 1 table 4a). */
const PIN_REFERENCE = 0x80;
/** PIN reference data: 6 to 8 ASCII digits, padded to 8 bytes with FF (Part 2 3.2.1). */
const REFERENCE_LENGTH = 8;
/** GET DATA: P1 P2 = 3F FF, data 5C (tag list) with the object's tag; answer 53 (Part 2 3.1.2). */
const TAG_LIST = 0x5c;
const DATA_OBJECT = 0x53;

export const pivCommands = {
  select: (): CommandApdu => commandApdu({ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: PIV_AID, ne: 256 }),
  /** VERIFY with data checks the PIN; without data it asks for the tries left (answered 63Cx or 9000). */
  verify: (reference?: Uint8Array): CommandApdu => commandApdu({ cla: 0x00, ins: PivIns.VERIFY, p1: 0x00, p2: PIN_REFERENCE, ...(reference === undefined ? {} : { data: reference }) }),
  getData: (tag: number): CommandApdu => commandApdu({ cla: 0x00, ins: PivIns.GET_DATA, p1: 0x3f, p2: 0xff, data: encodeTlv(TAG_LIST, encodeTag(tag)), ne: 256 }),
} as const;

export class PivAppletClient {
  constructor(private readonly transport: CardTransport) {}

  async select(): Promise<void> {
    await exchange(this.transport, pivCommands.select());
  }

  /** Checks the PIN; throws WrongPinError { retriesLeft } or PinBlockedError when the card refuses it. */
  async verifyPin(pin: string): Promise<void> {
    const digits = new TextEncoder().encode(pin);
    const reference = new Uint8Array(REFERENCE_LENGTH).fill(0xff);
    try {
      if (digits.length > REFERENCE_LENGTH) throw new BoundaryError(`expected a PIN of at most ${REFERENCE_LENGTH} digits, got ${digits.length}`);
      reference.set(digits, 0);
      await exchange(this.transport, pivCommands.verify(reference));
    } finally {
      wipe(digits, reference);
    }
  }

  /** The PIN tries left: 63Cx carries them; 9000 means the PIN is verified in this session (full tries). */
  async pinRetriesLeft(): Promise<number | 'verified'> {
    try {
      await exchange(this.transport, pivCommands.verify());
      return 'verified';
    } catch (error) {
      if (error instanceof WrongPinError) return error.retriesLeft;
      throw error;
    }
  }

  /** The content of data object `tag` (without its 53 wrapper). */
  async getData(tag: number): Promise<Uint8Array> {
    const answer = await exchange(this.transport, pivCommands.getData(tag));
    let object: Tlv;
    try {
      object = decodeTlv(answer);
    } catch (cause) {
      // The card's bytes are not BER-TLV at all: the same answer-level error as a wrong tag.
      throw new MalformedResponseError('expected GET DATA to answer one 53 data object', { cause });
    }
    if (object.tag !== DATA_OBJECT || object.end !== answer.length) throw new MalformedResponseError('expected GET DATA to answer one 53 data object');
    return object.value.slice();
  }
}
