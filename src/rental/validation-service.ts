// The trusted audit trail validation service of patent 003 [0094] ("could be implemented by a third party that is
// accessible via a network"), over HTTP (fastify). POST /v1/validate takes a keyfile, the counter c the program will
// write its validator record at, and the trail's records from the program's start up to c - 1; the service checks the
// keyfile against the vendors it trusts, the records offline (offline-validation.ts), sums the program's usage, and
// answers its attest over all of it (validator-record.ts). GET /v1/validator names the service and its key.
//
// Every body is JSON checked by a schema (no extra fields, no type coercion) under a body limit; refusals are 4xx
// with { error, message }: 400 malformed, 403 a keyfile of a vendor it does not trust or that does not name it,
// 413 too large, 415 not JSON, 422 a trail that does not validate (with the RentalError reason).
import type { FastifyError, FastifyInstance } from 'fastify';
import { toHex } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { MAX_TEXT_BYTES, type AuditRecord } from './audit-record.js';
import { validateOffline } from './offline-validation.js';
import { RentalError } from './rental-error.js';
import { KeyfileError, readKeyfileUnchecked, verifyKeyfile, type Keyfile } from './rental-keyfile.js';
import { claimFor, encodeValidationAnswer, recordFromJson, signValidatorClaim, type RecordJson } from './validator-record.js';
import type { ValidatorKeys } from './validator-keys.js';
import type { SignatureVerifierPool } from './verify-pool.js';

export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;
export const DEFAULT_MAX_RECORDS = 100_000;
/** The largest keyfile (8,000,000 decoy bits and the customer information) in base64. */
const MAX_KEYFILE_BASE64 = 3 * 1024 * 1024;

export interface ValidationServiceOptions {
  readonly validator: ValidatorKeys;
  /** Ed25519 keys of the vendors whose keyfiles the service validates for. */
  readonly trustedVendors: readonly Uint8Array[];
  /** Bytes of one request body (default 32 MiB). */
  readonly bodyLimit?: number;
  /** Records in one request (default 100,000). */
  readonly maxRecords?: number;
  readonly verifiers?: SignatureVerifierPool | null;
  /** Validations one client address may ask for per minute (default 60); more are answered 429 with Retry-After. */
  readonly perClientPerMinute?: number;
  /** Validations in progress at once, from all clients (default 4); more are answered 503 with Retry-After. */
  readonly maxConcurrent?: number;
  /** Told of every validation answered or refused, for a log line; never of a secret. */
  readonly onValidation?: (event: ValidationEvent) => void;
}

export interface ValidationEvent {
  readonly outcome: 'attested' | 'refused';
  readonly status: number;
  readonly error?: string;
  readonly keyfile?: string;
  readonly program?: string;
  readonly counter?: string;
  readonly records?: number;
}

/** A request the service refuses: the HTTP status and the error name it answers. */
class Refusal extends VscError {
  override readonly name = 'Refusal';
  constructor(readonly status: number, readonly error: string, message: string) {
    super(`validation-service.${error}`, message, { exitCode: ExitCode.refusedByState });
  }
}

const hex = (bytes: number) => ({ type: 'string', pattern: `^[0-9a-f]{${bytes * 2}}$` });

function requestSchema(maxRecords: number) {
  return {
    type: 'object', additionalProperties: false, required: ['keyfile', 'counter', 'records'],
    properties: {
      keyfile: { type: 'string', minLength: 4, maxLength: MAX_KEYFILE_BASE64, pattern: '^[A-Za-z0-9+/]+={0,2}$' },
      counter: { type: 'string', pattern: '^(0|[1-9][0-9]{0,38})$' },
      records: {
        type: 'array', maxItems: maxRecords,
        items: {
          type: 'object', additionalProperties: false, required: ['nonce', 'text', 'counter', 'signature'],
          properties: { nonce: hex(16), text: { type: 'string', maxLength: MAX_TEXT_BYTES }, counter: hex(16), signature: hex(64) },
        },
      },
    },
  } as const;
}

