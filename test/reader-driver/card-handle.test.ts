// CardHandle against in-process readers: transmit, status, transactions, reconnect, disconnect
// dispositions, and the warnings other handles get (removed, reset). Semantics follow pcsc-lite 1.9.9.
import { afterEach, describe, expect, it } from 'vitest';
import type { CardHandle } from '../../src/reader-driver/card-handle.js';
import { establishContext, type PcscContext } from '../../src/reader-driver/pcsc-context.js';
import {
  SCARD_EJECT_CARD,
  SCARD_LEAVE_CARD,
  SCARD_NEGOTIABLE,
  SCARD_POWERED,
  SCARD_PRESENT,
  SCARD_PROTOCOL_T1,
  SCARD_PROTOCOL_UNDEFINED,
  SCARD_RESET_CARD,
  SCARD_SHARE_DIRECT,
  SCARD_SHARE_EXCLUSIVE,
  SCARD_SHARE_SHARED,
  SCARD_UNPOWER_CARD,
  withEventCounter,
  type Disposition,
} from '../../src/reader-driver/pcsc-constants.js';
import type { ReaderSlot } from '../../src/reader-driver/reader-slot.js';
import { ReaderSystem } from '../../src/reader-driver/reader-system.js';
import { EchoCard, T1_ATR, apdu, expectPcscError, probe, settle } from '../support/index.js';

const READER = 'Virtual PCD 00 00';
const POWERED = SCARD_PRESENT | SCARD_POWERED | SCARD_NEGOTIABLE;

interface Fixture {
  system: ReaderSystem;
  slot: ReaderSlot;
  context: PcscContext;
  card: EchoCard;
  connect(shareMode?: typeof SCARD_SHARE_SHARED | typeof SCARD_SHARE_EXCLUSIVE): Promise<CardHandle>;
}

const contexts: PcscContext[] = [];

function setup(): Fixture {
  const system = new ReaderSystem();
  const slot = system.addReader(READER);
  const card = new EchoCard();
  slot.insert(card);
  const context = establishContext(system);
  contexts.push(context);
  return {
    system,
    slot,
    context,
    card,
    connect: (shareMode = SCARD_SHARE_SHARED) => context.connect(READER, shareMode, SCARD_PROTOCOL_T1),
  };
}

afterEach(async () => {
  for (const context of contexts.splice(0)) if (context.valid) await context.release();
});

