// A card's protected information ([0034], DESIGN.md "Keys and secrets"): a new card's, wiping one, and
// decoding either the binary form (protected-information-codec.ts) or the legacy JSON form of older uploads.
import { randomBytes } from 'node:crypto';
import { wipePivSecrets, type PivState } from '../apdu/index.js';
import { decodePivState } from './legacy-piv-json.js';
import { fromHex, wipe } from '../bytes/index.js';
import { wipeContainerSecrets } from '../license/index.js';
import {
  decodeBinaryProtectedInformation, encodeProtectedInformation, ProtectedInformationError, SIGNING_SEED_LENGTH,
  type ProtectedInformation,
} from './protected-information-codec.js';
import { personalisePiv } from './piv-personalisation.js';

/** The JSON form sealed before the binary codec; read so that cards uploaded then still open. */
const FORMAT = 'vsc-protected/1';

/** Zeroes the secrets of decoded information nobody uses any more: signing seed, PIV secrets, licenses' hidden and secret data. */
export function wipeProtectedInformation(info: ProtectedInformation): void {
  wipe(info.signingSeed);
  wipePivSecrets(info.piv);
  if (info.license !== undefined) wipeContainerSecrets(info.license);
}

/**
 * A new card's information, generated on the owner's machine at enrollment: with a fresh signing seed, or for
 * a server-held card (patent 003 [0096]) with the public key of the seed its server generated and keeps.
 */
export function newProtectedInformation(options: { readonly serverHeldPublicKey?: Uint8Array } = {}): ProtectedInformation {
  const piv = personalisePiv();
  if (options.serverHeldPublicKey !== undefined) return { signingSeed: new Uint8Array(0), serverHeldPublicKey: options.serverHeldPublicKey.slice(), counter: 0n, piv };
  return { signingSeed: new Uint8Array(randomBytes(SIGNING_SEED_LENGTH)), counter: 0n, piv };
}

/** The binary form, or the legacy JSON form (it starts with "{", which is no binary format byte). */
export function decodeProtectedInformation(bytes: Uint8Array): ProtectedInformation {
  return bytes[0] === 0x7b ? decodeLegacyJson(bytes) : decodeBinaryProtectedInformation(bytes);
}

// The legacy JSON reader below is the one place where the old hex strings of secrets still occur:
// it runs once per card uploaded before the binary codec, whose next upload is binary.
function decodeLegacyJson(bytes: Uint8Array): ProtectedInformation {
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

/** The binary form of `bytes`: as it is, or re-encoded once from the legacy JSON form (caller wipes). */
export function toBinaryProtectedInformation(bytes: Uint8Array): Uint8Array {
  if (bytes[0] !== 0x7b) return bytes.slice();
  const info = decodeLegacyJson(bytes);
  try {
    return encodeProtectedInformation(info);
  } finally {
    wipeProtectedInformation(info);
  }
}
