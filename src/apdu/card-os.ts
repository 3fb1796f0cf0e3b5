// The card operating system, ISO/IEC 7816-4: applet registry, SELECT by DF name (7.1.1),
// command chaining (5.3.3), response chaining with 61xx / GET RESPONSE (7.6.1), logical channel 0.
import type { CardSource } from './card-source.js';
import type { Applet } from './applet.js';
import { buildAtr } from './atr.js';
import { ApduFormatError, MAX_SHORT_NE, parseCommandApdu, type CommandApdu } from './command-apdu.js';
import { SW, SwError, swBytesRemaining } from './status-words.js';
import { encodeResponseApdu, type ResponseApdu } from './response-apdu.js';
import { bytesEqual } from '../bytes/index.js';

const INS_SELECT = 0xa4;
const INS_GET_RESPONSE = 0xc0;
const SELECT_BY_DF_NAME = 0x04;
const CHAINING_BIT = 0x10;

export interface CardOsOptions {
  /** Answer-to-reset; defaults to the project's T=1 ATR. */
  atr?: Uint8Array;
  /** Largest data field that command chaining may assemble (bytes). */
  maxChainedLength?: number;
  /** Hook told of every unexpected exception that the OS turned into 6F00 (for logging). */
  onInternalError?: (error: unknown) => void;
}

const DEFAULTS = Object.freeze({ maxChainedLength: 65_535 });

/** What a CLA byte says, per ISO/IEC 7816-4 5.4.1; `undefined` for invalid or RFU classes. */
interface ClassByte {
  proprietary: boolean;
  chained: boolean;
  channel: number;
  secureMessaging: boolean;
}

function decodeClass(cla: number): ClassByte | undefined {
  if (cla === 0xff) return undefined; // invalid (reserved for PPS)
  if ((cla & 0xe0) === 0x00) {
    // First interindustry: b5 chaining, b4-b3 secure messaging, b2-b1 channel 0-3.
    return { proprietary: false, chained: (cla & 0x10) !== 0, channel: cla & 0x03, secureMessaging: (cla & 0x0c) !== 0 };
  }
  if ((cla & 0xc0) === 0x40) {
    // Further interindustry: b6 secure messaging, b5 chaining, b4-b1 channel 4-19.
    return { proprietary: false, chained: (cla & 0x10) !== 0, channel: 4 + (cla & 0x0f), secureMessaging: (cla & 0x20) !== 0 };
  }
  if ((cla & 0x80) !== 0) {
    // Proprietary: the usual convention (GlobalPlatform) keeps the first-interindustry bit meanings.
    return { proprietary: true, chained: (cla & 0x10) !== 0, channel: cla & 0x03, secureMessaging: (cla & 0x0c) !== 0 };
  }
  return undefined; // 20-3F: reserved for future use
}

interface PendingChain {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  parts: Uint8Array[];
  length: number;
}



const EMPTY = new Uint8Array(0);

/**
 * A card: applets selected by AID, one command at a time across all its users. `transmit` never
 * rejects and never throws: every input, however malformed, gets a response with a status word.
 */
export class CardOs implements CardSource {
  readonly atr: Uint8Array;
  private readonly applets: readonly Applet[];
  private readonly maxChainedLength: number;
  private readonly onInternalError: ((error: unknown) => void) | undefined;
  private selected: Applet | undefined;
  private chain: PendingChain | undefined;
  private pendingResponse: Uint8Array | undefined;
  private powered = false;
  /** Tail of the queue that runs commands one after another, and whether it has settled. */
  private queue: Promise<unknown> = Promise.resolve();
  private idle = true;

  constructor(applets: readonly Applet[], options: CardOsOptions = {}) {
    const aids = new Set<string>();
    for (const applet of applets) {
      if (applet.aid.length < 5 || applet.aid.length > 16) {
        throw new RangeError(`expected an AID of 5 to 16 bytes for applet ${applet.name}, got ${applet.aid.length}`);
      }
      const key = Buffer.from(applet.aid).toString('hex');
      if (aids.has(key)) throw new RangeError(`two applets share the AID ${key}`);
      aids.add(key);
    }
    this.applets = Object.freeze([...applets]);
    this.atr = options.atr ?? buildAtr();
    this.maxChainedLength = options.maxChainedLength ?? DEFAULTS.maxChainedLength;
    this.onInternalError = options.onInternalError;
  }

  powerOn(): void {
    this.clearVolatileState();
    this.powered = true;
  }

