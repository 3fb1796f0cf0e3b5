// PC/SC error codes with pcsc-lite's names, values and descriptions (PCSC/pcsclite.h of pcsc-lite
// 1.9.9), and PcscError, the one error the reader driver's PC/SC API rejects with.
import { VscError, type VscErrorOptions } from '../errors/index.js';

/**
 * Every error code of pcsclite.h. SCARD_E_UNEXPECTED and SCARD_E_UNSUPPORTED_FEATURE share
 * 0x8010001F there (the header comments out the distinct 0x80100022).
 */
export const PCSC_ERRORS = {
  SCARD_F_INTERNAL_ERROR: { value: 0x80100001, meaning: 'An internal consistency check failed' },
  SCARD_E_CANCELLED: { value: 0x80100002, meaning: 'The action was cancelled by an SCardCancel request' },
  SCARD_E_INVALID_HANDLE: { value: 0x80100003, meaning: 'The supplied handle was invalid' },
  SCARD_E_INVALID_PARAMETER: { value: 0x80100004, meaning: 'One or more of the supplied parameters could not be properly interpreted' },
  SCARD_E_INVALID_TARGET: { value: 0x80100005, meaning: 'Registry startup information is missing or invalid' },
  SCARD_E_NO_MEMORY: { value: 0x80100006, meaning: 'Not enough memory available to complete this command' },
  SCARD_F_WAITED_TOO_LONG: { value: 0x80100007, meaning: 'An internal consistency timer has expired' },
  SCARD_E_INSUFFICIENT_BUFFER: { value: 0x80100008, meaning: 'The data buffer to receive returned data is too small for the returned data' },
  SCARD_E_UNKNOWN_READER: { value: 0x80100009, meaning: 'The specified reader name is not recognized' },
  SCARD_E_TIMEOUT: { value: 0x8010000a, meaning: 'The user-specified timeout value has expired' },
  SCARD_E_SHARING_VIOLATION: { value: 0x8010000b, meaning: 'The smart card cannot be accessed because of other connections outstanding' },
  SCARD_E_NO_SMARTCARD: { value: 0x8010000c, meaning: 'The operation requires a Smart Card, but no Smart Card is currently in the device' },
  SCARD_E_UNKNOWN_CARD: { value: 0x8010000d, meaning: 'The specified smart card name is not recognized' },
  SCARD_E_CANT_DISPOSE: { value: 0x8010000e, meaning: 'The system could not dispose of the media in the requested manner' },
  SCARD_E_PROTO_MISMATCH: { value: 0x8010000f, meaning: 'The requested protocols are incompatible with the protocol currently in use with the smart card' },
  SCARD_E_NOT_READY: { value: 0x80100010, meaning: 'The reader or smart card is not ready to accept commands' },
  SCARD_E_INVALID_VALUE: { value: 0x80100011, meaning: 'One or more of the supplied parameters values could not be properly interpreted' },
  SCARD_E_SYSTEM_CANCELLED: { value: 0x80100012, meaning: 'The action was cancelled by the system, presumably to log off or shut down' },
  SCARD_F_COMM_ERROR: { value: 0x80100013, meaning: 'An internal communications error has been detected' },
  SCARD_F_UNKNOWN_ERROR: { value: 0x80100014, meaning: 'An internal error has been detected, but the source is unknown' },
  SCARD_E_INVALID_ATR: { value: 0x80100015, meaning: 'An ATR obtained from the registry is not a valid ATR string' },
  SCARD_E_NOT_TRANSACTED: { value: 0x80100016, meaning: 'An attempt was made to end a non-existent transaction' },
  SCARD_E_READER_UNAVAILABLE: { value: 0x80100017, meaning: 'The specified reader is not currently available for use' },
  SCARD_P_SHUTDOWN: { value: 0x80100018, meaning: 'The operation has been aborted to allow the server application to exit' },
  SCARD_E_PCI_TOO_SMALL: { value: 0x80100019, meaning: 'The PCI Receive buffer was too small' },
  SCARD_E_READER_UNSUPPORTED: { value: 0x8010001a, meaning: 'The reader driver does not meet minimal requirements for support' },
  SCARD_E_DUPLICATE_READER: { value: 0x8010001b, meaning: 'The reader driver did not produce a unique reader name' },
  SCARD_E_CARD_UNSUPPORTED: { value: 0x8010001c, meaning: 'The smart card does not meet minimal requirements for support' },
  SCARD_E_NO_SERVICE: { value: 0x8010001d, meaning: 'The Smart card resource manager is not running' },
  SCARD_E_SERVICE_STOPPED: { value: 0x8010001e, meaning: 'The Smart card resource manager has shut down' },
  SCARD_E_UNEXPECTED: { value: 0x8010001f, meaning: 'An unexpected card error has occurred' },
  SCARD_E_UNSUPPORTED_FEATURE: { value: 0x8010001f, meaning: 'This smart card does not support the requested feature' },
  SCARD_E_ICC_INSTALLATION: { value: 0x80100020, meaning: 'No primary provider can be found for the smart card' },
  SCARD_E_ICC_CREATEORDER: { value: 0x80100021, meaning: 'The requested order of object creation is not supported' },
  SCARD_E_DIR_NOT_FOUND: { value: 0x80100023, meaning: 'The identified directory does not exist in the smart card' },
  SCARD_E_FILE_NOT_FOUND: { value: 0x80100024, meaning: 'The identified file does not exist in the smart card' },
  SCARD_E_NO_DIR: { value: 0x80100025, meaning: 'The supplied path does not represent a smart card directory' },
  SCARD_E_NO_FILE: { value: 0x80100026, meaning: 'The supplied path does not represent a smart card file' },
  SCARD_E_NO_ACCESS: { value: 0x80100027, meaning: 'Access is denied to this file' },
  SCARD_E_WRITE_TOO_MANY: { value: 0x80100028, meaning: 'The smart card does not have enough memory to store the information' },
  SCARD_E_BAD_SEEK: { value: 0x80100029, meaning: 'There was an error trying to set the smart card file object pointer' },
  SCARD_E_INVALID_CHV: { value: 0x8010002a, meaning: 'The supplied PIN is incorrect' },
  SCARD_E_UNKNOWN_RES_MNG: { value: 0x8010002b, meaning: 'An unrecognized error code was returned from a layered component' },
  SCARD_E_NO_SUCH_CERTIFICATE: { value: 0x8010002c, meaning: 'The requested certificate does not exist' },
  SCARD_E_CERTIFICATE_UNAVAILABLE: { value: 0x8010002d, meaning: 'The requested certificate could not be obtained' },
  SCARD_E_NO_READERS_AVAILABLE: { value: 0x8010002e, meaning: 'Cannot find a smart card reader' },
  SCARD_E_COMM_DATA_LOST: { value: 0x8010002f, meaning: 'A communications error with the smart card has been detected. Retry the operation' },
  SCARD_E_NO_KEY_CONTAINER: { value: 0x80100030, meaning: 'The requested key container does not exist on the smart card' },
  SCARD_E_SERVER_TOO_BUSY: { value: 0x80100031, meaning: 'The Smart Card Resource Manager is too busy to complete this operation' },
  SCARD_W_UNSUPPORTED_CARD: { value: 0x80100065, meaning: 'The reader cannot communicate with the card, due to ATR string configuration conflicts' },
  SCARD_W_UNRESPONSIVE_CARD: { value: 0x80100066, meaning: 'The smart card is not responding to a reset' },
  SCARD_W_UNPOWERED_CARD: { value: 0x80100067, meaning: 'Power has been removed from the smart card, so that further communication is not possible' },
  SCARD_W_RESET_CARD: { value: 0x80100068, meaning: 'The smart card has been reset, so any shared state information is invalid' },
  SCARD_W_REMOVED_CARD: { value: 0x80100069, meaning: 'The smart card has been removed, so further communication is not possible' },
  SCARD_W_SECURITY_VIOLATION: { value: 0x8010006a, meaning: 'Access was denied because of a security violation' },
  SCARD_W_WRONG_CHV: { value: 0x8010006b, meaning: 'The card cannot be accessed because the wrong PIN was presented' },
  SCARD_W_CHV_BLOCKED: { value: 0x8010006c, meaning: 'The card cannot be accessed because the maximum number of PIN entry attempts has been reached' },
  SCARD_W_EOF: { value: 0x8010006d, meaning: 'The end of the smart card file has been reached' },
  SCARD_W_CANCELLED_BY_USER: { value: 0x8010006e, meaning: 'The user pressed "Cancel" on a Smart Card Selection Dialog' },
  SCARD_W_CARD_NOT_AUTHENTICATED: { value: 0x8010006f, meaning: 'No PIN was presented to the smart card' },
} as const satisfies Record<string, { value: number; meaning: string }>;

