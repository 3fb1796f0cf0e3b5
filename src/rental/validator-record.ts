// The validator record of patent 003 [0094]: "the trusted service periodically validates an audit trail and then
// appends a new audit record, the validator record, that securely vouches for the previous records ... a digital
// signature of the hash of all preceding audit records ... Henceforth, rented applications need not validate digital
// signatures of records that precede the validator record."
//
// The service signs (Ed25519, its own key, validator-keys.ts) the message
//   DOMAIN ‖ for each of keyfile id (16 bytes), card serial (UTF-8), card key digest (16 bytes), program (UTF-8),
//   counter c (16 bytes), records digest (32 bytes), summary text (UTF-8): a 4-byte big-endian length, then the bytes
// where the records digest is SHA-256 over the card-signed digests (recordDigest) of the records it checked, in trail
// order, from the program's start (the keyfile's offset or the previous validator record) up to c - 1, and the summary
// is the program's usage below c. The program writes, at exactly counter c, the record (usage-text.ts grammar)
//   PROGRAM validated C usage SUMMARY records DIGEST public key KEYDIGEST attest SIGNATURE
// which carries everything the message holds except what the keyfile names, so a program checks it alone.
import { COUNTER_LENGTH } from '../apdu/index.js';
import { concatBytes, fromHex, toHex, uintToBytes, utf8 } from '../bytes/index.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Verify, sha256 } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { encodeRecordLine, NONCE_LENGTH, recordDigest, recordTextProblem, type AuditRecord, type TrustRoot } from './audit-record.js';
import type { Keyfile } from './rental-keyfile.js';
import { formatUsageSummary, formatUsageText, parseUsageSummary, parseUsageText, usageBinding, type UsageBinding, type UsageEntry, type UsageSummary } from './usage-text.js';

const DOMAIN = utf8('vsc validator record v1\0');
const COUNTER_LIMIT = 1n << 128n;

/** What a validation service vouches for. */
export interface ValidatorClaim {
  readonly keyfileId: Uint8Array;
  readonly serial: string;
  /** The card key's digest as in the records' texts (cardKeyDigest): 32 lowercase hex digits. */
  readonly keyDigest: string;
  readonly program: string;
  /** The counter the validator record is written at; the summary covers the counters below it. */
  readonly counter: bigint;
  readonly recordsDigest: Uint8Array;
  readonly summary: UsageSummary;
}

/** A validation service that refused, answered nonsense, or could not be reached. */
export class ValidationServiceError extends VscError {
  override readonly name = 'ValidationServiceError';
  constructor(code: string, message: string, options: { exitCode?: ExitCode; cause?: unknown } = {}) {
    super(`validation-service.${code}`, message, { exitCode: options.exitCode ?? ExitCode.refusedByState, cause: options.cause });
  }
}

/** The claim about `keyfile`'s program and card at counter `counter`. */
export function claimFor(keyfile: Keyfile, counter: bigint, recordsDigest: Uint8Array, summary: UsageSummary): ValidatorClaim {
  const { keyDigest } = usageBinding(keyfile.program, keyfile.card.publicKey);
  return { keyfileId: keyfile.id, serial: keyfile.card.serial, keyDigest, program: keyfile.program, counter, recordsDigest, summary };
}

