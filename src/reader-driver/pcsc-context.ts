// SCardEstablishContext and the calls made on a context: list readers, wait for reader changes
// (SCardGetStatusChange, SCardCancel), connect to a card, release — with pcsc-lite's semantics.
import { CardHandle } from './card-handle.js';
import {
  INFINITE,
  SCARD_LEAVE_CARD,
  SCARD_PNP_NOTIFICATION,
  SCARD_PROTOCOL_UNDEFINED,
  SCARD_RESET_CARD,
  SCARD_SHARE_DIRECT,
  SCARD_STATE_CHANGED,
  SCARD_STATE_EMPTY,
  SCARD_STATE_EXCLUSIVE,
  SCARD_STATE_IGNORE,
  SCARD_STATE_INUSE,
  SCARD_STATE_MUTE,
  SCARD_STATE_PRESENT,
  SCARD_STATE_UNAVAILABLE,
  SCARD_STATE_UNKNOWN,
  assertPreferredProtocols,
  assertShareMode,
  eventCounterOf,
  withEventCounter,
} from './pcsc-constants.js';
import type { ShareMode } from './pcsc-constants.js';
import { PcscError } from './pcsc-errors.js';
import { ReaderSystem } from './reader-system.js';

/** One entry of SCardGetStatusChange's input: what the caller believes the reader's state is. */
export interface ReaderStateQuery {
  readonly readerName: string;
  /** SCARD_STATE_* flags, event counter in the upper 16 bits (0 = not known); usually the last eventState. */
  readonly currentState: number;
}

/** One entry of SCardGetStatusChange's answer. */
export interface ReaderState extends ReaderStateQuery {
  /** SCARD_STATE_* flags with SCARD_STATE_CHANGED where the state differs; event counter in the upper 16 bits. */
  readonly eventState: number;
  readonly atr: Uint8Array;
}

/** The flags compared to decide that a reader's state differs from the caller's currentState. */
const COMPARED_FLAGS =
  SCARD_STATE_UNKNOWN |
  SCARD_STATE_UNAVAILABLE |
  SCARD_STATE_EMPTY |
  SCARD_STATE_PRESENT |
  SCARD_STATE_EXCLUSIVE |
  SCARD_STATE_INUSE |
  SCARD_STATE_MUTE;
/** setTimeout's limit. */
const MAX_TIMEOUT_MS = 0x7fffffff;
const NO_ATR = new Uint8Array(0);

function isPnpName(name: string): boolean {
  return name.toLowerCase() === SCARD_PNP_NOTIFICATION.toLowerCase();
}

function checkQueries(readerStates: unknown): ReaderStateQuery[] {
  if (!Array.isArray(readerStates)) {
    throw new PcscError('SCARD_E_INVALID_PARAMETER', `expected an array of reader states, got ${readerStates === null ? 'null' : typeof readerStates}`);
  }
  return readerStates.map((entry: unknown, index) => {
    const { readerName, currentState } = (entry ?? {}) as Partial<Record<keyof ReaderStateQuery, unknown>>;
    if (typeof readerName !== 'string') {
      throw new PcscError('SCARD_E_INVALID_VALUE', `expected readerStates[${index}].readerName to be a string, got ${typeof readerName}`);
    }
    if (typeof currentState !== 'number' || !Number.isInteger(currentState) || currentState < 0 || currentState > 0xffffffff) {
      throw new PcscError('SCARD_E_INVALID_VALUE', `expected readerStates[${index}].currentState to be a 32-bit unsigned integer, got ${String(currentState)}`);
    }
    return { readerName, currentState };
  });
}

