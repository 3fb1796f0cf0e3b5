// The card's protected information ([0034], DESIGN.md "Keys and secrets"): the VSC signing key,
// the counter the card reached, and the PIV state (keys, objects, PIN/PUK and retry counters).
// Serialised here, sealed by sealing.ts, opaque to the server.
import { randomBytes } from 'node:crypto';
import { fromHex, toHex, wipe } from '../bytes/index.js';
import { decodePivState, encodePivState, wipePivSecrets, type PivState } from '../apdu/piv/index.js';
import { personalisePiv } from '../card/index.js';
import { ExitCode, VscError } from '../errors/index.js';

const FORMAT = 'vsc-protected/1';

export interface ProtectedInformation {
  /** Ed25519 seed of the SIGN AND INCREMENT key. */
  readonly signingSeed: Uint8Array;
  /** The next counter value this card would sign with, as of the last upload. */
  readonly counter: bigint;
  readonly piv: PivState;
}

export class ProtectedInformationError extends VscError {
  override readonly name = 'ProtectedInformationError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('card.protected-information', message, { ...options, exitCode: ExitCode.other });
  }
}

/** Zeroes the secrets of decoded information nobody uses any more: signing seed and PIV secrets. */
export function wipeProtectedInformation(info: ProtectedInformation): void {
  wipe(info.signingSeed);
  wipePivSecrets(info.piv);
}

/** A new card's information, generated on the owner's machine at enrollment. */
export function newProtectedInformation(): ProtectedInformation {
  return { signingSeed: new Uint8Array(randomBytes(32)), counter: 0n, piv: personalisePiv() };
}

export function encodeProtectedInformation(info: ProtectedInformation): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ format: FORMAT, signingSeed: toHex(info.signingSeed), counter: info.counter.toString(), piv: encodePivState(info.piv) }));
}

export function decodeProtectedInformation(bytes: Uint8Array): ProtectedInformation {
  let root: Record<string, unknown>;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch (error) {
    throw new ProtectedInformationError('the card\'s protected information is not valid JSON', { cause: error });
  }
  if (typeof root !== 'object' || root === null || root['format'] !== FORMAT) throw new ProtectedInformationError(`expected protected information of format ${FORMAT}`);
  const seed = root['signingSeed'];
  const counter = root['counter'];
  if (typeof seed !== 'string' || !/^[0-9a-f]{64}$/.test(seed)) throw new ProtectedInformationError('expected a 32-byte signing seed');
  if (typeof counter !== 'string' || !/^(0|[1-9][0-9]{0,38})$/.test(counter)) throw new ProtectedInformationError('expected the counter as decimal text');
  let piv: PivState;
  try {
    piv = decodePivState(root['piv']);
  } catch (error) {
    throw new ProtectedInformationError(`the PIV state: ${(error as Error).message}`, { cause: error });
  }
  return { signingSeed: fromHex(seed), counter: BigInt(counter), piv };
}