describe('transmit', () => {
  it('sends the command to the card and resolves to its response', async () => {
    const { connect } = setup();
    const handle = await connect();
    expect(await handle.transmit(Uint8Array.of(0x00, 0xca, 0x01, 0x02, 0x00))).toEqual(Uint8Array.of(0x00, 0xca, 0x01, 0x02, 0x00, 0x90, 0x00));
  });

  it('hands the card a copy, so the caller may reuse its buffer at once', async () => {
    const { connect } = setup();
    const handle = await connect();
    const command = apdu(0x10);
    const pending = handle.transmit(command);
    command.fill(0xff);
    expect((await pending)[1]).toBe(0x10);
  });

  it.each([
    ['3 bytes', new Uint8Array(3)],
    ['65545 bytes', new Uint8Array(65545)],
    ['an array of numbers', [0, 0xa4, 0, 0]],
    ['a string', '00a40000'],
  ])('rejects SCARD_E_INVALID_PARAMETER for %s', async (_label, command) => {
    const { connect, card } = setup();
    const handle = await connect();
    await expectPcscError(handle.transmit(command as Uint8Array), 'SCARD_E_INVALID_PARAMETER');
    expect(card.received).toEqual([]);
  });

  it('accepts the longest extended APDU, 65544 bytes', async () => {
    const { connect } = setup();
    const handle = await connect();
    expect(await handle.transmit(new Uint8Array(65544))).toHaveLength(65546);
  });

  it('rejects SCARD_E_INVALID_HANDLE once disconnected', async () => {
    const { connect } = setup();
    const handle = await connect();
    await handle.disconnect(SCARD_LEAVE_CARD);
    expect(handle.connected).toBe(false);
    await expectPcscError(handle.transmit(apdu(1)), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(handle.status(), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(handle.disconnect(SCARD_LEAVE_CARD), 'SCARD_E_INVALID_HANDLE');
  });

  it('serialises exchanges from different handles: one APDU at the card at a time', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    card.hold();
    const first = a.transmit(apdu(1));
    const second = probe(b.transmit(apdu(2)));
    await settle();
    expect(card.received).toEqual([1]);
    card.release();
    await first;
    await settle();
    expect(card.received).toEqual([1, 2]);
    expect(second.value?.[1]).toBe(2);
    expect(card.maxInFlight).toBe(1);
  });

  it('wraps a card failure as SCARD_E_NOT_TRANSACTED with the cause', async () => {
    const { connect, card } = setup();
    const handle = await connect();
    card.failTransmit = true;
    const error = await expectPcscError(handle.transmit(apdu(1)), 'SCARD_E_NOT_TRANSACTED');
    expect((error.cause as Error).message).toBe('link dropped');
    card.failTransmit = false;
    await expect(handle.transmit(apdu(2))).resolves.toHaveLength(6);
  });

  it('rejects SCARD_W_REMOVED_CARD when the card is pulled during the exchange, and frees the reader', async () => {
    const { connect, slot, card } = setup();
    const handle = await connect();
    card.hold();
    const pending = handle.transmit(apdu(1));
    await settle();
    slot.remove();
    card.release();
    await expectPcscError(pending, 'SCARD_W_REMOVED_CARD');
    slot.insert(new EchoCard());
    const fresh = await connect();
    await expect(fresh.transmit(apdu(2))).resolves.toHaveLength(6);
  });

  it('rejects SCARD_E_PROTO_MISMATCH on a SCARD_SHARE_DIRECT handle', async () => {
    const { context } = setup();
    const direct = await context.connect(READER, SCARD_SHARE_DIRECT, SCARD_PROTOCOL_UNDEFINED);
    await expectPcscError(direct.transmit(apdu(1)), 'SCARD_E_PROTO_MISMATCH');
  });
});

describe('status', () => {
  it('reports reader, powered state with the event counter, T=1 and the ATR', async () => {
    const { connect } = setup();
    const handle = await connect();
    const status = await handle.status();
    expect(status).toEqual({ readerName: READER, state: withEventCounter(POWERED, 1), protocol: SCARD_PROTOCOL_T1, atr: T1_ATR });
  });

  it('returns a copy of the ATR', async () => {
    const { connect, card } = setup();
    const handle = await connect();
    (await handle.status()).atr.fill(0);
    expect(card.atr).toEqual(T1_ATR);
  });
});

describe('a removed card', () => {
  it('makes every call of its handles reject SCARD_W_REMOVED_CARD, even after a new card is inserted', async () => {
    const { connect, slot } = setup();
    const handle = await connect();
    slot.remove();
    await expectPcscError(handle.transmit(apdu(1)), 'SCARD_W_REMOVED_CARD');
    await expectPcscError(handle.status(), 'SCARD_W_REMOVED_CARD');
    await expectPcscError(handle.beginTransaction(), 'SCARD_W_REMOVED_CARD');
    slot.insert(new EchoCard());
    await expectPcscError(handle.transmit(apdu(1)), 'SCARD_W_REMOVED_CARD');
  });

  it('is got over by reconnecting once a card is back; not before', async () => {
    const { connect, slot } = setup();
    const handle = await connect();
    slot.remove();
    await expectPcscError(handle.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD), 'SCARD_E_NO_SMARTCARD');
    const next = new EchoCard();
    slot.insert(next);
    expect(await handle.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD)).toBe(SCARD_PROTOCOL_T1);
    await handle.transmit(apdu(7));
    expect(next.received).toEqual([7]);
  });

  it('still lets the handle disconnect, and does not reset the new card for it', async () => {
    const { connect, slot } = setup();
    const handle = await connect();
    slot.remove();
    const next = new EchoCard();
    slot.insert(next);
    await handle.disconnect(SCARD_RESET_CARD);
    expect(next.resets).toBe(0);
  });

  it('rejects SCARD_E_READER_UNAVAILABLE once the reader itself is gone; disconnect still works', async () => {
    const { connect, system } = setup();
    const handle = await connect();
    system.removeReader(READER);
    await expectPcscError(handle.transmit(apdu(1)), 'SCARD_E_READER_UNAVAILABLE');
    await expectPcscError(handle.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD), 'SCARD_E_READER_UNAVAILABLE');
    await handle.disconnect(SCARD_UNPOWER_CARD);
    expect(handle.connected).toBe(false);
  });
});

