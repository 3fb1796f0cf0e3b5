// The text of a rental usage record (patent 003 [0046]-[0047], [0056], Fig. 6: "WP 15 minutes public key 9828…"):
// one strict grammar for what a rented program writes, and the selection of a program's own records ([0049]).
//
// Grammar (ABNF, RFC 5234; LHEX is 0-9 a-f; tokens are separated by exactly one space, nothing else):
//   usage-text  = program SP event SP "public key" SP key-digest [SP "attest" SP 128LHEX]
//               / "skipped" SP counter SP counter       ; bridge record (DESIGN.md "Counters that never roll back")
//   program     = 1*64%x21-7E                          ; the keyfile's program name
//   key-digest  = 32LHEX                               ; cardKeyDigest(): first 16 bytes of SHA-256(card public key)
//   event       = "15 minutes"                         ; one 15-minute interval of use ([0049])
//               / "execution"                          ; one run ([0047])
//               / "units" SP minutes SP "at" SP time   ; minutes of use begun at time, priced by the threshold ([0103])
//               / "audit" SP nonce SP "at" SP time     ; the vendor's nonce, written on request ([0104])
//               / "validated" SP counter [SP "usage" SP summary [SP "records" SP 64LHEX]]
//                                                      ; ValidateTrail's record ([0060] step [2]); with a summary, the
//                                                      ; records digest and "attest", a validator record ([0094])
//   minutes     = 1..60                                ; decimal, no leading zero
//   time        = date "T" hh ":" mm ("Z" / ("+" / "-") hh ":" mm)  ; the wall clock that read it, with its offset
//   nonce       = 32*128LHEX                           ; 16 to 64 bytes
//   counter     = "0" / %x31-39 *DIGIT                 ; below 2^128
//   summary     = "intervals=" n ";executions=" n ";skipped=" n *(";h" 2DIGIT "=" n) [";audit=" nonce "@" time]
// A program's records end in its card key's digest, as in [0046]; "attest" may follow only a validated event.
// The counter of a validated event is the record's own counter (Write(c)); its summary covers the counters below it,
// and "records" is the SHA-256 over the digests of the records the validation service checked (validator-record.ts).
// A bridge text has exactly three tokens and a program text at least five, so a program named "skipped" is no
// ambiguity. The card signs whatever text it is given: any local process can write any of these texts (see
// UsageSummary for what that means for validated records).
import { toHex } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { RentalError } from './rental-error.js';

/** One record of the trail as usage sees it, in trail order. */
export interface UsageEntry {
  readonly text: string;
  readonly counter: bigint;
}

/** What ties a record to a program: the keyfile's program name and the digest of its card public key ([0046]). */
export interface UsageBinding {
  readonly program: string;
  readonly keyDigest: string;
}

/** A wall-clock reading: the instant in whole minutes and the UTC offset of the clock that read it. */
export interface LocalTime {
  /** Minutes since 1970-01-01T00:00Z. */
  readonly epochMinutes: number;
  /** East of UTC positive, -14:00..+14:00. */
  readonly offsetMinutes: number;
}

export interface AuditMark {
  readonly nonce: string;
  readonly at: LocalTime;
}

/**
 * A program's usage up to a counter value, compact enough for a validator record ([0094]), and independent of any
 * threshold: `units` use is kept as minutes per local hour of day, so any hourly rate table can price it later.
 * Trust: a validated record is card-signed like every other record, so any local process can write one with a
 * summary of its choosing. A program may start from a summary only when something it trusts vouches for it (the
 * attestation of a validation service, [0094]), never because the card signed it.
 */
export interface UsageSummary {
  /** The first counter value the summary does not cover. */
  readonly next: bigint;
  readonly intervals: bigint;
  readonly executions: bigint;
  /** Counter values bridged by `skipped` records and carried by no record: charged worst-case by evaluation. */
  readonly skipped: bigint;
  /** Minutes of `units` use by local hour of day, 24 entries. */
  readonly minutesByHour: readonly bigint[];
  /** The newest audit record. */
  readonly lastAudit: AuditMark | undefined;
}

