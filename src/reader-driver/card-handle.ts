// An SCARDHANDLE: one connection to the card in a reader, with pcsc-lite's semantics for
// SCardTransmit, SCardStatus, Begin/EndTransaction, SCardReconnect and SCardDisconnect.
import {
  SCARD_LEAVE_CARD,
  SCARD_PROTOCOL_UNDEFINED,
  SCARD_RESET_CARD,
  SCARD_SHARE_DIRECT,
  SCARD_UNPOWER_CARD,
  assertDisposition,
  assertPreferredProtocols,
  assertShareMode,
  withEventCounter,
} from './pcsc-constants.js';
import type { Disposition, ShareMode } from './pcsc-constants.js';
import { PcscError } from './pcsc-errors.js';
import type { SlotConnection } from './reader-slot.js';

/** CLA INS P1 P2. */
const MIN_COMMAND_LENGTH = 4;
/** ISO/IEC 7816-4 case 4E: header, 3-byte Lc, 65535 data bytes, 2-byte Le. */
const MAX_COMMAND_LENGTH = 4 + 3 + 65535 + 2;

/** What SCardStatus returns. `state` is SCARD_ABSENT/PRESENT/POWERED/... with the event counter in the upper 16 bits. */
export interface CardStatus {
  readonly readerName: string;
  readonly state: number;
  readonly protocol: number;
  readonly atr: Uint8Array;
}

interface WaitFor {
  /** Fail with SCARD_W_REMOVED_CARD / SCARD_W_RESET_CARD when the card changed under this handle. */
  readonly event: boolean;
  /** Also wait until no APDU is in flight (before touching the card's power). */
  readonly io: boolean;
}

function checkCommand(apdu: unknown): asserts apdu is Uint8Array {
  if (!(apdu instanceof Uint8Array)) {
    throw new PcscError('SCARD_E_INVALID_PARAMETER', `expected the command APDU as a Uint8Array, got ${apdu === null ? 'null' : typeof apdu}`);
  }
  if (apdu.length < MIN_COMMAND_LENGTH || apdu.length > MAX_COMMAND_LENGTH) {
    throw new PcscError(
      'SCARD_E_INVALID_PARAMETER',
      `expected a command APDU of ${MIN_COMMAND_LENGTH}..${MAX_COMMAND_LENGTH} bytes, got ${apdu.length}`,
    );
  }
}

export class CardHandle {
  readonly readerName: string;
  readonly #connection: SlotConnection;
  readonly #onClose: (handle: CardHandle) => void;
  #protocol: number;
  #closing = false;

  /** Made by PcscContext.connect; `onClose` runs once the handle is disconnected. */
  constructor(connection: SlotConnection, protocol: number, onClose: (handle: CardHandle) => void) {
    this.readerName = connection.slot.name;
    this.#connection = connection;
    this.#protocol = protocol;
    this.#onClose = onClose;
  }

  /** The active protocol from connect/reconnect (SCARD_PROTOCOL_T1, or UNDEFINED for SCARD_SHARE_DIRECT). */
  get protocol(): number {
    return this.#protocol;
  }

  /** False once disconnect() has begun or the context was released. */
  get connected(): boolean {
    return this.#connection.open && !this.#closing;
  }

  /** True while this handle holds the reader's transaction. */
  get inTransaction(): boolean {
    return this.#connection.open && this.#connection.slot.lockOwner === this.#connection;
  }

  /**
   * One command APDU in, the response APDU out. Waits while another handle holds the transaction
   * and while another handle's APDU is at the card: the reader carries one exchange at a time.
   */
  async transmit(apdu: Uint8Array): Promise<Uint8Array> {
    this.#live();
    checkCommand(apdu);
    const command = apdu.slice();
    return this.#whenFree({ event: true, io: true }, (connection) => this.#exchange(connection, command));
  }

