// Response APDU: data field followed by SW1 SW2 (ISO/IEC 7816-4 section 5.1).
import { ApduFormatError } from './command-apdu.js';
import { SW, isValidStatusWord, formatStatusWord } from './status-words.js';

export interface ResponseApdu {
  readonly data: Uint8Array;
  readonly sw: number;
}

export function responseApdu(data: Uint8Array, sw: number): ResponseApdu {
  if (!isValidStatusWord(sw)) throw new ApduFormatError(`expected a status word 6xxx or 9xxx, got ${formatStatusWord(sw)}`);
  return Object.freeze({ data, sw });
}

export function encodeResponseApdu(response: ResponseApdu): Uint8Array {
  const out = new Uint8Array(response.data.length + 2);
  out.set(response.data, 0);
  out[response.data.length] = response.sw >> 8;
  out[response.data.length + 1] = response.sw & 0xff;
  return out;
}

export function parseResponseApdu(bytes: Uint8Array): ResponseApdu {
  if (bytes.length < 2) throw new ApduFormatError(`expected at least the 2 status bytes, got ${bytes.length}`);
  const sw = (bytes[bytes.length - 2]! << 8) | bytes[bytes.length - 1]!;
  return responseApdu(bytes.slice(0, bytes.length - 2), sw);
}

export function isSuccess(response: ResponseApdu): boolean {
  return response.sw === SW.OK;
}