function checkOptions(options: ValidationServiceOptions): { bodyLimit: number; maxRecords: number } {
  const bad = (why: string) => new VscError('validation-service.input', why, { exitCode: ExitCode.usage });
  if (!Array.isArray(options.trustedVendors) || options.trustedVendors.length === 0 || options.trustedVendors.some((key) => !(key instanceof Uint8Array) || key.length !== 32)) {
    throw bad('expected at least one trusted vendor key of 32 bytes');
  }
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 1024 ** 3) throw bad(`expected a body limit of 1 KiB..1 GiB, got ${String(bodyLimit)}`);
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1 || maxRecords > 10_000_000) throw bad(`expected a record limit of 1..10,000,000, got ${String(maxRecords)}`);
  return { bodyLimit, maxRecords };
}

/** The keyfile, signed by a vendor the service trusts and naming this service. */
function trustedKeyfile(bytes: Uint8Array, options: ValidationServiceOptions): Keyfile {
  let claimed: Keyfile;
  try {
    claimed = readKeyfileUnchecked(bytes);
  } catch (error) {
    throw new Refusal(400, 'keyfile-malformed', (error as Error).message);
  }
  const vendorKey = options.trustedVendors.find((key) => toHex(key) === toHex(claimed.vendor.signingKey));
  if (vendorKey === undefined) throw new Refusal(403, 'unknown-keyfile', `this service does not validate for vendor "${claimed.vendor.name}" (key ${toHex(claimed.vendor.signingKey)})`);
  let keyfile: Keyfile;
  try {
    keyfile = verifyKeyfile(bytes, vendorKey);
  } catch (error) {
    throw new Refusal(403, error instanceof KeyfileError ? error.code.replace('keyfile.', 'keyfile-') : 'keyfile-refused', (error as Error).message);
  }
  if (!keyfile.validatorKeys.some((key) => toHex(key) === toHex(options.validator.signingKey))) {
    throw new Refusal(403, 'not-named', `keyfile ${toHex(keyfile.id)} does not name this validation service's key ${toHex(options.validator.signingKey)}`);
  }
  return keyfile;
}

interface RequestBody {
  readonly keyfile: string;
  readonly counter: string;
  readonly records: readonly RecordJson[];
}

async function validate(body: RequestBody, options: ValidationServiceOptions, report: (event: Partial<ValidationEvent>) => void): Promise<Record<string, string>> {
  const keyfile = trustedKeyfile(Uint8Array.from(Buffer.from(body.keyfile, 'base64')), options);
  const counter = BigInt(body.counter);
  report({ keyfile: toHex(keyfile.id), program: keyfile.program, counter: body.counter, records: body.records.length });
  if (counter >= (1n << 128n) - 1n) throw new Refusal(400, 'bad-request', 'expected a counter below 2^128-1');
  const records: AuditRecord[] = body.records.map((json, index) => {
    const record = recordFromJson(json);
    if (record === undefined) throw new Refusal(400, 'bad-request', `records[${index}]: expected a text of valid Unicode of at most ${MAX_TEXT_BYTES} UTF-8 bytes`);
    return record;
  });
  const first = records[0];
  if (first !== undefined && first.counter < keyfile.offset) throw new Refusal(422, 'offset', `expected the records from the program's start, at or above the keyfile's offset ${keyfile.offset}; the first has counter ${first.counter}`);
  let checked;
  try {
    checked = await validateOffline({ keyfile, records, ...(options.verifiers === undefined ? {} : { verifiers: options.verifiers }) });
  } catch (error) {
    if (error instanceof RentalError) throw new Refusal(error.reason === 'input' ? 400 : 422, error.reason, error.message);
    throw error;
  }
  const last = checked.last;
  if (last === undefined ? counter !== checked.start : last.counter !== counter - 1n) {
    const got = last === undefined ? 'no records' : `records up to counter ${last.counter}`;
    throw new Refusal(422, 'stale', `the validator record is to be written at counter ${counter}, so expected the records from ${checked.start} up to ${counter - 1n}, got ${got}`);
  }
  const claim = claimFor(keyfile, counter, checked.recordsDigest, checked.summary);
  return encodeValidationAnswer({ counter, summary: checked.summary, recordsDigest: checked.recordsDigest, attest: signValidatorClaim(options.validator.signer, claim), validatorKey: options.validator.signingKey });
}