  powerOff(): void {
    this.clearVolatileState();
    this.powered = false;
  }

  reset(): void {
    this.clearVolatileState();
    this.powered = true;
  }

  /** The applet currently selected on channel 0, if any. */
  get selectedApplet(): Applet | undefined {
    return this.selected;
  }

  transmit(command: Uint8Array): Promise<Uint8Array> {
    if (this.idle) {
      // Fast path: nothing queued, so the command is parsed (and its data copied) right now; one
      // that completes synchronously needs no queue at all.
      const result = this.execute(command);
      if (!(result instanceof Promise)) return Promise.resolve(result);
      this.enqueue(result);
      return result;
    }
    // Copy at once: the caller may reuse its buffer while the command waits in the queue.
    const bytes = Uint8Array.from(command);
    const run = this.queue.then(() => this.execute(bytes));
    this.enqueue(run);
    return run;
  }

  /** Makes `run` the tail of the queue; the card is idle again once the tail settles. */
  private enqueue(run: Promise<Uint8Array>): void {
    this.idle = false;
    this.queue = run;
    void run.then(() => {
      if (this.queue === run) this.idle = true;
    });
  }

  private clearVolatileState(): void {
    const previous = this.selected;
    this.selected = undefined;
    this.chain = undefined;
    this.pendingResponse = undefined;
    if (previous !== undefined) this.safely(() => previous.deselect());
  }

  /** Runs an applet callback; what it throws goes to the hook, never to the caller. */
  private safely(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    try {
      this.onInternalError?.(error);
    } catch {
      // A logging hook that throws must not take the card down.
    }
  }

  /** Runs one command; never throws and never rejects. */
  private execute(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    try {
      const reply = this.dispatch(bytes);
      if (reply instanceof Promise) return reply.then(encodeResponseApdu, (error: unknown) => this.failure(error));
      return encodeResponseApdu(reply);
    } catch (error) {
      return this.failure(error);
    }
  }

  private failure(error: unknown): Uint8Array {
    if (error instanceof SwError) return encodeResponseApdu({ data: EMPTY, sw: error.sw });
    this.report(error);
    this.chain = undefined;
    this.pendingResponse = undefined;
    return encodeResponseApdu({ data: EMPTY, sw: SW.NO_PRECISE_DIAGNOSIS });
  }

  private dispatch(bytes: Uint8Array): ResponseApdu | Promise<ResponseApdu> {
    if (!this.powered) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'card is not powered');
    let command: CommandApdu;
    try {
      command = parseCommandApdu(bytes);
    } catch (error) {
      if (error instanceof ApduFormatError) {
        this.chain = undefined;
        this.pendingResponse = undefined;
        throw new SwError(SW.WRONG_LENGTH, error.message);
      }
      throw error;
    }
    const cls = decodeClass(command.cla);
    if (cls === undefined) throw new SwError(SW.CLA_NOT_SUPPORTED);
    if (cls.channel !== 0) throw new SwError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
    if (cls.secureMessaging) throw new SwError(SW.SECURE_MESSAGING_NOT_SUPPORTED);

    if (!cls.proprietary && command.ins === INS_GET_RESPONSE && !cls.chained) return this.getResponse(command);
    this.pendingResponse = undefined;

    const complete = this.assembleChain(command, cls);
    if (complete === undefined) return { data: EMPTY, sw: SW.OK };

