// The answers of the rental server's wire protocol (rental-protocol.ts has the whole protocol at its top): their
// types, the encoder the server uses and the strict decoder the client uses. A client does not trust the server
// ([0058]): an answer of the wrong shape is a RentalProtocolError, never a half-read value.
import type { VscKeyMode } from '../apdu/index.js';
import { fromHex, toHex } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { encodeRecordLine, parseRecordLine, type AuditRecord } from './audit-record.js';
import { RENTAL_REASONS, RentalError, type RentalReason } from './rental-error.js';
import { formatCounter, isRequestId, parseCounterText, RENTAL_PROTOCOL_VERSION, RentalProtocolError, type RentalOp } from './rental-protocol.js';

/** The card the server owns, as GET SERIAL NUMBER, GET PUBLIC KEY and the key mode of SIGN AND INCREMENT show it. */
export interface RentalCardIdentity {
  readonly serial: string;
  readonly publicKey: Uint8Array;
  readonly keyMode: VscKeyMode;
}

export interface CounterRange {
  readonly from: bigint;
  readonly to: bigint;
}

export interface TrailState {
  readonly path: string;
  /** The last record's counter; null for an empty trail. */
  readonly lastCounter: bigint | null;
  readonly records: number;
}

/** The journal's one entry ([0062]): none, a Write's intent before the card answered, or the card's answer. */
export type JournalState = 'empty' | 'intent' | 'answered';

export interface HelloAnswer {
  readonly protocol: number;
  readonly card: RentalCardIdentity;
  /** The primary trail, an absolute path a program may read ([0060] step [3]). */
  readonly trail: string;
  readonly counter: bigint;
}

export interface CounterAnswer {
  readonly counter: bigint;
}

export interface WriteAnswer {
  readonly record: AuditRecord;
  /** GET COUNTER after the signature ([0059] step [4]). */
  readonly counterAfter: bigint;
}

export interface BridgeAnswer {
  readonly bridged: CounterRange | null;
  readonly record?: AuditRecord;
}

export interface StatusAnswer {
  readonly counter: bigint;
  readonly trail: TrailState;
  readonly backup: TrailState | null;
  readonly journal: JournalState;
  readonly gap: CounterRange | null;
}

export interface RentalAnswers {
  readonly hello: HelloAnswer;
  readonly counter: CounterAnswer;
  readonly write: WriteAnswer;
  readonly bridge: BridgeAnswer;
  readonly status: StatusAnswer;
}

/** A refusal as the client sees it. */
export interface RefusalBody {
  readonly reason: RentalReason;
  readonly message: string;
}

/** A response line before its fields are read for the op its id belongs to. */
export type ResponseEnvelope =
  | { readonly ok: true; readonly id: number; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly id: number | null; readonly error: RefusalBody };

const MAX_MESSAGE_CHARS = 1000;

function recordJson(record: AuditRecord): unknown {
  return JSON.parse(encodeRecordLine(record)) as unknown;
}

function rangeJson(range: CounterRange | null): unknown {
  return range === null ? null : { from: formatCounter(range.from), to: formatCounter(range.to) };
}

function trailJson(trail: TrailState): unknown {
  return { path: trail.path, lastCounter: trail.lastCounter === null ? null : formatCounter(trail.lastCounter), records: trail.records };
}

function answerJson<Op extends RentalOp>(op: Op, answer: RentalAnswers[Op]): Record<string, unknown> {
  switch (op) {
    case 'hello': {
      const hello = answer as HelloAnswer;
      return { protocol: hello.protocol, card: { serial: hello.card.serial, publicKey: toHex(hello.card.publicKey), keyMode: hello.card.keyMode }, trail: hello.trail, counter: formatCounter(hello.counter) };
    }
    case 'counter':
      return { counter: formatCounter((answer as CounterAnswer).counter) };
    case 'write': {
      const write = answer as WriteAnswer;
      return { record: recordJson(write.record), counterAfter: formatCounter(write.counterAfter) };
    }
    case 'bridge': {
      const bridge = answer as BridgeAnswer;
      return { bridged: rangeJson(bridge.bridged), ...(bridge.record === undefined ? {} : { record: recordJson(bridge.record) }) };
    }
    default: {
      const status = answer as StatusAnswer;
      return { counter: formatCounter(status.counter), trail: trailJson(status.trail), backup: status.backup === null ? null : trailJson(status.backup), journal: status.journal, gap: rangeJson(status.gap) };
    }
  }
}