/**
 * The service, not listening yet (tests inject requests; startValidationService listens). fastify is loaded here, not
 * when the rental module is: a rented program never needs it.
 */
export async function buildValidationService(options: ValidationServiceOptions): Promise<FastifyInstance> {
  const { bodyLimit, maxRecords } = checkOptions(options);
  const perMinute = options.perClientPerMinute ?? 60;
  const maxConcurrent = options.maxConcurrent ?? 4;
  if (!Number.isSafeInteger(perMinute) || perMinute < 1) throw new TypeError(`expected at least 1 validation per client per minute, got ${String(perMinute)}`);
  if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) throw new TypeError(`expected at least 1 concurrent validation, got ${String(maxConcurrent)}`);
  const { default: Fastify } = await import('fastify');
  const { RateLimiterMemory, RateLimiterRes } = await import('rate-limiter-flexible');
  // Each validation checks up to maxRecords signatures: a client is limited per minute, and all of them together by
  // the validations running at once, so that one busy client cannot starve the others or the machine.
  const perClient = new RateLimiterMemory({ points: perMinute, duration: 60 });
  let running = 0;
  // Strict schemas: an extra field or a number where a string belongs is refused, never dropped or converted.
  const app = Fastify({ bodyLimit, logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } } });
  const tell = options.onValidation ?? (() => undefined);
  // JSON only: fastify would otherwise hand a text/plain body to the schema as a string.
  app.removeContentTypeParser('text/plain');

  app.get('/v1/validator', () => ({ name: options.validator.name, validatorKey: toHex(options.validator.signingKey) }));
  // Limits are checked before the body is read, so a refused request costs almost nothing.
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST') return;
    try {
      await perClient.consume(request.ip);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      tell({ outcome: 'refused', status: 429, error: 'too-many-requests' });
      return reply.code(429).header('retry-after', String(Math.max(1, Math.ceil(refusal.msBeforeNext / 1000))))
        .send({ error: 'too-many-requests', message: `at most ${perMinute} validations a minute from one address` });
    }
    if (running >= maxConcurrent) {
      tell({ outcome: 'refused', status: 503, error: 'busy' });
      return reply.code(503).header('retry-after', '1').send({ error: 'busy', message: `${maxConcurrent} validations are running: try again shortly` });
    }
    running += 1;
    let released = false;
    const release = () => {
      if (!released) running -= 1;
      released = true;
    };
    reply.raw.once('finish', release);
    reply.raw.once('close', release);
    return undefined;
  });
  app.post<{ Body: RequestBody }>('/v1/validate', { schema: { body: requestSchema(maxRecords) } }, async (request, reply) => {
    const seen: Partial<ValidationEvent> = {};
    try {
      const answer = await validate(request.body, options, (event) => Object.assign(seen, event));
      tell({ ...seen, outcome: 'attested', status: 200 });
      return answer;
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      tell({ ...seen, outcome: 'refused', status: error.status, error: error.error });
      return reply.code(error.status).send({ error: error.error, message: error.message });
    }
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not-found', message: `no ${request.method} ${request.url.slice(0, 100)} here: POST /v1/validate, GET /v1/validator` }));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation !== undefined) {
      tell({ outcome: 'refused', status: 400, error: 'bad-request' });
      return reply.code(400).send({ error: 'bad-request', message: `request ${error.message}` });
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const name = status === 413 ? 'too-large' : status === 415 ? 'unsupported-media-type' : status === 500 ? 'internal' : 'bad-request';
    tell({ outcome: 'refused', status, error: name });
    // A 500 says nothing of its cause to the caller.
    return reply.code(status).send({ error: name, message: status === 500 ? 'the service failed' : error.message });
  });
  return app;
}

export interface RunningValidationService {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `vsc validator serve`: the service listening on host:port (port 0 picks a free one). */
export async function startValidationService(options: ValidationServiceOptions & { readonly host: string; readonly port: number }): Promise<RunningValidationService> {
  const app = await buildValidationService(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}`, port, close: () => app.close() };
}
