// The software vendor's keys (patent 003 [0064]-[0065], [0069]-[0070]; DESIGN.md "Software rental"): an Ed25519
// key that signs keyfiles (its public half is built into the rented program, [0073]) and an X25519 key that opens
// the customer information keyfiles carry encrypted for the vendor only ([0069]). "Vendor password: ... unlocks
// the vendor company's private keying material" ([0065]): both private keys are sealed under it (Argon2id,
// XChaCha20-Poly1305), so staff without the password cannot issue keyfiles.
//
// VDIR/vendor.json (0600 in a 0700 directory): { format, name, signingKey, encryptionKey (public, hex), kdf, sealed }.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concatBytes, fromHex, fromUtf8, toHex, utf8, wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, generateX25519KeyPair, type Ed25519SigningKey } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { ensurePrivateDirectory, readPrivateFile, writeFileAtomic } from '../files/index.js';
import { KDF_SALT_LENGTH, checkKdfParams, deriveOwnerKeys, newKdfParams, type KdfParams } from '../vsc-protocol/index.js';

const FILE = 'vendor.json';
const FORMAT = 'vsc-vendor/1';
const NONCE_LENGTH = 24;

/** A vendor directory that is missing, damaged, or does not open with the password given. */
export class VendorError extends VscError {
  override readonly name = 'VendorError';
  constructor(code: string, message: string, exitCode: ExitCode = ExitCode.refusedByState) {
    super(`vendor.${code}`, message, { exitCode });
  }
}

export interface VendorPublic {
  readonly name: string;
  /** Ed25519: verifies the vendor's keyfiles; built into the rented program. */
  readonly signingKey: Uint8Array;
  /** X25519: customer information is encrypted to it. */
  readonly encryptionKey: Uint8Array;
}

export interface VendorKeys extends VendorPublic {
  readonly signer: Ed25519SigningKey;
  /** X25519 private key (caller wipes with `closeVendor`). */
  readonly decryptionKey: Uint8Array;
}

function sealKey(password: Uint8Array, kdf: KdfParams): Promise<Uint8Array> {
  return deriveOwnerKeys(password, kdf).then(({ authKey, protectionKey }) => {
    wipe(authKey);
    return protectionKey;
  });
}

/**
 * Private keys sealed under a password (Argon2id, then XChaCha20-Poly1305 with `ad` bound in): the vendor's keys here,
 * a validation service's in validator-keys.ts. Wipes `secrets`; the caller wipes `password`.
 */
export async function sealUnderPassword(password: Uint8Array, ad: Uint8Array, secrets: Uint8Array): Promise<{ kdf: KdfParams; sealed: Uint8Array }> {
  const kdf = newKdfParams();
  const key = await sealKey(password, kdf);
  const nonce = Uint8Array.from(randomBytes(NONCE_LENGTH));
  const sealed = concatBytes(nonce, xchacha20poly1305(key, nonce, ad).encrypt(secrets));
  wipe(secrets, key);
  return { kdf, sealed };
}

/** The secrets sealUnderPassword sealed, or undefined when the password (or `ad`) is not the one they were sealed with. */
export async function openUnderPassword(password: Uint8Array, ad: Uint8Array, kdf: KdfParams, sealed: Uint8Array): Promise<Uint8Array | undefined> {
  const key = await sealKey(password, kdf);
  try {
    return xchacha20poly1305(key, sealed.subarray(0, NONCE_LENGTH), ad).decrypt(sealed.subarray(NONCE_LENGTH));
  } catch {
    return undefined;
  } finally {
    wipe(key);
  }
}

/** The length of what sealUnderPassword makes of `secretLength` bytes. */
export function sealedLength(secretLength: number): number {
  return NONCE_LENGTH + secretLength + 16;
}

/** Reads the `kdf` object of a sealed key file (checked as the card's KDF parameters are); `damaged` names the file. */
export function readSealedKdf(raw: unknown, damaged: (why: string) => VscError): KdfParams {
  if (typeof raw !== 'object' || raw === null) throw damaged('no KDF parameters');
  const fields = raw as Record<string, unknown>;
  const salt = fields['salt'];
  if (typeof salt !== 'string' || !new RegExp(`^[0-9a-f]{${KDF_SALT_LENGTH * 2}}$`).test(salt)) throw damaged('bad KDF salt');
  const kdf: KdfParams = { algorithm: 'argon2id', salt: fromHex(salt), memoryKiB: Number(fields['memoryKiB']), iterations: Number(fields['iterations']), parallelism: Number(fields['parallelism']) };
  try {
    checkKdfParams(kdf);
  } catch (error) {
    throw damaged((error as Error).message);
  }
  return kdf;
}