describe('disconnect dispositions', () => {
  it('SCARD_LEAVE_CARD leaves the card and the other handles alone', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    await a.disconnect(SCARD_LEAVE_CARD);
    expect(card.resets + card.powerOffs).toBe(0);
    await expect(b.transmit(apdu(1))).resolves.toHaveLength(6);
  });

  it('SCARD_RESET_CARD warm-resets; other handles get SCARD_W_RESET_CARD until they reconnect', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    await a.disconnect(SCARD_RESET_CARD);
    expect(card.resets).toBe(1);
    await expectPcscError(b.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
    await expectPcscError(b.status(), 'SCARD_W_RESET_CARD');
    await expectPcscError(b.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
    await b.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD);
    await expect(b.transmit(apdu(2))).resolves.toHaveLength(6);
    expect(card.received).toEqual([2]);
  });

  it('SCARD_UNPOWER_CARD powers off; other handles get SCARD_W_RESET_CARD and reconnecting powers on', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    await a.disconnect(SCARD_UNPOWER_CARD);
    expect(card.powerOffs).toBe(1);
    await expectPcscError(b.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
    await b.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD);
    expect(card.powerOns).toBe(2);
    expect((await b.status()).state).toBe(withEventCounter(POWERED, 1));
  });

  it('SCARD_EJECT_CARD leaves the card, a virtual reader cannot eject', async () => {
    const { connect, slot, card } = setup();
    const a = await connect();
    await a.disconnect(SCARD_EJECT_CARD);
    expect(slot.present).toBe(true);
    expect(card.resets + card.powerOffs).toBe(0);
  });

  it('rejects SCARD_E_INVALID_VALUE for an unknown disposition and stays connected', async () => {
    const { connect } = setup();
    const a = await connect();
    await expectPcscError(a.disconnect(9 as Disposition), 'SCARD_E_INVALID_VALUE');
    expect(a.connected).toBe(true);
  });

  it('waits for another handle’s transaction before resetting', async () => {
    const { connect, card } = setup();
    const holder = await connect();
    const resetter = await connect();
    await holder.beginTransaction();
    const pending = probe(resetter.disconnect(SCARD_RESET_CARD));
    await settle();
    expect(pending.settled).toBe(false);
    expect(card.resets).toBe(0);
    await holder.transmit(apdu(1));
    await holder.endTransaction(SCARD_LEAVE_CARD);
    await settle();
    expect(pending.settled).toBe(true);
    expect(card.resets).toBe(1);
  });
});

describe('reconnect', () => {
  it('with SCARD_RESET_CARD resets the card for the others but not for itself', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    expect(await a.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_RESET_CARD)).toBe(SCARD_PROTOCOL_T1);
    expect(card.resets).toBe(1);
    await expect(a.transmit(apdu(1))).resolves.toHaveLength(6);
    await expectPcscError(b.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
  });

  it('with SCARD_UNPOWER_CARD power-cycles the card', async () => {
    const { connect, card } = setup();
    const a = await connect();
    await a.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_UNPOWER_CARD);
    expect([card.powerOffs, card.powerOns]).toEqual([1, 2]);
  });

  it('turns exclusive only when it is the sole connection, and shared again', async () => {
    const { connect, context } = setup();
    const a = await connect();
    const b = await connect();
    await expectPcscError(a.reconnect(SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD), 'SCARD_E_SHARING_VIOLATION');
    await b.disconnect(SCARD_LEAVE_CARD);
    await a.reconnect(SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD);
    await expectPcscError(connect(), 'SCARD_E_SHARING_VIOLATION');
    await a.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD);
    await expect(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)).resolves.toBeDefined();
  });

  it('leaves the card alone when it refuses', async () => {
    const { connect, card } = setup();
    const a = await connect();
    await connect();
    await expectPcscError(a.reconnect(SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, SCARD_RESET_CARD), 'SCARD_E_SHARING_VIOLATION');
    await expectPcscError(a.reconnect(SCARD_SHARE_SHARED, 0x1, SCARD_RESET_CARD), 'SCARD_E_PROTO_MISMATCH');
    expect(card.resets).toBe(0);
  });

  it('rejects SCARD_E_INVALID_VALUE for SCARD_EJECT_CARD as initialization', async () => {
    const { connect } = setup();
    const a = await connect();
    await expectPcscError(a.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_EJECT_CARD), 'SCARD_E_INVALID_VALUE');
  });

  it('rejects SCARD_W_UNRESPONSIVE_CARD when the card does not answer the reset', async () => {
    const { connect, card } = setup();
    const a = await connect();
    card.failPowerOn = true;
    await expectPcscError(a.reconnect(SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_UNPOWER_CARD), 'SCARD_W_UNRESPONSIVE_CARD');
  });
});

