// Command APDU codec, ISO/IEC 7816-4 section 5.1: cases 1-4, short and extended length fields.
import { VscError } from '../errors/index.js';

export const MAX_SHORT_NC = 255;
export const MAX_SHORT_NE = 256;
export const MAX_EXTENDED_NC = 65535;
export const MAX_EXTENDED_NE = 65536;

/**
 * A command APDU with named fields. `ne` is the maximum number of response bytes expected:
 * 0 means no Le field (cases 1 and 3); a present Le of 00 (short) or 0000 (extended) is 256 or 65536.
 */
export interface CommandApdu {
  readonly cla: number;
  readonly ins: number;
  readonly p1: number;
  readonly p2: number;
  readonly data: Uint8Array;
  readonly ne: number;
  /** Length fields are (or are to be) encoded on three/two bytes. */
  readonly extended: boolean;
}

export interface CommandApduInit {
  cla: number;
  ins: number;
  p1?: number;
  p2?: number;
  data?: Uint8Array;
  ne?: number;
  /** Force extended length fields even when short ones would do. */
  extended?: boolean;
}

/** A byte string that is not a well-formed command APDU; the card answers 6700. */
export class ApduFormatError extends VscError {
  override readonly name = 'ApduFormatError';
  constructor(message: string) {
    super('apdu.format', message);
  }
}

function checkByte(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new ApduFormatError(`expected ${name} to be a byte (0..255), got ${value}`);
  }
}

/** Builds a command APDU, choosing short length fields unless the sizes need extended ones. */
export function commandApdu(init: CommandApduInit): CommandApdu {
  const { cla, ins, p1 = 0, p2 = 0, data = new Uint8Array(0), ne = 0 } = init;
  checkByte('CLA', cla);
  checkByte('INS', ins);
  checkByte('P1', p1);
  checkByte('P2', p2);
  if (data.length > MAX_EXTENDED_NC) {
    throw new ApduFormatError(`expected at most ${MAX_EXTENDED_NC} data bytes, got ${data.length}`);
  }
  if (!Number.isInteger(ne) || ne < 0 || ne > MAX_EXTENDED_NE) {
    throw new ApduFormatError(`expected Ne in 0..${MAX_EXTENDED_NE}, got ${ne}`);
  }
  const extended = init.extended === true || data.length > MAX_SHORT_NC || ne > MAX_SHORT_NE;
  return Object.freeze({ cla, ins, p1, p2, data, ne, extended });
}

/** Serialises a command APDU. */
export function encodeCommandApdu(apdu: CommandApdu): Uint8Array {
  const checked = commandApdu(apdu);
  const { data, ne } = checked;
  const header = [checked.cla, checked.ins, checked.p1, checked.p2];
  const body: number[] = [];
  if (!checked.extended) {
    if (data.length > 0) body.push(data.length);
    const dataOffset = header.length + body.length;
    const le = ne > 0 ? [ne === MAX_SHORT_NE ? 0 : ne] : [];
    const out = new Uint8Array(dataOffset + data.length + le.length);
    out.set(header, 0);
    out.set(body, header.length);
    out.set(data, dataOffset);
    out.set(le, dataOffset + data.length);
    return out;
  }
  // Extended: a 00 marker, then Lc on two bytes if there is data, then Le on two bytes
  // (on three bytes, marker included, when there is no data).
  const lc = data.length > 0 ? [0x00, data.length >> 8, data.length & 0xff] : [];
  const leValue = ne === MAX_EXTENDED_NE ? 0 : ne;
  const le = ne > 0 ? (data.length > 0 ? [leValue >> 8, leValue & 0xff] : [0x00, leValue >> 8, leValue & 0xff]) : [];
  const out = new Uint8Array(4 + lc.length + data.length + le.length);
  out.set(header, 0);
  out.set(lc, 4);
  out.set(data, 4 + lc.length);
  out.set(le, 4 + lc.length + data.length);
  return out;
}

/** Parses a command APDU, checking that the length fields account for every byte. */
export function parseCommandApdu(bytes: Uint8Array): CommandApdu {
  const length = bytes.length;
  if (length < 4) throw new ApduFormatError(`expected at least 4 header bytes, got ${length}`);
  const [cla, ins, p1, p2] = [bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!];
  const make = (data: Uint8Array, ne: number, extended: boolean): CommandApdu =>
    Object.freeze({ cla, ins, p1, p2, data, ne, extended });

  if (length === 4) return make(new Uint8Array(0), 0, false); // case 1
  const b5 = bytes[4]!;
  if (length === 5) return make(new Uint8Array(0), b5 === 0 ? MAX_SHORT_NE : b5, false); // case 2S
  if (b5 !== 0) {
    const lc = b5;
    if (length === 5 + lc) return make(bytes.slice(5, 5 + lc), 0, false); // case 3S
    if (length === 6 + lc) {
      const le = bytes[5 + lc]!;
      return make(bytes.slice(5, 5 + lc), le === 0 ? MAX_SHORT_NE : le, false); // case 4S
    }
    throw new ApduFormatError(`short Lc=${lc} does not match the ${length - 5} bytes that follow it`);
  }
  // b5 = 00 with more bytes: extended length fields.
  if (length < 7) throw new ApduFormatError(`expected an extended length field after 00, got ${length - 5} byte(s)`);
  const word = (bytes[5]! << 8) | bytes[6]!;
  if (length === 7) return make(new Uint8Array(0), word === 0 ? MAX_EXTENDED_NE : word, true); // case 2E
  if (word === 0) throw new ApduFormatError('extended Lc must not be 0000');
  const lc = word;
  if (length === 7 + lc) return make(bytes.slice(7, 7 + lc), 0, true); // case 3E
  if (length === 9 + lc) {
    const le = (bytes[7 + lc]! << 8) | bytes[8 + lc]!;
    return make(bytes.slice(7, 7 + lc), le === 0 ? MAX_EXTENDED_NE : le, true); // case 4E
  }
  throw new ApduFormatError(`extended Lc=${lc} does not match the ${length - 7} bytes that follow it`);
}
