// Rental threshold specs (patent 003 [0002], [0048]-[0049], [0103]-[0104]): the language keyfiles and the CLI carry,
// parsed and formatted; thresholds.ts sums a program's usage and checks it against them.
//
// Spec grammar (ABNF; spaces may separate tokens, words are lowercase, at most 500 characters, 32 levels of nesting):
//   spec     = or-expr
//   or-expr  = and-expr *("or" and-expr)                  ; "not" binds tighter than "and", "and" than "or"
//   and-expr = not-expr *("and" not-expr)
//   not-expr = "not" not-expr / primary
//   primary  = "(" or-expr ")" / limit / audit
//   limit    = "intervals" "<=" count                     ; 15-minute interval records ([0049]: 6 hours = 24)
//            / "executions" "<=" count                    ; execution records ([0002], [0047])
//            / "units" "<=" count rates                   ; units records priced by local time of use ([0103])
//   rates    = rate / 1*("at" window rate) "else" rate    ; windows may not overlap
//   window   = 2DIGIT ":00-" 2DIGIT ":00"                 ; local whole hours [from, to), across midnight if to < from
//   rate     = count "/h"                                 ; units per hour of use
//   audit    = "audit" "every" count ("m" / "h" / "d")    ; no threshold: periodic vendor audit ([0041], [0104])
//   count    = "0" / %x31-39 *DIGIT                       ; limits below 2^128, rates up to 10^9
// Examples: `intervals<=24`, `executions<=100`, `units<=1000 at 20:00-06:00 1/h else 2/h`, `audit every 30d`,
// `intervals<=24 and not (executions<=3 or units<=10 2/h)`.
import { quoteText } from './usage-text.js';
import { RentalError } from './rental-error.js';

export interface RateWindow {
  /** Local hours 0..23: the window is [from, to), across midnight when to < from. */
  readonly from: number;
  readonly to: number;
  readonly perHour: bigint;
}
export interface UnitRates {
  readonly windows: readonly RateWindow[];
  /** The rate of the hours outside every window. */
  readonly otherwise: bigint;
}

export type Threshold =
  | { readonly kind: 'intervals' | 'executions'; readonly limit: bigint }
  | { readonly kind: 'units'; readonly limit: bigint; readonly rates: UnitRates }
  | { readonly kind: 'audit'; readonly everyMinutes: number }
  | { readonly kind: 'and' | 'or'; readonly terms: readonly Threshold[] }
  | { readonly kind: 'not'; readonly term: Threshold };

export const MAX_SPEC_LENGTH = 500;
const MAX_NESTING = 32;
const LIMIT_MAX = (1n << 128n) - 1n;
const RATE_MAX = 10n ** 9n;
const MAX_PERIOD_MINUTES = 3660 * 1440;
const UNIT_MINUTES = { m: 1, h: 60, d: 1440 } as const;

/** A bad spec or argument: exit 2. */
export const thresholdInputError = (message: string) => new RentalError('input', message);

// ---- Spec parsing ----

type TokenKind = 'word' | 'count' | 'window' | 'rate' | 'period' | '(' | ')' | '<=' | 'end';
interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly column: number;
}

const LEXEME = / *(?:([()]|<=)|([a-z]+|[0-9]+:[0-9]+-[0-9]+:[0-9]+|[0-9]+\/h|[0-9]+[mhd]?)(?![a-z0-9:/]))/y;

function classify(text: string): TokenKind {
  if (/^[a-z]+$/.test(text)) return 'word';
  if (text.includes(':')) return 'window';
  if (text.endsWith('/h')) return 'rate';
  return /[mhd]$/.test(text) ? 'period' : 'count';
}

class SpecParser {
  private readonly tokens: Token[] = [];
  private index = 0;

  constructor(private readonly spec: string) {
    LEXEME.lastIndex = 0;
    while (LEXEME.lastIndex < spec.length) {
      const at = LEXEME.lastIndex;
      const match = LEXEME.exec(spec);
      if (match === null) {
        const rest = spec.slice(at).replace(/^ +/, '');
        if (rest === '') break;
        throw this.error(spec.length - rest.length + 1, 'a word, a number, a window, a rate, "(", ")" or "<=", separated by spaces where they would run together', quoteText(rest, 12));
      }
      const text = match[1] ?? match[2]!;
      this.tokens.push({ kind: match[1] === undefined ? classify(text) : (text as TokenKind), text, column: match.index + match[0].length - text.length + 1 });
    }
    this.tokens.push({ kind: 'end', text: '', column: spec.length + 1 });
  }

