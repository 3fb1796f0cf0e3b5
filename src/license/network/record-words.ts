// Strict word-by-word reading of the trail texts a network license server signs (borrow-record-text.ts,
// seat-record-text.ts): single spaces, decimals without leading zeros, lowercase hex of one length, nothing more.
import { LicenseError } from '../license-error.js';

const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;
/** Longest text any of these records has; anything longer is refused before it is split. */
const MAX_TEXT_LENGTH = 256;

export class RecordWords {
  readonly #words: readonly string[];

  constructor(readonly what: string, text: string, count: number) {
    if (typeof text !== 'string' || text.length > MAX_TEXT_LENGTH) throw this.#input(`expected a text of at most ${MAX_TEXT_LENGTH} characters`);
    this.#words = text.split(' ');
    if (this.#words.length !== count) throw this.#input(`expected ${count} words, got ${this.#words.length}`);
  }

  #input(message: string): LicenseError {
    return new LicenseError('input', `${this.what} record text: ${message}`);
  }

  keyword(index: number, expected: string): void {
    if (this.#words[index] !== expected) throw this.#input(`expected "${expected}" as word ${index + 1}`);
  }

  decimal(index: number, name: string, max: number): number {
    const word = this.#words[index] ?? '';
    if (!DECIMAL.test(word) || Number(word) > max) throw this.#input(`expected ${name} as a decimal number in 0..${max} without leading zeros as word ${index + 1}`);
    return Number(word);
  }

  hex(index: number, name: string, bytes: number): string {
    const word = this.#words[index] ?? '';
    if (word.length !== bytes * 2 || !/^[0-9a-f]+$/.test(word)) throw this.#input(`expected ${name} as ${bytes * 2} lowercase hex digits as word ${index + 1}`);
    return word;
  }
}

/** A whole number in 0..max, for the formatters (which sign what they write, so they check it first). */
export function checkWhole(value: number, name: string, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new LicenseError('input', `${what} record text: expected ${name} as a whole number in 0..${max}, got ${String(value)}`);
  }
  return value;
}

export function checkHexWord(value: string, name: string, bytes: number, what: string): string {
  if (typeof value !== 'string' || value.length !== bytes * 2 || !/^[0-9a-f]+$/.test(value)) {
    throw new LicenseError('input', `${what} record text: expected ${name} as ${bytes * 2} lowercase hex digits`);
  }
  return value;
}
