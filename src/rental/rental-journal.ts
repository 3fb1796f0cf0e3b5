// The rental server's journal (patent 003 [0062]: recovery from a failure; the issue: "journals a SIGN AND INCREMENT
// before sending it and replays after a crash, so a crash between sign and append leaves no hole"): DIR/journal,
// 0600, holding at most one entry, since Writes run one at a time ([0058]). An entry is the Write's intent (nonce,
// text, the counter the card showed), written and fsynced before SIGN AND INCREMENT is sent, then the card's answer
// (the signature), fsynced before the record is appended to any trail. One line each:
//   {"kind":"intent","nonce":HEX,"text":TEXT,"counter":DECIMAL}
//   {"kind":"answer","counter":DECIMAL,"signature":HEX}
// A line cut by a crash (no newline) was never fsynced, so the card was never asked on its strength: it is ignored.
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, fromUtf8, toHex, utf8 } from '../bytes/index.js';
import { ED25519_SIGNATURE_LENGTH } from '../crypto/index.js';
import { ExposedFileError } from '../files/index.js';
import { isNonceHex, recordTextProblem, type AuditRecord } from './audit-record.js';
import type { JournalState } from './rental-answers.js';
import { RentalError } from './rental-error.js';
import { formatCounter, parseCounterText } from './rental-protocol.js';

export const JOURNAL_FILE_NAME = 'journal';
/** Two lines of a text of at most MAX_TEXT_BYTES, escaped: anything longer is not a journal. */
const MAX_JOURNAL_BYTES = 256 * 1024;

/** What the server meant to have signed: the record without its signature. */
export interface JournalIntent {
  readonly nonce: Uint8Array;
  readonly text: string;
  /** The counter the card showed in the same transaction, right before SIGN AND INCREMENT. */
  readonly counter: bigint;
}

export type JournalEntry =
  | { readonly state: 'intent'; readonly intent: JournalIntent }
  | { readonly state: 'answered'; readonly intent: JournalIntent; readonly record: AuditRecord };

function ioCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, position + written);
}

function intentLine(intent: JournalIntent): string {
  return `${JSON.stringify({ kind: 'intent', nonce: toHex(intent.nonce), text: intent.text, counter: formatCounter(intent.counter) })}\n`;
}

function answerLine(record: AuditRecord): string {
  return `${JSON.stringify({ kind: 'answer', counter: formatCounter(record.counter), signature: toHex(record.signature) })}\n`;
}

const SIGNATURE_HEX = new RegExp(`^[0-9a-f]{${ED25519_SIGNATURE_LENGTH * 2}}$`);

function fieldsOf(line: string, kind: string, keys: readonly string[]): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const fields = value as Record<string, unknown>;
  const present = Object.keys(fields);
  if (fields['kind'] !== kind || present.length !== keys.length || !keys.every((key) => present.includes(key))) return undefined;
  return fields;
}

function parseIntent(line: string): JournalIntent | undefined {
  const fields = fieldsOf(line, 'intent', ['kind', 'nonce', 'text', 'counter']);
  if (fields === undefined) return undefined;
  const { nonce, text, counter } = fields;
  const value = parseCounterText(counter);
  if (!isNonceHex(nonce) || recordTextProblem(text) !== undefined || value === undefined) return undefined;
  return { nonce: fromHex(nonce), text: text as string, counter: value };
}

function parseAnswer(line: string, intent: JournalIntent): AuditRecord | undefined {
  const fields = fieldsOf(line, 'answer', ['kind', 'counter', 'signature']);
  if (fields === undefined) return undefined;
  const { counter, signature } = fields;
  if (parseCounterText(counter) !== intent.counter || typeof signature !== 'string' || !SIGNATURE_HEX.test(signature)) return undefined;
  return { ...intent, signature: fromHex(signature) };
}

/** Reads the journal's entry from its bytes; throws RentalError `malformed` for anything the server did not write. */
export function parseJournal(bytes: Uint8Array, path = JOURNAL_FILE_NAME): JournalEntry | undefined {
  const malformed = (why: string) => new RentalError('malformed', `the rental journal ${path} ${why}: the server did not write this; move it away only after checking the trail`);
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw malformed('is not UTF-8');
  }
  // Only whole lines count: a cut last line was never fsynced.
  const lines = text.split('\n').slice(0, -1);
  if (lines.length === 0) return undefined;
  if (lines.length > 2) throw malformed(`holds ${lines.length} lines, expected at most 2`);
  const intent = parseIntent(lines[0]!);
  if (intent === undefined) throw malformed('line 1 is not a Write intent');
  if (lines.length === 1) return { state: 'intent', intent };
  const record = parseAnswer(lines[1]!, intent);
  if (record === undefined) throw malformed('line 2 is not the card\'s answer to the intent of line 1');
  return { state: 'answered', intent, record };
}

