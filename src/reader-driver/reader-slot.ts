// A virtual reader slot holding at most one CardSource, with what pcsc-lite keeps per reader
// (READER_CONTEXT): insert/remove counter, connections, sharing, transaction lock, one APDU at a time.
import { VscError } from '../errors/index.js';
import type { CardSource } from '../apdu/index.js';
import {
  MAX_ATR_SIZE, SCARD_ABSENT, SCARD_NEGOTIABLE, SCARD_POWERED, SCARD_PRESENT, SCARD_PROTOCOL_T1,
  SCARD_PROTOCOL_UNDEFINED, SCARD_SHARE_EXCLUSIVE, SCARD_STATE_EMPTY, SCARD_STATE_EXCLUSIVE, SCARD_STATE_INUSE,
  SCARD_STATE_MUTE, SCARD_STATE_PRESENT, SCARD_SWALLOWED, withEventCounter, type ShareMode,
} from './pcsc-constants.js';
import { PcscError } from './pcsc-errors.js';

/** Misuse of the slot itself (the "hardware" side), not of the PC/SC API. */
export class ReaderSlotError extends VscError {
  override readonly name = 'ReaderSlotError';
  constructor(code: 'reader.occupied' | 'reader.empty' | 'reader.detached' | 'reader.invalid-card', message: string) {
    super(code, message);
  }
}

/** What a connection is told at its next call, like pcsc-lite's per-handle dwEventStatus. */
export type ConnectionEvent = 'none' | 'removed' | 'reset';

/** One card handle's entry in its reader; created and dropped by the slot, driven by CardHandle. */
export interface SlotConnection {
  readonly slot: ReaderSlot;
  shareMode: ShareMode;
  event: ConnectionEvent;
  open: boolean;
}

type Power = 'off' | 'on' | 'mute';

const NO_ATR = new Uint8Array(0);

function checkCardSource(card: unknown): asserts card is CardSource {
  const c = card as Partial<Record<keyof CardSource, unknown>> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.powerOn !== 'function' ||
    typeof c.powerOff !== 'function' ||
    typeof c.reset !== 'function' ||
    typeof c.transmit !== 'function'
  ) {
    throw new ReaderSlotError('reader.invalid-card', `expected a CardSource (atr, powerOn, powerOff, reset, transmit), got ${c === null ? 'null' : typeof c}`);
  }
  // ISO/IEC 7816-3 8.2: an ATR is TS and T0 at least, 33 bytes at most.
  if (!(c.atr instanceof Uint8Array) || c.atr.length < 2 || c.atr.length > MAX_ATR_SIZE) {
    const got = c.atr instanceof Uint8Array ? `${c.atr.length} bytes` : typeof c.atr;
    throw new ReaderSlotError('reader.invalid-card', `expected an ATR of 2..${MAX_ATR_SIZE} bytes, got ${got}`);
  }
}

export class ReaderSlot {
  readonly name: string;
  #card: CardSource | null = null;
  #power: Power = 'off';
  #powerError: unknown = undefined;
  #protocol = SCARD_PROTOCOL_UNDEFINED;
  #eventCounter = 0;
  #attached = true;
  readonly #connections = new Set<SlotConnection>();
  #exclusive: SlotConnection | null = null;
  #lockOwner: SlotConnection | null = null;
  #lockDepth = 0;
  /** The APDU exchange in flight, if any; a removal abandons it so a hung card cannot block the reader. */
  #io: object | null = null;
  #waiters: Array<() => void> = [];
  readonly #onChange: () => void;

  /** Made by ReaderSystem.addReader; `onChange` runs after every change of state. */
  constructor(name: string, onChange: () => void) {
    this.name = name;
    this.#onChange = onChange;
  }

  // ---- the hardware side: insert and remove a card ----

  get present(): boolean {
    return this.#card !== null;
  }

  get card(): CardSource | null {
    return this.#card;
  }

  /** Insert/remove events so far, modulo 0x10000 (pcsc-lite's eventCounter). */
  get eventCounter(): number {
    return this.#eventCounter;
  }

  /** False once the reader was removed from its system. */
  get attached(): boolean {
    return this.#attached;
  }