export type PcscErrorName = keyof typeof PCSC_ERRORS;

/** SCARD_S_SUCCESS: what pcsc-lite returns when nothing went wrong; never carried by a PcscError. */
export const SCARD_S_SUCCESS = 0x00000000;

const NAMES_BY_VALUE: ReadonlyMap<number, PcscErrorName> = new Map(
  (Object.keys(PCSC_ERRORS) as PcscErrorName[])
    // The first name wins for a shared value, as in pcsc-lite's pcsc_stringify_error.
    .reverse()
    .map((name) => [PCSC_ERRORS[name].value, name] as const),
);

/** The name of a PC/SC error value (0x8010000C → 'SCARD_E_NO_SMARTCARD'), undefined if unknown. */
export function pcscErrorName(value: number): PcscErrorName | undefined {
  return NAMES_BY_VALUE.get(value);
}

function isPcscErrorName(name: string): name is PcscErrorName {
  return Object.hasOwn(PCSC_ERRORS, name);
}

function hex(value: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(8, '0')}`;
}

/**
 * A PC/SC call failed. `pcscName`/`pcscCode` are what pcsc-lite would have returned; `code` is
 * `pcsc.<name>`, e.g. `pcsc.SCARD_E_NO_SMARTCARD`. The message starts with the name and value.
 */
export class PcscError extends VscError {
  override readonly name = 'PcscError';
  readonly pcscName: PcscErrorName;
  readonly pcscCode: number;

  constructor(pcscName: PcscErrorName, detail?: string, options: Omit<VscErrorOptions, 'exitCode'> = {}) {
    if (!isPcscErrorName(pcscName)) {
      throw new TypeError(`expected a PC/SC error name such as SCARD_E_NO_SMARTCARD, got ${String(pcscName)}`);
    }
    const { value, meaning } = PCSC_ERRORS[pcscName];
    super(`pcsc.${pcscName}`, `${pcscName} (${hex(value)}): ${detail ?? meaning}`, options);
    this.pcscName = pcscName;
    this.pcscCode = value;
  }
}

/** True when `error` is a PcscError, and, if `name` is given, that one. */
export function isPcscError(error: unknown, name?: PcscErrorName): error is PcscError {
  return error instanceof PcscError && (name === undefined || error.pcscName === name);
}
