// The rental keyfile (patent 003 [0063]-[0075]; DESIGN.md "Software rental"): vendor-signed, naming the program, the
// customer's card (serial, public key, key mode: the trust root of ValidateTrail, never GET PUBLIC KEY), the counter
// value the trail starts at (the offset), the card kinds it accepts, access rights that switch program functions
// ([0072]), rental thresholds (thresholds.ts), the customer information encrypted for the vendor only ([0069]), and
// decoy bits ([0068]) around the customer information string (CIS) at a place that differs in every keyfile.
//
// Layout: "VRKF" ‖ 01 ‖ CIS offset (4) ‖ CIS length (4) ‖ blob length (4) ‖ blob ‖ Ed25519 signature (64) over all
// that precedes it. The blob is random decoy bytes with the CIS (UTF-8 JSON) at the offset. In an open-source
// program the decoys hide nothing from someone who reads this file: they make keyfiles look random and differ in
// layout, as [0068]-[0069] ask; what protects a keyfile is the vendor's signature ([0073]).
//
// The signed information also names the attester key that vouched for the card's kind ([0096]: the vendor "may wish
// to validate the smart card manufacturer and/or personalizer"), the validation services whose validator records the
// program trusts ([0094]), and, for a keyfile reissued past a hole ([0062]), the id of the keyfile it replaces.
import { randomBytes, randomInt } from 'node:crypto';
import type { VscKeyMode } from '../apdu/index.js';
import { AttestationError, checkAttestationFor, readCardAttestation, verifyCardAttestation } from '../card-attestation/index.js';
import { bytesToUint, concatBytes, constantTimeEqual, fromHex, fromUtf8, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { ed25519Verify, openSealedBox, sealToPublicKey } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import type { VendorKeys } from './vendor.js';

const MAGIC = utf8('VRKF');
const VERSION = 0x01;
const HEADER_LENGTH = MAGIC.length + 1 + 4 + 4 + 4;
const SIGNATURE_LENGTH = 64;
const CIS_FORMAT = 'vsc-keyfile/1';
/** [0068]: "approximately 480,000 decoy bits ... can fit into a standard e-mail message". */
export const DEFAULT_DECOY_BITS = 480_000;
const MAX_DECOY_BITS = 8_000_000;
const MAX_CIS_BYTES = 1024 * 1024;
const CUSTOMER_PURPOSE = 'rental keyfile customer information';

/**
 * How a card keeps its signing key (DESIGN.md "Software rental", trust model): `software` (opened on the
 * customer's machine: an emulated or server-backed card, whose owner can extract it), `token` (a dongle card with
 * keys on the token), `server-held` (signed on a VSC server the vendor trusts).
 */
export type CardKind = 'software' | 'token' | 'server-held';
export const CARD_KINDS: readonly CardKind[] = ['software', 'token', 'server-held'];

export interface KeyfileCard {
  readonly serial: string;
  /** Ed25519 public key of the card's SIGN AND INCREMENT key (32 bytes). */
  readonly publicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
  readonly kind: CardKind;
}

export interface KeyfileInput {
  readonly program: string;
  readonly card: KeyfileCard;
  /** The counter value the trail starts at ([0060]: validation starts here, never at the trail's first record). */
  readonly offset: bigint;
  /** The kinds of card this keyfile accepts; `software` only with the vendor's explicit consent. */
  readonly acceptedKinds: readonly CardKind[];
  /** [0072] access rights: names of program functions this keyfile switches on. */
  readonly rights?: readonly string[];
  /** Threshold specs (thresholds.ts), checked by the caller. */
  readonly thresholds?: readonly string[];
  /** Who the customer is, readable by the vendor only ([0069]). */
  readonly customer?: string;
  /** [0094]: Ed25519 keys of the validation services whose validator records the program trusts. */
  readonly validatorKeys?: readonly Uint8Array[];
  /** [0096]: the attester key whose attestation made the card `token` or `server-held` (none for `software`). */
  readonly attesterKey?: Uint8Array;
  /** [0062]: the id of the keyfile this one replaces (`vsc keyfile reissue`). */
  readonly replaces?: Uint8Array;
}

export interface Keyfile extends Required<Omit<KeyfileInput, 'customer' | 'attesterKey' | 'replaces'>> {
  readonly id: Uint8Array;
  readonly vendor: { readonly name: string; readonly signingKey: Uint8Array };
  readonly issuedAt: string;
  /** The customer information sealed to the vendor's encryption key, if any. */
  readonly customer: Uint8Array | undefined;
  readonly attesterKey: Uint8Array | undefined;
  readonly replaces: Uint8Array | undefined;
  /** The signed bytes as stored. */
  readonly bytes: Uint8Array;
}

/** A keyfile that is malformed, modified, signed by someone else, or made for another card. */
export class KeyfileError extends VscError {
  override readonly name = 'KeyfileError';
  constructor(code: string, message: string, exitCode: ExitCode = ExitCode.refusedByState) {
    super(`keyfile.${code}`, message, { exitCode });
  }
}

const NAME = /^[\x21-\x7e]{1,64}$/;
/** More would only make keyfiles long: a vendor trusts a few services. */
export const MAX_VALIDATOR_KEYS = 16;

/**
 * DESIGN.md "Software rental": a universal key ([0098]-[0102]) is shared by every customer, so one key extracted from
 * one customer's machine would forge every customer's trail. Only a key on a token, which never leaves it, may be one.
 */
function universalProblem(card: { readonly keyMode: VscKeyMode; readonly kind: CardKind }): string | undefined {
  if (card.keyMode !== 'universal' || card.kind === 'token') return undefined;
  return `a universal-key card is accepted only as kind token (its key on a token, attested), not ${card.kind}: one universal key extracted from a customer's machine would forge every customer's trail`;
}

function checkInput(input: KeyfileInput): void {
  if (!NAME.test(input.program)) throw new KeyfileError('input', 'expected a program name of 1..64 printable ASCII characters without spaces', ExitCode.usage);
  if (!NAME.test(input.card.serial)) throw new KeyfileError('input', 'expected a card serial of 1..64 printable ASCII characters', ExitCode.usage);
  if (input.card.publicKey.length !== 32) throw new KeyfileError('input', 'expected a 32-byte Ed25519 card public key', ExitCode.usage);
  if (input.offset < 0n || input.offset >= 1n << 128n) throw new KeyfileError('input', 'expected an offset in 0..2^128-1', ExitCode.usage);
  if (!input.acceptedKinds.includes(input.card.kind)) {
    throw new KeyfileError('card-kind', `the card is of kind ${input.card.kind}, which this keyfile would not accept (accepted: ${input.acceptedKinds.join(', ')})`);
  }
  for (const right of input.rights ?? []) if (!NAME.test(right)) throw new KeyfileError('input', `expected an access right of 1..64 printable ASCII characters, got ${JSON.stringify(right.slice(0, 40))}`, ExitCode.usage);
  const universal = universalProblem(input.card);
  if (universal !== undefined) throw new KeyfileError('card-kind', universal);
  const { attesterKey, validatorKeys = [], replaces } = input;
  if (input.card.kind === 'software' ? attesterKey !== undefined : attesterKey?.length !== 32) {
    throw new KeyfileError('input', input.card.kind === 'software' ? 'a software card has no attester key' : `a ${input.card.kind} card needs the 32-byte key of the attester that vouched for it`, ExitCode.usage);
  }
  if (validatorKeys.length > MAX_VALIDATOR_KEYS || validatorKeys.some((key) => !(key instanceof Uint8Array) || key.length !== 32)) {
    throw new KeyfileError('input', `expected at most ${MAX_VALIDATOR_KEYS} validator keys of 32 bytes each`, ExitCode.usage);
  }
  if (new Set(validatorKeys.map(toHex)).size !== validatorKeys.length) throw new KeyfileError('input', 'expected each validator key once', ExitCode.usage);
  if (replaces !== undefined && replaces.length !== 16) throw new KeyfileError('input', 'expected the replaced keyfile\'s 16-byte id', ExitCode.usage);
}

/** [0067]-[0069]: the vendor's keyfile generator. */
export function createKeyfile(vendor: VendorKeys, input: KeyfileInput, options: { decoyBits?: number } = {}): Uint8Array {
  checkInput(input);
  const decoyBits = options.decoyBits ?? DEFAULT_DECOY_BITS;
  if (!Number.isInteger(decoyBits) || decoyBits < 0 || decoyBits > MAX_DECOY_BITS) throw new KeyfileError('input', `expected 0..${MAX_DECOY_BITS} decoy bits`, ExitCode.usage);
  const id = Uint8Array.from(randomBytes(16));
  const customer = input.customer === undefined ? null : toHex(sealToPublicKey(vendor.encryptionKey, CUSTOMER_PURPOSE, id, utf8(input.customer)));
  const cis = utf8(JSON.stringify({
    format: CIS_FORMAT, id: toHex(id), vendor: { name: vendor.name, signingKey: toHex(vendor.signingKey) }, program: input.program, issuedAt: new Date().toISOString(),
    card: { serial: input.card.serial, publicKey: toHex(input.card.publicKey), keyMode: input.card.keyMode, kind: input.card.kind },
    acceptedKinds: [...input.acceptedKinds], offset: input.offset.toString(), rights: [...(input.rights ?? [])], thresholds: [...(input.thresholds ?? [])], customer,
    validators: (input.validatorKeys ?? []).map(toHex), attester: input.attesterKey === undefined ? null : toHex(input.attesterKey),
    replaces: input.replaces === undefined ? null : toHex(input.replaces),
  }));
  const decoys = Uint8Array.from(randomBytes(Math.ceil(decoyBits / 8)));
  const at = randomInt(0, decoys.length + 1);
  const blob = concatBytes(decoys.subarray(0, at), cis, decoys.subarray(at));
  const signed = concatBytes(MAGIC, Uint8Array.of(VERSION), uintToBytes(BigInt(at), 4), uintToBytes(BigInt(cis.length), 4), uintToBytes(BigInt(blob.length), 4), blob);
  return concatBytes(signed, vendor.signer.sign(signed));
}

/** Parses without checking the signature (for `vsc keyfile inspect` without the vendor key); never trust the result. */
export function readKeyfileUnchecked(bytes: Uint8Array): Keyfile {
  const malformed = (why: string) => new KeyfileError('malformed', `not a rental keyfile: ${why}`);
  if (bytes.length < HEADER_LENGTH + SIGNATURE_LENGTH || !constantTimeEqual(bytes.subarray(0, MAGIC.length), MAGIC)) throw malformed('wrong magic or too short');
  if (bytes[MAGIC.length] !== VERSION) throw malformed('unknown version');
  const field = (offset: number) => Number(bytesToUint(bytes.subarray(offset, offset + 4)));
  const at = field(MAGIC.length + 1);
  const cisLength = field(MAGIC.length + 5);
  const blobLength = field(MAGIC.length + 9);
  if (bytes.length !== HEADER_LENGTH + blobLength + SIGNATURE_LENGTH) throw malformed('its length does not match its header');
  if (cisLength > MAX_CIS_BYTES || at + cisLength > blobLength) throw malformed('the customer information lies outside the keyfile');
  let cis: Record<string, unknown>;
  try {
    cis = JSON.parse(fromUtf8(bytes.subarray(HEADER_LENGTH + at, HEADER_LENGTH + at + cisLength))) as Record<string, unknown>;
  } catch {
    throw malformed('the customer information is not JSON');
  }
  return decodeCis(cis, bytes, malformed);
}

function decodeCis(cis: Record<string, unknown>, bytes: Uint8Array, malformed: (why: string) => KeyfileError): Keyfile {
  if (typeof cis !== 'object' || cis === null || cis['format'] !== CIS_FORMAT) throw malformed(`expected format ${CIS_FORMAT}`);
  const text = (value: unknown, what: string, pattern = NAME): string => {
    if (typeof value !== 'string' || !pattern.test(value)) throw malformed(`bad ${what}`);
    return value;
  };
  const hex = (value: unknown, what: string, length: number): Uint8Array => fromHex(text(value, what, new RegExp(`^[0-9a-f]{${length * 2}}$`)));
  const list = (value: unknown, what: string, pattern: RegExp): string[] => {
    if (!Array.isArray(value) || value.length > 64) throw malformed(`bad ${what}`);
    return value.map((item) => text(item, what, pattern));
  };
  const vendor = cis['vendor'] as Record<string, unknown> | undefined;
  const card = cis['card'] as Record<string, unknown> | undefined;
  if (typeof vendor !== 'object' || vendor === null || typeof card !== 'object' || card === null) throw malformed('missing vendor or card');
  const kind = text(card['kind'], 'card kind', /^(software|token|server-held)$/) as CardKind;
  const keyMode = text(card['keyMode'], 'key mode', /^(individual|universal)$/) as VscKeyMode;
  const offset = BigInt(text(cis['offset'], 'offset', /^(0|[1-9][0-9]{0,38})$/));
  const customer = cis['customer'];
  if (customer !== null && (typeof customer !== 'string' || !/^([0-9a-f]{2})+$/.test(customer))) throw malformed('bad customer information');
  // Absent in keyfiles issued before validators and attestations: none.
  const optionalKey = (value: unknown, what: string, length: number): Uint8Array | undefined => (value === undefined || value === null ? undefined : hex(value, what, length));
  const validators = cis['validators'] === undefined ? [] : list(cis['validators'], 'validator keys', /^[0-9a-f]{64}$/).map(fromHex);
  if (validators.length > MAX_VALIDATOR_KEYS) throw malformed('bad validator keys');
  const vendorName = vendor['name'];
  if (typeof vendorName !== 'string' || vendorName.length === 0 || vendorName.length > 200) throw malformed('bad vendor name');
  return {
    id: hex(cis['id'], 'id', 16),
    vendor: { name: vendorName, signingKey: hex(vendor['signingKey'], 'vendor key', 32) },
    program: text(cis['program'], 'program'),
    issuedAt: text(cis['issuedAt'], 'issue time', /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}Z$/),
    card: { serial: text(card['serial'], 'card serial'), publicKey: hex(card['publicKey'], 'card public key', 32), keyMode, kind },
    acceptedKinds: list(cis['acceptedKinds'], 'accepted kinds', /^(software|token|server-held)$/) as CardKind[],
    offset,
    rights: list(cis['rights'], 'access rights', NAME),
    thresholds: list(cis['thresholds'], 'thresholds', /^[\x20-\x7e]{1,500}$/),
    customer: typeof customer === 'string' ? fromHex(customer) : undefined,
    validatorKeys: validators,
    attesterKey: optionalKey(cis['attester'], 'attester key', 32),
    replaces: optionalKey(cis['replaces'], 'replaced keyfile id', 16),
    bytes,
  };
}

