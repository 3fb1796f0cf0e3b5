// The host side of a card connection: anything that sends one command APDU and returns the response
// (the in-process CardHandle, a libpcsclite binding), and the exchange that turns status words into
// typed errors one layer up (STYLE.md: piv-go's pcsc.go / piv.go split).
import { commandApdu, encodeCommandApdu, SW, type CommandApdu } from '../apdu/index.js';
import { concatBytes } from '../bytes/index.js';
import { VscError } from '../errors/index.js';
import { statusError } from './card-status-errors.js';

/** A PC/SC-style handle: `transmit` of a CardHandle, or of a binding to pcscd. */
export interface CardTransport {
  transmit(command: Uint8Array): Promise<Uint8Array>;
}

/** The card's answer could not be read as a response APDU (fewer than the two status bytes). */
export class MalformedResponseError extends VscError {
  override readonly name = 'MalformedResponseError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('card.malformed-response', message, options);
  }
}

const GET_RESPONSE_INS = 0xc0;
/** Enough for any answer of this project's applets; stops a card that never ends its 61xx chain. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface ExchangeOptions {
  /** The most response data to collect (default 64 KiB); a command whose answer may be longer names its own bound. */
  readonly maxResponseBytes?: number;
}

function split(response: Uint8Array): { data: Uint8Array; sw: number } {
  if (response.length < 2) throw new MalformedResponseError(`expected a response of at least 2 bytes (SW1 SW2), got ${response.length}`);
  const end = response.length - 2;
  return { data: response.subarray(0, end), sw: (response[end]! << 8) | response[end + 1]! };
}

/**
 * Sends `command` and returns the response data of a 9000 answer. Collects 61xx answers with GET
 * RESPONSE and repeats a 6Cxx-refused command with the Le the card named (ISO 7816-4 5.3.4), so it
 * works over short APDUs; any other status word throws its typed CardStatusError.
 */
export async function exchange(transport: CardTransport, command: CommandApdu, options: ExchangeOptions = {}): Promise<Uint8Array> {
  const maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  let { data, sw } = split(await transport.transmit(encodeCommandApdu(command)));
  if ((sw & 0xff00) === 0x6c00) ({ data, sw } = split(await transport.transmit(encodeCommandApdu({ ...command, ne: sw & 0xff || 256 }))));
  const parts = [data.slice()];
  let total = data.length;
  while ((sw & 0xff00) === 0x6100) {
    const next = split(await transport.transmit(encodeCommandApdu(commandApdu({ cla: command.cla & 0x03, ins: GET_RESPONSE_INS, ne: sw & 0xff || 256 }))));
    total += next.data.length;
    if (total > maxResponseBytes) throw new MalformedResponseError(`expected at most ${maxResponseBytes} response bytes, got more`);
    parts.push(next.data.slice());
    sw = next.sw;
  }
  if (sw !== SW.OK) throw statusError(sw, command.ins);
  return concatBytes(...parts);
}