export type UsageEvent =
  | { readonly kind: 'interval' }
  | { readonly kind: 'execution' }
  | { readonly kind: 'units'; readonly minutes: number; readonly at: LocalTime }
  | { readonly kind: 'audit'; readonly nonce: string; readonly at: LocalTime }
  | {
    readonly kind: 'validated';
    readonly counter: bigint;
    readonly summary: UsageSummary | undefined;
    readonly attestation: string | undefined;
    /** With a summary: SHA-256 over the digests of the records the validation service checked, 64 lowercase hex. */
    readonly recordsDigest?: string | undefined;
  };

/** A program's record; `attestation` is a validation service's 64-byte signature over the text before " attest ". */
export type ProgramText = UsageBinding & UsageEvent;
/** The bridge record: counter values from..to (inclusive) that no record in this trail carries. */
export interface SkippedText {
  readonly kind: 'skipped';
  readonly from: bigint;
  readonly to: bigint;
}
export type UsageText = ProgramText | SkippedText;

/** A record selected for a program: its own records and the bridge records, which concern every program. */
export interface OwnRecord {
  readonly counter: bigint;
  readonly usage: UsageText;
}

/** [0049]: the time one interval record stands for. */
export const INTERVAL_MINUTES = 15;
/** The most minutes one `units` record may carry: what a skipped counter value is charged ([0103]: per hour). */
export const MAX_UNITS_MINUTES = 60;
export const KEY_DIGEST_LENGTH = 16;
const COUNTER_LIMIT = 1n << 128n;
const PROGRAM = /^[\x21-\x7e]{1,64}$/;
const DIGEST = /^[0-9a-f]{32}$/;
const NONCE = /^(?:[0-9a-f]{2}){16,64}$/;
const ATTESTATION = /^[0-9a-f]{128}$/;
const RECORDS_DIGEST = /^[0-9a-f]{64}$/;
const DECIMAL = /^(?:0|[1-9][0-9]{0,59})$/;
const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?:Z|([+-])([0-9]{2}):([0-9]{2}))$/;
const MAX_OFFSET_MINUTES = 14 * 60;
/** Wall-clock minutes of 10000-01-01T00:00: times are four-digit years from 1970. */
const WALL_LIMIT = Date.UTC(10000, 0, 1) / 60_000;

const input = (message: string) => new RentalError('input', message);

