// The framing of the rental server's wire protocol (rental-protocol.ts): one message a line, UTF-8, ended by "\n",
// at most MAX_MESSAGE_BYTES bytes before the newline. Socket reads are collected into whole lines: a read may hold
// part of a line, several lines, or a UTF-8 character cut in two.

/** The longest message line, without its "\n" (64 KiB). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * What one read completed: a line of text, a line that is not UTF-8 (answered as bad input, the connection kept),
 * or a line over the limit (answered, then the connection is closed: the reader takes nothing after it).
 */
export type LineEvent =
  | { readonly kind: 'line'; readonly text: string }
  | { readonly kind: 'not-utf8' }
  | { readonly kind: 'too-long' };

export class RentalLineReader {
  #parts: Uint8Array[] = [];
  #pending = 0;
  #overflowed = false;
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`expected a line limit of at least 1 byte, got ${maxBytes}`);
  }

  /** True once a line went over the limit: nothing more is read. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** True when a line has begun and not ended (the peer closed mid-line). */
  get partial(): boolean {
    return this.#pending > 0;
  }

  /** Takes one read; returns the events it completes, in order. After `too-long`, returns nothing more. */
  push(chunk: Uint8Array): LineEvent[] {
    if (this.#overflowed) return [];
    const events: LineEvent[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      if (this.#pending + (end - start) > this.maxBytes) return this.#overflow(events);
      const line = this.#take(chunk.subarray(start, end));
      start = end + 1;
      try {
        events.push({ kind: 'line', text: this.#decoder.decode(line) });
      } catch {
        events.push({ kind: 'not-utf8' });
      }
    }
    const rest = chunk.subarray(start);
    if (this.#pending + rest.length > this.maxBytes) return this.#overflow(events);
    if (rest.length > 0) {
      // The socket may reuse its buffer: keep a copy.
      this.#parts.push(rest.slice());
      this.#pending += rest.length;
    }
    return events;
  }

  #take(last: Uint8Array): Uint8Array {
    if (this.#parts.length === 0) return last;
    const line = new Uint8Array(this.#pending + last.length);
    let at = 0;
    for (const part of this.#parts) {
      line.set(part, at);
      at += part.length;
    }
    line.set(last, at);
    this.#parts = [];
    this.#pending = 0;
    return line;
  }

  #overflow(events: LineEvent[]): LineEvent[] {
    this.#overflowed = true;
    this.#parts = [];
    this.#pending = 0;
    events.push({ kind: 'too-long' });
    return events;
  }
}
