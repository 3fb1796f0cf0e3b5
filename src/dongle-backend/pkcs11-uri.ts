// The PKCS#11 URI of RFC 7512 (§2.3 syntax, §3.3 matching) that names a dongle token (patent 004 claim 10,
// [0104]; DESIGN.md "Dongle-backed card"): `pkcs11:token=LABEL;serial=S?module-path=/x.so&pin-source=file:/p`.
// Path attributes (`;`) say which token; query attributes (`&`) say how to reach it. `pin-value` is refused:
// a PIN in a URI ends up in process arguments and shell history. Errors never quote a value, only names.
import { fromUtf8 } from '../bytes/index.js';
import { ExitCode } from '../errors/index.js';
import { DongleError } from './dongle.js';

export const PKCS11_URI_SCHEME = 'pkcs11:';
/** Longer than any real URI; a bound so that a fuzzed or pasted blob is refused before it is scanned. */
export const MAX_PKCS11_URI_LENGTH = 4096;

export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';
const OBJECT_TYPES: readonly Pkcs11ObjectType[] = ['public', 'private', 'cert', 'secret-key', 'data'];

export interface Pkcs11Uri {
  /** CK_TOKEN_INFO label, manufacturerID, model, serialNumber (without their blank padding). */
  readonly token?: string;
  readonly manufacturer?: string;
  readonly model?: string;
  readonly serial?: string;
  /** CK_SLOT_INFO slotDescription and manufacturerID; the CK_SLOT_ID. */
  readonly slotDescription?: string;
  readonly slotManufacturer?: string;
  readonly slotId?: bigint;
  /** CK_INFO manufacturerID, libraryDescription, libraryVersion. */
  readonly libraryManufacturer?: string;
  readonly libraryDescription?: string;
  readonly libraryVersion?: { readonly major: number; readonly minor: number };
  /** An object on the token: CKA_LABEL, CKA_ID, its class. */
  readonly object?: string;
  readonly id?: Uint8Array;
  readonly type?: Pkcs11ObjectType;
  /** Query: the module to load, by absolute path or by name; where the PIN comes from. */
  readonly modulePath?: string;
  readonly moduleName?: string;
  readonly pinSource?: string;
  /** Vendor path attributes (`x-...`, RFC 7512 §2.3), decoded. */
  readonly vendorPath: ReadonlyMap<string, string>;
  /** Vendor query attributes, decoded; never formatted back (one could carry a secret). */
  readonly vendorQuery: ReadonlyMap<string, string>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// RFC 7512 §2.3 character classes. A path value may hold "&", a query value ";", "/", "?" and "|"; every other
// character is percent-encoded.
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const PATH_EXTRA = ":[]@!$'()*+,=&";
const QUERY_EXTRA = ":[]@!$'()*+,=/?|;";
/** pk11-v-attr-nm-char, which the standard names also keep to. */
const NAME = /^[A-Za-z0-9_-]+$/;

const PIN_VALUE_REFUSED = 'pin-value would put the PIN in process arguments and shell history; use pin-source=file:/path';

type TextField = 'token' | 'manufacturer' | 'model' | 'serial' | 'slotDescription' | 'slotManufacturer' | 'libraryManufacturer' | 'libraryDescription' | 'object';

/** Path attributes with text values, and the size of the PKCS#11 field each is compared with (v2.40 §3.2, §3.3). */
const TEXT_PATH_ATTRIBUTES: ReadonlyMap<string, { field: TextField; maxBytes: number }> = new Map([
  ['token', { field: 'token', maxBytes: 32 }],
  ['manufacturer', { field: 'manufacturer', maxBytes: 32 }],
  ['model', { field: 'model', maxBytes: 16 }],
  ['serial', { field: 'serial', maxBytes: 16 }],
  ['slot-description', { field: 'slotDescription', maxBytes: 64 }],
  ['slot-manufacturer', { field: 'slotManufacturer', maxBytes: 32 }],
  ['library-manufacturer', { field: 'libraryManufacturer', maxBytes: 32 }],
  ['library-description', { field: 'libraryDescription', maxBytes: 32 }],
  ['object', { field: 'object', maxBytes: 1024 }],
]);
const OTHER_PATH_ATTRIBUTES = ['slot-id', 'library-version', 'id', 'type'];
const QUERY_ATTRIBUTES = ['module-path', 'module-name', 'pin-source'];
const KNOWN_PATH = [...TEXT_PATH_ATTRIBUTES.keys(), ...OTHER_PATH_ATTRIBUTES];

function uriError(message: string): DongleError {
  return new DongleError('uri', `PKCS#11 URI: ${message}`, { exitCode: ExitCode.usage });
}

/** An attribute name for a message: names hold no secrets, but are cut and quoted all the same. */
function quoted(name: string): string {
  return JSON.stringify(name.slice(0, 40));
}

interface RawAttribute {
  readonly name: string;
  readonly value: string;
  /** Offset of the value in the whole URI, for messages that must not quote it. */
  readonly offset: number;
}

/** Splits `part` (starting at `offset` in the URI) at `separator` into name=value pairs. */
function splitAttributes(part: string, offset: number, separator: string, component: string): RawAttribute[] {
  if (part.length === 0) return [];
  const attributes: RawAttribute[] = [];
  let at = offset;
  for (const piece of part.split(separator)) {
    const equals = piece.indexOf('=');
    if (piece.length === 0) throw uriError(`empty ${component} attribute at offset ${at} (two "${separator}" in a row, or one at an end)`);
    if (equals < 0) throw uriError(`${component} attribute at offset ${at} has no "=" (expected name=value)`);
    const name = piece.slice(0, equals);
    if (!NAME.test(name)) throw uriError(`malformed ${component} attribute name at offset ${at} (expected letters, digits, "-" and "_")`);
    attributes.push({ name, value: piece.slice(equals + 1), offset: at + equals + 1 });
    at += piece.length + 1;
  }
  return attributes;
}

/** Percent-decodes one value, checking each character against the component's class (RFC 3986 §2.1, RFC 7512 §2.3). */
function percentDecode(attribute: RawAttribute, extra: string): Uint8Array {
  const { value, name, offset } = attribute;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw uriError(`the ${quoted(name)} attribute has a bad percent-encoding at offset ${offset + i} (expected %XX, two hex digits)`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (UNRESERVED.test(char) || extra.includes(char)) {
      bytes.push(char.charCodeAt(0));
    } else {
      throw uriError(`the ${quoted(name)} attribute has a character that must be percent-encoded at offset ${offset + i}`);
    }
  }
  return Uint8Array.from(bytes);
}

/** A decoded text value: UTF-8, no control characters (a label, path or file name never holds one). */
function decodeText(attribute: RawAttribute, extra: string, maxBytes: number): string {
  const bytes = percentDecode(attribute, extra);
  if (bytes.length > maxBytes) throw uriError(`the ${quoted(attribute.name)} attribute is ${bytes.length} bytes long after decoding; expected at most ${maxBytes}`);
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw uriError(`the ${quoted(attribute.name)} attribute is not valid UTF-8 after percent-decoding`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw uriError(`the ${quoted(attribute.name)} attribute holds a control character`);
  return text;
}

function decodeVersion(attribute: RawAttribute): { major: number; minor: number } {
  const match = /^(\d{1,3})(?:\.(\d{1,3}))?$/.exec(attribute.value);
  const [major, minor] = [Number(match?.[1] ?? NaN), Number(match?.[2] ?? 0)];
  if (match === null || major > 255 || minor > 255) throw uriError('library-version: expected MAJOR or MAJOR.MINOR, each 0..255');
  return { major, minor };
}

function decodeSlotId(attribute: RawAttribute): bigint {
  if (!/^\d{1,20}$/.test(attribute.value)) throw uriError('slot-id: expected a decimal number');
  const id = BigInt(attribute.value);
  if (id >= 1n << 64n) throw uriError('slot-id: expected a number below 2^64');
  return id;
}

/** RFC 7512 §2.3: every pin-value is refused before anything else is looked at, so no later message can be about it. */
function refusePinValue(path: string, query: string | undefined): void {
  const names = [...path.split(';'), ...(query === undefined ? [] : query.split('&'))].map((piece) => piece.split('=', 1)[0]);
  if (names.includes('pin-value')) throw uriError(PIN_VALUE_REFUSED);
}

/**
 * Parses a PKCS#11 URI (RFC 7512 §2.3). Refuses, with DongleError 'uri' (exit 2): pin-value, a repeated
 * attribute, an unknown standard attribute (vendor ones, `x-...`, are kept), a character that should have been
 * percent-encoded, bad percent-encoding or UTF-8, and values that cannot fit the PKCS#11 field they match.
 */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (typeof text !== 'string') throw uriError(`expected a string, got ${typeof text}`);
  if (text.length > MAX_PKCS11_URI_LENGTH) throw uriError(`expected at most ${MAX_PKCS11_URI_LENGTH} characters, got ${text.length}`);
  if (text.slice(0, PKCS11_URI_SCHEME.length).toLowerCase() !== PKCS11_URI_SCHEME) throw uriError(`expected a URI starting with ${PKCS11_URI_SCHEME}`);
  const rest = text.slice(PKCS11_URI_SCHEME.length);
  const question = rest.indexOf('?');
  const path = question < 0 ? rest : rest.slice(0, question);
  const query = question < 0 ? undefined : rest.slice(question + 1);
  refusePinValue(path, query);
  const hash = rest.indexOf('#');
  if (hash >= 0) throw uriError(`a PKCS#11 URI has no fragment ("#" at offset ${PKCS11_URI_SCHEME.length + hash} must be %23)`);

  const uri: Mutable<Pkcs11Uri> = { vendorPath: new Map(), vendorQuery: new Map() };
  const vendorPath = new Map<string, string>();
  const vendorQuery = new Map<string, string>();
  const seen = new Set<string>();
  for (const attribute of splitAttributes(path, PKCS11_URI_SCHEME.length, ';', 'path')) {
    const { name } = attribute;
    if (seen.has(name)) throw uriError(`the path attribute ${quoted(name)} appears twice (RFC 7512 allows each once)`);
    seen.add(name);
    const textual = TEXT_PATH_ATTRIBUTES.get(name);
    if (textual !== undefined) uri[textual.field] = decodeText(attribute, PATH_EXTRA, textual.maxBytes);
    else if (name === 'slot-id') uri.slotId = decodeSlotId(attribute);
    else if (name === 'library-version') uri.libraryVersion = decodeVersion(attribute);
    else if (name === 'id') uri.id = percentDecode(attribute, PATH_EXTRA);
    else if (name === 'type') {
      const type = OBJECT_TYPES.find((candidate) => candidate === attribute.value);
      if (type === undefined) throw uriError(`type: expected one of ${OBJECT_TYPES.join(', ')}`);
      uri.type = type;
    } else if (name.startsWith('x-') && name.length > 2) vendorPath.set(name, decodeText(attribute, PATH_EXTRA, 1024));
    else throw uriError(`unknown path attribute ${quoted(name)} (RFC 7512 names ${KNOWN_PATH.join(', ')}; vendor attributes start with x-)`);
  }
  const seenQuery = new Set<string>();
  for (const attribute of splitAttributes(query ?? '', PKCS11_URI_SCHEME.length + question + 1, '&', 'query')) {
    const { name } = attribute;
    if (seenQuery.has(name)) throw uriError(`the query attribute ${quoted(name)} appears twice`);
    seenQuery.add(name);
    if (name === 'module-path') uri.modulePath = decodeText(attribute, QUERY_EXTRA, 4096);
    else if (name === 'module-name') uri.moduleName = decodeText(attribute, QUERY_EXTRA, 255);
    else if (name === 'pin-source') uri.pinSource = decodeText(attribute, QUERY_EXTRA, 4096);
    else if (name.startsWith('x-') && name.length > 2) vendorQuery.set(name, decodeText(attribute, QUERY_EXTRA, 4096));
    else throw uriError(`unknown query attribute ${quoted(name)} (RFC 7512 names ${QUERY_ATTRIBUTES.join(', ')} and pin-value; vendor attributes start with x-)`);
  }
  if (uri.modulePath !== undefined && !uri.modulePath.startsWith('/')) throw uriError('module-path: expected an absolute path (starting with /)');
  if (uri.moduleName !== undefined && !/^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/.test(uri.moduleName)) {
    throw uriError('module-name: expected a library name such as softhsm2 or opensc-pkcs11 (no "/"), or use module-path');
  }
  if (uri.pinSource !== undefined && uri.pinSource.length === 0) throw uriError('pin-source: expected file:/path, got an empty value');
  uri.vendorPath = vendorPath;
  uri.vendorQuery = vendorQuery;
  return Object.freeze(uri);
}

/**
 * Parses the URI of a dongle token: RFC 7512 (parsePkcs11Uri), plus what naming a dongle needs: a module
 * (module-path, or module-name), a token (token= or serial=), a PIN source that is a file, and nothing that
 * picks an object (the dongle's own objects are fixed) or that this program cannot match (a vendor path
 * attribute makes a URI match nothing, RFC 7512 §3.3).
 */
export function parseDongleUri(text: string): Pkcs11Uri {
  const uri = parsePkcs11Uri(text);
  if (uri.modulePath === undefined && uri.moduleName === undefined) {
    throw uriError('a dongle URI needs module-path=/path/to/module.so (or module-name=NAME) to say which PKCS#11 module to load');
  }
  if ((uri.token ?? '') === '' && (uri.serial ?? '') === '') throw uriError('a dongle URI needs token=LABEL or serial=SERIAL to say which token is the dongle');
  const objectAttributes = (['object', 'id', 'type'] as const).filter((name) => uri[name] !== undefined);
  if (objectAttributes.length > 0) {
    throw uriError(`a dongle URI names a token, not an object: drop ${objectAttributes.join(', ')} (the dongle's key and data objects are its own)`);
  }
  const [vendor] = uri.vendorPath.keys();
  if (vendor !== undefined) throw uriError(`the vendor attribute ${quoted(vendor)} is not known here, and a URI with one matches no token (RFC 7512 §3.3)`);
  if (uri.pinSource !== undefined && !uri.pinSource.startsWith('file:')) throw uriError('pin-source: expected file:/path to a file holding the PIN');
  return uri;
}

/** Percent-encodes everything outside the component's class (and "%" itself). */
function encode(value: string | Uint8Array, extra: string): string {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  let out = '';
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && (UNRESERVED.test(char) || extra.includes(char)) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The URI in one canonical form, for messages and `Dongle.uri`: no pin-value (never accepted) and no vendor query attribute. */
export function formatPkcs11Uri(uri: Pkcs11Uri): string {
  const path: string[] = [];
  const text = (name: string, value: string | undefined): void => {
    if (value !== undefined) path.push(`${name}=${encode(value, PATH_EXTRA.replace('&', ''))}`);
  };
  text('token', uri.token);
  text('manufacturer', uri.manufacturer);
  text('model', uri.model);
  text('serial', uri.serial);
  text('slot-description', uri.slotDescription);
  text('slot-manufacturer', uri.slotManufacturer);
  if (uri.slotId !== undefined) path.push(`slot-id=${uri.slotId}`);
  text('library-manufacturer', uri.libraryManufacturer);
  text('library-description', uri.libraryDescription);
  if (uri.libraryVersion !== undefined) path.push(`library-version=${uri.libraryVersion.major}.${uri.libraryVersion.minor}`);
  text('object', uri.object);
  if (uri.id !== undefined) path.push(`id=${encode(uri.id, '')}`);
  if (uri.type !== undefined) path.push(`type=${uri.type}`);
  for (const [name, value] of uri.vendorPath) text(name, value);
  const query: string[] = [];
  if (uri.moduleName !== undefined) query.push(`module-name=${encode(uri.moduleName, QUERY_EXTRA.replace(';', ''))}`);
  if (uri.modulePath !== undefined) query.push(`module-path=${encode(uri.modulePath, QUERY_EXTRA.replace(';', ''))}`);
  if (uri.pinSource !== undefined) query.push(`pin-source=${encode(uri.pinSource, QUERY_EXTRA.replace(';', ''))}`);
  return `${PKCS11_URI_SCHEME}${path.join(';')}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}