/** A bounded, escaped, one-line rendering of untrusted text for an error message. */
export function quoteText(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return `"${cut.replace(/["\\]/g, '\\$&').replace(/[^\x20-\x7e…]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** [0046] "the message digest of the public keying material": SHA-256, first 16 bytes (Fig. 6's length), hex. */
export function cardKeyDigest(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length === 0) throw input('expected the card public key as a non-empty Uint8Array');
  return toHex(sha256(publicKey).subarray(0, KEY_DIGEST_LENGTH));
}

/** The binding of the keyfile's program to the keyfile's card public key. */
export function usageBinding(program: string, cardPublicKey: Uint8Array): UsageBinding {
  const binding = { program, keyDigest: cardKeyDigest(cardPublicKey) };
  assertBinding(binding);
  return binding;
}

function assertBinding(binding: UsageBinding): void {
  if (typeof binding !== 'object' || binding === null) throw input('expected a usage binding { program, keyDigest }');
  if (typeof binding.program !== 'string' || !PROGRAM.test(binding.program)) throw input('expected a program name of 1..64 printable ASCII characters without spaces');
  if (typeof binding.keyDigest !== 'string' || !DIGEST.test(binding.keyDigest)) throw input(`expected a key digest of ${KEY_DIGEST_LENGTH * 2} lowercase hex digits`);
}

function isLocalTime(time: LocalTime): boolean {
  if (typeof time !== 'object' || time === null || !Number.isSafeInteger(time.epochMinutes) || !Number.isInteger(time.offsetMinutes)) return false;
  const wall = time.epochMinutes + time.offsetMinutes;
  return time.epochMinutes >= 0 && Math.abs(time.offsetMinutes) <= MAX_OFFSET_MINUTES && wall >= 0 && wall < WALL_LIMIT;
}

/** The wall-clock reading of `date` at `offsetMinutes` from UTC (by default this machine's offset at that instant). */
export function localTime(date: Date, offsetMinutes = date instanceof Date ? -date.getTimezoneOffset() : 0): LocalTime {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw input('expected a valid Date');
  const time = { epochMinutes: Math.floor(date.getTime() / 60_000), offsetMinutes };
  if (!isLocalTime(time)) throw input(`expected a time from 1970 to 9999 and an offset of whole minutes within ±14:00, got offset ${String(offsetMinutes)}`);
  return time;
}

/** The local minute of the day, 0..1439. */
export function minuteOfDay(time: LocalTime): number {
  return (time.epochMinutes + time.offsetMinutes) % 1440;
}

const two = (n: number) => String(n).padStart(2, '0');

/** `2026-11-28T21:15+01:00`; `Z` for offset zero. */
export function formatLocalTime(time: LocalTime): string {
  if (!isLocalTime(time)) throw input('expected a local time { epochMinutes, offsetMinutes } from 1970 to 9999 within ±14:00');
  const wall = new Date((time.epochMinutes + time.offsetMinutes) * 60_000).toISOString().slice(0, 16);
  const offset = Math.abs(time.offsetMinutes);
  return time.offsetMinutes === 0 ? `${wall}Z` : `${wall}${time.offsetMinutes < 0 ? '-' : '+'}${two(Math.floor(offset / 60))}:${two(offset % 60)}`;
}

/** The canonical time text only (a real date, `Z` rather than +00:00), or undefined. */
export function parseLocalTime(text: string): LocalTime | undefined {
  const match = typeof text === 'string' ? TIME.exec(text) : null;
  if (match === null || Number(match[1]) < 1970) return undefined;
  const [year, month, day, hour, minute] = match.slice(1, 6).map(Number) as [number, number, number, number, number];
  const offset = (match[6] === '-' ? -1 : 1) * (Number(match[7] ?? 0) * 60 + Number(match[8] ?? 0));
  const wall = Date.UTC(year, month - 1, day, hour, minute) / 60_000;
  const time = { epochMinutes: wall - offset, offsetMinutes: offset };
  // Date.UTC rolls 02-30 over to March: the round trip refuses it, and every non-canonical spelling.
  return isLocalTime(time) && formatLocalTime(time) === text ? time : undefined;
}

function isCount(value: unknown): value is bigint {
  return typeof value === 'bigint' && value >= 0n && value < 10n ** 60n;
}

/** Checks a summary handed to a public function. */
export function assertUsageSummary(summary: UsageSummary): void {
  if (typeof summary !== 'object' || summary === null) throw input('expected a usage summary object');
  const { next, intervals, executions, skipped, minutesByHour, lastAudit } = summary;
  if (typeof next !== 'bigint' || next < 0n || next > COUNTER_LIMIT) throw input('expected the summary\'s next counter in 0..2^128');
  if (![intervals, executions, skipped].every(isCount)) throw input('expected the summary\'s counts as non-negative bigints');
  if (!Array.isArray(minutesByHour) || minutesByHour.length !== 24 || !minutesByHour.every(isCount)) throw input('expected the summary\'s minutes by hour as 24 non-negative bigints');
  if (lastAudit !== undefined && (typeof lastAudit !== 'object' || lastAudit === null || !NONCE.test(lastAudit.nonce) || !isLocalTime(lastAudit.at))) {
    throw input('expected the summary\'s last audit as { nonce (16..64 bytes hex), at }');
  }
}

/** The summary's text in a validated record: `intervals=N;executions=N;skipped=N[;hHH=N...][;audit=NONCE@TIME]`. */
export function formatUsageSummary(summary: UsageSummary): string {
  assertUsageSummary(summary);
  const hours = summary.minutesByHour.flatMap((minutes, hour) => (minutes === 0n ? [] : [`;h${two(hour)}=${minutes}`]));
  const audit = summary.lastAudit === undefined ? '' : `;audit=${summary.lastAudit.nonce}@${formatLocalTime(summary.lastAudit.at)}`;
  return `intervals=${summary.intervals};executions=${summary.executions};skipped=${summary.skipped}${hours.join('')}${audit}`;
}

function parseSummary(text: string, next: bigint): UsageSummary | undefined {
  const fields = text.split(';').map((field) => field.split('='));
  if (fields.some((field) => field.length !== 2)) return undefined;
  const [intervals, executions, skipped, ...rest] = fields as [string, string][];
  const count = (field: [string, string] | undefined, name: string) => (field?.[0] === name && DECIMAL.test(field[1]) ? BigInt(field[1]) : undefined);
  const counts = [count(intervals, 'intervals'), count(executions, 'executions'), count(skipped, 'skipped')];
  const minutesByHour = Array.from({ length: 24 }, () => 0n);
  let lastAudit: AuditMark | undefined;
  let hour = -1;
  for (const [index, [name, value]] of rest.entries()) {
    const at = /^h([01][0-9]|2[0-3])$/.exec(name);
    if (at !== null && Number(at[1]) > hour && DECIMAL.test(value) && value !== '0') {
      hour = Number(at[1]);
      minutesByHour[hour] = BigInt(value);
      continue;
    }
    const [nonce, time, extra] = value.split('@');
    const when = time === undefined ? undefined : parseLocalTime(time);
    if (name !== 'audit' || index !== rest.length - 1 || extra !== undefined || nonce === undefined || !NONCE.test(nonce) || when === undefined) return undefined;
    lastAudit = { nonce, at: when };
  }
  if (counts.some((value) => value === undefined)) return undefined;
  const [i, e, s] = counts as bigint[];
  return { next, intervals: i!, executions: e!, skipped: s!, minutesByHour, lastAudit };
}

/** The summary of formatUsageSummary's text, covering the counters below `next`; undefined when the text is not one. */
export function parseUsageSummary(text: string, next: bigint): UsageSummary | undefined {
  if (typeof text !== 'string' || text.length > 4096 || typeof next !== 'bigint' || next < 0n || next > COUNTER_LIMIT) return undefined;
  const summary = parseSummary(text, next);
  // Only the canonical spelling (no zero hours, no leading zeros): one summary has one text.
  return summary !== undefined && formatUsageSummary(summary) === text ? summary : undefined;
}

function checkCounter(value: unknown, what: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value >= COUNTER_LIMIT) throw input(`expected ${what} as a bigint in 0..2^128-1`);
  return value;
}

/** The canonical text of a usage record; parseUsageText reads it back unchanged. */
export function formatUsageText(usage: UsageText): string {
  if (typeof usage !== 'object' || usage === null) throw input('expected a usage record object');
  if (usage.kind === 'skipped') {
    const from = checkCounter(usage.from, 'the first skipped counter');
    const to = checkCounter(usage.to, 'the last skipped counter');
    if (from > to) throw input(`expected a skipped range from..to with from <= to, got ${from}..${to}`);
    return `skipped ${from} ${to}`;
  }
  assertBinding(usage);
  const end = ` public key ${usage.keyDigest}`;
  const at = (time: LocalTime) => formatLocalTime(time);
  switch (usage.kind) {
    case 'interval': return `${usage.program} 15 minutes${end}`;
    case 'execution': return `${usage.program} execution${end}`;
    case 'units': {
      if (!Number.isInteger(usage.minutes) || usage.minutes < 1 || usage.minutes > MAX_UNITS_MINUTES) throw input(`expected 1..${MAX_UNITS_MINUTES} minutes of use, got ${String(usage.minutes)}`);
      return `${usage.program} units ${usage.minutes} at ${at(usage.at)}${end}`;
    }
    case 'audit': {
      if (typeof usage.nonce !== 'string' || !NONCE.test(usage.nonce)) throw input('expected the vendor\'s nonce as 16..64 bytes of lowercase hex');
      return `${usage.program} audit ${usage.nonce} at ${at(usage.at)}${end}`;
    }
    case 'validated': {
      const counter = checkCounter(usage.counter, 'the validated counter');
      if (usage.summary !== undefined) {
        assertUsageSummary(usage.summary);
        if (usage.summary.next !== counter) throw input(`expected a summary up to the validated record's counter ${counter}, got one up to ${usage.summary.next}`);
      }
      if (usage.attestation !== undefined && (typeof usage.attestation !== 'string' || !ATTESTATION.test(usage.attestation))) throw input('expected the attestation as 64 bytes of lowercase hex');
      const { recordsDigest } = usage;
      if (recordsDigest !== undefined && (usage.summary === undefined || typeof recordsDigest !== 'string' || !RECORDS_DIGEST.test(recordsDigest))) {
        throw input('expected the records digest as 32 bytes of lowercase hex, and only beside a summary');
      }
      const summary = usage.summary === undefined ? '' : ` usage ${formatUsageSummary(usage.summary)}`;
      const records = recordsDigest === undefined ? '' : ` records ${recordsDigest}`;
      return `${usage.program} validated ${counter}${summary}${records}${end}${usage.attestation === undefined ? '' : ` attest ${usage.attestation}`}`;
    }
    default: throw input(`expected a usage kind (interval, execution, units, audit, validated, skipped), got ${quoteText(String((usage as { kind: unknown }).kind))}`);
  }
}