  /** Inserts and powers on a card, as pcsc-lite does at card insertion; a failed power-on leaves it mute. */
  insert(card: CardSource): void {
    if (!this.#attached) throw new ReaderSlotError('reader.detached', `expected an attached reader, got "${this.name}" removed from its system`);
    if (this.#card !== null) throw new ReaderSlotError('reader.occupied', `expected an empty reader "${this.name}", got one holding a card`);
    checkCardSource(card);
    this.#card = card;
    this.#power = 'off';
    this.#switchOn();
    this.#eventCounter = (this.#eventCounter + 1) & 0xffff;
    this.#notify();
  }

  /**
   * Takes the card out: every connection gets SCARD_W_REMOVED_CARD until it reconnects, the
   * transaction lock is dropped (as pcsc-lite does) and an APDU in flight is abandoned.
   */
  remove(): CardSource {
    const card = this.#card;
    if (card === null) throw new ReaderSlotError('reader.empty', `expected a card in reader "${this.name}", got an empty reader`);
    this.#card = null;
    this.#power = 'off';
    this.#protocol = SCARD_PROTOCOL_UNDEFINED;
    for (const connection of this.#connections) connection.event = 'removed';
    this.#lockOwner = null;
    this.#lockDepth = 0;
    this.#io = null;
    this.#eventCounter = (this.#eventCounter + 1) & 0xffff;
    this.#powerOffQuietly(card);
    this.#notify();
    return card;
  }

  // ---- the driver side: used by ReaderSystem, PcscContext and CardHandle ----

  /** pcsc-lite's readerState as SCardStatus reports it (without the counter). */
  get cardState(): number {
    if (this.#card === null) return SCARD_ABSENT;
    if (this.#power === 'on') return SCARD_PRESENT | SCARD_POWERED | SCARD_NEGOTIABLE;
    return this.#power === 'mute' ? SCARD_PRESENT | SCARD_SWALLOWED : SCARD_PRESENT;
  }

  /** SCARD_STATE_* flags with the event counter in the upper 16 bits, as SCardGetStatusChange fills dwEventState. */
  get readerState(): number {
    let flags = SCARD_STATE_EMPTY;
    if (this.#card !== null) flags = SCARD_STATE_PRESENT | (this.#power === 'mute' ? SCARD_STATE_MUTE : 0);
    if (this.#exclusive !== null) flags |= SCARD_STATE_EXCLUSIVE;
    else if (this.#connections.size > 0 && this.#card !== null) flags |= SCARD_STATE_INUSE;
    return withEventCounter(flags, this.#eventCounter);
  }

  get powered(): boolean {
    return this.#card !== null && this.#power === 'on';
  }

  /** Why the last power-on or reset failed, for the `cause` of SCARD_W_UNRESPONSIVE_CARD. */
  get powerError(): unknown {
    return this.#powerError;
  }

  /** The negotiated protocol; undefined again after every power-on or reset. */
  get protocol(): number {
    return this.#protocol;
  }

  get atr(): Uint8Array {
    return this.#card === null ? NO_ATR : this.#card.atr.slice();
  }

  get exclusivelyHeld(): boolean {
    return this.#exclusive !== null;
  }

  get lockOwner(): SlotConnection | null {
    return this.#lockOwner;
  }

  /** True while another connection holds the transaction: `connection` must wait. */
  lockedAgainst(connection: SlotConnection | null): boolean {
    return this.#lockOwner !== null && this.#lockOwner !== connection;
  }

  get ioBusy(): boolean {
    return this.#io !== null;
  }

  /** Resolves at the next change of anything above; waiters re-check their condition in arrival order. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Powers on a present card that is off or mute; true if it is now powered. */
  powerUp(): boolean {
    if (this.#card !== null && this.#power !== 'on') {
      this.#switchOn();
      this.#notify();
    }
    return this.powered;
  }

  /** Our cards speak T=1 only: SCARD_E_PROTO_MISMATCH unless the caller allows it. */
  checkProtocols(preferredProtocols: number): void {
    if ((preferredProtocols & SCARD_PROTOCOL_T1) === 0) {
      throw new PcscError(
        'SCARD_E_PROTO_MISMATCH',
        `expected the preferred protocols to include SCARD_PROTOCOL_T1, the only protocol of the card in "${this.name}", got 0x${preferredProtocols.toString(16)}`,
      );
    }
  }

  /** Sets the protocol for the powered card (pcsc-lite's PPS step). */
  negotiate(preferredProtocols: number): number {
    this.checkProtocols(preferredProtocols);
    this.#protocol = SCARD_PROTOCOL_T1;
    return this.#protocol;
  }

  /** Warm reset (cold: power off and on). Every connection is told SCARD_W_RESET_CARD. */
  resetCard(kind: 'warm' | 'cold'): void {
    const card = this.#card;
    if (card === null) return;
    for (const connection of this.#connections) connection.event = 'reset';
    if (kind === 'cold' || this.#power !== 'on') {
      this.#powerOffQuietly(card);
      this.#power = 'off';
      this.#switchOn();
    } else {
      try {
        card.reset();
        this.#protocol = SCARD_PROTOCOL_UNDEFINED;
      } catch (error) {
        this.#power = 'mute';
        this.#powerError = error;
      }
    }
    this.#notify();
  }

  /** Power off (SCARD_UNPOWER_CARD at disconnect). Every connection is told SCARD_W_RESET_CARD. */
  unpowerCard(): void {
    const card = this.#card;
    if (card === null) return;
    for (const connection of this.#connections) connection.event = 'reset';
    this.#powerOffQuietly(card);
    this.#power = 'off';
    this.#protocol = SCARD_PROTOCOL_UNDEFINED;
    this.#notify();
  }

  /** Refuses with SCARD_E_SHARING_VIOLATION when `shareMode` cannot be had with the other connections. */
  checkSharing(shareMode: ShareMode, self: SlotConnection | null): void {
    if (this.#exclusive !== null && this.#exclusive !== self) {
      throw new PcscError('SCARD_E_SHARING_VIOLATION', `expected no exclusive connection to "${this.name}", got one held by another handle`);
    }
    const others = this.#connections.size - (self !== null && this.#connections.has(self) ? 1 : 0);
    if (shareMode === SCARD_SHARE_EXCLUSIVE && others > 0) {
      throw new PcscError(
        'SCARD_E_SHARING_VIOLATION',
        `expected no other connection to "${this.name}" for SCARD_SHARE_EXCLUSIVE, got ${others}`,
      );
    }
  }

  connect(shareMode: ShareMode): SlotConnection {
    this.checkSharing(shareMode, null);
    const connection: SlotConnection = { slot: this, shareMode, event: 'none', open: true };
    this.#connections.add(connection);
    if (shareMode === SCARD_SHARE_EXCLUSIVE) this.#exclusive = connection;
    this.#notify();
    return connection;
  }

  setShareMode(connection: SlotConnection, shareMode: ShareMode): void {
    this.checkSharing(shareMode, connection);
    connection.shareMode = shareMode;
    if (shareMode === SCARD_SHARE_EXCLUSIVE) this.#exclusive = connection;
    else if (this.#exclusive === connection) this.#exclusive = null;
    this.#notify();
  }

  disconnect(connection: SlotConnection): void {
    if (!this.#connections.delete(connection)) return;
    connection.open = false;
    if (this.#exclusive === connection) this.#exclusive = null;
    if (this.#lockOwner === connection) {
      this.#lockOwner = null;
      this.#lockDepth = 0;
    }
    this.#notify();
  }

  /** SCardBeginTransaction once nobody else holds it; the same connection may nest. */
  lock(connection: SlotConnection): void {
    if (this.lockedAgainst(connection)) throw new Error('lock() called while another connection holds the transaction');
    this.#lockOwner = connection;
    this.#lockDepth += 1;
  }

  /** SCARD_E_NOT_TRANSACTED when nobody holds the transaction, SCARD_E_SHARING_VIOLATION when another handle does. */
  checkLockOwner(connection: SlotConnection): void {
    if (this.#lockOwner === null) {
      throw new PcscError('SCARD_E_NOT_TRANSACTED', `expected a transaction begun by this handle on "${this.name}", got none`);
    }
    if (this.#lockOwner !== connection) {
      throw new PcscError('SCARD_E_SHARING_VIOLATION', `expected this handle to hold the transaction on "${this.name}", got another handle holding it`);
    }
  }

  unlock(connection: SlotConnection): void {
    this.checkLockOwner(connection);
    this.#lockDepth -= 1;
    if (this.#lockDepth === 0) {
      this.#lockOwner = null;
      this.#notify();
    }
  }

  /** One APDU to the card; the caller has checked that no other exchange is in flight. */
  async exchange(command: Uint8Array): Promise<Uint8Array> {
    const card = this.#card;
    if (card === null) throw new PcscError('SCARD_E_NO_SMARTCARD', `expected a card in "${this.name}", got an empty reader`);
    if (this.#io !== null) throw new Error('exchange() called while another APDU is in flight');
    const token = {};
    this.#io = token;
    try {
      return await card.transmit(command);
    } catch (cause) {
      // IFDTransmit's answer to a failed exchange (pcsc-lite ifdwrapper.c).
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new PcscError('SCARD_E_NOT_TRANSACTED', `expected a response from the card in "${this.name}", got a failure: ${reason}`, { cause });
    } finally {
      if (this.#io === token) {
        this.#io = null;
        this.#notify();
      }
    }
  }

  /** The reader left its system: its connections now get SCARD_E_READER_UNAVAILABLE. */
  detach(): void {
    if (this.#card !== null) this.remove();
    this.#attached = false;
    this.#notify();
  }

  #switchOn(): void {
    const card = this.#card;
    if (card === null) return;
    this.#protocol = SCARD_PROTOCOL_UNDEFINED;
    try {
      card.powerOn();
      this.#power = 'on';
      this.#powerError = undefined;
    } catch (error) {
      this.#power = 'mute';
      this.#powerError = error;
    }
  }

  #powerOffQuietly(card: CardSource): void {
    try {
      card.powerOff();
    } catch {
      // The contacts are unpowered whatever the card answers; there is no one to tell.
    }
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
    this.#onChange();
  }
}