/** The bytes the service signs (see the file's header). */
export function validatorMessage(claim: ValidatorClaim): Uint8Array {
  const { keyfileId, serial, keyDigest, program, counter, recordsDigest, summary } = claim;
  if (!(keyfileId instanceof Uint8Array) || keyfileId.length !== 16) throw new ValidationServiceError('input', 'expected a 16-byte keyfile id', { exitCode: ExitCode.usage });
  if (!(recordsDigest instanceof Uint8Array) || recordsDigest.length !== 32) throw new ValidationServiceError('input', 'expected a 32-byte records digest', { exitCode: ExitCode.usage });
  if (typeof counter !== 'bigint' || counter < 0n || counter >= COUNTER_LIMIT) throw new ValidationServiceError('input', 'expected the counter in 0..2^128-1', { exitCode: ExitCode.usage });
  if (typeof keyDigest !== 'string' || !/^[0-9a-f]{32}$/.test(keyDigest)) throw new ValidationServiceError('input', 'expected the card key digest as 32 lowercase hex digits', { exitCode: ExitCode.usage });
  if (summary?.next !== counter) throw new ValidationServiceError('input', `expected a summary of the counters below ${counter}`, { exitCode: ExitCode.usage });
  const fields = [keyfileId, utf8(serial), fromHex(keyDigest), utf8(program), uintToBytes(counter, COUNTER_LENGTH), recordsDigest, utf8(formatUsageSummary(summary))];
  return concatBytes(DOMAIN, ...fields.flatMap((field) => [uintToBytes(BigInt(field.length), 4), field]));
}

/** The service's attest: its Ed25519 signature of the claim. */
export function signValidatorClaim(signer: { sign(message: Uint8Array): Uint8Array }, claim: ValidatorClaim): Uint8Array {
  return signer.sign(validatorMessage(claim));
}

/** The one of `keys` whose signature `attest` is over the claim, or undefined. */
export function verifyValidatorClaim(claim: ValidatorClaim, attest: Uint8Array, keys: readonly Uint8Array[]): Uint8Array | undefined {
  if (!(attest instanceof Uint8Array) || attest.length !== ED25519_SIGNATURE_LENGTH) return undefined;
  const message = validatorMessage(claim);
  return keys.find((key) => ed25519Verify(key, message, attest));
}

/** The text of the validator record the program writes at the claim's counter. */
export function validatorRecordText(binding: UsageBinding, claim: ValidatorClaim, attest: Uint8Array): string {
  return formatUsageText({
    ...binding, kind: 'validated', counter: claim.counter, summary: claim.summary, recordsDigest: toHex(claim.recordsDigest), attestation: toHex(attest),
  });
}

/** The SHA-256 over the card-signed digests of records, added in trail order. */
export class RecordsDigest {
  #parts: Uint8Array[] = [];
  #count = 0;

  constructor(private readonly root: TrustRoot) {}

  add(record: AuditRecord): void {
    this.#parts.push(recordDigest(record, this.root));
    this.#count += 1;
  }

  get count(): number {
    return this.#count;
  }