/**
 * [0070], [0073]: a keyfile is valid when the vendor key built into the program verifies its signature. A keyfile of
 * another vendor and a modified one are refused (exit 3), as is one whose card kind it does not itself accept.
 */
export function verifyKeyfile(bytes: Uint8Array, vendorSigningKey: Uint8Array): Keyfile {
  const keyfile = readKeyfileUnchecked(bytes);
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_LENGTH);
  if (!constantTimeEqual(keyfile.vendor.signingKey, vendorSigningKey)) {
    throw new KeyfileError('foreign', `this keyfile was issued by vendor key ${toHex(keyfile.vendor.signingKey).slice(0, 16)}…, not by this program's vendor ${toHex(vendorSigningKey).slice(0, 16)}…`);
  }
  if (!ed25519Verify(vendorSigningKey, signed, bytes.subarray(bytes.length - SIGNATURE_LENGTH))) {
    throw new KeyfileError('signature', 'the keyfile\'s vendor signature does not verify: it was modified');
  }
  if (!keyfile.acceptedKinds.includes(keyfile.card.kind)) throw new KeyfileError('card-kind', `the keyfile names a ${keyfile.card.kind} card but accepts only ${keyfile.acceptedKinds.join(', ')}`);
  const universal = universalProblem(keyfile.card);
  if (universal !== undefined) throw new KeyfileError('card-kind', universal);
  return keyfile;
}

