// The keyfile of patent 004 [0044]-[0047] (DESIGN "Keys and secrets", proof 2): issued by the server
// for one install and one card, it carries the install's secret as1 and the card's public key, is
// signed with the server's Ed25519 key and encrypted so that only an implementation opens it.
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes, fromUtf8, readUint16, uintToBytes, utf8, wipe } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519KeyFromSeed, ed25519Verify } from '../crypto/index.js';
import { ExitCode, VscError, assertBytes } from '../errors/index.js';
import { AS1_LENGTH, MASTER_KEY_LENGTH, checkInstallId, keyfileSecretFor } from './implementation-auth.js';
import { SERIAL_PATTERN } from './operation-messages.js';

const KEYFILE_ENCRYPTION_INFO = utf8('vsc-keyfile-encryption/1');
/** File header, also the AEAD's associated data: magic "VSKF" and the format version. */
const MAGIC = Uint8Array.of(0x56, 0x53, 0x4b, 0x46);
const HEADERS = { 1: concatBytes(MAGIC, Uint8Array.of(0x01)), 2: concatBytes(MAGIC, Uint8Array.of(0x02)) } as const;
/** The signature covers the body under a domain of its format, so a body never passes for the other format's. */
const SIGNATURE_DOMAINS = { 1: utf8('vsc-keyfile-body/1'), 2: utf8('vsc-keyfile-body/2') } as const;
const KEYFILE_NONCE_LENGTH = 24;
const KEYFILE_TAG_LENGTH = 16;
const NO_CARD = 0x00;
const CARD = 0x01;

/** The card a keyfile names: its serial and the Ed25519 public key of its signing key. */
export interface KeyfileCard {
  readonly serial: string;
  readonly publicKey: Uint8Array;
}

export interface KeyfileContents {
  /** 2 names the card by serial and public key; 1 is the format before, read so old keyfiles get a clear answer. */
  readonly format: 1 | 2;
  readonly installId: string;
  /** The install's secret: the caller wipes it once the proof is made. */
  readonly as1: Uint8Array;
  /** The card the keyfile is for; absent in a keyfile for enrollment (the card has no key yet) and in most of format 1. */
  readonly card?: { readonly serial?: string; readonly publicKey: Uint8Array };
}

export interface IssueKeyfileOptions {
  /** The server's Ed25519 seed; the caller keeps and wipes it. */
  readonly signingSeed: Uint8Array;
  /** The server's 32-byte keyfile secret from which every install's as1 is derived. */
  readonly keyfileSecret: Uint8Array;
  readonly masterKey: Uint8Array;
  readonly installId: string;
  /** The enrolled card the keyfile is for; without it the keyfile serves only `vsc card enroll`. */
  readonly card?: KeyfileCard;
}

function checkCard(card: KeyfileCard): Uint8Array {
  if (typeof card.serial !== 'string' || !SERIAL_PATTERN.test(card.serial)) throw new TypeError(`expected a card serial of 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(card.serial)}`);
  assertBytes('card public key', card.publicKey, ED25519_PUBLIC_KEY_LENGTH);
  return utf8(card.serial);
}

// Body of format 2 (lengths big-endian):
//   2 install id length n · n install id, UTF-8 · 16 as1
//   1 00 = names no card (for enrollment) | 01 = names a card, then:
//     1 serial length m · m serial, UTF-8 · 32 the card's Ed25519 public key
function encodeBody(installId: Uint8Array, as1: Uint8Array, card: KeyfileCard | undefined): Uint8Array {
  const head = concatBytes(uintToBytes(BigInt(installId.length), 2), installId, as1);
  if (card === undefined) return concatBytes(head, Uint8Array.of(NO_CARD));
  const serial = checkCard(card);
  return concatBytes(head, Uint8Array.of(CARD, serial.length), serial, card.publicKey);
}

