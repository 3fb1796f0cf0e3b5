// The keys of a trusted audit trail validation service (patent 003 [0094]: "the digital signature uses the private
// key of the audit validation service"): one Ed25519 key that signs validator records (validator-record.ts). A vendor
// trusts the service by naming its public key in the keyfile (`vsc keyfile create --validator-key`). The private key
// is sealed under the service's password like the vendor's keys (vendor.ts), so a copy of the directory signs nothing.
//
// VDIR/validator.json (0600 in a 0700 directory): { format, name, signingKey (public, hex), kdf, sealed }.
import { join } from 'node:path';
import { fromHex, fromUtf8, toHex, utf8, wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, type Ed25519SigningKey } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { ensurePrivateDirectory, readPrivateFile, writeFileAtomic } from '../files/index.js';
import type { KdfParams } from '../vsc-protocol/index.js';
import { kdfFileFields, openUnderPassword, readSealedKdf, sealedLength, sealUnderPassword } from './vendor.js';

const FILE = 'validator.json';
const FORMAT = 'vsc-validator/1';
const SEED_LENGTH = 32;

/** A validator directory that is missing, damaged, or does not open with the password given. */
export class ValidatorKeyError extends VscError {
  override readonly name = 'ValidatorKeyError';
  constructor(code: string, message: string, exitCode: ExitCode = ExitCode.refusedByState) {
    super(`validator.${code}`, message, { exitCode });
  }
}

export interface ValidatorPublic {
  readonly name: string;
  /** Ed25519: verifies the service's validator records; the vendor puts it into keyfiles. */
  readonly signingKey: Uint8Array;
}

export interface ValidatorKeys extends ValidatorPublic {
  readonly signer: Ed25519SigningKey;
}

const associatedData = (name: string) => utf8(`${FORMAT}\n${name}`);

/** `vsc validator init`: makes the service's key in `dir`, sealed under `password` (wiped); a second init is refused. */
export async function initValidator(dir: string, name: string, password: Uint8Array): Promise<ValidatorPublic> {
  try {
    if (typeof name !== 'string' || name.trim().length === 0 || utf8(name).length > 200) throw new ValidatorKeyError('name', 'expected a validator name of 1..200 bytes', ExitCode.usage);
    ensurePrivateDirectory(dir);
    const path = join(dir, FILE);
    try {
      readPrivateFile(path);
      throw new ValidatorKeyError('exists', `${path} already holds a validation service's key; a service is made once`);
    } catch (error) {
      if (error instanceof ValidatorKeyError) throw error;
    }
    const seed = generateEd25519Seed();
    const signer = ed25519KeyFromSeed(seed);
    const { kdf, sealed } = await sealUnderPassword(password, associatedData(name), seed);
    const file = { format: FORMAT, name, signingKey: toHex(signer.publicKey), kdf: kdfFileFields(kdf), sealed: toHex(sealed) };
    writeFileAtomic(path, utf8(`${JSON.stringify(file, null, 2)}\n`));
    return { name, signingKey: signer.publicKey };
  } finally {
    wipe(password);
  }
}

interface ValidatorFile extends ValidatorPublic {
  readonly kdf: KdfParams;
  readonly sealed: Uint8Array;
}

function readValidatorFile(dir: string): ValidatorFile {
  const path = join(dir, FILE);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(fromUtf8(readPrivateFile(path))) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof VscError) throw error; // readable by others: names chmod 600
    throw new ValidatorKeyError('missing', `no validation service key at ${path} ("vsc validator init --data ${dir}" makes it)`);
  }
  const damaged = (why: string) => new ValidatorKeyError('damaged', `${path}: ${why}`);
  if (typeof parsed !== 'object' || parsed === null || parsed['format'] !== FORMAT || typeof parsed['name'] !== 'string') throw damaged(`not a validator key file of format ${FORMAT}`);
  const signingKey = parsed['signingKey'];
  if (typeof signingKey !== 'string' || !/^[0-9a-f]{64}$/.test(signingKey)) throw damaged('signingKey is not 32 bytes of hex');
  const sealed = parsed['sealed'];
  if (typeof sealed !== 'string' || !/^[0-9a-f]+$/.test(sealed) || sealed.length !== sealedLength(SEED_LENGTH) * 2) throw damaged('bad sealed key');
  return { name: parsed['name'], signingKey: fromHex(signingKey), kdf: readSealedKdf(parsed['kdf'], damaged), sealed: fromHex(sealed) };
}

/** The service's public key: what `vsc validator init` printed, for vendors. */
export function readValidatorPublic(dir: string): ValidatorPublic {
  const { name, signingKey } = readValidatorFile(dir);
  return { name, signingKey };
}

/** Opens the service's signing key with its password (wiped); a wrong password is exit 4. */
export async function openValidator(dir: string, password: Uint8Array): Promise<ValidatorKeys> {
  let file: ValidatorFile;
  let seed: Uint8Array | undefined;
  try {
    file = readValidatorFile(dir);
    seed = await openUnderPassword(password, associatedData(file.name), file.kdf, file.sealed);
  } finally {
    wipe(password);
  }
  if (seed === undefined) throw new ValidatorKeyError('password', `the validator password does not open the key in ${dir}`, ExitCode.authenticationFailed);
  try {
    const signer = ed25519KeyFromSeed(seed);
    if (toHex(signer.publicKey) !== toHex(file.signingKey)) throw new ValidatorKeyError('damaged', `${join(dir, FILE)}: the sealed key does not match the public key beside it`);
    return { name: file.name, signingKey: file.signingKey, signer };
  } finally {
    wipe(seed);
  }
}
