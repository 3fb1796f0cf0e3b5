// The operation messages carried inside one protected-channel session ([0095]: one session per
// operation). Three messages: the client's hello (operation and serial), the server's challenge
// (KDF parameters, nonce ri1), the client's proof (owner auth key, implementation proofs, and the
// operation's own fields), then the server's result. JSON with base64 binaries; a message that
// does not parse exactly is refused and the session closed.
import { ExitCode, VscError } from '../errors/index.js';

export const OPERATIONS = ['enroll', 'insert', 'extend', 'remove', 'recover', 'destroy'] as const;
export type Operation = (typeof OPERATIONS)[number];

export class ProtocolError extends VscError {
  override readonly name = 'ProtocolError';
  constructor(message: string) {
    super('protocol.message', message, { exitCode: ExitCode.other });
  }
}

/** A JSON value as it arrives: read fields through `Fields`, which checks type and size. */
export class Fields {
  private readonly seen = new Set<string>();
  constructor(
    private readonly root: Record<string, unknown>,
    private readonly what: string,
  ) {}

  static parse(bytes: Uint8Array, what: string): Fields {
    let root: unknown;
    try {
      root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new ProtocolError(`expected the ${what} as JSON`);
    }
    if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new ProtocolError(`expected the ${what} as a JSON object`);
    return new Fields(root as Record<string, unknown>, what);
  }

  private take(name: string): unknown {
    this.seen.add(name);
    return this.root[name];
  }

  has(name: string): boolean {
    return this.root[name] !== undefined;
  }

  string(name: string, pattern: RegExp = /^[\x20-\x7e]{1,256}$/): string {
    const value = this.take(name);
    if (typeof value !== 'string' || !pattern.test(value)) throw new ProtocolError(`${this.what}: expected "${name}" as a string matching ${pattern.source}`);
    return value;
  }

  bytes(name: string, min: number, max: number): Uint8Array {
    const value = this.take(name);
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new ProtocolError(`${this.what}: expected "${name}" as base64`);
    const bytes = new Uint8Array(Buffer.from(value, 'base64'));
    if (bytes.length < min || bytes.length > max) throw new ProtocolError(`${this.what}: expected "${name}" of ${min === max ? min : `${min} to ${max}`} bytes, got ${bytes.length}`);
    return bytes;
  }

  optionalBytes(name: string, min: number, max: number): Uint8Array | undefined {
    return this.has(name) ? this.bytes(name, min, max) : (this.take(name), undefined);
  }

  integer(name: string, min: number, max: number): number {
    const value = this.take(name);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new ProtocolError(`${this.what}: expected "${name}" as an integer in ${min}..${max}`);
    return value;
  }

  /** A non-negative integer of up to 128 bits, as decimal text. */
  bigint(name: string): bigint {
    const value = this.string(name, /^(0|[1-9][0-9]{0,38})$/);
    const result = BigInt(value);
    if (result >= 1n << 128n) throw new ProtocolError(`${this.what}: expected "${name}" below 2^128`);
    return result;
  }

  boolean(name: string): boolean {
    const value = this.take(name);
    if (typeof value !== 'boolean') throw new ProtocolError(`${this.what}: expected "${name}" as true or false`);
    return value;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const value = this.take(name);
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) throw new ProtocolError(`${this.what}: expected "${name}" to be one of ${values.join(', ')}`);
    return value as T;
  }

  /** Refuses fields nobody read: a message means exactly what its reader understood. */
  done(): void {
    const extra = Object.keys(this.root).filter((key) => !this.seen.has(key));
    if (extra.length > 0) throw new ProtocolError(`${this.what}: unexpected field "${extra[0]}"`);
  }
}

export type WireValue = string | number | boolean | bigint | Uint8Array | undefined;

/** Encodes a flat message: bytes as base64, bigints as decimal text, undefined fields left out. */
export function encodeMessage(message: Record<string, WireValue>): Uint8Array {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined) continue;
    out[key] = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : typeof value === 'bigint' ? value.toString() : value;
  }
  return new TextEncoder().encode(JSON.stringify(out));
}

/** Serial numbers as the card store accepts them. */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why the server refused; the client maps it to its exit code. */
export const REFUSALS = ['unknown-card', 'busy', 'wrong-state', 'not-enrolled', 'blocked', 'authentication', 'muk-mismatch', 'holder-mismatch', 'implementation', 'protocol', 'internal'] as const;
export type Refusal = (typeof REFUSALS)[number];

export function refusalExitCode(reason: Refusal): ExitCode {
  switch (reason) {
    case 'unknown-card':
    case 'busy':
    case 'wrong-state':
    case 'not-enrolled':
      return ExitCode.refusedByState;
    case 'blocked':
    case 'authentication':
    case 'implementation':
      return ExitCode.authenticationFailed;
    case 'muk-mismatch':
    case 'holder-mismatch':
      return ExitCode.mukMismatch;
    case 'protocol':
    case 'internal':
      return ExitCode.other;
  }
}
