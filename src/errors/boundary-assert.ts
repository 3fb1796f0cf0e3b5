// Boundary checks for public functions and decoded input (STYLE.md convention 5, noble's _assert.ts):
// each says what was expected and what came in, and never quotes a byte of the value, which may be secret.
import { VscError } from './vsc-error.js';

/** A value of the wrong type, size or range handed to a public function. */
export class BoundaryError extends VscError {
  override readonly name = 'BoundaryError';
  constructor(message: string) {
    super('argument.invalid', message);
  }
}

/** A byte length: exactly `n`, or `min` to `max` (either end may be left open). */
export type ByteLength = number | { readonly min?: number; readonly max?: number };

/** What came in, by type and size only: never its content. */
export function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return byteCount(value.length);
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${/^[aeiou]/.test(typeof value) ? 'an' : 'a'} ${typeof value}`;
}

function byteCount(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`;
}

/** "an 8-byte", "an 11-byte", "a 32-byte": the article English reads before the number. */
function sized(n: number): string {
  const digits = String(n);
  return `${digits.startsWith('8') || /^1[18](\d{3})*$/.test(digits) ? 'an' : 'a'} ${digits}-byte`;
}

function expectation(what: string, min: number, max: number): string {
  if (min === max) return `${sized(min)} ${what}`;
  if (max === Infinity) return min === 0 ? `${what} as a Uint8Array` : `${what} of at least ${byteCount(min)}`;
  return `${what} of ${min} to ${max} bytes`;
}

/**
 * Builds the error an assert throws from its message. A folder whose callers catch one error type
 * (ChannelError, CertificateInitError) passes its own; the default is BoundaryError.
 */
export type AssertFailure = (message: string) => VscError;

const boundaryError: AssertFailure = (message) => new BoundaryError(message);

/**
 * Asserts `value` is a Uint8Array of exactly `length` bytes, of `min` to `max` bytes, or of any length
 * when `length` is left out.
 */
export function assertBytes(what: string, value: unknown, length: ByteLength = {}, fail: AssertFailure = boundaryError): asserts value is Uint8Array {
  const [min, max] = typeof length === 'number' ? [length, length] : [length.min ?? 0, length.max ?? Infinity];
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    throw fail(`expected ${expectation(what, min, max)}, got ${describeValue(value)}`);
  }
}

/** Asserts `value` is an integer in min..max. */
export function assertInteger(what: string, value: unknown, min: number, max: number, fail: AssertFailure = boundaryError): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(`expected ${what} to be an integer in ${min}..${max}, got ${typeof value === 'number' ? value : describeValue(value)}`);
  }
}
