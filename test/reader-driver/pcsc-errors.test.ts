// PC/SC error table and PcscError; values checked against pcsc-lite 1.9.9's PCSC/pcsclite.h.
import { describe, expect, it } from 'vitest';
import { VscError } from '../../src/errors/index.js';
import { PCSC_ERRORS, PcscError, isPcscError, pcscErrorName, type PcscErrorName } from '../../src/reader-driver/pcsc-errors.js';

describe('PCSC_ERRORS', () => {
  // Copied by hand from pcsclite.h (pcsc-lite 1.9.9), "#define SCARD_..._ ((LONG)0x...)".
  it.each<[PcscErrorName, number]>([
    ['SCARD_F_INTERNAL_ERROR', 0x80100001],
    ['SCARD_E_CANCELLED', 0x80100002],
    ['SCARD_E_INVALID_HANDLE', 0x80100003],
    ['SCARD_E_INVALID_PARAMETER', 0x80100004],
    ['SCARD_E_UNKNOWN_READER', 0x80100009],
    ['SCARD_E_TIMEOUT', 0x8010000a],
    ['SCARD_E_SHARING_VIOLATION', 0x8010000b],
    ['SCARD_E_NO_SMARTCARD', 0x8010000c],
    ['SCARD_E_PROTO_MISMATCH', 0x8010000f],
    ['SCARD_E_INVALID_VALUE', 0x80100011],
    ['SCARD_E_NOT_TRANSACTED', 0x80100016],
    ['SCARD_E_READER_UNAVAILABLE', 0x80100017],
    ['SCARD_E_DUPLICATE_READER', 0x8010001b],
    ['SCARD_E_SERVICE_STOPPED', 0x8010001e],
    ['SCARD_E_NO_READERS_AVAILABLE', 0x8010002e],
    ['SCARD_W_UNRESPONSIVE_CARD', 0x80100066],
    ['SCARD_W_UNPOWERED_CARD', 0x80100067],
    ['SCARD_W_RESET_CARD', 0x80100068],
    ['SCARD_W_REMOVED_CARD', 0x80100069],
  ])('%s has its pcsclite.h value', (name, value) => {
    expect(PCSC_ERRORS[name].value).toBe(value);
    expect(pcscErrorName(value)).toBe(name);
  });

  it('gives every name a distinct value except the pair pcsclite.h itself shares', () => {
    const byValue = new Map<number, string[]>();
    for (const [name, { value }] of Object.entries(PCSC_ERRORS)) byValue.set(value, [...(byValue.get(value) ?? []), name]);
    const shared = [...byValue.values()].filter((names) => names.length > 1);
    expect(shared).toEqual([['SCARD_E_UNEXPECTED', 'SCARD_E_UNSUPPORTED_FEATURE']]);
    expect(pcscErrorName(0x8010001f)).toBe('SCARD_E_UNEXPECTED');
  });

  it('knows no name for success or an unknown value', () => {
    expect(pcscErrorName(0)).toBeUndefined();
    expect(pcscErrorName(0x801000ff)).toBeUndefined();
  });
});

describe('PcscError', () => {
  it('carries the PC/SC name and value, a pcsc.<name> code and the detail', () => {
    const error = new PcscError('SCARD_E_NO_SMARTCARD', 'expected a card in "R", got an empty reader');
    expect(error).toBeInstanceOf(VscError);
    expect(error.name).toBe('PcscError');
    expect(error.pcscName).toBe('SCARD_E_NO_SMARTCARD');
    expect(error.pcscCode).toBe(0x8010000c);
    expect(error.code).toBe('pcsc.SCARD_E_NO_SMARTCARD');
    expect(error.message).toBe('SCARD_E_NO_SMARTCARD (0x8010000C): expected a card in "R", got an empty reader');
  });

  it("falls back to pcsc-lite's description and keeps the cause", () => {
    const cause = new Error('socket closed');
    const error = new PcscError('SCARD_E_NOT_TRANSACTED', undefined, { cause });
    expect(error.message).toBe('SCARD_E_NOT_TRANSACTED (0x80100016): An attempt was made to end a non-existent transaction');
    expect(error.cause).toBe(cause);
  });

  it('refuses a name that is not in the table', () => {
    expect(() => new PcscError('SCARD_E_NOPE' as PcscErrorName)).toThrow(/expected a PC\/SC error name/);
  });

  it('is recognised by isPcscError, by name when given', () => {
    const error = new PcscError('SCARD_E_TIMEOUT');
    expect(isPcscError(error)).toBe(true);
    expect(isPcscError(error, 'SCARD_E_TIMEOUT')).toBe(true);
    expect(isPcscError(error, 'SCARD_E_CANCELLED')).toBe(false);
    expect(isPcscError(new Error('x'))).toBe(false);
  });
});
