// A card attestation (DESIGN.md "Software rental", trust model): a party the software vendor trusts says, under its
// Ed25519 key, that card SERIAL signs SIGN AND INCREMENT with public key P in key mode M, and that P's private half
// is out of the card owner's reach: `server-held` (sealed to a VSC server that runs SIGN AND INCREMENT itself) or
// `token` (generated on, or imported non-extractable into, a dongle's token). The keyfile generator accepts a card
// of one of these kinds only with an attestation signed by a key the vendor names (patent 003 [0096]: "the vendor
// ... may wish to validate the smart card manufacturer and/or personalizer").
//
// File: one JSON object (UTF-8, LF-terminated), fields as lowercase hex. The signed message is the domain string
// followed by each claim as a 4-byte big-endian length and its bytes, in the order of SIGNED_FIELDS, so no two claim
// sets share a message.
import type { VscKeyMode } from '../apdu/index.js';
import { concatBytes, fromHex, fromUtf8, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';

export type AttestedKind = 'token' | 'server-held';
export const ATTESTED_KINDS: readonly AttestedKind[] = ['token', 'server-held'];

const FORMAT = 'vsc-card-attestation/1';
const DOMAIN = utf8('vsc card attestation v1\0');
const MAX_FILE_BYTES = 16 * 1024;
const NAME = /^[\x20-\x7e]{1,128}$/;
const SERIAL = /^[\x21-\x7e]{1,64}$/;
const HEX = /^(?:[0-9a-f]{2})+$/;

/** What the attester vouches for. */
export interface CardAttestationClaims {
  readonly serial: string;
  /** Ed25519 public key of the card's SIGN AND INCREMENT key (32 bytes). */
  readonly publicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
  readonly kind: AttestedKind;
  /** Who attests, for people: "VSC server vsc.example.org", "issuing authority ACME". */
  readonly attester: string;
  /** When, ISO 8601 UTC. */
  readonly issuedAt: string;
}

export interface CardAttestation extends CardAttestationClaims {
  /** The attester's Ed25519 public key (32 bytes): trusted only if the vendor names it. */
  readonly attesterKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** A key that signs attestations: a VSC server's, an issuing authority's. */
export interface AttestationSigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** An attestation that is malformed, signed by a key nobody trusts, forged, or about another card. */
export class AttestationError extends VscError {
  override readonly name = 'AttestationError';
  constructor(code: 'malformed' | 'untrusted' | 'forged' | 'mismatch' | 'input', message: string) {
    super(`attestation.${code}`, message, { exitCode: code === 'input' ? ExitCode.usage : ExitCode.refusedByState });
  }
}

function checkClaims(claims: CardAttestationClaims, error: (why: string) => AttestationError): void {
  if (typeof claims.serial !== 'string' || !SERIAL.test(claims.serial)) throw error('expected a card serial of 1..64 printable ASCII characters');
  if (!(claims.publicKey instanceof Uint8Array) || claims.publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw error('expected a 32-byte Ed25519 card public key');
  if (claims.keyMode !== 'individual' && claims.keyMode !== 'universal') throw error('expected the key mode "individual" or "universal"');
  if (!ATTESTED_KINDS.includes(claims.kind)) throw error(`expected the kind ${ATTESTED_KINDS.map((kind) => `"${kind}"`).join(' or ')}`);
  if (claims.kind === 'server-held' && claims.keyMode !== 'individual') throw error('a server-held card has an individual key');
  if (typeof claims.attester !== 'string' || !NAME.test(claims.attester)) throw error('expected an attester name of 1..128 printable ASCII characters');
  if (typeof claims.issuedAt !== 'string' || Number.isNaN(Date.parse(claims.issuedAt)) || new Date(claims.issuedAt).toISOString() !== claims.issuedAt) {
    throw error('expected issuedAt as an ISO 8601 UTC time');
  }
}

const SIGNED_FIELDS = ['serial', 'publicKey', 'keyMode', 'kind', 'attester', 'issuedAt', 'attesterKey'] as const;

/** The bytes the attester signs: the domain, then every claim and the attester's own key, length-prefixed. */
export function attestationMessage(claims: CardAttestationClaims, attesterKey: Uint8Array): Uint8Array {
  const values: Record<(typeof SIGNED_FIELDS)[number], Uint8Array> = {
    serial: utf8(claims.serial), publicKey: claims.publicKey, keyMode: utf8(claims.keyMode), kind: utf8(claims.kind),
    attester: utf8(claims.attester), issuedAt: utf8(claims.issuedAt), attesterKey,
  };
  return concatBytes(DOMAIN, ...SIGNED_FIELDS.flatMap((field) => [uintToBytes(BigInt(values[field].length), 4), values[field]]));
}

/** Signs `claims` and returns the attestation file's bytes. */
export async function issueCardAttestation(signer: AttestationSigner, claims: CardAttestationClaims): Promise<Uint8Array> {
  checkClaims(claims, (why) => new AttestationError('input', why));
  if (signer.publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new AttestationError('input', 'expected a 32-byte Ed25519 attester key');
  const signature = await signer.sign(attestationMessage(claims, signer.publicKey));
  if (signature.length !== ED25519_SIGNATURE_LENGTH) throw new AttestationError('input', 'the attester\'s key did not give a 64-byte Ed25519 signature');
  return utf8(`${JSON.stringify({
    format: FORMAT, serial: claims.serial, publicKey: toHex(claims.publicKey), keyMode: claims.keyMode, kind: claims.kind,
    attester: claims.attester, issuedAt: claims.issuedAt, attesterKey: toHex(signer.publicKey), signature: toHex(signature),
  })}\n`);
}

function hexField(value: unknown, name: string, length: number): Uint8Array {
  if (typeof value !== 'string' || !HEX.test(value) || value.length !== length * 2) throw new AttestationError('malformed', `not a card attestation: expected "${name}" as ${length} bytes of lowercase hex`);
  return fromHex(value);
}

/** Parses an attestation file. Checks its shape only: verifyCardAttestation says whether to believe it. */
export function readCardAttestation(bytes: Uint8Array): CardAttestation {
  if (bytes.length > MAX_FILE_BYTES) throw new AttestationError('malformed', `not a card attestation: longer than ${MAX_FILE_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new AttestationError('malformed', 'not a card attestation: not a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AttestationError('malformed', 'not a card attestation: not a JSON object');
  const fields = parsed as Record<string, unknown>;
  if (fields['format'] !== FORMAT) throw new AttestationError('malformed', `not a card attestation: expected "format": "${FORMAT}"`);
  const attestation = {
    serial: fields['serial'] as string, publicKey: hexField(fields['publicKey'], 'publicKey', ED25519_PUBLIC_KEY_LENGTH),
    keyMode: fields['keyMode'] as VscKeyMode, kind: fields['kind'] as AttestedKind, attester: fields['attester'] as string, issuedAt: fields['issuedAt'] as string,
    attesterKey: hexField(fields['attesterKey'], 'attesterKey', ED25519_PUBLIC_KEY_LENGTH), signature: hexField(fields['signature'], 'signature', ED25519_SIGNATURE_LENGTH),
  };
  checkClaims(attestation, (why) => new AttestationError('malformed', `not a card attestation: ${why}`));
  return attestation;
}

/**
 * Believes `attestation` only if its attester key is one of `trusted` and its signature verifies; otherwise throws
 * (`untrusted`, `forged`). Comparing public keys needs no constant time: they are not secret.
 */
export function verifyCardAttestation(attestation: CardAttestation, trusted: readonly Uint8Array[]): void {
  const key = toHex(attestation.attesterKey);
  if (!trusted.some((candidate) => toHex(candidate) === key)) {
    throw new AttestationError('untrusted', `the attestation of card ${attestation.serial} is signed by ${attestation.attester} with key ${key}, which is not among the trusted attester keys`);
  }
  if (!ed25519Verify(attestation.attesterKey, attestationMessage(attestation, attestation.attesterKey), attestation.signature)) {
    throw new AttestationError('forged', `the attestation of card ${attestation.serial} does not verify against ${attestation.attester}'s key ${key}: it was forged or modified`);
  }
}

/** The attestation must be about this card: the serial, public key and key mode read through the reader. */
export function checkAttestationFor(attestation: CardAttestation, card: { readonly serial: string; readonly publicKey: Uint8Array; readonly keyMode: VscKeyMode }): void {
  if (attestation.serial !== card.serial) throw new AttestationError('mismatch', `the attestation is about card ${attestation.serial}, not card ${card.serial}`);
  if (toHex(attestation.publicKey) !== toHex(card.publicKey)) throw new AttestationError('mismatch', `the attestation names another public key than card ${card.serial} shows`);
  if (attestation.keyMode !== card.keyMode) throw new AttestationError('mismatch', `the attestation says card ${card.serial} has a ${attestation.keyMode} key, but it signs with a ${card.keyMode} key`);
}