    const data = !cls.proprietary && complete.ins === INS_SELECT ? this.select(complete) : this.toApplet(complete, cls);
    if (data instanceof Promise) return data.then((bytes) => this.limitToNe(bytes, complete.ne));
    return this.limitToNe(data, complete.ne);
  }

  /** Joins chained commands; returns the whole command once its last part arrives. */
  private assembleChain(command: CommandApdu, cls: ClassByte): CommandApdu | undefined {
    const baseCla = command.cla & ~CHAINING_BIT;
    const pending = this.chain;
    if (pending !== undefined) {
      const sameCommand = pending.cla === baseCla && pending.ins === command.ins && pending.p1 === command.p1 && pending.p2 === command.p2;
      if (!sameCommand) {
        this.chain = undefined;
        throw new SwError(SW.LAST_COMMAND_OF_CHAIN_EXPECTED);
      }
    }
    if (!cls.chained && pending === undefined) return command;

    const chain = pending ?? { cla: baseCla, ins: command.ins, p1: command.p1, p2: command.p2, parts: [], length: 0 };
    if (chain.length + command.data.length > this.maxChainedLength) {
      this.chain = undefined;
      throw new SwError(SW.NOT_ENOUGH_MEMORY, `chained data exceeds ${this.maxChainedLength} bytes`);
    }
    chain.parts.push(command.data);
    chain.length += command.data.length;
    if (cls.chained) {
      this.chain = chain;
      return undefined;
    }
    this.chain = undefined;
    const data = new Uint8Array(chain.length);
    let offset = 0;
    for (const part of chain.parts) {
      data.set(part, offset);
      offset += part.length;
    }
    return Object.freeze({ ...command, cla: baseCla, data });
  }

  private toApplet(command: CommandApdu, cls: ClassByte): Uint8Array | Promise<Uint8Array> {
    const applet = this.selected;
    if (applet === undefined) {
      // Without a selected application the OS itself only knows SELECT and GET RESPONSE.
      throw new SwError(cls.proprietary ? SW.CLA_NOT_SUPPORTED : SW.INS_NOT_SUPPORTED);
    }
    return applet.process(command);
  }

  /** SELECT by DF name (P1 04): full or partial AID, first or next occurrence. */
  private select(command: CommandApdu): Uint8Array | Promise<Uint8Array> {
    if (command.p1 !== SELECT_BY_DF_NAME) {
      // Selection by file identifier or path: this card has no file system.
      if (command.p1 <= 0x03 || command.p1 === 0x08 || command.p1 === 0x09) throw new SwError(SW.FILE_NOT_FOUND);
      throw new SwError(SW.INCORRECT_P1P2);
    }
    const occurrence = command.p2 & 0x03; // 00 first or only, 02 next
    const answer = command.p2 & 0xfc; // 00 FCI, 04 FCP, 08 FMD, 0C no response data
    if ((occurrence !== 0x00 && occurrence !== 0x02) || (answer !== 0x00 && answer !== 0x04 && answer !== 0x08 && answer !== 0x0c)) {
      throw new SwError(SW.INCORRECT_P1P2);
    }
    const name = command.data;
    if (name.length < 1 || name.length > 16) throw new SwError(SW.WRONG_LENGTH, `expected a DF name of 1 to 16 bytes, got ${name.length}`);

    const matches = this.applets.filter((applet) => applet.aid.length >= name.length && bytesEqual(applet.aid.subarray(0, name.length), name));
    let target: Applet | undefined;
    if (occurrence === 0x00) {
      target = matches[0];
    } else {
      const current = this.selected === undefined ? -1 : matches.indexOf(this.selected);
      target = matches[current + 1];
    }
    if (target === undefined) throw new SwError(SW.FILE_NOT_FOUND);

    if (this.selected !== undefined) {
      const previous = this.selected;
      this.selected = undefined;
      this.safely(() => previous.deselect());
    }
    const chosen = target;
    const finish = (fci: Uint8Array): Uint8Array => {
      this.selected = chosen;
      return answer === 0x0c ? EMPTY : fci;
    };
    const fci = chosen.select();
    return fci instanceof Promise ? fci.then(finish) : finish(fci);
  }

  /** GET RESPONSE (ISO/IEC 7816-4 7.6.1): the next part of a response that did not fit Le. */
  private getResponse(command: CommandApdu): ResponseApdu {
    const pending = this.pendingResponse;
    this.pendingResponse = undefined;
    if (command.p1 !== 0 || command.p2 !== 0) throw new SwError(SW.INCORRECT_P1P2);
    if (command.data.length > 0) throw new SwError(SW.WRONG_LENGTH);
    if (pending === undefined) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, 'no response data pending');
    return this.limitToNe(pending, command.ne);
  }

  /**
   * Sends what fits Ne and keeps the rest for GET RESPONSE, announcing it with 61xx. A command
   * without Le gets up to 256 bytes, as JavaCard runtimes answer over T=1 (the protocol in our ATR):
   * tools such as yubico-piv-tool send SELECT without Le and expect the FCI with 9000.
   */
  private limitToNe(data: Uint8Array, ne: number): ResponseApdu {
    const limit = ne === 0 ? MAX_SHORT_NE : ne;
    if (data.length <= limit) return { data, sw: SW.OK };
    const rest = data.subarray(limit);
    this.pendingResponse = rest;
    return { data: data.subarray(0, limit), sw: swBytesRemaining(rest.length) };
  }

}
