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

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Asserts `value` is a Uint8Array of exactly `length` bytes, or of `min` to `max` bytes. */
export function assertBytes(what: string, value: unknown, length: number | { readonly min: number; readonly max: number }): asserts value is Uint8Array {
  const [min, max] = typeof length === 'number' ? [length, length] : [length.min, length.max];
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) {
    const want = min === max ? `a ${min}-byte ${what}` : `${what} of ${min} to ${max} bytes`;
    throw new BoundaryError(`expected ${want}, got ${describe(value)}`);
  }
}

/** Asserts `value` is an integer in min..max. */
export function assertInteger(what: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new BoundaryError(`expected ${what} to be an integer in ${min}..${max}, got ${typeof value === 'number' ? value : describe(value)}`);
  }
}
