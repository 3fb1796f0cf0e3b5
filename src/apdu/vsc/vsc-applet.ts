// The VSC applet: the fixed APDU interface of DESIGN.md over rental patent 003's
// GetSerialNumber, GetCounter and SignAndIncrement ([0053], [0099]).
import { concatBytes, utf8 } from '../../bytes/index.js';
import type { Applet } from '../applet.js';
import type { CommandApdu } from '../command-apdu.js';
import { SW, SwError } from '../status-words.js';
import { SignRefusedError, type SignAndIncrementResult, type VscCard } from './vsc-card.js';
import { HASH_LENGTH, encodeCounter } from './vsc-digest.js';

/** F0 (proprietary RID range) 56 53 43 ("VSC") 00 01 (application 1). */
export const VSC_AID = Uint8Array.of(0xf0, 0x56, 0x53, 0x43, 0x00, 0x01);
export const VSC_CLA = 0x80;

export const VscIns = {
  GET_SERIAL_NUMBER: 0x20,
  GET_COUNTER: 0x22,
  SIGN_AND_INCREMENT: 0x24,
  GET_PUBLIC_KEY: 0x26,
} as const;

const P1_INDIVIDUAL_KEY = 0x00;
const P1_UNIVERSAL_KEY = 0x01;
const EMPTY = new Uint8Array(0);

function expectNoData(command: CommandApdu): void {
  if (command.data.length !== 0) throw new SwError(SW.WRONG_LENGTH, `expected no command data, got ${command.data.length} bytes`);
}

function expectP1P2Zero(command: CommandApdu): void {
  if (command.p1 !== 0 || command.p2 !== 0) throw new SwError(SW.INCORRECT_P1P2);
}

export interface VscAppletOptions {
  /**
   * Whether the card is locked (Wibu 000 §2.10: a card declared lost, broken or stolen "cannot longer be used for any
   * encryption or authentication"): SIGN AND INCREMENT then answers 6985. The card's license container says so.
   */
  readonly locked?: () => boolean;
}

export class VscApplet implements Applet {
  readonly aid = VSC_AID;
  readonly name = 'VSC';
  private readonly serialBytes: Uint8Array;
  private readonly locked: () => boolean;

  constructor(private readonly card: VscCard, options: VscAppletOptions = {}) {
    this.serialBytes = utf8(card.serial);
    this.locked = options.locked ?? (() => false);
  }

  select(): Uint8Array {
    return EMPTY;
  }

  deselect(): void {}

  process(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    if (command.cla !== VSC_CLA) throw new SwError(SW.CLA_NOT_SUPPORTED);
    switch (command.ins) {
      case VscIns.GET_SERIAL_NUMBER:
        expectP1P2Zero(command);
        expectNoData(command);
        return this.serialBytes;
      case VscIns.GET_COUNTER:
        expectP1P2Zero(command);
        expectNoData(command);
        return encodeCounter(this.card.counter());
      case VscIns.SIGN_AND_INCREMENT:
        return this.signAndIncrement(command);
      case VscIns.GET_PUBLIC_KEY:
        expectP1P2Zero(command);
        expectNoData(command);
        return this.card.publicKey;
      default:
        throw new SwError(SW.INS_NOT_SUPPORTED);
    }
  }

  private signAndIncrement(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    const expectedP1 = this.card.keyMode === 'universal' ? P1_UNIVERSAL_KEY : P1_INDIVIDUAL_KEY;
    if (command.p1 !== expectedP1 || command.p2 !== 0) throw new SwError(SW.INCORRECT_P1P2);
    if (command.data.length !== HASH_LENGTH) {
      throw new SwError(SW.WRONG_LENGTH, `expected a ${HASH_LENGTH}-byte hash, got ${command.data.length} bytes`);
    }
    if (this.locked()) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'the card is locked');
    let result: SignAndIncrementResult | Promise<SignAndIncrementResult>;
    try {
      result = this.card.signAndIncrement(command.data);
    } catch (error) {
      throw refusalToSw(error);
    }
    if (result instanceof Promise) {
      return result.then(formatSignature, (error: unknown) => {
        throw refusalToSw(error);
      });
    }
    return formatSignature(result);
  }
}

function formatSignature({ counter, signature }: SignAndIncrementResult): Uint8Array {
  return concatBytes(encodeCounter(counter), signature);
}

/** A refusal from the card becomes its status word; anything else stays an internal error. */
function refusalToSw(error: unknown): unknown {
  if (!(error instanceof SignRefusedError)) return error;
  return new SwError(error.reason === 'storage-failed' ? SW.MEMORY_FAILURE : SW.CONDITIONS_NOT_SATISFIED, error.message);
}