  /** SCardStatus; waits while another handle holds the transaction, as pcsc-lite's client does. */
  async status(): Promise<CardStatus> {
    return this.#whenFree({ event: true, io: false }, ({ slot }) => ({
      readerName: this.readerName,
      state: withEventCounter(slot.cardState, slot.eventCounter),
      protocol: slot.protocol,
      atr: slot.atr,
    }));
  }

  /** Waits until no other handle holds the transaction, then holds it (nesting counts, as in pcsc-lite). */
  async beginTransaction(): Promise<void> {
    return this.#whenFree({ event: true, io: false }, (connection) => connection.slot.lock(connection));
  }

  /**
   * Ends one level of the transaction. SCARD_RESET_CARD / SCARD_UNPOWER_CARD reset the card (the
   * latter cold) and, as in pcsc-lite, every handle including this one then gets SCARD_W_RESET_CARD.
   */
  async endTransaction(disposition: Disposition): Promise<void> {
    const connection = this.#live();
    assertDisposition(disposition, 'the disposition');
    this.#usable(connection, true);
    connection.slot.checkLockOwner(connection);
    const resets = disposition === SCARD_RESET_CARD || disposition === SCARD_UNPOWER_CARD;
    return this.#whenFree({ event: true, io: resets }, ({ slot }) => {
      if (resets) slot.resetCard(disposition === SCARD_RESET_CARD ? 'warm' : 'cold');
      slot.unlock(connection);
    });
  }

  /**
   * SCardReconnect: clears a pending SCARD_W_REMOVED_CARD / SCARD_W_RESET_CARD, optionally resets the
   * card first, and changes the share mode. Resolves to the active protocol.
   */
  async reconnect(shareMode: ShareMode, preferredProtocols: number, initialization: Disposition): Promise<number> {
    this.#live();
    assertDisposition(initialization, 'the initialization', false);
    assertShareMode(shareMode);
    assertPreferredProtocols(preferredProtocols, shareMode);
    const resets = initialization !== SCARD_LEAVE_CARD;
    return this.#whenFree({ event: false, io: resets }, (connection) => {
      const { slot } = connection;
      // Refuse before touching the card, so a refused reconnect leaves it as it was.
      slot.checkSharing(shareMode, connection);
      if (!slot.present) throw new PcscError('SCARD_E_NO_SMARTCARD', `expected a card in "${slot.name}", got an empty reader`);
      if (shareMode !== SCARD_SHARE_DIRECT) slot.checkProtocols(preferredProtocols);
      if (resets) slot.resetCard(initialization === SCARD_RESET_CARD ? 'warm' : 'cold');
      if (!slot.powerUp()) {
        throw new PcscError('SCARD_W_UNRESPONSIVE_CARD', `expected the card in "${slot.name}" to answer to reset, got no answer`, {
          cause: slot.powerError,
        });
      }
      const protocol = shareMode === SCARD_SHARE_DIRECT ? SCARD_PROTOCOL_UNDEFINED : slot.negotiate(preferredProtocols);
      slot.setShareMode(connection, shareMode);
      connection.event = 'none';
      this.#protocol = protocol;
      return protocol;
    });
  }

  /**
   * SCardDisconnect. RESET / UNPOWER first wait for another handle's transaction to end, then the
   * other handles get SCARD_W_RESET_CARD; a card this handle saw removed is left alone.
   * EJECT leaves the card: a virtual reader cannot eject.
   */
  async disconnect(disposition: Disposition = SCARD_LEAVE_CARD): Promise<void> {
    const connection = this.#live();
    assertDisposition(disposition, 'the disposition');
    this.#closing = true;
    const { slot } = connection;
    const acts = disposition === SCARD_RESET_CARD || disposition === SCARD_UNPOWER_CARD;
    while (acts && slot.attached && (slot.lockedAgainst(connection) || slot.ioBusy)) {
      await slot.changed();
    }
    if (acts && slot.attached && connection.event !== 'removed') {
      if (disposition === SCARD_RESET_CARD) slot.resetCard('warm');
      else slot.unpowerCard();
    }
    slot.disconnect(connection);
    this.#onClose(this);
  }

  #live(): SlotConnection {
    if (!this.#connection.open || this.#closing) {
      throw new PcscError('SCARD_E_INVALID_HANDLE', `expected a connected card handle, got one disconnected from "${this.readerName}"`);
    }
    return this.#connection;
  }

  #usable(connection: SlotConnection, checkEvent: boolean): void {
    if (!connection.slot.attached) {
      throw new PcscError('SCARD_E_READER_UNAVAILABLE', `expected reader "${this.readerName}" to be present, got it removed from the system`);
    }
    if (!checkEvent) return;
    if (connection.event === 'removed') {
      throw new PcscError('SCARD_W_REMOVED_CARD', `expected the card this handle connected to, got it removed from "${this.readerName}"; reconnect`);
    }
    if (connection.event === 'reset') {
      throw new PcscError('SCARD_W_RESET_CARD', `expected the card in "${this.readerName}" as this handle left it, got it reset since; reconnect`);
    }
  }

  /**
   * pcsc-lite's client retries while another handle holds the transaction; here the wait is a
   * promise woken by every change of the slot. `action` runs in the same tick as the final check,
   * so nothing can slip in between.
   */
  async #whenFree<T>(wait: WaitFor, action: (connection: SlotConnection) => T): Promise<Awaited<T>> {
    for (;;) {
      const connection = this.#live();
      this.#usable(connection, wait.event);
      const { slot } = connection;
      if (!slot.lockedAgainst(connection) && !(wait.io && slot.ioBusy)) return await action(connection);
      await slot.changed();
    }
  }

  async #exchange(connection: SlotConnection, command: Uint8Array): Promise<Uint8Array> {
    const { slot } = connection;
    if (!slot.present) throw new PcscError('SCARD_E_NO_SMARTCARD', `expected a card in "${slot.name}", got an empty reader`);
    if (connection.shareMode === SCARD_SHARE_DIRECT) {
      throw new PcscError('SCARD_E_PROTO_MISMATCH', 'expected a handle connected SCARD_SHARE_SHARED or SCARD_SHARE_EXCLUSIVE, got SCARD_SHARE_DIRECT (no protocol)');
    }
    if (!slot.powered) throw new PcscError('SCARD_W_UNPOWERED_CARD', `expected a powered card in "${slot.name}", got it unpowered`);
    const response = await slot.exchange(command);
    if (connection.event === 'removed') {
      throw new PcscError('SCARD_W_REMOVED_CARD', `expected a response, got the card removed from "${slot.name}" during the exchange`);
    }
    if (!(response instanceof Uint8Array) || response.length < 2) {
      const got = response instanceof Uint8Array ? `${response.length} bytes` : typeof response;
      throw new PcscError('SCARD_E_NOT_TRANSACTED', `expected a response APDU of at least 2 bytes (SW1 SW2) from the card in "${slot.name}", got ${got}`);
    }
    return response;
  }
}
