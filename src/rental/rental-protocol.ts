// The rental server's wire protocol (patent 003 [0046], [0058]: rented programs send their records to the Rental
// Server, which owns the card and the trail; DESIGN.md "Software rental"). Requests and their strict parser here,
// answers in rental-answers.ts, framing in rental-line-reader.ts.
//
// Transport: a Unix stream socket in a 0700 directory (rental-socket-path.ts). Each message is one line of JSON
// (UTF-8) ended by "\n", at most 64 KiB before the newline; a longer line is answered with reason "input" and the
// connection is closed. Any other bad line (not UTF-8, not JSON, unknown op, bad id, missing, extra or bad field) is
// answered with reason "input" and nothing is done; the connection stays open. Requests on one connection are
// answered in order; a client may send the next before the answer to the last.
//
//   request   {"id": N, "op": OP, ...fields}            N an integer 0..2^31-1, echoed in the answer
//   answer    {"id": N, "ok": true, ...fields}
//   refusal   {"id": N | null, "ok": false, "error": {"reason": R, "message": "one line"}}
//             id null when the request's id could not be read; R a RentalReason (rental-error.ts)
//
// Counters are decimal strings (128-bit), keys and nonces lowercase hex, records the JSON objects of trail lines
// (encodeRecordLine: {"nonce", "text", "counter" (32 hex digits), "signature"}).
//
//   hello                      -> {"protocol": 1, "card": {"serial", "publicKey", "keyMode"}, "trail", "counter"}
//   counter                    -> {"counter"}                                     GET COUNTER
//   write {"nonce": 32 hex, "text", "expectCounter"?: decimal}
//                              -> {"record", "counterAfter"}                      [0059] steps [3]-[4], [9]
//        The card signs SHA-256(h1 ‖ counter) for h1 = recordHash(nonce, text); the record is fsynced to the trail
//        (and its backup, [0062]) before the answer. With expectCounter, a card whose counter is another value signs
//        nothing: reason "counter-moved" (ValidateTrail's Write(c) must sign exactly at c, [0060] step [2]).
//   bridge                     -> {"bridged": {"from", "to"} | null, "record"?}
//        A card-signed record "skipped FROM TO" (usage-text.ts) naming the counters the card passed that the trail
//        lacks, written at the card's counter; null when there is no such gap.
//   status                     -> {"counter", "trail": TRAIL, "backup": TRAIL | null, "journal", "gap"}
//        TRAIL = {"path", "lastCounter": decimal | null, "records"}; journal "empty" | "intent" | "answered";
//        gap {"from", "to"} | null: counters the card passed that no record of the trail carries.
//
// Extensions: an op with a dot in its name ("license.use") belongs to an extension the server was started with
// (license containers, src/license/license-agent.ts); its fields besides id and op are the extension's to check, and
// its answer is {"id", "ok": true, ...the extension's fields}. A server without that extension refuses the op like any
// unknown one.
//
// Programs do not trust the server ([0058]): they check every record it answers (program-trail.ts) and validate
// the trail themselves.
import { COUNTER_MAX } from '../apdu/index.js';
import { fromHex, toHex, utf8 } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { isNonceHex, NONCE_LENGTH, recordTextProblem } from './audit-record.js';
import { MAX_MESSAGE_BYTES } from './rental-line-reader.js';
import { RentalError } from './rental-error.js';
import { quoteText } from './usage-text.js';

export const RENTAL_PROTOCOL_VERSION = 1;
export const MAX_REQUEST_ID = 2 ** 31 - 1;
export const RENTAL_OPS = ['hello', 'counter', 'write', 'bridge', 'status'] as const;
export type RentalOp = (typeof RENTAL_OPS)[number];
/** Room a write's answer needs besides the text (ids, the record's hex fields, counterAfter): bounds the text. */
const ANSWER_OVERHEAD_BYTES = 512;

