// The vendor's universal private key (patent 003 [0098]-[0102]: "all customers rent the software using the same
// public/private key pair") as `vsc dongle init --universal-key FILE` reads it to import it into a token: an Ed25519
// key as the PKCS#8 PEM that `openssl genpkey -algorithm ed25519` writes (RFC 8410 §7), or its 32 bytes as 64 hex
// digits. The file must be 0600; it is parsed byte by byte, never as a string (a string cannot be wiped), and every
// copy is wiped. Errors never quote a byte of it.
import { ExitCode, VscError } from '../errors/index.js';
import { readPrivateFile } from '../files/index.js';
import { bytesEqual, fromHex, utf8, wipe } from '../bytes/index.js';
import { DongleError } from './dongle.js';

const SEED_LENGTH = 32;
const PEM_BEGIN = utf8('-----BEGIN PRIVATE KEY-----');
const PEM_END = utf8('-----END PRIVATE KEY-----');
/** RFC 8410 §7: SEQUENCE (46) { INTEGER 0, SEQUENCE (5) { OID 1.3.101.112 }, OCTET STRING (34) { OCTET STRING (32) key } }. */
const PKCS8_ED25519_PREFIX = fromHex('302e' + '020100' + '3005' + '06032b6570' + '0422' + '0420');
const EXPECTED = 'expected an Ed25519 private key as PKCS#8 PEM ("openssl genpkey -algorithm ed25519") or as 64 hex digits';

function malformed(why: string): DongleError {
  return new DongleError('universal-key', `--universal-key: ${why}`, { exitCode: ExitCode.usage });
}

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

function base64Value(byte: number): number {
  if (byte >= 0x41 && byte <= 0x5a) return byte - 0x41;
  if (byte >= 0x61 && byte <= 0x7a) return byte - 0x47;
  if (byte >= 0x30 && byte <= 0x39) return byte + 4;
  if (byte === 0x2b) return 62;
  if (byte === 0x2f) return 63;
  return -1;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array, at = 0): boolean {
  return bytes.length - at >= prefix.length && bytesEqual(bytes.subarray(at, at + prefix.length), prefix);
}

function indexOf(bytes: Uint8Array, needle: Uint8Array, from: number): number {
  for (let i = from; i + needle.length <= bytes.length; i += 1) if (startsWith(bytes, needle, i)) return i;
  return -1;
}

/** Base64 (RFC 4648 §4) of `bytes[from, to)`, whitespace skipped, into a new array the caller wipes. */
function decodeBase64(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(((to - from) * 3) / 4));
  let length = 0;
  let bits = 0;
  let count = 0;
  let padding = 0;
  for (let i = from; i < to; i += 1) {
    const byte = bytes[i]!;
    if (isSpace(byte)) continue;
    if (byte === 0x3d) {
      padding += 1;
      continue;
    }
    const value = base64Value(byte);
    if (value < 0 || padding > 0) {
      wipe(out);
      throw malformed(`${EXPECTED}: the PEM body is not base64`);
    }
    bits = ((bits << 6) | value) & 0xffffff;
    count += 1;
    if (count % 4 === 0) {
      out[length++] = bits >> 16;
      out[length++] = (bits >> 8) & 0xff;
      out[length++] = bits & 0xff;
    }
  }
  const rest = count % 4;
  if (rest === 1 || (rest === 0 && padding !== 0) || (rest !== 0 && padding !== 0 && rest + padding !== 4)) {
    wipe(out);
    throw malformed(`${EXPECTED}: the PEM body is not base64`);
  }
  if (rest === 2) out[length++] = (bits >> 4) & 0xff;
  if (rest === 3) {
    out[length++] = (bits >> 10) & 0xff;
    out[length++] = (bits >> 2) & 0xff;
  }
  const decoded = out.slice(0, length);
  wipe(out);
  return decoded;
}

function fromPem(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const bodyStart = start + PEM_BEGIN.length;
  const footer = indexOf(bytes, PEM_END, bodyStart);
  if (footer < 0 || footer + PEM_END.length !== end) throw malformed(`${EXPECTED}: the PEM block does not end with -----END PRIVATE KEY-----`);
  const der = decodeBase64(bytes, bodyStart, footer);
  try {
    if (der.length !== PKCS8_ED25519_PREFIX.length + SEED_LENGTH || !startsWith(der, PKCS8_ED25519_PREFIX)) {
      throw malformed(`${EXPECTED}: the PEM holds another kind of key, or one with extra fields`);
    }
    return der.slice(PKCS8_ED25519_PREFIX.length);
  } finally {
    wipe(der);
  }
}

function fromHexDigits(bytes: Uint8Array, start: number, end: number): Uint8Array {
  if (end - start !== 2 * SEED_LENGTH) throw malformed(EXPECTED);
  const seed = new Uint8Array(SEED_LENGTH);
  for (let i = 0; i < SEED_LENGTH; i += 1) {
    const high = hexValue(bytes[start + 2 * i]!);
    const low = hexValue(bytes[start + 2 * i + 1]!);
    if (high < 0 || low < 0) {
      wipe(seed);
      throw malformed(EXPECTED);
    }
    seed[i] = (high << 4) | low;
  }
  return seed;
}

/** The 32-byte Ed25519 private key in a universal key file's bytes (which the caller wipes); a new array to wipe. */
export function parseUniversalKey(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw malformed(EXPECTED);
  let start = 0;
  let end = bytes.length;
  while (start < end && isSpace(bytes[start]!)) start += 1;
  while (end > start && isSpace(bytes[end - 1]!)) end -= 1;
  return startsWith(bytes, PEM_BEGIN, start) ? fromPem(bytes, start, end) : fromHexDigits(bytes, start, end);
}

/** Reads and parses the universal key file at `path`: refused (exit 2) when others may read it or it is malformed. */
export function readUniversalKeyFile(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readPrivateFile(path);
  } catch (error) {
    if (error instanceof VscError) throw error; // readable by others: names chmod 600
    throw malformed(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return parseUniversalKey(bytes);
  } finally {
    wipe(bytes);
  }
}
