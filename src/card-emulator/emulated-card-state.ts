// The state file of `vsc card emulate`: everything a standalone software card keeps across
// restarts (VSC key and counter; PIV keys, certificates, PIN and PUK state), as versioned JSON
// written atomically. It holds the card's private keys and PIN in clear,
// like any software token's key file: mode 0600, and the docs say to protect it.
import { readFileSync } from 'node:fs';
import { fromHex, toHex, wipe } from '../bytes/index.js';
import { VscError, ExitCode } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { generateEd25519Seed } from '../crypto/index.js';
import { COUNTER_MAX, type VscKeyMode } from '../apdu/vsc/index.js';
import { decodePivState, encodePivState, type PivState } from '../apdu/piv/index.js';
import { personalisePiv } from '../card/index.js';
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

/** Reads a state file; `undefined` if it does not exist. */
export function readEmulatedCardState(path: string): EmulatedCardState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
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
  const { vsc } = state;
  const text = JSON.stringify(
    {
      format: STATE_FORMAT,
      vsc: { serial: vsc.serial, keyMode: vsc.keyMode, counter: vsc.counter.toString(), signingKeySeed: toHex(vsc.signingKeySeed) },
      piv: encodePivState(state.piv),
    },
    null,
    2,
  );
  const bytes = new TextEncoder().encode(`${text}\n`);
  try {
    writeFileAtomic(path, bytes);
  } finally {
    wipe(bytes);
  }
}
