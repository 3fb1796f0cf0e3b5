// Status words as typed errors on the host side (ISO 7816-4 5.6; SP 800-73-4 Part 2 3.2.1 for 63Cx):
// the card sends raw status words, and one layer above the transport they become these classes.
import { describeStatusWord, formatStatusWord, SW } from '../apdu/index.js';
import { VscError } from '../errors/index.js';

/** A command the card answered with a status word other than 9000. */
export class CardStatusError extends VscError {
  override readonly name: string = 'CardStatusError';
  constructor(
    readonly sw: number,
    readonly ins: number,
    code = 'card.status',
  ) {
    super(code, `the card refused INS ${ins.toString(16).toUpperCase().padStart(2, '0')} with ${formatStatusWord(sw)} (${describeStatusWord(sw)})`);
  }
}

/** 6700: the command's data or Le had the wrong length. */
export class WrongLengthError extends CardStatusError {
  override readonly name = 'WrongLengthError';
  constructor(ins: number) {
    super(SW.WRONG_LENGTH, ins, 'card.wrong-length');
  }
}

/** 6982: the applet wants a PIN or key first. */
export class SecurityStatusError extends CardStatusError {
  override readonly name = 'SecurityStatusError';
  constructor(ins: number) {
    super(SW.SECURITY_STATUS_NOT_SATISFIED, ins, 'card.security-status');
  }
}

/** 6985: the card cannot do it now (VSC applet: card removed or disabled, counter exhausted). */
export class ConditionsNotSatisfiedError extends CardStatusError {
  override readonly name = 'ConditionsNotSatisfiedError';
  constructor(ins: number) {
    super(SW.CONDITIONS_NOT_SATISFIED, ins, 'card.conditions-not-satisfied');
  }
}

/** 6A82 / 6A88: no such applet, file or data object. */
export class NotFoundError extends CardStatusError {
  override readonly name = 'NotFoundError';
  constructor(sw: number, ins: number) {
    super(sw, ins, 'card.not-found');
  }
}

/** 6A86 / 6B00: P1 or P2 not accepted (VSC applet: the key mode named by P1 is not this card's). */
export class WrongParametersError extends CardStatusError {
  override readonly name = 'WrongParametersError';
  constructor(sw: number, ins: number) {
    super(sw, ins, 'card.wrong-parameters');
  }
}

/** 6D00 / 6E00: the selected applet does not know this INS or CLA. */
export class NotSupportedError extends CardStatusError {
  override readonly name = 'NotSupportedError';
  constructor(sw: number, ins: number) {
    super(sw, ins, 'card.not-supported');
  }
}

/** 63Cx: wrong PIN or PUK, x tries left (SP 800-73-4 Part 2 3.2.1). */
export class WrongPinError extends CardStatusError {
  override readonly name = 'WrongPinError';
  readonly retriesLeft: number;
  constructor(sw: number, ins: number) {
    super(sw, ins, 'card.wrong-pin');
    this.retriesLeft = sw & 0x0f;
  }
}

/** 6983: the PIN or PUK is blocked. */
export class PinBlockedError extends CardStatusError {
  override readonly name = 'PinBlockedError';
  constructor(ins: number) {
    super(SW.AUTH_METHOD_BLOCKED, ins, 'card.pin-blocked');
  }
}

/** The typed error for a status word other than 9000 (61xx and 6Cxx never get here: the exchange handles them). */
export function statusError(sw: number, ins: number): CardStatusError {
  if ((sw & 0xfff0) === 0x63c0) return new WrongPinError(sw, ins);
  switch (sw) {
    case SW.WRONG_LENGTH:
      return new WrongLengthError(ins);
    case SW.SECURITY_STATUS_NOT_SATISFIED:
      return new SecurityStatusError(ins);
    case SW.AUTH_METHOD_BLOCKED:
      return new PinBlockedError(ins);
    case SW.CONDITIONS_NOT_SATISFIED:
      return new ConditionsNotSatisfiedError(ins);
    case SW.FILE_NOT_FOUND:
    case SW.REFERENCED_DATA_NOT_FOUND:
      return new NotFoundError(sw, ins);
    case SW.INCORRECT_P1P2:
    case SW.WRONG_P1P2:
      return new WrongParametersError(sw, ins);
    case SW.INS_NOT_SUPPORTED:
    case SW.CLA_NOT_SUPPORTED:
      return new NotSupportedError(sw, ins);
    default:
      return new CardStatusError(sw, ins);
  }
}