const EVENTS = 'expected "15 minutes", "execution", "units MINUTES at TIME", "audit NONCE at TIME" or "validated COUNTER [usage SUMMARY [records DIGEST]]"';

function parseEvent(tokens: readonly string[], malformed: (why: string) => RentalError): UsageEvent {
  const [word, ...args] = tokens;
  const time = (text: string): LocalTime => {
    const parsed = parseLocalTime(text);
    if (parsed === undefined) throw malformed(`expected a time like 2026-11-28T21:15+01:00, got ${quoteText(text, 40)}`);
    return parsed;
  };
  if (word === '15' && args.length === 1 && args[0] === 'minutes') return { kind: 'interval' };
  if (word === 'execution' && args.length === 0) return { kind: 'execution' };
  if (word === 'units' && args.length === 3 && args[1] === 'at') {
    const minutes = /^[1-9][0-9]?$/.test(args[0]!) ? Number(args[0]) : 0;
    if (minutes < 1 || minutes > MAX_UNITS_MINUTES) throw malformed(`expected 1..${MAX_UNITS_MINUTES} minutes of use, got ${quoteText(args[0]!, 40)}`);
    return { kind: 'units', minutes, at: time(args[2]!) };
  }
  if (word === 'audit' && args.length === 3 && args[1] === 'at') {
    if (!NONCE.test(args[0]!)) throw malformed('expected the vendor\'s nonce as 16..64 bytes of lowercase hex');
    return { kind: 'audit', nonce: args[0]!, at: time(args[2]!) };
  }
  if (word === 'validated' && (args.length === 1 || (args.length === 3 && args[1] === 'usage') || (args.length === 5 && args[1] === 'usage' && args[3] === 'records'))) {
    if (!DECIMAL.test(args[0]!) || BigInt(args[0]!) >= COUNTER_LIMIT) throw malformed(`expected a counter in 0..2^128-1, got ${quoteText(args[0]!, 40)}`);
    const counter = BigInt(args[0]!);
    const summary = args[2] === undefined ? undefined : parseSummary(args[2], counter);
    if (args[2] !== undefined && summary === undefined) throw malformed(`expected a summary "intervals=N;executions=N;skipped=N[;hHH=N...][;audit=NONCE@TIME]", got ${quoteText(args[2], 60)}`);
    const recordsDigest = args[4];
    if (recordsDigest !== undefined && !RECORDS_DIGEST.test(recordsDigest)) throw malformed('expected 32 bytes of lowercase hex after "records"');
    return { kind: 'validated', counter, summary, attestation: undefined, recordsDigest };
  }
  throw malformed(EVENTS);
}