  parse(): Threshold {
    const threshold = this.or(0);
    this.expect('end', 'and, or, or the end of the spec');
    return threshold;
  }

  private error(column: number, expected: string, got: string): RentalError {
    return thresholdInputError(`threshold ${quoteText(this.spec, 60)}: expected ${expected} at column ${column}, got ${got}`);
  }

  private fail(token: Token, expected: string): RentalError {
    return this.error(token.column, expected, token.kind === 'end' ? 'the end' : quoteText(token.text, 20));
  }

  private next(): Token {
    return this.tokens[Math.min(this.index++, this.tokens.length - 1)]!;
  }

  private peekWord(word: string): boolean {
    const token = this.tokens[this.index]!;
    if (token.kind !== 'word' || token.text !== word) return false;
    this.index += 1;
    return true;
  }

  private expect(kind: TokenKind, expected: string, word?: string): Token {
    const token = this.next();
    if (token.kind !== kind || (word !== undefined && token.text !== word)) throw this.fail(token, expected);
    return token;
  }

  private deeper(depth: number, token: Token): number {
    if (depth >= MAX_NESTING) throw this.error(token.column, `at most ${MAX_NESTING} levels of "not" and parentheses`, 'more');
    return depth + 1;
  }

  private or(depth: number): Threshold {
    const terms = [this.and(depth)];
    while (this.peekWord('or')) terms.push(this.and(depth));
    return combine('or', terms);
  }

  private and(depth: number): Threshold {
    const terms = [this.not(depth)];
    while (this.peekWord('and')) terms.push(this.not(depth));
    return combine('and', terms);
  }

  private not(depth: number): Threshold {
    const token = this.tokens[this.index]!;
    if (!this.peekWord('not')) return this.primary(depth);
    return { kind: 'not', term: this.not(this.deeper(depth, token)) };
  }

  private primary(depth: number): Threshold {
    const token = this.next();
    if (token.kind === '(') {
      const inner = this.or(this.deeper(depth, token));
      this.expect(')', '")"');
      return inner;
    }
    if (token.kind === 'word') {
      switch (token.text) {
        case 'intervals':
        case 'executions':
          this.expect('<=', '"<="');
          return { kind: token.text, limit: this.count(this.expect('count', 'a limit (a whole number)'), LIMIT_MAX) };
        case 'units': {
          this.expect('<=', '"<="');
          const limit = this.count(this.expect('count', 'a limit (a whole number)'), LIMIT_MAX);
          return { kind: 'units', limit, rates: this.rates() };
        }
        case 'audit': {
          this.expect('word', '"every"', 'every');
          return { kind: 'audit', everyMinutes: this.period(this.expect('period', 'a period such as 30d, 12h or 90m')) };
        }
      }
    }
    throw this.fail(token, 'intervals<=N, executions<=N, units<=N RATES, audit every PERIOD, "not" or "("');
  }

  private count(token: Token, max: bigint): bigint {
    const digits = token.text.replace(/[^0-9]/g, '');
    if (!/^(?:0|[1-9][0-9]*)$/.test(digits)) throw this.fail(token, 'a number without leading zeros');
    if (digits.length > 40 || BigInt(digits) > max) throw this.fail(token, `a number up to ${max}`);
    return BigInt(digits);
  }

  private rates(): UnitRates {
    const windows: RateWindow[] = [];
    while (this.peekWord('at')) {
      const token = this.expect('window', 'a window of whole local hours such as 20:00-06:00');
      const match = /^([01][0-9]|2[0-3]):00-([01][0-9]|2[0-3]):00$/.exec(token.text);
      if (match === null) throw this.fail(token, 'a window of whole local hours such as 20:00-06:00');
      const window = { from: Number(match[1]), to: Number(match[2]), perHour: this.rate() };
      const problem = windowProblem(window, windows);
      if (problem !== undefined) throw this.fail(token, problem);
      windows.push(window);
    }
    if (windows.length > 0) this.expect('word', '"at" or "else"', 'else');
    return { windows, otherwise: this.rate() };
  }

  private rate(): bigint {
    return this.count(this.expect('rate', 'a rate in units per hour such as 2/h'), RATE_MAX);
  }

  private period(token: Token): number {
    const minutes = Number(this.count(token, 10n ** 9n)) * UNIT_MINUTES[token.text.slice(-1) as keyof typeof UNIT_MINUTES];
    if (minutes < 1 || minutes > MAX_PERIOD_MINUTES) throw this.fail(token, 'a period of 1m to 3660d');
    return minutes;
  }
}

function combine(kind: 'and' | 'or', terms: Threshold[]): Threshold {
  if (terms.length === 1) return terms[0]!;
  return { kind, terms: terms.flatMap((term) => (term.kind === kind ? term.terms : [term])) };
}