/** The answer line to request `id`, "\n" included. */
export function encodeAnswer<Op extends RentalOp>(id: number, op: Op, answer: RentalAnswers[Op]): string {
  return `${JSON.stringify({ id, ok: true, ...answerJson(op, answer) })}\n`;
}

/** The answer line to an extension's request `id`, "\n" included: the extension's own fields. */
export function encodeExtensionAnswer(id: number, fields: Readonly<Record<string, unknown>>): string {
  if ('id' in fields || 'ok' in fields) throw new RentalError('input', 'an extension answer may not carry the fields id or ok');
  return `${JSON.stringify({ id, ok: true, ...fields })}\n`;
}

/** A refusal line, "\n" included: the message cut to one bounded line. */
export function encodeRefusal(id: number | null, reason: RentalReason, message: string): string {
  const line = (message.split('\n')[0] ?? '').slice(0, MAX_MESSAGE_CHARS);
  return `${JSON.stringify({ id, ok: false, error: { reason, message: line } })}\n`;
}

function malformed(what: string): RentalProtocolError {
  return new RentalProtocolError(`the rental server's answer is malformed: ${what}`);
}

function objectOf(value: unknown, what: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`expected ${what} as an object`);
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (!keys.includes(key) && !optional.includes(key)) throw malformed(`${what} has an unexpected field`);
  for (const key of keys) if (!(key in fields)) throw malformed(`${what} lacks "${key}"`);
  return fields;
}

/** Reads a response line's envelope: its id, and either its fields or the refusal. */
export function parseResponseEnvelope(line: string): ResponseEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed('expected a JSON line');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('expected a JSON object');
  const fields = value as Record<string, unknown>;
  if (fields['ok'] === false) {
    const envelope = objectOf(fields, 'a refusal', ['id', 'ok', 'error']);
    const id = envelope['id'];
    if (id !== null && !isRequestId(id)) throw malformed('expected the refusal\'s id as null or an integer 0..2^31-1');
    const error = objectOf(envelope['error'], 'the refusal\'s error', ['reason', 'message']);
    const reason = error['reason'];
    const message = error['message'];
    if (typeof reason !== 'string' || !(RENTAL_REASONS as readonly string[]).includes(reason)) throw malformed('expected a known refusal reason');
    if (typeof message !== 'string' || message.length > MAX_MESSAGE_CHARS || message.includes('\n')) throw malformed('expected a one-line refusal message');
    return { ok: false, id, error: { reason: reason as RentalReason, message } };
  }
  if (fields['ok'] !== true) throw malformed('expected "ok" as true or false');
  if (!isRequestId(fields['id'])) throw malformed('expected the answer\'s id as an integer 0..2^31-1');
  const rest: Record<string, unknown> = { ...fields };
  delete rest['id'];
  delete rest['ok'];
  return { ok: true, id: fields['id'], fields: rest };
}

function counterField(value: unknown, what: string): bigint {
  const counter = parseCounterText(value);
  if (counter === undefined) throw malformed(`expected ${what} as a decimal counter 0..2^128-1`);
  return counter;
}

function recordField(value: unknown): AuditRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('expected "record" as a trail record object');
  try {
    return parseRecordLine(JSON.stringify(value));
  } catch (error) {
    throw new RentalProtocolError(`the rental server's answer is malformed: its record is not a trail record (${(error as Error).message})`, { cause: error });
  }
}

function rangeField(value: unknown, what: string): CounterRange | null {
  if (value === null) return null;
  const range = objectOf(value, what, ['from', 'to']);
  const from = counterField(range['from'], `${what}.from`);
  const to = counterField(range['to'], `${what}.to`);
  if (from > to) throw malformed(`expected ${what} with from <= to`);
  return { from, to };
}

