// PC/SC constants with pcsc-lite's names and values (PCSC/pcsclite.h of pcsc-lite 1.9.9), and the
// checks that turn a wrong flag value into the PC/SC error pcsc-lite returns for it.
import { PcscError } from './pcsc-errors.js';

/** SCardConnect / SCardReconnect share modes. */
export const SCARD_SHARE_EXCLUSIVE = 0x0001;
export const SCARD_SHARE_SHARED = 0x0002;
/** Talk to the reader without a card; such a handle has no protocol and cannot transmit. */
export const SCARD_SHARE_DIRECT = 0x0003;
export type ShareMode = typeof SCARD_SHARE_EXCLUSIVE | typeof SCARD_SHARE_SHARED | typeof SCARD_SHARE_DIRECT;

/** Protocol bits. Our cards speak T=1 only, so a connect must allow SCARD_PROTOCOL_T1. */
export const SCARD_PROTOCOL_UNDEFINED = 0x0000;
export const SCARD_PROTOCOL_T0 = 0x0001;
export const SCARD_PROTOCOL_T1 = 0x0002;
export const SCARD_PROTOCOL_RAW = 0x0004;
export const SCARD_PROTOCOL_T15 = 0x0008;
export const SCARD_PROTOCOL_ANY = SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1;
const KNOWN_PROTOCOL_BITS = SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1 | SCARD_PROTOCOL_RAW | SCARD_PROTOCOL_T15;

/** What happens to the card at SCardDisconnect / SCardEndTransaction / SCardReconnect. */
export const SCARD_LEAVE_CARD = 0x0000;
export const SCARD_RESET_CARD = 0x0001;
export const SCARD_UNPOWER_CARD = 0x0002;
/** A virtual reader cannot eject: like pcsc-lite with a reader that refuses, the card is left. */
export const SCARD_EJECT_CARD = 0x0003;
export type Disposition =
  | typeof SCARD_LEAVE_CARD
  | typeof SCARD_RESET_CARD
  | typeof SCARD_UNPOWER_CARD
  | typeof SCARD_EJECT_CARD;

/** Card state bits of SCardStatus (pcsc-lite reports a bit field, Windows an enumeration). */
export const SCARD_UNKNOWN = 0x0001;
export const SCARD_ABSENT = 0x0002;
export const SCARD_PRESENT = 0x0004;
/** Present but not answering (power-on failed). */
export const SCARD_SWALLOWED = 0x0008;
export const SCARD_POWERED = 0x0010;
export const SCARD_NEGOTIABLE = 0x0020;
export const SCARD_SPECIFIC = 0x0040;

/** Reader state flags of SCardGetStatusChange (dwCurrentState / dwEventState, lower 16 bits). */
export const SCARD_STATE_UNAWARE = 0x0000;
export const SCARD_STATE_IGNORE = 0x0001;
export const SCARD_STATE_CHANGED = 0x0002;
export const SCARD_STATE_UNKNOWN = 0x0004;
export const SCARD_STATE_UNAVAILABLE = 0x0008;
export const SCARD_STATE_EMPTY = 0x0010;
export const SCARD_STATE_PRESENT = 0x0020;
export const SCARD_STATE_ATRMATCH = 0x0040;
export const SCARD_STATE_EXCLUSIVE = 0x0080;
export const SCARD_STATE_INUSE = 0x0100;
export const SCARD_STATE_MUTE = 0x0200;
export const SCARD_STATE_UNPOWERED = 0x0400;

/** The pseudo reader whose state changes when a reader is added or removed. */
export const SCARD_PNP_NOTIFICATION = '\\\\?PnP?\\Notification';
/** pcsc-lite's timeout value meaning "wait forever"; `Infinity` means the same here. */
export const INFINITE = 0xffffffff;
export const MAX_ATR_SIZE = 33;
/** Including the terminating NUL of the C string. */
export const MAX_READERNAME = 128;