function keyfileEncryptionKey(masterKey: Uint8Array): Uint8Array {
  assertBytes('master key', masterKey, MASTER_KEY_LENGTH);
  return hkdf(nobleSha256, masterKey, undefined, KEYFILE_ENCRYPTION_INFO, 32);
}

/** Keyfile = header ‖ nonce(24) ‖ XChaCha20-Poly1305(HKDF(masterKey), body ‖ Ed25519 signature), format 2. */
export function issueKeyfile(options: IssueKeyfileOptions): Uint8Array {
  const { signingSeed, keyfileSecret, masterKey, installId, card } = options;
  const installIdBytes = checkInstallId(installId);
  const signer = ed25519KeyFromSeed(signingSeed);
  const as1 = keyfileSecretFor(keyfileSecret, installId);
  const body = encodeBody(installIdBytes, as1, card);
  const signature = signer.sign(concatBytes(SIGNATURE_DOMAINS[2], body));
  const plaintext = concatBytes(body, signature);
  const key = keyfileEncryptionKey(masterKey);
  const nonce = Uint8Array.from(randomBytes(KEYFILE_NONCE_LENGTH));
  try {
    return concatBytes(HEADERS[2], nonce, xchacha20poly1305(key, nonce, HEADERS[2]).encrypt(plaintext));
  } finally {
    wipe(key, as1, body, plaintext);
  }
}

function invalidKeyfile(message: string, cause?: unknown): VscError {
  return new VscError('keyfile.invalid', message, { exitCode: ExitCode.authenticationFailed, cause });
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return fromUtf8(bytes);
  } catch (cause) {
    throw invalidKeyfile(`the keyfile's ${what} is not UTF-8`, cause);
  }
}

/** Install id and as1, the part both formats share; returns where the rest starts. */
function decodeHead(body: Uint8Array): { installId: string; as1: Uint8Array; rest: number } {
  if (body.length < 2) throw invalidKeyfile('the keyfile is truncated');
  const idLength = readUint16(body, 0);
  const rest = 2 + idLength + AS1_LENGTH;
  if (idLength === 0 || body.length < rest + 1) throw invalidKeyfile('the keyfile body has a bad install id length');
  const installId = text(body.subarray(2, 2 + idLength), 'install id');
  return { installId, as1: body.slice(2 + idLength, rest), rest };
}

// Format 1 (before keyfiles named their card): head, then 00, or 01 and a 32-byte card public key.
function decodeBodyV1(body: Uint8Array): KeyfileContents {
  const { installId, as1, rest } = decodeHead(body);
  const flag = body[rest];
  const total = flag === CARD ? rest + 1 + ED25519_PUBLIC_KEY_LENGTH : rest + 1;
  if ((flag !== NO_CARD && flag !== CARD) || body.length !== total) {
    wipe(as1);
    throw invalidKeyfile('the keyfile body is malformed');
  }
  return flag === CARD ? { format: 1, installId, as1, card: { publicKey: body.slice(rest + 1, total) } } : { format: 1, installId, as1 };
}

function decodeBodyV2(body: Uint8Array): KeyfileContents {
  const { installId, as1, rest } = decodeHead(body);
  try {
    const flag = body[rest];
    if (flag === NO_CARD && body.length === rest + 1) return { format: 2, installId, as1 };
    const serialLength = body[rest + 1] ?? 0;
    const keyAt = rest + 2 + serialLength;
    if (flag !== CARD || serialLength === 0 || body.length !== keyAt + ED25519_PUBLIC_KEY_LENGTH) throw invalidKeyfile('the keyfile body is malformed');
    const serial = text(body.subarray(rest + 2, keyAt), 'card serial');
    if (!SERIAL_PATTERN.test(serial)) throw invalidKeyfile('the keyfile names a card serial no card can have');
    return { format: 2, installId, as1, card: { serial, publicKey: body.slice(keyAt) } };
  } catch (error) {
    wipe(as1);
    throw error;
  }
}