function checkTimeout(timeoutMs: unknown): number {
  if (timeoutMs === Infinity || timeoutMs === INFINITE) return Infinity;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new PcscError('SCARD_E_INVALID_VALUE', `expected a timeout of 0..${MAX_TIMEOUT_MS} ms or Infinity, got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}

/** SCardEstablishContext on a reader system. */
export function establishContext(system: ReaderSystem): PcscContext {
  return new PcscContext(system);
}

export class PcscContext {
  readonly #system: ReaderSystem;
  readonly #handles = new Set<CardHandle>();
  /** Aborts of the pending getStatusChange calls. */
  readonly #pending = new Set<(error: PcscError) => void>();
  #released = false;

  constructor(system: ReaderSystem) {
    if (!(system instanceof ReaderSystem)) {
      throw new PcscError('SCARD_E_INVALID_PARAMETER', `expected a ReaderSystem, got ${system === null ? 'null' : typeof system}`);
    }
    this.#system = system;
  }

  /** False once released (SCardIsValidContext). */
  get valid(): boolean {
    return !this.#released;
  }

  /** Reader names in the order the readers were added; SCARD_E_NO_READERS_AVAILABLE when there is none. */
  async listReaders(): Promise<string[]> {
    this.#live();
    const names = this.#system.readerNames;
    if (names.length === 0) throw new PcscError('SCARD_E_NO_READERS_AVAILABLE', 'expected at least one reader, got none');
    return names;
  }

  /**
   * Resolves as soon as a reader's state differs from the caller's `currentState` (flags, or the
   * event counter when the caller's is not 0), with every entry's eventState filled and
   * SCARD_STATE_CHANGED set on those that differ. Rejects SCARD_E_TIMEOUT after `timeoutMs`
   * (Infinity or INFINITE: never) and SCARD_E_CANCELLED on cancel() or release().
   * The reader "\\?PnP?\Notification" changes when a reader is added or removed.
   */
  async getStatusChange(readerStates: readonly ReaderStateQuery[], timeoutMs: number): Promise<ReaderState[]> {
    this.#live();
    const queries = checkQueries(readerStates);
    const timeout = checkTimeout(timeoutMs);
    for (const { readerName } of queries) {
      if (!isPnpName(readerName) && this.#system.getReader(readerName) === undefined) {
        throw new PcscError('SCARD_E_UNKNOWN_READER', `expected one of the readers [${this.#system.readerNames.join(', ')}], got "${readerName}"`);
      }
    }
    if (queries.every((query) => (query.currentState & SCARD_STATE_IGNORE) !== 0)) {
      return queries.map((query) => ({ ...query, eventState: 0, atr: NO_ATR }));
    }
    const readerEventsAtStart = this.#system.readerEvents;
    const first = this.#evaluate(queries, readerEventsAtStart);
    if (first !== null) return first;
    if (timeout === 0) throw new PcscError('SCARD_E_TIMEOUT', 'expected a reader state change within 0 ms, got none');

    return new Promise<ReaderState[]>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (): void => {
        unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
        this.#pending.delete(abort);
      };
      const abort = (error: PcscError): void => {
        settle();
        reject(error);
      };
      const unsubscribe = this.#system.onChange(() => {
        const result = this.#evaluate(queries, readerEventsAtStart);
        if (result === null) return;
        settle();
        resolve(result);
      });
      this.#pending.add(abort);
      if (timeout !== Infinity) {
        timer = setTimeout(() => abort(new PcscError('SCARD_E_TIMEOUT', `expected a reader state change within ${timeout} ms, got none`)), timeout);
      }
    });
  }

  /** SCardCancel: pending getStatusChange calls reject SCARD_E_CANCELLED; without any, nothing happens. */
  async cancel(): Promise<void> {
    this.#live();
    this.#abortPending('cancelled by cancel()');
  }

  /**
   * SCardConnect. Waits while another handle holds the reader's transaction, as pcsc-lite does.
   * Resolves to the card handle, whose `protocol` is the active protocol.
   */
  async connect(reader: string, shareMode: ShareMode, preferredProtocols: number): Promise<CardHandle> {
    this.#live();
    if (typeof reader !== 'string') {
      throw new PcscError('SCARD_E_INVALID_PARAMETER', `expected a reader name string, got ${reader === null ? 'null' : typeof reader}`);
    }
    assertShareMode(shareMode);
    assertPreferredProtocols(preferredProtocols, shareMode);
    for (;;) {
      this.#live();
      const slot = this.#system.getReader(reader);
      if (slot === undefined) {
        throw new PcscError('SCARD_E_UNKNOWN_READER', `expected one of the readers [${this.#system.readerNames.join(', ')}], got "${reader}"`);
      }
      if (slot.exclusivelyHeld) {
        throw new PcscError('SCARD_E_SHARING_VIOLATION', `expected no exclusive connection to "${reader}", got one held by another handle`);
      }
      if (slot.lockedAgainst(null)) {
        await slot.changed();
        continue;
      }
      let protocol = SCARD_PROTOCOL_UNDEFINED;
      if (shareMode !== SCARD_SHARE_DIRECT) {
        if (!slot.present) throw new PcscError('SCARD_E_NO_SMARTCARD', `expected a card in "${reader}", got an empty reader`);
        slot.checkProtocols(preferredProtocols);
        if (!slot.powerUp()) {
          throw new PcscError('SCARD_W_UNPOWERED_CARD', `expected the card in "${reader}" to power on, got no answer to reset`, { cause: slot.powerError });
        }
        slot.checkSharing(shareMode, null);
        protocol = slot.negotiate(preferredProtocols);
      }
      const handle = new CardHandle(slot.connect(shareMode), protocol, (closed) => this.#handles.delete(closed));
      this.#handles.add(handle);
      return handle;
    }
  }

  /**
   * SCardReleaseContext: pending getStatusChange calls reject SCARD_E_CANCELLED, the context's
   * handles are disconnected (a handle holding a transaction with SCARD_RESET_CARD, as pcscd does,
   * so the next application does not inherit its authentication), and every later call rejects
   * SCARD_E_INVALID_HANDLE.
   */
  async release(): Promise<void> {
    this.#live();
    this.#released = true;
    this.#abortPending('the context was released');
    for (const handle of [...this.#handles]) {
      if (handle.connected) await handle.disconnect(handle.inTransaction ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
    }
  }

  #live(): void {
    if (this.#released) throw new PcscError('SCARD_E_INVALID_HANDLE', 'expected an established context, got one already released');
  }

  #abortPending(reason: string): void {
    for (const abort of [...this.#pending]) {
      abort(new PcscError('SCARD_E_CANCELLED', `expected a reader state change, got the wait ${reason}`));
    }
  }

  /** One pass of pcsc-lite's SCardGetStatusChange loop: the answer if anything differs, else null. */
  #evaluate(queries: readonly ReaderStateQuery[], readerEventsAtStart: number): ReaderState[] | null {
    let anyChanged = false;
    const results = queries.map(({ readerName, currentState }): ReaderState => {
      if ((currentState & SCARD_STATE_IGNORE) !== 0) return { readerName, currentState, eventState: 0, atr: NO_ATR };
      let state: number;
      let changed: boolean;
      let atr: Uint8Array = NO_ATR;
      const slot = this.#system.getReader(readerName);
      if (slot !== undefined) {
        state = slot.readerState;
        const known = eventCounterOf(currentState);
        changed = (currentState & COMPARED_FLAGS) !== (state & COMPARED_FLAGS) || (known !== 0 && known !== eventCounterOf(state));
        if (slot.present) atr = slot.atr;
      } else if (isPnpName(readerName)) {
        // pcsc-lite compares the caller's counter when it has one, else waits for the next change.
        const events = this.#system.readerEvents;
        const known = eventCounterOf(currentState);
        state = withEventCounter(0, events);
        changed = known !== 0 ? known !== events : events !== readerEventsAtStart;
      } else {
        // A reader that went away while we waited.
        state = SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE;
        changed = (currentState & COMPARED_FLAGS) !== state;
      }
      if (changed) anyChanged = true;
      return { readerName, currentState, eventState: changed ? state + SCARD_STATE_CHANGED : state, atr };
    });
    return anyChanged ? results : null;
  }
}