function parseTokens(text: string, binding: UsageBinding): UsageText | undefined {
  const tokens = text.split(' ');
  if (tokens[0] === 'skipped' && tokens.length === 3) {
    const [from, to] = tokens.slice(1).map((token) => (DECIMAL.test(token) ? BigInt(token) : -1n)) as [bigint, bigint];
    if (from < 0n || to < from || to >= COUNTER_LIMIT) throw new RentalError('malformed', `the bridge record ${quoteText(text)} is malformed: expected "skipped FROM TO" with counters FROM <= TO below 2^128`);
    return { kind: 'skipped', from, to };
  }
  if (tokens[0] !== binding.program) return undefined;
  const malformed = (why: string) => new RentalError('malformed', `${binding.program}'s usage record ${quoteText(text)} is malformed: ${why}`);
  let rest = tokens.slice(1);
  let attestation: string | undefined;
  if (rest.length >= 2 && rest[rest.length - 2] === 'attest') {
    attestation = rest[rest.length - 1]!;
    if (!ATTESTATION.test(attestation)) throw malformed('expected 64 bytes of lowercase hex after "attest"');
    rest = rest.slice(0, -2);
  }
  if (rest.length < 4 || rest[rest.length - 3] !== 'public' || rest[rest.length - 2] !== 'key') throw malformed('expected an event, then "public key" and the card key digest');
  const keyDigest = rest[rest.length - 1]!;
  if (!DIGEST.test(keyDigest)) throw malformed(`expected a card key digest of ${KEY_DIGEST_LENGTH * 2} lowercase hex digits`);
  if (keyDigest !== binding.keyDigest) throw malformed(`it names card key ${keyDigest}, not this keyfile's ${binding.keyDigest}`);
  const event = parseEvent(rest.slice(0, -3), malformed);
  if (event.kind === 'validated') return { program: binding.program, keyDigest, ...event, attestation };
  if (attestation !== undefined) throw malformed('only a validated record carries an attestation');
  return { program: binding.program, keyDigest, ...event };
}