export type RentalRequest =
  | { readonly id: number; readonly op: 'hello' | 'counter' | 'bridge' | 'status' }
  | { readonly id: number; readonly op: 'write'; readonly nonce: Uint8Array; readonly text: string; readonly expectCounter?: bigint }
  | ExtensionRequest;

/** A request for an extension: `name` is the op as sent ("license.use"), `fields` the rest of the request. */
export interface ExtensionRequest {
  readonly id: number;
  readonly op: 'extension';
  readonly name: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** An extension op's name: service and operation, lower case, joined by a dot. */
export const EXTENSION_OP = /^[a-z][a-z0-9-]{0,31}\.[a-z][a-z0-9-]{0,31}$/;

/** A request the server answers with a refusal: the id when it could be read, and why. */
export interface RequestProblem {
  readonly id: number | null;
  readonly message: string;
}

export type ParsedRequest = { readonly ok: true; readonly request: RentalRequest } | ({ readonly ok: false } & RequestProblem);

/** An answer the client cannot read, or a connection that broke the protocol: exit 1. */
export class RentalProtocolError extends VscError {
  override readonly name = 'RentalProtocolError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('rental.protocol', message, { exitCode: ExitCode.other, ...options });
  }
}

/** The socket: no server answers, another one does, or the connection broke: exit 3. */
export class RentalSocketError extends VscError {
  override readonly name = 'RentalSocketError';
  constructor(code: 'not-running' | 'in-use' | 'unusable' | 'listen' | 'closed', message: string, options: { cause?: unknown } = {}) {
    super(`rental.socket.${code}`, message, { exitCode: ExitCode.refusedByState, ...options });
  }
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,38})$/;

/** A counter as the protocol writes it. */
export function formatCounter(counter: bigint): string {
  return counter.toString(10);
}

/** A decimal counter 0..2^128-1 in canonical form (no sign, no leading zero), or undefined. */
export function parseCounterText(value: unknown): bigint | undefined {
  if (typeof value !== 'string' || !DECIMAL.test(value)) return undefined;
  const counter = BigInt(value);
  return counter <= COUNTER_MAX ? counter : undefined;
}

export function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_REQUEST_ID;
}

/** Why `text` cannot be sent in a write (a record text, and short enough for the answer to fit a line), or undefined. */
export function protocolTextProblem(text: unknown): string | undefined {
  const problem = recordTextProblem(text);
  if (problem !== undefined) return problem;
  const bytes = utf8(JSON.stringify(text)).length;
  const limit = MAX_MESSAGE_BYTES - ANSWER_OVERHEAD_BYTES;
  return bytes > limit ? `expected a text of at most ${limit} bytes as a JSON string, got ${bytes}` : undefined;
}

/** What a field was, never its content (a text may be anything a program logs). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

const FIELDS: Readonly<Record<RentalOp, readonly string[]>> = {
  hello: ['id', 'op'],
  counter: ['id', 'op'],
  bridge: ['id', 'op'],
  status: ['id', 'op'],
  write: ['id', 'op', 'nonce', 'text', 'expectCounter'],
};

/**
 * Parses one request line strictly. Never throws for any string: a line that is not a request gives the problem to
 * answer (with the id when one could be read), naming what was expected and never quoting more than a bounded,
 * escaped piece of what came in.
 */