/**
 * The insert/remove counter pcsc-lite keeps in the upper 16 bits of dwEventState and of
 * SCardStatus's state; it wraps from 0xFFFF to 0.
 */
export function eventCounterOf(state: number): number {
  return (state >>> 16) & 0xffff;
}

/** Flags in the lower 16 bits, counter in the upper 16, as an unsigned 32-bit number. */
export function withEventCounter(flags: number, counter: number): number {
  return (counter & 0xffff) * 0x10000 + (flags & 0xffff);
}

const SHARE_MODE_NAMES: ReadonlyMap<number, string> = new Map([
  [SCARD_SHARE_EXCLUSIVE, 'SCARD_SHARE_EXCLUSIVE'],
  [SCARD_SHARE_SHARED, 'SCARD_SHARE_SHARED'],
  [SCARD_SHARE_DIRECT, 'SCARD_SHARE_DIRECT'],
]);

const DISPOSITION_NAMES: ReadonlyMap<number, string> = new Map([
  [SCARD_LEAVE_CARD, 'SCARD_LEAVE_CARD'],
  [SCARD_RESET_CARD, 'SCARD_RESET_CARD'],
  [SCARD_UNPOWER_CARD, 'SCARD_UNPOWER_CARD'],
  [SCARD_EJECT_CARD, 'SCARD_EJECT_CARD'],
]);

function show(value: unknown): string {
  return typeof value === 'number' && Number.isInteger(value) ? `0x${value.toString(16)}` : String(value);
}

/** SCARD_E_INVALID_VALUE unless `value` is one of the three share modes. */
export function assertShareMode(value: unknown): asserts value is ShareMode {
  if (typeof value !== 'number' || !SHARE_MODE_NAMES.has(value)) {
    throw new PcscError(
      'SCARD_E_INVALID_VALUE',
      `expected a share mode (SCARD_SHARE_EXCLUSIVE 1, SCARD_SHARE_SHARED 2 or SCARD_SHARE_DIRECT 3), got ${show(value)}`,
    );
  }
}

/**
 * SCARD_E_INVALID_VALUE for bits that name no protocol; SCARD_E_PROTO_MISMATCH, as pcsc-lite,
 * when a card connection (not SCARD_SHARE_DIRECT) names no protocol at all.
 */
export function assertPreferredProtocols(value: unknown, shareMode: ShareMode): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || (value & ~KNOWN_PROTOCOL_BITS) !== 0) {
    throw new PcscError(
      'SCARD_E_INVALID_VALUE',
      `expected preferred protocols made of SCARD_PROTOCOL_T0/T1/RAW/T15 bits, got ${show(value)}`,
    );
  }
  if (shareMode !== SCARD_SHARE_DIRECT && value === SCARD_PROTOCOL_UNDEFINED) {
    throw new PcscError('SCARD_E_PROTO_MISMATCH', 'expected at least one preferred protocol, got none');
  }
}

/** SCARD_E_INVALID_VALUE unless `value` is a disposition; SCardReconnect does not accept SCARD_EJECT_CARD. */
export function assertDisposition(value: unknown, what: string, allowEject = true): asserts value is Disposition {
  if (typeof value !== 'number' || !DISPOSITION_NAMES.has(value) || (!allowEject && value === SCARD_EJECT_CARD)) {
    const allowed = allowEject ? 'SCARD_LEAVE/RESET/UNPOWER/EJECT_CARD (0..3)' : 'SCARD_LEAVE/RESET/UNPOWER_CARD (0..2)';
    throw new PcscError('SCARD_E_INVALID_VALUE', `expected ${what} to be ${allowed}, got ${show(value)}`);
  }
}

export function shareModeName(mode: number): string {
  return SHARE_MODE_NAMES.get(mode) ?? show(mode);
}

export function dispositionName(disposition: number): string {
  return DISPOSITION_NAMES.get(disposition) ?? show(disposition);
}