function trailField(value: unknown, what: string): TrailState {
  const trail = objectOf(value, what, ['path', 'lastCounter', 'records']);
  if (typeof trail['path'] !== 'string' || !trail['path'].startsWith('/')) throw malformed(`expected ${what}.path as an absolute path`);
  const records = trail['records'];
  if (typeof records !== 'number' || !Number.isSafeInteger(records) || records < 0) throw malformed(`expected ${what}.records as a count`);
  const lastCounter = trail['lastCounter'] === null ? null : counterField(trail['lastCounter'], `${what}.lastCounter`);
  if ((lastCounter === null) !== (records === 0)) throw malformed(`expected ${what}.lastCounter null exactly when the trail is empty`);
  return { path: trail['path'], lastCounter, records };
}

function cardField(value: unknown): RentalCardIdentity {
  const card = objectOf(value, '"card"', ['serial', 'publicKey', 'keyMode']);
  const { serial, publicKey, keyMode } = card;
  if (typeof serial !== 'string' || serial.length === 0 || serial.length > 256) throw malformed('expected card.serial as a non-empty string');
  if (typeof publicKey !== 'string' || !new RegExp(`^[0-9a-f]{${ED25519_PUBLIC_KEY_LENGTH * 2}}$`).test(publicKey)) throw malformed('expected card.publicKey as 64 lowercase hex digits');
  if (keyMode !== 'individual' && keyMode !== 'universal') throw malformed('expected card.keyMode individual or universal');
  return { serial, publicKey: fromHex(publicKey), keyMode };
}

/** Reads the fields of an answer to `op` strictly. */
export function decodeAnswer<Op extends RentalOp>(op: Op, fields: Readonly<Record<string, unknown>>): RentalAnswers[Op] {
  switch (op) {
    case 'hello': {
      const hello = objectOf(fields, 'the hello answer', ['protocol', 'card', 'trail', 'counter']);
      if (hello['protocol'] !== RENTAL_PROTOCOL_VERSION) throw malformed(`expected protocol ${RENTAL_PROTOCOL_VERSION}`);
      if (typeof hello['trail'] !== 'string' || !hello['trail'].startsWith('/')) throw malformed('expected "trail" as an absolute path');
      const answer: HelloAnswer = { protocol: RENTAL_PROTOCOL_VERSION, card: cardField(hello['card']), trail: hello['trail'], counter: counterField(hello['counter'], '"counter"') };
      return answer as RentalAnswers[Op];
    }
    case 'counter': {
      const counter = objectOf(fields, 'the counter answer', ['counter']);
      return { counter: counterField(counter['counter'], '"counter"') } as RentalAnswers[Op];
    }
    case 'write': {
      const write = objectOf(fields, 'the write answer', ['record', 'counterAfter']);
      const answer: WriteAnswer = { record: recordField(write['record']), counterAfter: counterField(write['counterAfter'], '"counterAfter"') };
      return answer as RentalAnswers[Op];
    }
    case 'bridge': {
      const bridge = objectOf(fields, 'the bridge answer', ['bridged'], ['record']);
      const bridged = rangeField(bridge['bridged'], '"bridged"');
      if ((bridged === null) !== (bridge['record'] === undefined)) throw malformed('expected a record exactly when a range was bridged');
      const answer: BridgeAnswer = { bridged, ...(bridge['record'] === undefined ? {} : { record: recordField(bridge['record']) }) };
      return answer as RentalAnswers[Op];
    }
    case 'status': {
      const status = objectOf(fields, 'the status answer', ['counter', 'trail', 'backup', 'journal', 'gap']);
      const journal = status['journal'];
      if (journal !== 'empty' && journal !== 'intent' && journal !== 'answered') throw malformed('expected "journal" as empty, intent or answered');
      const answer: StatusAnswer = {
        counter: counterField(status['counter'], '"counter"'), trail: trailField(status['trail'], '"trail"'),
        backup: status['backup'] === null ? null : trailField(status['backup'], '"backup"'), journal, gap: rangeField(status['gap'], '"gap"'),
      };
      return answer as RentalAnswers[Op];
    }
    default:
      throw malformed(`no answer is defined for op ${String(op)}`);
  }
}

/** The RentalError a refusal stands for: the server's reason and message. */
export function refusalError(refusal: RefusalBody): RentalError {
  return new RentalError(refusal.reason, `the rental server refused: ${refusal.message}`);
}
