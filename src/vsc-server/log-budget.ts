// A budget of log lines per peer (issue 13 "Bounded server"): a peer refused 10,000 times writes a
// few lines a minute and then one "suppressed K lines" summary, not 10,000 lines.
/** What to do with one line. `summary` is set when lines of an earlier window were suppressed. */
export interface LineVerdict {
  readonly write: boolean;
  readonly summary?: { readonly peer: string; readonly suppressed: number };
}

interface Window {
  startedAt: number;
  written: number;
  suppressed: number;
}

/** Beyond this many peers in one window, new peers share one budget: the map stays bounded too. */
export const MAX_TRACKED_PEERS = 10_000;
export const OTHER_PEERS = 'other-peers';

export class PeerLineBudget {
  readonly #lines: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(linesPerWindow: number, windowMs = 60_000, now: () => number = Date.now) {
    if (!Number.isInteger(linesPerWindow) || linesPerWindow < 1) throw new RangeError(`expected log lines per peer as a positive whole number, got ${linesPerWindow}`);
    this.#lines = linesPerWindow;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Spends one line of `peer`'s budget. */
  take(peer: string): LineVerdict {
    const now = this.#now();
    const key = this.#windows.has(peer) || this.#windows.size < MAX_TRACKED_PEERS ? peer : OTHER_PEERS;
    let window = this.#windows.get(key);
    let summary: LineVerdict['summary'];
    if (window !== undefined && now - window.startedAt >= this.#windowMs) {
      if (window.suppressed > 0) summary = { peer: key, suppressed: window.suppressed };
      window = undefined;
    }
    if (window === undefined) {
      window = { startedAt: now, written: 0, suppressed: 0 };
      this.#windows.set(key, window);
    }
    const write = window.written < this.#lines;
    if (write) window.written++;
    else window.suppressed++;
    return summary === undefined ? { write } : { write, summary };
  }

  /** Ends the windows that are over: their summaries, and they are forgotten. */
  sweep(): { peer: string; suppressed: number }[] {
    const now = this.#now();
    const summaries: { peer: string; suppressed: number }[] = [];
    for (const [peer, window] of this.#windows) {
      if (now - window.startedAt < this.#windowMs) continue;
      if (window.suppressed > 0) summaries.push({ peer, suppressed: window.suppressed });
      this.#windows.delete(peer);
    }
    return summaries;
  }
}
