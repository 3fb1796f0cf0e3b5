// The emulated dongle (`emulated:/path/to/dir`, DESIGN.md "Dongle-backed card"): a directory standing for a
// USB stick, for development and the demo. It is NOT duplication-protected ([0002]): whoever copies the
// directory and knows its passphrase has a second, equal dongle. What it does protect: its key file is
// sealed under the passphrase (Argon2id), so a copy of the directory without the passphrase is useless.
//
// Layout: `dongle.key` (the sealed Ed25519 dongle key, Fig. 14's DongleKey) and the slot files of
// two-slot-store.ts (`card.a`, `card.b`, `counter.a`, ...), all 0600 in a 0700 directory.
// dongle.key: "VEDK" ‖ 01 ‖ salt (16) ‖ memory KiB (4) ‖ iterations (4) ‖ parallelism (1) ‖ nonce (24) ‖
// XChaCha20-Poly1305(seed (32)), the header up to the nonce as associated data.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { bytesToUint, concatBytes, constantTimeEqual, uintToBytes, utf8, wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256, type Ed25519SigningKey } from '../crypto/index.js';
import { ensurePrivateDirectory, readPrivateFile, writeFileAtomic } from '../files/index.js';
import { DEFAULT_KDF, KDF_SALT_LENGTH, checkKdfParams, deriveOwnerKeys, type KdfParams } from '../vsc-protocol/index.js';
import {
  DongleAbsentError, DongleAuthenticationError, DongleError, dongleFingerprint, type Dongle, type DongleIdentity, type DongleSecrets,
  type DongleSlot,
} from './dongle.js';
import { TwoSlotStore, type RawSlotStore } from './two-slot-store.js';

export const EMULATED_SCHEME = 'emulated:';
const KEY_FILE = 'dongle.key';
const MAGIC = utf8('VEDK');
const VERSION = 0x01;
const NONCE_LENGTH = 24;
const HEADER_LENGTH = MAGIC.length + 1 + KDF_SALT_LENGTH + 4 + 4 + 1;
const KEY_FILE_LENGTH = HEADER_LENGTH + NONCE_LENGTH + 32 + 16;
/** SPKI DER prefix of an Ed25519 public key (RFC 8410). */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export interface EmulatedDongleAddress {
  readonly directory: string;
  /** RFC 7512's `pin-source` ("file:/path"), if the URI names one. */
  readonly pinSource: string | undefined;
}

/** `emulated:/path/to/dir`, optionally `?pin-source=file:/path` for the passphrase (never the passphrase itself). */
export function parseEmulatedUri(uri: string): EmulatedDongleAddress {
  if (!uri.startsWith(EMULATED_SCHEME)) throw new DongleError('uri', `expected a URI starting with ${EMULATED_SCHEME}, got ${JSON.stringify(uri.slice(0, 40))}`, { exitCode: 2 });
  const rest = uri.slice(EMULATED_SCHEME.length);
  const [path = '', query] = rest.split('?', 2) as [string, string | undefined];
  let directory: string;
  try {
    directory = decodeURIComponent(path);
  } catch {
    throw new DongleError('uri', 'the emulated dongle\'s path is not valid percent-encoding', { exitCode: 2 });
  }
  if (directory.length === 0) throw new DongleError('uri', 'expected emulated:/path/to/dir, got no path', { exitCode: 2 });
  let pinSource: string | undefined;
  for (const pair of query === undefined || query === '' ? [] : query.split('&')) {
    const [name = '', value = ''] = pair.split('=', 2);
    if (name === 'pin-value') throw new DongleError('uri', 'pin-value would put the passphrase in process arguments and shell history; use pin-source=file:/path', { exitCode: 2 });
    if (name !== 'pin-source') throw new DongleError('uri', `unknown attribute ${JSON.stringify(name.slice(0, 40))} in an emulated dongle URI (only pin-source)`, { exitCode: 2 });
    try {
      pinSource = decodeURIComponent(value);
    } catch {
      throw new DongleError('uri', 'pin-source is not valid percent-encoding', { exitCode: 2 });
    }
  }
  return { directory: resolve(directory), pinSource };
}

function kdfOf(header: Uint8Array): KdfParams {
  let offset = MAGIC.length + 1;
  const salt = header.slice(offset, (offset += KDF_SALT_LENGTH));
  const memoryKiB = Number(bytesToUint(header.subarray(offset, (offset += 4))));
  const iterations = Number(bytesToUint(header.subarray(offset, (offset += 4))));
  const parallelism = header[offset]!;
  return { algorithm: 'argon2id', salt, memoryKiB, iterations, parallelism };
}

async function passphraseKey(passphrase: Uint8Array, params: KdfParams): Promise<Uint8Array> {
  const { authKey, protectionKey } = await deriveOwnerKeys(passphrase, params);
  wipe(authKey);
  return protectionKey;
}

class EmulatedDongle implements Dongle {
  readonly uri: string;
  readonly #directory: string;
  readonly #slots: TwoSlotStore;
  readonly #pinSource: string | undefined;
  #key: Ed25519SigningKey | undefined;
  /** SHA-256 of the key file the key came from: a sign checks the file is still there and the same. */
  #keyFileHash: Uint8Array | undefined;