/** The `kdf` object as a sealed key file stores it. */
export function kdfFileFields(kdf: KdfParams): Record<string, string | number> {
  return { salt: toHex(kdf.salt), memoryKiB: kdf.memoryKiB, iterations: kdf.iterations, parallelism: kdf.parallelism };
}

/** `vsc vendor init`: makes the vendor's keys in `dir`, sealed under `password` (wiped); refuses a directory that has them. */
export async function initVendor(dir: string, name: string, password: Uint8Array): Promise<VendorPublic> {
  try {
    if (name.trim().length === 0 || utf8(name).length > 200) throw new VendorError('name', 'expected a vendor name of 1..200 bytes', ExitCode.usage);
    ensurePrivateDirectory(dir);
    const path = join(dir, FILE);
    try {
      readPrivateFile(path);
      throw new VendorError('exists', `${path} already holds a vendor's keys; a vendor is made once`);
    } catch (error) {
      if (error instanceof VendorError) throw error;
    }
    const seed = generateEd25519Seed();
    const signer = ed25519KeyFromSeed(seed);
    const encryption = generateX25519KeyPair();
    const { kdf, sealed } = await sealUnderPassword(password, utf8(`${FORMAT}\n${name}`), concatBytes(seed, encryption.privateKey));
    wipe(seed, encryption.privateKey);
    const file = {
      format: FORMAT, name, signingKey: toHex(signer.publicKey), encryptionKey: toHex(encryption.publicKey), kdf: kdfFileFields(kdf), sealed: toHex(sealed),
    };
    writeFileAtomic(path, utf8(`${JSON.stringify(file, null, 2)}\n`));
    return { name, signingKey: signer.publicKey, encryptionKey: encryption.publicKey };
  } finally {
    wipe(password);
  }
}

interface VendorFile {
  readonly name: string;
  readonly signingKey: Uint8Array;
  readonly encryptionKey: Uint8Array;
  readonly kdf: KdfParams;
  readonly sealed: Uint8Array;
}

function readVendorFile(dir: string): VendorFile {
  const path = join(dir, FILE);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(fromUtf8(readPrivateFile(path))) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof VscError) throw error; // readable by others: names chmod 600
    throw new VendorError('missing', `no vendor keys at ${path} ("vsc vendor init --data ${dir}" makes them)`);
  }
  const hex = (field: string, length: number): Uint8Array => {
    const value = parsed[field];
    if (typeof value !== 'string' || !new RegExp(`^[0-9a-f]{${length * 2}}$`).test(value)) throw new VendorError('damaged', `${path}: ${field} is not ${length} bytes of hex`);
    return fromHex(value);
  };
  if (parsed['format'] !== FORMAT || typeof parsed['name'] !== 'string') throw new VendorError('damaged', `${path} is not a vendor key file of format ${FORMAT}`);
  const kdf = readSealedKdf(parsed['kdf'], (why) => new VendorError('damaged', `${path}: ${why}`));
  const sealed = parsed['sealed'];
  if (typeof sealed !== 'string' || !/^[0-9a-f]+$/.test(sealed) || sealed.length !== sealedLength(64) * 2) throw new VendorError('damaged', `${path}: bad sealed keys`);
  return { name: parsed['name'], signingKey: hex('signingKey', 32), encryptionKey: hex('encryptionKey', 32), kdf, sealed: fromHex(sealed) };
}

/** The vendor's public keys: what `vsc vendor init` printed, for programs and `vsc keyfile inspect`. */
export function readVendorPublic(dir: string): VendorPublic {
  const { name, signingKey, encryptionKey } = readVendorFile(dir);
  return { name, signingKey, encryptionKey };
}

/** Opens the vendor's private keys with the vendor password (wiped); a wrong password is exit 4. */
export async function openVendor(dir: string, password: Uint8Array): Promise<VendorKeys> {
  let file: VendorFile;
  let secrets: Uint8Array | undefined;
  try {
    file = readVendorFile(dir);
    secrets = await openUnderPassword(password, utf8(`${FORMAT}\n${file.name}`), file.kdf, file.sealed);
  } finally {
    wipe(password);
  }
  if (secrets === undefined) throw new VendorError('password', `the vendor password does not open the keys in ${dir}`, ExitCode.authenticationFailed);
  const signer = ed25519KeyFromSeed(secrets.subarray(0, 32));
  const decryptionKey = secrets.slice(32, 64);
  wipe(secrets);
  return { name: file.name, signingKey: file.signingKey, encryptionKey: file.encryptionKey, signer, decryptionKey };
}

export function closeVendor(keys: VendorKeys): void {
  wipe(keys.decryptionKey);
}