/** The journal file of a rental server's trail directory, open for the server's life. */
export class RentalJournal {
  #entry: JournalEntry | undefined;
  #intentBytes = 0;
  #fd: number | undefined;

  private constructor(readonly path: string, fd: number, entry: JournalEntry | undefined) {
    this.#fd = fd;
    this.#entry = entry;
  }

  /** Opens (creating 0600) DIR/journal and reads its entry. DIR must exist (TrailFile.inDirectory makes it 0700). */
  static open(directory: string): RentalJournal {
    const path = join(directory, JOURNAL_FILE_NAME);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (error) {
      throw new RentalError('storage', `cannot open the rental journal ${path}: ${ioCode(error)}`, { cause: error });
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new RentalError('storage', `the rental journal ${path} is not a regular file`);
      if ((stat.mode & 0o077) !== 0) throw new ExposedFileError(path, stat.mode);
      if (stat.size > MAX_JOURNAL_BYTES) throw new RentalError('malformed', `the rental journal ${path} holds ${stat.size} bytes, expected at most ${MAX_JOURNAL_BYTES}`);
      const bytes = new Uint8Array(stat.size);
      let read = 0;
      while (read < bytes.length) {
        const n = readSync(fd, bytes, read, bytes.length - read, read);
        if (n === 0) break;
        read += n;
      }
      const journal = new RentalJournal(path, fd, parseJournal(bytes.subarray(0, read), path));
      if (journal.#entry !== undefined) journal.#intentBytes = utf8(intentLine(journal.#entry.intent)).length;
      return journal;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  get entry(): JournalEntry | undefined {
    return this.#entry;
  }

  get state(): JournalState {
    return this.#entry === undefined ? 'empty' : this.#entry.state;
  }

  #open(): number {
    if (this.#fd === undefined) throw new RentalError('storage', `the rental journal ${this.path} is closed`);
    return this.#fd;
  }

  #sync(what: string, run: (fd: number) => void): void {
    const fd = this.#open();
    try {
      run(fd);
      fsyncSync(fd);
    } catch (error) {
      throw new RentalError('storage', `cannot ${what} in the rental journal ${this.path}: ${ioCode(error)}`, { cause: error });
    }
  }

  /** Step (1): the intent, durable before the card is asked to sign. Replaces whatever entry was there. */
  recordIntent(intent: JournalIntent): void {
    const line = utf8(intentLine(intent));
    this.#sync('record a Write intent', (fd) => {
      writeAll(fd, line, 0);
      ftruncateSync(fd, line.length);
    });
    this.#entry = { state: 'intent', intent };
    this.#intentBytes = line.length;
  }

  /** Step (3): the card's answer to the intent, durable before the record goes to any trail. */
  recordAnswer(record: AuditRecord): void {
    const entry = this.#entry;
    if (entry === undefined || entry.state !== 'intent' || entry.intent.counter !== record.counter) {
      throw new RentalError('storage', `the rental journal ${this.path} holds no intent for counter ${record.counter}`);
    }
    const line = utf8(answerLine(record));
    this.#sync('record the card\'s answer', (fd) => writeAll(fd, line, this.#intentBytes));
    this.#entry = { state: 'answered', intent: entry.intent, record };
  }

  /**
   * Step (7): the entry is done. An answered entry's record is in every trail, so losing this clear in a power cut
   * only means it is found there again; an unanswered intent is cleared durably, lest it come back as a lost signature.
   */
  clear(): void {
    const durable = this.#entry?.state === 'intent';
    try {
      const fd = this.#open();
      ftruncateSync(fd, 0);
      if (durable) fsyncSync(fd);
    } catch (error) {
      throw new RentalError('storage', `cannot clear the rental journal ${this.path}: ${ioCode(error)}`, { cause: error });
    }
    this.#entry = undefined;
    this.#intentBytes = 0;
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}