/** [0069]: the vendor identifies a keyfile's customer, e.g. one found on a bulletin board. */
export function openCustomerInformation(vendor: VendorKeys, keyfile: Keyfile): string | undefined {
  if (keyfile.customer === undefined) return undefined;
  const opened = openSealedBox(vendor.decryptionKey, CUSTOMER_PURPOSE, keyfile.id, keyfile.customer);
  if (opened === undefined) throw new KeyfileError('customer', 'the customer information does not open with this vendor\'s key', ExitCode.authenticationFailed);
  return fromUtf8(opened);
}

/** The card as read through the reader: what an attestation must be about. */
export interface ReadCard {
  readonly serial: string;
  readonly publicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
}

/**
 * [0096]: the card's kind for a keyfile. With an attestation signed by one of the `trusted` attester keys and about
 * this very card (serial, public key, key mode), the attested kind and the attester's key; without one, `software`.
 * A malformed, untrusted, forged or mismatching attestation is refused (AttestationError, exit 3), never downgraded.
 */
export function attestedCard(card: ReadCard, attestation: Uint8Array | undefined, trusted: readonly Uint8Array[]): KeyfileCard & { readonly attesterKey?: Uint8Array } {
  if (attestation === undefined) return { ...card, kind: 'software' };
  const parsed = readCardAttestation(attestation);
  if (trusted.length === 0) throw new AttestationError('untrusted', `the attestation of card ${parsed.serial} is signed by ${parsed.attester}, but no attester key is trusted`);
  verifyCardAttestation(parsed, trusted);
  checkAttestationFor(parsed, card);
  return { ...card, kind: parsed.kind, attesterKey: parsed.attesterKey };
}

