// ISO/IEC 7816-4 status words (section 5.6, tables 5-6) used by the card OS and the applets.
import { VscError } from '../errors/index.js';

/** Status words with a fixed value. Families with a parameter (61xx, 63Cx, 6Cxx) have builders below. */
export const SW = {
  OK: 0x9000,
  WARNING_NO_INFO: 0x6300,
  MEMORY_FAILURE: 0x6581,
  WRONG_LENGTH: 0x6700,
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  SECURE_MESSAGING_NOT_SUPPORTED: 0x6882,
  LAST_COMMAND_OF_CHAIN_EXPECTED: 0x6883,
  CHAINING_NOT_SUPPORTED: 0x6884,
  COMMAND_NOT_ALLOWED: 0x6900,
  SECURITY_STATUS_NOT_SATISFIED: 0x6982,
  AUTH_METHOD_BLOCKED: 0x6983,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  FILE_NOT_FOUND: 0x6a82,
  NOT_ENOUGH_MEMORY: 0x6a84,
  INCORRECT_P1P2: 0x6a86,
  REFERENCED_DATA_NOT_FOUND: 0x6a88,
  WRONG_P1P2: 0x6b00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  NO_PRECISE_DIAGNOSIS: 0x6f00,
} as const;
export type KnownStatusWord = (typeof SW)[keyof typeof SW];

const MEANINGS: ReadonlyMap<number, string> = new Map<number, string>([
  [SW.OK, 'normal processing'],
  [SW.WARNING_NO_INFO, 'warning: non-volatile memory changed, no information given'],
  [SW.MEMORY_FAILURE, 'memory failure'],
  [SW.WRONG_LENGTH, 'wrong length'],
  [SW.LOGICAL_CHANNEL_NOT_SUPPORTED, 'logical channel not supported'],
  [SW.SECURE_MESSAGING_NOT_SUPPORTED, 'secure messaging not supported'],
  [SW.LAST_COMMAND_OF_CHAIN_EXPECTED, 'last command of the chain expected'],
  [SW.CHAINING_NOT_SUPPORTED, 'command chaining not supported'],
  [SW.COMMAND_NOT_ALLOWED, 'command not allowed'],
  [SW.SECURITY_STATUS_NOT_SATISFIED, 'security status not satisfied'],
  [SW.AUTH_METHOD_BLOCKED, 'authentication method blocked'],
  [SW.CONDITIONS_NOT_SATISFIED, 'conditions of use not satisfied'],
  [SW.WRONG_DATA, 'incorrect parameters in the command data field'],
  [SW.FUNCTION_NOT_SUPPORTED, 'function not supported'],
  [SW.FILE_NOT_FOUND, 'file or application not found'],
  [SW.NOT_ENOUGH_MEMORY, 'not enough memory space'],
  [SW.INCORRECT_P1P2, 'incorrect parameters P1-P2'],
  [SW.REFERENCED_DATA_NOT_FOUND, 'referenced data not found'],
  [SW.WRONG_P1P2, 'wrong parameters P1-P2'],
  [SW.INS_NOT_SUPPORTED, 'instruction code not supported or invalid'],
  [SW.CLA_NOT_SUPPORTED, 'class not supported'],
  [SW.NO_PRECISE_DIAGNOSIS, 'no precise diagnosis'],
]);

function checkByteCount(count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`expected a byte count of at least 1, got ${count}`);
}

/** 61xx: response bytes still available; xx = 00 means 256 or more. */
export function swBytesRemaining(count: number): number {
  checkByteCount(count);
  return 0x6100 | (count >= 256 ? 0 : count);
}

/** 6Cxx: wrong Le; xx is the exact number of available bytes, 00 meaning 256 (more cannot be said). */
export function swWrongLe(count: number): number {
  checkByteCount(count);
  return 0x6c00 | (count >= 256 ? 0 : count);
}

/** 63Cx: verification failed, x tries left (SP 800-73-4 3.2.1 uses it for the PIN). */
export function swRetriesLeft(retries: number): number {
  return 0x63c0 | Math.max(0, Math.min(15, retries));
}

export function isValidStatusWord(sw: number): boolean {
  // ISO 7816-4 5.6: SW1 is 6x or 9x, but never 60 (a T=0 procedure byte).
  const sw1 = sw >> 8;
  return Number.isInteger(sw) && sw >= 0 && sw <= 0xffff && ((sw1 & 0xf0) === 0x60 || (sw1 & 0xf0) === 0x90) && sw1 !== 0x60;
}

export function formatStatusWord(sw: number): string {
  return sw.toString(16).padStart(4, '0').toUpperCase();
}

/** "6982 security status not satisfied", for logs and error messages. */
export function describeStatusWord(sw: number): string {
  const known = MEANINGS.get(sw);
  if (known !== undefined) return `${formatStatusWord(sw)} ${known}`;
  const sw1 = sw >> 8;
  const sw2 = sw & 0xff;
  if (sw1 === 0x61) return `${formatStatusWord(sw)} ${sw2 === 0 ? '256 or more' : sw2} response bytes still available`;
  if (sw1 === 0x6c) return `${formatStatusWord(sw)} wrong Le, ${sw2 === 0 ? 256 : sw2} bytes available`;
  if ((sw & 0xfff0) === 0x63c0) return `${formatStatusWord(sw)} verification failed, ${sw2 & 0x0f} tries left`;
  return `${formatStatusWord(sw)} unknown status`;
}

/**
 * The one error an applet throws to answer with a status word; only the card OS renders it.
 * The message is for logs and must never carry secret data.
 */
export class SwError extends VscError {
  override readonly name = 'SwError';
  readonly sw: number;

  constructor(sw: number, message?: string) {
    super('apdu.status', message ?? describeStatusWord(sw));
    if (!isValidStatusWord(sw) || sw === SW.OK) {
      throw new RangeError(`expected an error status word, got ${formatStatusWord(sw)}`);
    }
    this.sw = sw;
  }
}
