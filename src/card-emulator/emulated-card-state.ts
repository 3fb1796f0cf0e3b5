// The state file of `vsc card emulate`: everything a standalone software card keeps across
// restarts (VSC key and counter; PIV keys, certificates, PIN and PUK state), written atomically as
// a binary header (magic "vsce", version, serial, key mode) then the protected information in the
// one codec of src/card. It holds the card's private keys and PIN in clear,
// like any software token's key file: mode 0600, and the docs say to protect it.
import { readFileSync } from 'node:fs';
import { fromHex, toHex, wipe } from '../bytes/index.js';
import { VscError, ExitCode } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { generateEd25519Seed } from '../crypto/index.js';
import { COUNTER_MAX, type VscKeyMode, type PivState } from '../apdu/index.js';
import { decodePivState, decodeProtectedInformation, encodeProtectedInformation, personalisePiv } from '../card/index.js';
import type { LicenseContainer } from '../license/index.js';
import { randomBytes } from 'node:crypto';

export const STATE_FORMAT = 'vsc-emulated-card/1';

export interface VscAppletState {
  serial: string;
  keyMode: VscKeyMode;
  counter: bigint;
  signingKeySeed: Uint8Array;
}

export interface EmulatedCardState {
  vsc: VscAppletState;
  piv: PivState;
  /** The license container, kept as it is across rewrites of the file; absent: the empty container. */
  license?: LicenseContainer;
}

export class StateFileError extends VscError {
  override readonly name = 'StateFileError';
  constructor(path: string, problem: string, options: { cause?: unknown } = {}) {
    super('state-file.invalid', `state file ${path}: ${problem}`, { ...options, exitCode: ExitCode.other });
  }
}

const SERIAL_PATTERN = /^[\x21-\x7e]{1,64}$/u;

export function checkSerial(serial: string): string {
  if (!SERIAL_PATTERN.test(serial)) {
    throw new TypeError(`expected a serial number of 1 to 64 printable ASCII characters without spaces, got "${serial}"`);
  }
  return serial;
}

export function randomSerial(): string {
  return `VSC-${toHex(randomBytes(6)).toUpperCase()}`;
}

export function newEmulatedCardState(options: { serial?: string; keyMode?: VscKeyMode } = {}): EmulatedCardState {
  return {
    vsc: {
      serial: checkSerial(options.serial ?? randomSerial()),
      keyMode: options.keyMode ?? 'individual',
      counter: 0n,
      signingKeySeed: generateEd25519Seed(),
    },
    piv: personalisePiv(),
  };
}

function field(path: string, object: Record<string, unknown>, name: string, kind: 'string'): string {
  const value = object[name];
  if (typeof value !== kind) throw new StateFileError(path, `expected "${name}" to be a ${kind}`);
  return value as string;
}

function parseVsc(path: string, raw: unknown): VscAppletState {
  if (typeof raw !== 'object' || raw === null) throw new StateFileError(path, 'expected a "vsc" object');
  const object = raw as Record<string, unknown>;
  const serial = field(path, object, 'serial', 'string');
  if (!SERIAL_PATTERN.test(serial)) throw new StateFileError(path, 'the serial number is malformed');
  const keyMode = field(path, object, 'keyMode', 'string');
  if (keyMode !== 'individual' && keyMode !== 'universal') {
    throw new StateFileError(path, `expected "keyMode" to be "individual" or "universal", got "${keyMode}"`);
  }
  const counterText = field(path, object, 'counter', 'string');
  if (!/^[0-9]{1,39}$/.test(counterText) || BigInt(counterText) > COUNTER_MAX) {
    throw new StateFileError(path, 'expected "counter" to be a decimal integer in 0..2^128-1');
  }
  const seedHex = field(path, object, 'signingKeySeed', 'string');
  // Never echo the seed, even malformed: it is (or was meant to be) a private key.
  if (!/^[0-9a-f]{64}$/.test(seedHex)) throw new StateFileError(path, 'expected "signingKeySeed" to be 64 lower-case hex digits');
  return { serial, keyMode, counter: BigInt(counterText), signingKeySeed: fromHex(seedHex) };
}

/** "vsce" then format version 1; a legacy JSON file starts with "{" instead. */
const MAGIC = Uint8Array.of(0x76, 0x73, 0x63, 0x65, 0x01);
const KEY_MODES: readonly VscKeyMode[] = ['individual', 'universal'];