const hour = (h: number) => `${String(h).padStart(2, '0')}:00`;

/** Whether local hour `h` lies in `window` ([from, to), across midnight when to < from). */
export function inWindow(h: number, window: RateWindow): boolean {
  return window.from < window.to ? h >= window.from && h < window.to : h >= window.from || h < window.to;
}

function windowProblem(window: RateWindow, before: readonly RateWindow[]): string | undefined {
  if (window.from === window.to) return 'a window whose end differs from its start (for one rate all day, give the rate alone)';
  const overlapping = before.find((other) => Array.from({ length: 24 }, (_, h) => h).some((h) => inWindow(h, window) && inWindow(h, other)));
  return overlapping === undefined ? undefined : `a window that does not overlap ${hour(overlapping.from)}-${hour(overlapping.to)}`;
}

/**
 * Parses a threshold spec (grammar above). A bad spec throws RentalError `input` (exit 2) whose one-line message says
 * what was expected at which column.
 */
export function parseThreshold(spec: string): Threshold {
  if (typeof spec !== 'string') throw thresholdInputError(`expected a threshold spec as a string, got ${spec === null ? 'null' : typeof spec}`);
  if (spec.length > MAX_SPEC_LENGTH) throw thresholdInputError(`expected a threshold spec of at most ${MAX_SPEC_LENGTH} characters, got ${spec.length}`);
  return new SpecParser(spec).parse();
}

// ---- Formatting ----

function formatPeriod(minutes: number): string {
  if (minutes % 1440 === 0) return `${minutes / 1440}d`;
  return minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`;
}

function checkAmount(value: unknown, max: bigint, what: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > max) throw thresholdInputError(`expected ${what} as a bigint in 0..${max}`);
  return value;
}

function formatRates(rates: UnitRates): string {
  if (typeof rates !== 'object' || rates === null || !Array.isArray(rates.windows)) throw thresholdInputError('expected units rates { windows, otherwise }');
  const parts: string[] = [];
  rates.windows.forEach((window, index) => {
    const valid = typeof window === 'object' && window !== null && [window.from, window.to].every((h) => Number.isInteger(h) && h >= 0 && h <= 23);
    const problem = valid ? windowProblem(window, rates.windows.slice(0, index)) : 'hours 0..23';
    if (problem !== undefined) throw thresholdInputError(`expected rate windows with ${problem}`);
    parts.push(`at ${hour(window.from)}-${hour(window.to)} ${checkAmount(window.perHour, RATE_MAX, 'a rate')}/h`);
  });
  const otherwise = `${checkAmount(rates.otherwise, RATE_MAX, 'a rate')}/h`;
  return parts.length === 0 ? otherwise : `${parts.join(' ')} else ${otherwise}`;
}

function format(threshold: Threshold, context: 'top' | 'or' | 'and' | 'not'): string {
  if (typeof threshold !== 'object' || threshold === null) throw thresholdInputError('expected a threshold object');
  switch (threshold.kind) {
    case 'intervals':
    case 'executions':
      return `${threshold.kind}<=${checkAmount(threshold.limit, LIMIT_MAX, 'a limit')}`;
    case 'units':
      return `units<=${checkAmount(threshold.limit, LIMIT_MAX, 'a limit')} ${formatRates(threshold.rates)}`;
    case 'audit':
      if (!Number.isInteger(threshold.everyMinutes) || threshold.everyMinutes < 1 || threshold.everyMinutes > MAX_PERIOD_MINUTES) throw thresholdInputError('expected an audit period of 1 minute to 3660 days');
      return `audit every ${formatPeriod(threshold.everyMinutes)}`;
    case 'not':
      return `not ${format(threshold.term, 'not')}`;
    case 'and':
    case 'or': {
      if (!Array.isArray(threshold.terms) || threshold.terms.length < 2) throw thresholdInputError(`expected "${threshold.kind}" of at least two terms`);
      const text = threshold.terms.map((term) => format(term, threshold.kind)).join(` ${threshold.kind} `);
      const bare = context === 'top' || context === threshold.kind || (threshold.kind === 'and' && context === 'or');
      return bare ? text : `(${text})`;
    }
    default:
      throw thresholdInputError(`expected a threshold kind, got ${quoteText(String((threshold as { kind: unknown }).kind), 20)}`);
  }
}

/** The canonical spec of `threshold`: parseThreshold reads it back to the same tree (and/or flattened). */
export function formatThreshold(threshold: Threshold): string {
  return format(threshold, 'top');
}