/**
 * [0049]: reads a record's text for one program. Returns the program's record or a bridge record, undefined for the
 * texts of other programs and of other kinds (ValidateTrail's bare counter, free text), and throws RentalError
 * `malformed` (exit 3) for a text that names this program, or is a bridge, and breaks the grammar.
 */
export function parseUsageText(text: string, binding: UsageBinding): UsageText | undefined {
  assertBinding(binding);
  if (typeof text !== 'string') throw input(`expected the record text as a string, got ${typeof text}`);
  return parseTokens(text, binding);
}

/**
 * [0049] "each rented application views its own records from the audit trail without interpreting records created
 * by other applications": the program's records and the bridge records (a skipped counter value may have been any
 * program's), in trail order. A validated record must carry its own counter, a bridge must name counters below its
 * own: otherwise RentalError `malformed`.
 */
export function selectOwnRecords(entries: readonly UsageEntry[], binding: UsageBinding): OwnRecord[] {
  assertBinding(binding);
  if (!Array.isArray(entries)) throw input('expected the trail\'s entries as an array of { text, counter }');
  const own: OwnRecord[] = [];
  for (const [index, entry] of entries.entries()) {
    if (typeof entry !== 'object' || entry === null || typeof entry.text !== 'string') throw input(`expected entry ${index} as { text: string, counter: bigint }`);
    const counter = checkCounter(entry.counter, `the counter of entry ${index}`);
    const usage = parseTokens(entry.text, binding);
    if (usage === undefined) continue;
    if (usage.kind === 'validated' && usage.counter !== counter) {
      throw new RentalError('malformed', `${binding.program}'s validated record at counter ${counter} names counter ${usage.counter}`);
    }
    if (usage.kind === 'skipped' && usage.to >= counter) {
      throw new RentalError('malformed', `the bridge record at counter ${counter} names counters ${usage.from}..${usage.to}, not all below its own`);
    }
    own.push({ counter, usage });
  }
  return own;
}