describe('transactions', () => {
  it('make other handles’ transmits and status wait until the transaction ends', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    await a.beginTransaction();
    expect(a.inTransaction).toBe(true);
    const bTransmit = probe(b.transmit(apdu(0xb1)));
    const bStatus = probe(b.status());
    await settle();
    expect(bTransmit.settled || bStatus.settled).toBe(false);
    await a.transmit(apdu(0xa1));
    await a.transmit(apdu(0xa2));
    await settle();
    expect(bTransmit.settled).toBe(false);
    await a.endTransaction(SCARD_LEAVE_CARD);
    await settle();
    expect(bTransmit.value?.[1]).toBe(0xb1);
    expect(bStatus.value?.readerName).toBe(READER);
    expect(card.received).toEqual([0xa1, 0xa2, 0xb1]);
  });

  it('are granted in the order they were asked for', async () => {
    const { connect } = setup();
    const [a, b, c] = [await connect(), await connect(), await connect()];
    await a.beginTransaction();
    const order: string[] = [];
    const bBegin = b.beginTransaction().then(() => order.push('b'));
    const cBegin = c.beginTransaction().then(() => order.push('c'));
    await settle();
    expect(order).toEqual([]);
    await a.endTransaction(SCARD_LEAVE_CARD);
    await bBegin;
    await settle();
    expect(order).toEqual(['b']);
    expect(b.inTransaction).toBe(true);
    await b.endTransaction(SCARD_LEAVE_CARD);
    await cBegin;
    expect(order).toEqual(['b', 'c']);
  });

  it('nest: the lock is released by the last endTransaction', async () => {
    const { connect } = setup();
    const a = await connect();
    const b = await connect();
    await a.beginTransaction();
    await a.beginTransaction();
    await a.endTransaction(SCARD_LEAVE_CARD);
    const waiting = probe(b.transmit(apdu(1)));
    await settle();
    expect(waiting.settled).toBe(false);
    await a.endTransaction(SCARD_LEAVE_CARD);
    await settle();
    expect(waiting.settled).toBe(true);
  });

  it('reject SCARD_E_NOT_TRANSACTED for an end without a begin, SCARD_E_SHARING_VIOLATION for another’s', async () => {
    const { connect } = setup();
    const a = await connect();
    const b = await connect();
    await expectPcscError(a.endTransaction(SCARD_LEAVE_CARD), 'SCARD_E_NOT_TRANSACTED');
    await b.beginTransaction();
    await expectPcscError(a.endTransaction(SCARD_LEAVE_CARD), 'SCARD_E_SHARING_VIOLATION');
    await expectPcscError(a.endTransaction(7 as Disposition), 'SCARD_E_INVALID_VALUE');
  });

  it('end with SCARD_RESET_CARD resets the card; every handle, the ender too, gets SCARD_W_RESET_CARD', async () => {
    const { connect, card } = setup();
    const a = await connect();
    const b = await connect();
    await a.beginTransaction();
    await a.endTransaction(SCARD_RESET_CARD);
    expect(card.resets).toBe(1);
    expect(a.inTransaction).toBe(false);
    await expectPcscError(a.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
    await expectPcscError(b.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
  });

  it('end when the card is removed: waiting handles are woken with SCARD_W_REMOVED_CARD', async () => {
    const { connect, slot } = setup();
    const a = await connect();
    const b = await connect();
    await a.beginTransaction();
    const waiting = b.transmit(apdu(1));
    await settle();
    slot.remove();
    await expectPcscError(waiting, 'SCARD_W_REMOVED_CARD');
    expect(a.inTransaction).toBe(false);
  });

  it('wake a waiting handle with SCARD_E_INVALID_HANDLE when its context is released', async () => {
    const { system, connect } = setup();
    const holder = await connect();
    const other = establishContext(system);
    contexts.push(other);
    const waiter = await other.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await holder.beginTransaction();
    const waiting = waiter.transmit(apdu(1));
    await settle();
    await other.release();
    await expectPcscError(waiting, 'SCARD_E_INVALID_HANDLE');
  });
});