/**
 * Decrypts a keyfile with the master key and checks the server's signature; refuses anything else.
 * Format 1 keyfiles still open (their proof still counts at the server); checkKeyfileCard refuses them.
 */
export function openKeyfile(bytes: Uint8Array, options: { masterKey: Uint8Array; serverSigningPublicKey: Uint8Array }): KeyfileContents {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`expected the keyfile as bytes, got ${typeof bytes}`);
  assertBytes('server signing public key', options.serverSigningPublicKey, ED25519_PUBLIC_KEY_LENGTH);
  const minimum = HEADERS[2].length + KEYFILE_NONCE_LENGTH + KEYFILE_TAG_LENGTH + ED25519_SIGNATURE_LENGTH;
  if (bytes.length < minimum) throw invalidKeyfile(`expected a keyfile of at least ${minimum} bytes, got ${bytes.length}`);
  const format = bytesEqual(bytes.subarray(0, HEADERS[2].length), HEADERS[2]) ? 2 : bytesEqual(bytes.subarray(0, HEADERS[1].length), HEADERS[1]) ? 1 : undefined;
  if (format === undefined) throw invalidKeyfile('not a keyfile of format version 1 or 2');
  const header = HEADERS[format];
  const nonce = bytes.subarray(header.length, header.length + KEYFILE_NONCE_LENGTH);
  const key = keyfileEncryptionKey(options.masterKey);
  let plaintext: Uint8Array;
  try {
    plaintext = xchacha20poly1305(key, nonce, header).decrypt(bytes.subarray(header.length + KEYFILE_NONCE_LENGTH));
  } catch {
    throw invalidKeyfile('the keyfile does not decrypt with this implementation\'s master key');
  } finally {
    wipe(key);
  }
  try {
    if (plaintext.length < ED25519_SIGNATURE_LENGTH) throw invalidKeyfile('the keyfile is truncated');
    const body = plaintext.subarray(0, plaintext.length - ED25519_SIGNATURE_LENGTH);
    const signature = plaintext.subarray(plaintext.length - ED25519_SIGNATURE_LENGTH);
    // Every implementation holds the master key and can re-encrypt a keyfile: the signature is what binds its card.
    if (!ed25519Verify(options.serverSigningPublicKey, concatBytes(SIGNATURE_DOMAINS[format], body), signature)) {
      throw invalidKeyfile('the keyfile is not signed by this server');
    }
    return format === 2 ? decodeBodyV2(body) : decodeBodyV1(body);
  } finally {
    wipe(plaintext);
  }
}

/**
 * The client's check of [0044]-[0046]: the opened keyfile names the card that was opened (its serial
 * and the public key of its signing key). A keyfile for another card, for enrollment only, or of
 * format 1 (which named no serial) is refused with exit 4; the owner asks the administrator for
 * `vsc admin keyfile --serial S`.
 */
export function checkKeyfileCard(keyfile: KeyfileContents, card: KeyfileCard): void {
  checkCard(card);
  const named = keyfile.card;
  const ask = `ask the administrator for one issued with \`vsc admin keyfile --serial ${card.serial}\``;
  if (keyfile.format !== 2 || named === undefined || named.serial === undefined) {
    throw new VscError(
      'keyfile.no-card',
      `this keyfile names no card (${keyfile.format === 1 ? 'it predates keyfiles that name their card' : 'it serves only to enroll a card'}): ${ask}`,
      { exitCode: ExitCode.authenticationFailed },
    );
  }
  if (named.serial !== card.serial) {
    throw new VscError('keyfile.wrong-card', `this keyfile was issued for card ${named.serial}, not ${card.serial}: ${ask}`, { exitCode: ExitCode.authenticationFailed });
  }
  if (!bytesEqual(named.publicKey, card.publicKey)) {
    throw new VscError('keyfile.wrong-card', `this keyfile names another public key than card ${card.serial} has: ${ask}`, { exitCode: ExitCode.authenticationFailed });
  }
}