  digest(): Uint8Array {
    return sha256(...this.#parts);
  }
}

/** What one record says about a program's start ([0094]). */
export type ValidatorRecordCheck =
  | { readonly status: 'none' }
  | { readonly status: 'forged'; readonly why: string }
  | { readonly status: 'attested'; readonly counter: bigint; readonly summary: UsageSummary; readonly recordsDigest: Uint8Array; readonly validatorKey: Uint8Array };

/**
 * Whether `entry` is a validator record of `keyfile`'s program whose attest verifies against one of the keyfile's
 * validator keys: `none` for any other record, `forged` for one that carries an attest that does not hold (an edited
 * summary, a copied attest, a key the keyfile does not name). The record's card signature is the walk's to check.
 */
export function checkValidatorRecord(entry: UsageEntry, keyfile: Keyfile, binding = usageBinding(keyfile.program, keyfile.card.publicKey)): ValidatorRecordCheck {
  if (!entry.text.startsWith(`${binding.program} validated `) || !entry.text.includes(' attest ')) return { status: 'none' };
  let usage;
  try {
    usage = parseUsageText(entry.text, binding);
  } catch (error) {
    return { status: 'forged', why: (error as Error).message };
  }
  if (usage?.kind !== 'validated' || usage.attestation === undefined) return { status: 'none' };
  const at = `the validator record at counter ${entry.counter}`;
  if (usage.summary === undefined || usage.recordsDigest === undefined) return { status: 'forged', why: `${at} carries an attest but no usage summary or records digest` };
  if (usage.counter !== entry.counter) return { status: 'forged', why: `${at} names counter ${usage.counter}` };
  const claim = claimFor(keyfile, entry.counter, fromHex(usage.recordsDigest), usage.summary);
  const validatorKey = verifyValidatorClaim(claim, fromHex(usage.attestation), keyfile.validatorKeys);
  if (validatorKey === undefined) {
    return { status: 'forged', why: `${at} carries an attest that does not verify against ${keyfile.validatorKeys.length === 0 ? 'any validator key: the keyfile names none' : `the keyfile's validator key${keyfile.validatorKeys.length === 1 ? '' : 's'}`} (its summary or digest was edited, or another service signed it)` };
  }
  return { status: 'attested', counter: entry.counter, summary: usage.summary, recordsDigest: claim.recordsDigest, validatorKey };
}

// ---- The HTTP exchange with the service (validation-service.ts) ----

/** POST /v1/validate: the keyfile, the counter the validator record will be written at, the records below it. */
export interface ValidationRequest {
  readonly keyfile: Uint8Array;
  readonly counter: bigint;
  readonly records: readonly AuditRecord[];
}

/** The service's answer: what it vouches for, and its signature. */
export interface ValidationAnswer {
  readonly counter: bigint;
  readonly summary: UsageSummary;
  readonly recordsDigest: Uint8Array;
  readonly attest: Uint8Array;
  readonly validatorKey: Uint8Array;
}

/** A record in a request: the trail line's fields. */
export interface RecordJson {
  readonly nonce: string;
  readonly text: string;
  readonly counter: string;
  readonly signature: string;
}

export function encodeValidationRequest(request: ValidationRequest): string {
  return JSON.stringify({
    keyfile: Buffer.from(request.keyfile).toString('base64'),
    counter: request.counter.toString(),
    records: request.records.map((record) => JSON.parse(encodeRecordLine(record)) as RecordJson),
  });
}

/** A request's record, its fields already checked by the service's schema; undefined for a text no record may have. */
export function recordFromJson(json: RecordJson): AuditRecord | undefined {
  if (recordTextProblem(json.text) !== undefined || json.nonce.length !== NONCE_LENGTH * 2) return undefined;
  return { nonce: fromHex(json.nonce), text: json.text, counter: BigInt(`0x${json.counter}`), signature: fromHex(json.signature) };
}

export function encodeValidationAnswer(answer: ValidationAnswer): Record<string, string> {
  return {
    counter: answer.counter.toString(), summary: formatUsageSummary(answer.summary), recordsDigest: toHex(answer.recordsDigest),
    attest: toHex(answer.attest), validatorKey: toHex(answer.validatorKey),
  };
}

/** Reads the service's answer strictly; anything else is `validation-service.answer`. */
export function parseValidationAnswer(value: unknown): ValidationAnswer {
  const bad = (why: string) => new ValidationServiceError('answer', `the validation service answered something else than a validation: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a JSON object');
  const fields = value as Record<string, unknown>;
  const text = (name: string, pattern: RegExp): string => {
    const field = fields[name];
    if (typeof field !== 'string' || !pattern.test(field)) throw bad(`expected "${name}" matching ${String(pattern)}`);
    return field;
  };
  const counter = BigInt(text('counter', /^(0|[1-9][0-9]{0,38})$/));
  if (counter >= COUNTER_LIMIT) throw bad('expected "counter" below 2^128');
  const summary = parseUsageSummary(text('summary', /^[\x21-\x7e]{1,4096}$/), counter);
  if (summary === undefined) throw bad('expected "summary" as a usage summary');
  return {
    counter, summary, recordsDigest: fromHex(text('recordsDigest', /^[0-9a-f]{64}$/)), attest: fromHex(text('attest', /^[0-9a-f]{128}$/)),
    validatorKey: fromHex(text('validatorKey', /^[0-9a-f]{64}$/)),
  };
}