export function parseRequest(line: string, extensionOps: ReadonlySet<string> = new Set()): ParsedRequest {
  const refuse = (id: number | null, message: string): ParsedRequest => ({ ok: false, id, message });
  if (typeof line !== 'string') return refuse(null, `expected a request line, got ${kindOf(line)}`);
  if (utf8(line).length > MAX_MESSAGE_BYTES) return refuse(null, `expected a request of at most ${MAX_MESSAGE_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return refuse(null, line.length === 0 ? 'expected a JSON request, got an empty line' : 'expected a JSON request, got text that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse(null, `expected a JSON object {"id", "op", ...}, got ${kindOf(value)}`);
  const fields = value as Record<string, unknown>;
  const id = fields['id'];
  if (!isRequestId(id)) return refuse(null, `expected "id" as an integer 0..${MAX_REQUEST_ID}, got ${kindOf(id)}`);
  const op = fields['op'];
  if (typeof op === 'string' && extensionOps.has(op)) {
    const rest = Object.fromEntries(Object.entries(fields).filter(([key]) => key !== 'id' && key !== 'op'));
    return { ok: true, request: { id, op: 'extension', name: op, fields: rest } };
  }
  if (typeof op !== 'string' || !(RENTAL_OPS as readonly string[]).includes(op)) {
    const known = [...RENTAL_OPS, ...extensionOps].join(', ');
    return refuse(id, `expected "op" as one of ${known}, got ${typeof op === 'string' ? quoteText(op, 32) : kindOf(op)}`);
  }
  const allowed = FIELDS[op as RentalOp];
  const extra = Object.keys(fields).find((key) => !allowed.includes(key));
  if (extra !== undefined) return refuse(id, `${op}: expected only the fields ${allowed.join(', ')}, got ${quoteText(extra, 32)}`);
  if (op !== 'write') return { ok: true, request: { id, op: op as 'hello' | 'counter' | 'bridge' | 'status' } };

  const { nonce, text, expectCounter } = fields;
  if (!isNonceHex(nonce)) return refuse(id, `write: expected "nonce" as ${NONCE_LENGTH * 2} lowercase hex digits (${NONCE_LENGTH} bytes), got ${kindOf(nonce)}`);
  const problem = protocolTextProblem(text);
  if (problem !== undefined) return refuse(id, `write: "text": ${problem}`);
  let expected: bigint | undefined;
  if ('expectCounter' in fields) {
    expected = parseCounterText(expectCounter);
    if (expected === undefined) return refuse(id, `write: expected "expectCounter" as a decimal string 0..2^128-1 without leading zeros, got ${kindOf(expectCounter)}`);
  }
  return { ok: true, request: { id, op: 'write', nonce: fromHex(nonce), text: text as string, ...(expected === undefined ? {} : { expectCounter: expected }) } };
}

/** One request line, "\n" included; refuses (RentalError `input`) what the server would refuse. */
export function encodeRequest(request: RentalRequest): string {
  if (typeof request !== 'object' || request === null) throw new RentalError('input', 'expected a request { id, op, ... }');
  if (!isRequestId(request.id)) throw new RentalError('input', `expected a request id as an integer 0..${MAX_REQUEST_ID}`);
  if (request.op === 'extension') {
    if (!EXTENSION_OP.test(request.name)) throw new RentalError('input', 'expected an extension op as service.operation');
    const line = `${JSON.stringify({ ...request.fields, id: request.id, op: request.name })}\n`;
    if (utf8(line).length > MAX_MESSAGE_BYTES) throw new RentalError('input', `expected a request of at most ${MAX_MESSAGE_BYTES} bytes`);
    return line;
  }
  if (!(RENTAL_OPS as readonly string[]).includes(request.op)) throw new RentalError('input', `expected an op of ${RENTAL_OPS.join(', ')}`);
  if (request.op !== 'write') return `${JSON.stringify({ id: request.id, op: request.op })}\n`;
  const { nonce, text, expectCounter } = request;
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) throw new RentalError('input', `expected a ${NONCE_LENGTH}-byte nonce`);
  const problem = protocolTextProblem(text);
  if (problem !== undefined) throw new RentalError('input', problem);
  if (expectCounter !== undefined && (typeof expectCounter !== 'bigint' || expectCounter < 0n || expectCounter > COUNTER_MAX)) {
    throw new RentalError('input', 'expected expectCounter as a bigint in 0..2^128-1');
  }
  const fields = { id: request.id, op: 'write', nonce: toHex(nonce), text, ...(expectCounter === undefined ? {} : { expectCounter: formatCounter(expectCounter) }) };
  return `${JSON.stringify(fields)}\n`;
}