/**
 * [0062] "The vendor may, for example, issue a new keyfile upon some customers' requests": after a hole the customer's
 * trail cannot pass, a keyfile for the same program, card, kinds, rights, thresholds, validators and customer, with a
 * new id and the trail starting at `offset` (at or above the old one). Refuses a keyfile this vendor did not sign.
 */
export function reissueKeyfile(vendor: VendorKeys, oldBytes: Uint8Array, offset: bigint, options: { decoyBits?: number } = {}): { readonly bytes: Uint8Array; readonly old: Keyfile } {
  const old = verifyKeyfile(oldBytes, vendor.signingKey);
  if (typeof offset !== 'bigint' || offset < old.offset) throw new KeyfileError('offset', `the new offset ${String(offset)} is below the old keyfile's offset ${old.offset}: a reissued keyfile never reaches back before it`);
  const customer = openCustomerInformation(vendor, old);
  const bytes = createKeyfile(vendor, {
    program: old.program, card: old.card, offset, acceptedKinds: old.acceptedKinds, rights: old.rights, thresholds: old.thresholds,
    validatorKeys: old.validatorKeys, replaces: old.id, ...(old.attesterKey === undefined ? {} : { attesterKey: old.attesterKey }), ...(customer === undefined ? {} : { customer }),
  }, options);
  return { bytes, old };
}