/** The binary state file: header, then the protected information (seed, counter, PIV part, license container). */
export function encodeEmulatedCardState(state: EmulatedCardState): Uint8Array {
  const information = encodeProtectedInformation({ signingSeed: state.vsc.signingKeySeed, counter: state.vsc.counter, piv: state.piv, license: state.license });
  try {
    return encodeStateFile(state.vsc.serial, state.vsc.keyMode, information);
  } finally {
    wipe(information);
  }
}

/** The state file's bytes from its header fields and the protected information as it is (binary). */
export function encodeStateFile(serialNumber: string, keyMode: VscKeyMode, information: Uint8Array): Uint8Array {
  const serial = new TextEncoder().encode(checkSerial(serialNumber));
  const out = new Uint8Array(MAGIC.length + 1 + serial.length + 1 + information.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = serial.length;
  out.set(serial, MAGIC.length + 1);
  out[MAGIC.length + 1 + serial.length] = KEY_MODES.indexOf(keyMode);
  out.set(information, MAGIC.length + 2 + serial.length);
  return out;
}

export function decodeEmulatedCardState(path: string, bytes: Uint8Array): EmulatedCardState {
  if (bytes.length < MAGIC.length + 2 || MAGIC.some((byte, i) => bytes[i] !== byte)) throw new StateFileError(path, 'expected a vsc-emulated-card state file (magic "vsce", version 1)');
  const serialLength = bytes[MAGIC.length]!;
  const modeAt = MAGIC.length + 1 + serialLength;
  if (modeAt >= bytes.length) throw new StateFileError(path, `the serial number claims ${serialLength} bytes, fewer remain`);
  const serial = new TextDecoder().decode(bytes.subarray(MAGIC.length + 1, modeAt));
  if (!SERIAL_PATTERN.test(serial)) throw new StateFileError(path, 'the serial number is malformed');
  const keyMode = KEY_MODES[bytes[modeAt]!];
  if (keyMode === undefined) throw new StateFileError(path, `expected the key mode 0 (individual) or 1 (universal), got ${bytes[modeAt]}`);
  try {
    const { signingSeed, counter, piv, license } = decodeProtectedInformation(bytes.subarray(modeAt + 1));
    return { vsc: { serial, keyMode, counter, signingKeySeed: signingSeed }, piv, ...(license === undefined ? {} : { license }) };
  } catch (error) {
    throw new StateFileError(path, (error as Error).message, { cause: error });
  }
}

/** Reads a state file, binary or legacy JSON; `undefined` if it does not exist. */
export function readEmulatedCardState(path: string): EmulatedCardState | undefined {
  let bytes: Uint8Array;
  try {
    const buffer = readFileSync(path);
    bytes = new Uint8Array(buffer);
    buffer.fill(0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
  try {
    const first = bytes.find((byte) => byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09);
    return first === 0x7b ? readLegacyJsonState(path, new TextDecoder().decode(bytes)) : decodeEmulatedCardState(path, bytes);
  } finally {
    wipe(bytes);
  }
}

// The legacy JSON state file ("vsc-emulated-card/1") is read once, then openEmulatedCard rewrites it
// in the binary format: this migration path is the one place where its hex strings of secrets occur.
function readLegacyJsonState(path: string, text: string): EmulatedCardState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StateFileError(path, 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new StateFileError(path, 'expected a JSON object');
  const root = parsed as Record<string, unknown>;
  if (root['format'] !== STATE_FORMAT) {
    throw new StateFileError(path, `expected "format": "${STATE_FORMAT}", got ${JSON.stringify(root['format'])}`);
  }
  const vsc = parseVsc(path, root['vsc']);
  let piv: PivState;
  try {
    // A file written before the card had a PIV applet gets a freshly personalised one.
    piv = root['piv'] === undefined ? personalisePiv() : decodePivState(root['piv']);
  } catch (error) {
    throw new StateFileError(path, `"piv": ${(error as Error).message}`, { cause: error });
  }
  return { vsc, piv };
}

/** Writes the whole state durably (see writeFileAtomic). */
export function writeEmulatedCardState(path: string, state: EmulatedCardState): void {
  const bytes = encodeEmulatedCardState(state);
  try {
    writeFileAtomic(path, bytes);
  } finally {
    wipe(bytes);
  }
}