  constructor(
    address: EmulatedDongleAddress,
    private readonly secrets: DongleSecrets,
  ) {
    this.#directory = address.directory;
    this.uri = `${EMULATED_SCHEME}${address.directory}`;
    this.#pinSource = address.pinSource;
    const raw: RawSlotStore = {
      get: async (name) => {
        this.#requirePresent();
        const path = join(this.#directory, name);
        return existsSync(path) ? Uint8Array.from(readPrivateFile(path)) : undefined;
      },
      put: async (name, bytes) => {
        this.#requirePresent();
        writeFileAtomic(join(this.#directory, name), bytes);
      },
    };
    this.#slots = new TwoSlotStore(raw);
  }

  async identify(): Promise<DongleIdentity> {
    await this.#openKey();
    this.#requirePresent();
    return this.#identity();
  }

  async ensureKey(): Promise<DongleIdentity> {
    if (!existsSync(join(this.#directory, KEY_FILE))) await this.#createKey();
    return this.identify();
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    await this.#openKey();
    this.#requirePresent();
    return this.#key!.sign(message);
  }

  read(slot: DongleSlot): Promise<Uint8Array | undefined> {
    return this.#slots.read(slot);
  }

  async write(slot: DongleSlot, bytes: Uint8Array): Promise<void> {
    await this.#openKey();
    await this.#slots.write(slot, bytes);
  }

  async close(): Promise<void> {
    this.#key = undefined;
    this.#keyFileHash = undefined;
  }

  #identity(): DongleIdentity {
    const publicKey = concatBytes(ED25519_SPKI_PREFIX, this.#key!.publicKey);
    return { kind: 'emulated', publicKey, fingerprint: dongleFingerprint(publicKey), description: `emulated dongle ${this.#directory} (not duplication-protected)` };
  }

  /** [0106]: the stick is "attached" while its directory holds the key file the dongle was opened with. */
  #requirePresent(): void {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(this.#directory, KEY_FILE));
    } catch {
      throw new DongleAbsentError(`the emulated dongle ${this.#directory} is not attached (no ${KEY_FILE})`);
    }
    if (this.#keyFileHash !== undefined && !constantTimeEqual(sha256(bytes), this.#keyFileHash)) {
      throw new DongleAbsentError(`the emulated dongle at ${this.#directory} is no longer the one that was attached`);
    }
  }

  async #openKey(): Promise<void> {
    if (this.#key !== undefined) return;
    const path = join(this.#directory, KEY_FILE);
    let file: Uint8Array;
    try {
      file = Uint8Array.from(readPrivateFile(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DongleAbsentError(`no emulated dongle at ${this.#directory} (no ${KEY_FILE}; "vsc dongle init" makes one)`);
      }
      throw error;
    }
    if (file.length !== KEY_FILE_LENGTH || !constantTimeEqual(file.subarray(0, MAGIC.length), MAGIC) || file[MAGIC.length] !== VERSION) {
      throw new DongleError('damaged', `${path} is not an emulated dongle key file`);
    }
    const header = file.subarray(0, HEADER_LENGTH);
    const params = kdfOf(header);
    try {
      checkKdfParams(params);
    } catch (error) {
      throw new DongleError('damaged', `${path}: ${(error as Error).message}`, { cause: error });
    }
    const passphrase = await this.secrets.pin(this.#pinSource, `the passphrase of the emulated dongle ${this.#directory}`);
    const key = await passphraseKey(passphrase, params).finally(() => wipe(passphrase));
    let seed: Uint8Array;
    try {
      seed = xchacha20poly1305(key, file.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH), header).decrypt(file.subarray(HEADER_LENGTH + NONCE_LENGTH));
    } catch {
      throw new DongleAuthenticationError(`the passphrase does not open the emulated dongle ${this.#directory}`);
    } finally {
      wipe(key);
    }
    try {
      this.#key = ed25519KeyFromSeed(seed);
    } finally {
      wipe(seed);
    }
    this.#keyFileHash = sha256(file);
  }

  async #createKey(): Promise<void> {
    ensurePrivateDirectory(this.#directory);
    const params: KdfParams = { algorithm: 'argon2id', salt: Uint8Array.from(randomBytes(KDF_SALT_LENGTH)), ...DEFAULT_KDF };
    const header = concatBytes(
      MAGIC, Uint8Array.of(VERSION), params.salt, uintToBytes(BigInt(params.memoryKiB), 4), uintToBytes(BigInt(params.iterations), 4),
      Uint8Array.of(params.parallelism),
    );
    const passphrase = await this.secrets.pin(this.#pinSource, `a new passphrase for the emulated dongle ${this.#directory}`);
    const key = await passphraseKey(passphrase, params).finally(() => wipe(passphrase));
    const seed = generateEd25519Seed();
    const nonce = Uint8Array.from(randomBytes(NONCE_LENGTH));
    try {
      writeFileAtomic(join(this.#directory, KEY_FILE), concatBytes(header, nonce, xchacha20poly1305(key, nonce, header).encrypt(seed)));
    } finally {
      wipe(key, seed);
    }
  }
}

export function openEmulatedDongle(uri: string, secrets: DongleSecrets): Dongle {
  return new EmulatedDongle(parseEmulatedUri(uri), secrets);
}
