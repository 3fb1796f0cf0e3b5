// Reads a binary record front to back (card-record.ts, escrow.ts), naming the field a short or malformed record
// ends in rather than reading past its end.
import { bytesToUint, fromUtf8 } from '../bytes/index.js';

export class ByteCursor {
  offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    /** The error for a record that is damaged, with why. */
    private readonly damaged: (why: string) => Error,
  ) {}

  take(length: number, what: string): Uint8Array {
    if (this.offset + length > this.bytes.length) throw this.damaged(`it ends inside the ${what}`);
    const part = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return part;
  }

  byte(what: string): number {
    return this.take(1, what)[0]!;
  }

  uint(length: number, what: string): number {
    return Number(bytesToUint(this.take(length, what)));
  }

  text(length: number, what: string): string {
    const bytes = this.take(length, what);
    try {
      return fromUtf8(bytes);
    } catch {
      throw this.damaged(`the ${what} is not UTF-8`);
    }
  }

  /** Whether every byte was read. */
  get done(): boolean {
    return this.offset === this.bytes.length;
  }
}
