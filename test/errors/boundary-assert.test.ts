// The one boundary assert (src/errors/boundary-assert.ts): "expected X, got Y" messages that give a
// value's type and size only, BoundaryError by default, a folder's own error when it passes one.
import { describe, expect, it } from 'vitest';
import { assertBytes, assertInteger, BoundaryError, VscError } from '../../src/errors/index.js';

class FolderError extends VscError {
  constructor(message: string) {
    super('folder.input', message);
  }
}

function thrown(run: () => void): VscError {
  try {
    run();
  } catch (error) {
    if (error instanceof VscError) return error;
    throw error;
  }
  throw new Error('expected the assert to throw');
}

describe('assertBytes', () => {
  it.each([
    ['exact length', new Uint8Array(32), 32],
    ['empty at exact length 0', new Uint8Array(0), 0],
    ['within a range', new Uint8Array(5), { min: 5, max: 16 }],
    ['at least min', new Uint8Array(1), { min: 1 }],
    ['any length', new Uint8Array(0), undefined],
    ['a subarray', new Uint8Array(40).subarray(4, 36), 32],
  ] as const)('accepts %s', (_name, value, length) => {
    expect(() => assertBytes('thing', value, length)).not.toThrow();
  });

  it.each([
    ['too short', new Uint8Array(31), 32, 'expected a 32-byte key, got 31 bytes'],
    ['too long', new Uint8Array(33), 32, 'expected a 32-byte key, got 33 bytes'],
    ['"an" before 8', new Uint8Array(7), 8, 'expected an 8-byte key, got 7 bytes'],
    ['"an" before 11', new Uint8Array(7), 11, 'expected an 11-byte key, got 7 bytes'],
    ['"an" before 18', new Uint8Array(7), 18, 'expected an 18-byte key, got 7 bytes'],
    ['"a" before 16', new Uint8Array(7), 16, 'expected a 16-byte key, got 7 bytes'],
    ['below a range', new Uint8Array(4), { min: 5, max: 16 }, 'expected key of 5 to 16 bytes, got 4 bytes'],
    ['above a range', new Uint8Array(17), { min: 5, max: 16 }, 'expected key of 5 to 16 bytes, got 17 bytes'],
    ['below an open range', new Uint8Array(0), { min: 1 }, 'expected key of at least 1 byte, got 0 bytes'],
    ['a string', 'abcd', undefined, 'expected key as a Uint8Array, got a string'],
    ['a number', 7, 32, 'expected a 32-byte key, got a number'],
    ['undefined', undefined, 32, 'expected a 32-byte key, got undefined'],
    ['null', null, 32, 'expected a 32-byte key, got null'],
    ['an array', [1, 2, 3], 3, 'expected a 3-byte key, got an array'],
    ['an object', { length: 32 }, 32, 'expected a 32-byte key, got an object'],
  ] as const)('refuses %s with BoundaryError and a clear message', (_name, value, length, message) => {
    const error = thrown(() => assertBytes('key', value, length));
    expect(error).toBeInstanceOf(BoundaryError);
    expect(error.code).toBe('argument.invalid');
    expect(error.message).toBe(message);
  });

  it('never quotes the bytes it refuses (they may be secret)', () => {
    const secret = new Uint8Array(31).fill(0xab);
    const error = thrown(() => assertBytes('signing seed', secret, 32));
    expect(error.message).not.toMatch(/ab|171/i);
    expect(secret.every((byte) => byte === 0xab)).toBe(true);
  });

  it("throws a folder's own error when given one", () => {
    const error = thrown(() => assertBytes('key', new Uint8Array(1), 32, (message) => new FolderError(message)));
    expect(error).toBeInstanceOf(FolderError);
    expect(error.code).toBe('folder.input');
    expect(error.message).toBe('expected a 32-byte key, got 1 byte');
  });
});

describe('assertInteger', () => {
  it.each([0, 1, 65535])('accepts %s in 0..65535', (value) => {
    expect(() => assertInteger('port', value, 0, 65535)).not.toThrow();
  });

  it.each([
    ['below', -1, 'expected port to be an integer in 0..65535, got -1'],
    ['above', 65536, 'expected port to be an integer in 0..65535, got 65536'],
    ['a fraction', 1.5, 'expected port to be an integer in 0..65535, got 1.5'],
    ['NaN', Number.NaN, 'expected port to be an integer in 0..65535, got NaN'],
    ['a string', '80', 'expected port to be an integer in 0..65535, got a string'],
    ['a bigint', 80n, 'expected port to be an integer in 0..65535, got a bigint'],
  ] as const)('refuses %s with BoundaryError', (_name, value, message) => {
    const error = thrown(() => assertInteger('port', value, 0, 65535));
    expect(error).toBeInstanceOf(BoundaryError);
    expect(error.message).toBe(message);
  });

  it("throws a folder's own error when given one", () => {
    expect(thrown(() => assertInteger('n', 9, 0, 1, (message) => new FolderError(message)))).toBeInstanceOf(FolderError);
  });
});
