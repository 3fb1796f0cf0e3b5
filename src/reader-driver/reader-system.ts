// The virtual readers of one process, as pcscd's reader list: several PC/SC contexts can be
// established on one system and all see the same readers, cards and connections.
import { MAX_READERNAME, SCARD_PNP_NOTIFICATION } from './pcsc-constants.js';
import { PcscError } from './pcsc-errors.js';
import { ReaderSlot } from './reader-slot.js';

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function checkReaderName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new PcscError('SCARD_E_INVALID_PARAMETER', `expected a reader name string, got ${typeof name}`);
  }
  // MAX_READERNAME counts the C string's terminating NUL.
  if (name.length === 0 || name.length >= MAX_READERNAME || hasControlCharacter(name)) {
    throw new PcscError(
      'SCARD_E_INVALID_VALUE',
      `expected a reader name of 1..${MAX_READERNAME - 1} printable characters, got ${JSON.stringify(name.slice(0, 40))}${name.length > 40 ? '…' : ''}`,
    );
  }
  if (name.toLowerCase() === SCARD_PNP_NOTIFICATION.toLowerCase()) {
    throw new PcscError('SCARD_E_INVALID_VALUE', `expected a reader name, got the reserved ${SCARD_PNP_NOTIFICATION}`);
  }
}

export class ReaderSystem {
  readonly #readers = new Map<string, ReaderSlot>();
  readonly #listeners = new Set<() => void>();
  /** pcsc-lite's ReaderEvents: starts at 1, counts reader additions and removals, never 0. */
  #readerEvents = 1;

  /** Adds an empty reader; SCARD_E_DUPLICATE_READER if the name is taken. */
  addReader(name: string): ReaderSlot {
    checkReaderName(name);
    if (this.#readers.has(name)) {
      throw new PcscError('SCARD_E_DUPLICATE_READER', `expected a new reader name, got "${name}" already in use`);
    }
    const slot = new ReaderSlot(name, () => this.#notify());
    this.#readers.set(name, slot);
    this.#countReaderEvent();
    this.#notify();
    return slot;
  }

  /**
   * Removes a reader. A card in it is removed first (handles see SCARD_W_REMOVED_CARD, then
   * SCARD_E_READER_UNAVAILABLE); waiting getStatusChange calls see it turn SCARD_STATE_UNKNOWN.
   */
  removeReader(name: string): void {
    checkReaderName(name);
    const slot = this.#readers.get(name);
    if (slot === undefined) throw new PcscError('SCARD_E_UNKNOWN_READER', `expected one of the readers [${this.readerNames.join(', ')}], got "${name}"`);
    this.#readers.delete(name);
    this.#countReaderEvent();
    slot.detach();
    this.#notify();
  }

  getReader(name: string): ReaderSlot | undefined {
    return this.#readers.get(name);
  }

  /** Reader names in the order they were added, as SCardListReaders returns them. */
  get readerNames(): string[] {
    return [...this.#readers.keys()];
  }

  /** The counter reported in the upper 16 bits of the PnP pseudo reader's event state. */
  get readerEvents(): number {
    return this.#readerEvents;
  }

  /** Calls `listener` after every change of any reader; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #countReaderEvent(): void {
    // pcsc-lite keeps it in an int16_t and restarts at 1 when it overflows.
    this.#readerEvents = this.#readerEvents >= 0x7fff ? 1 : this.#readerEvents + 1;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}
