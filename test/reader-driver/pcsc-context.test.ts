// PcscContext against in-process readers: listReaders, getStatusChange (insert, remove, counter,
// timeout, cancel, PnP), connect and its refusals, release. Semantics follow pcsc-lite 1.9.9.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { establishContext, type PcscContext, type ReaderStateQuery } from '../../src/reader-driver/pcsc-context.js';
import {
  INFINITE,
  SCARD_LEAVE_CARD,
  SCARD_PNP_NOTIFICATION,
  SCARD_PROTOCOL_ANY,
  SCARD_PROTOCOL_RAW,
  SCARD_PROTOCOL_T0,
  SCARD_PROTOCOL_T1,
  SCARD_PROTOCOL_UNDEFINED,
  SCARD_SHARE_DIRECT,
  SCARD_SHARE_EXCLUSIVE,
  SCARD_SHARE_SHARED,
  SCARD_STATE_CHANGED,
  SCARD_STATE_EMPTY,
  SCARD_STATE_EXCLUSIVE,
  SCARD_STATE_IGNORE,
  SCARD_STATE_INUSE,
  SCARD_STATE_MUTE,
  SCARD_STATE_PRESENT,
  SCARD_STATE_UNAVAILABLE,
  SCARD_STATE_UNAWARE,
  SCARD_STATE_UNKNOWN,
  SCARD_UNPOWER_CARD,
  eventCounterOf,
  withEventCounter,
  type ShareMode,
} from '../../src/reader-driver/pcsc-constants.js';
import { PcscError } from '../../src/reader-driver/pcsc-errors.js';
import type { ReaderSlot } from '../../src/reader-driver/reader-slot.js';
import { ReaderSystem } from '../../src/reader-driver/reader-system.js';
import { EchoCard, T1_ATR, apdu, expectPcscError, probe, settle } from '../support/index.js';

const READER = 'Virtual PCD 00 00';

interface Fixture {
  system: ReaderSystem;
  slot: ReaderSlot;
  context: PcscContext;
  card: EchoCard;
}

const contexts: PcscContext[] = [];

/** A system with one reader (holding a card unless `empty`) and a context on it. */
function setup(options: { empty?: boolean } = {}): Fixture {
  const system = new ReaderSystem();
  const slot = system.addReader(READER);
  const card = new EchoCard();
  if (options.empty !== true) slot.insert(card);
  const context = establishContext(system);
  contexts.push(context);
  return { system, slot, context, card };
}

afterEach(async () => {
  vi.useRealTimers();
  for (const context of contexts.splice(0)) if (context.valid) await context.release();
});

function query(currentState: number, readerName = READER): ReaderStateQuery {
  return { readerName, currentState };
}

describe('establishContext and listReaders', () => {
  it('lists the readers of the system in the order they were added', async () => {
    const { system, context } = setup();
    system.addReader('Virtual PCD 00 01');
    expect(await context.listReaders()).toEqual([READER, 'Virtual PCD 00 01']);
  });

  it('rejects SCARD_E_NO_READERS_AVAILABLE when there is no reader', async () => {
    const context = establishContext(new ReaderSystem());
    contexts.push(context);
    await expectPcscError(context.listReaders(), 'SCARD_E_NO_READERS_AVAILABLE');
  });

  it('refuses something that is not a ReaderSystem', () => {
    expect(() => establishContext({} as ReaderSystem)).toThrow(PcscError);
  });

  it('lets several contexts share one system', async () => {
    const { system, slot, context } = setup();
    const other = establishContext(system);
    contexts.push(other);
    const first = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await expectPcscError(other.connect(READER, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1), 'SCARD_E_SHARING_VIOLATION');
    slot.remove();
    await expectPcscError(first.transmit(apdu(1)), 'SCARD_W_REMOVED_CARD');
  });
});

describe('connect', () => {
  it('connects shared with T=1 and reports it as the active protocol', async () => {
    const { context } = setup();
    const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_ANY);
    expect(handle.protocol).toBe(SCARD_PROTOCOL_T1);
    expect(handle.readerName).toBe(READER);
    expect(handle.connected).toBe(true);
  });

  it('rejects SCARD_E_NO_SMARTCARD on an empty reader', async () => {
    const { context } = setup({ empty: true });
    const error = await expectPcscError(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_E_NO_SMARTCARD');
    expect(error.message).toContain(`"${READER}", got an empty reader`);
  });

  it('rejects SCARD_E_UNKNOWN_READER and names the known readers', async () => {
    const { context } = setup();
    const error = await expectPcscError(context.connect('Nope', SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_E_UNKNOWN_READER');
    expect(error.message).toContain(`expected one of the readers [${READER}], got "Nope"`);
  });

  it.each([
    ['only T=0', SCARD_PROTOCOL_T0],
    ['only RAW', SCARD_PROTOCOL_RAW],
    ['no protocol', SCARD_PROTOCOL_UNDEFINED],
  ])('rejects SCARD_E_PROTO_MISMATCH when asking for %s', async (_label, protocols) => {
    const { context } = setup();
    await expectPcscError(context.connect(READER, SCARD_SHARE_SHARED, protocols), 'SCARD_E_PROTO_MISMATCH');
  });

  it.each([
    ['share mode 0', 0, SCARD_PROTOCOL_T1],
    ['share mode 4', 4, SCARD_PROTOCOL_T1],
    ['protocol bit 0x100', SCARD_SHARE_SHARED, 0x100],
    ['a negative protocol mask', SCARD_SHARE_SHARED, -1],
    ['a fractional protocol mask', SCARD_SHARE_SHARED, 1.5],
  ])('rejects SCARD_E_INVALID_VALUE for %s', async (_label, shareMode, protocols) => {
    const { context } = setup();
    await expectPcscError(context.connect(READER, shareMode as ShareMode, protocols), 'SCARD_E_INVALID_VALUE');
  });

  it('rejects SCARD_E_INVALID_PARAMETER for a reader name that is not a string', async () => {
    const { context } = setup();
    await expectPcscError(context.connect(undefined as unknown as string, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_E_INVALID_PARAMETER');
  });

  it('refuses an exclusive connect while another handle is connected', async () => {
    const { context } = setup();
    await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await expectPcscError(context.connect(READER, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1), 'SCARD_E_SHARING_VIOLATION');
  });

  it('refuses every connect while one handle holds the reader exclusively, until it disconnects', async () => {
    const { context } = setup();
    const exclusive = await context.connect(READER, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1);
    await expectPcscError(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_E_SHARING_VIOLATION');
    await expectPcscError(context.connect(READER, SCARD_SHARE_DIRECT, SCARD_PROTOCOL_UNDEFINED), 'SCARD_E_SHARING_VIOLATION');
    await exclusive.disconnect();
    await expect(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)).resolves.toBeDefined();
  });

  it('connects SCARD_SHARE_DIRECT to an empty reader, without a protocol', async () => {
    const { context } = setup({ empty: true });
    const direct = await context.connect(READER, SCARD_SHARE_DIRECT, SCARD_PROTOCOL_UNDEFINED);
    expect(direct.protocol).toBe(SCARD_PROTOCOL_UNDEFINED);
  });

  it('rejects SCARD_W_UNPOWERED_CARD for a card that does not answer to reset', async () => {
    const { slot, context } = setup({ empty: true });
    const card = new EchoCard();
    card.failPowerOn = true;
    slot.insert(card);
    const error = await expectPcscError(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_W_UNPOWERED_CARD');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('powers the card on again after a disconnect with SCARD_UNPOWER_CARD', async () => {
    const { context, card } = setup();
    const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await handle.disconnect(SCARD_UNPOWER_CARD);
    expect(card.powerOffs).toBe(1);
    const again = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    expect(card.powerOns).toBe(2);
    expect(Array.from(await again.transmit(apdu(1)))).toEqual([0, 1, 0, 0, 0x90, 0x00]);
  });

  it('waits while another handle holds a transaction, as pcsc-lite does', async () => {
    const { context } = setup();
    const holder = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await holder.beginTransaction();
    const pending = probe(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1));
    await settle();
    expect(pending.settled).toBe(false);
    await holder.endTransaction(SCARD_LEAVE_CARD);
    await settle();
    expect(pending.settled).toBe(true);
    expect(pending.error).toBeUndefined();
  });
});

describe('getStatusChange', () => {
  it('answers SCARD_STATE_UNAWARE at once with the state, the counter and the ATR', async () => {
    const { context } = setup();
    const [state] = await context.getStatusChange([query(SCARD_STATE_UNAWARE)], 0);
    expect(state?.readerName).toBe(READER);
    expect(state?.currentState).toBe(SCARD_STATE_UNAWARE);
    expect(state?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_CHANGED, 1));
    expect(Array.from(state?.atr ?? [])).toEqual(Array.from(T1_ATR));
  });

  it('reports an insertion with the event counter in the upper 16 bits', async () => {
    const { slot, context } = setup({ empty: true });
    const [initial] = await context.getStatusChange([query(SCARD_STATE_UNAWARE)], 0);
    expect(initial?.eventState).toBe(SCARD_STATE_EMPTY | SCARD_STATE_CHANGED);
    expect(initial?.atr).toHaveLength(0);

    const waiting = probe(context.getStatusChange([query(initial?.eventState ?? 0)], 1000));
    await settle();
    expect(waiting.settled).toBe(false);
    slot.insert(new EchoCard());
    await settle();
    const [inserted] = waiting.value ?? [];
    expect(inserted?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_CHANGED, 1));
    expect(inserted?.atr).toEqual(T1_ATR);
  });

  it('reports a removal and counts it', async () => {
    const { slot, context } = setup();
    const current = withEventCounter(SCARD_STATE_PRESENT, 1);
    const waiting = context.getStatusChange([query(current)], 1000);
    slot.remove();
    const [removed] = await waiting;
    expect(removed?.eventState).toBe(withEventCounter(SCARD_STATE_EMPTY | SCARD_STATE_CHANGED, 2));
    expect(eventCounterOf(removed?.eventState ?? 0)).toBe(2);
    expect(removed?.atr).toHaveLength(0);
  });

  it('sees a remove-and-reinsert it missed through the counter, not the flags', async () => {
    const { slot, context } = setup();
    slot.remove();
    slot.insert(new EchoCard());
    const [state] = await context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], 0);
    expect(state?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_CHANGED, 3));
  });

  it('ignores the counter when the caller passes none (upper 16 bits 0)', async () => {
    const { slot, context } = setup();
    slot.remove();
    slot.insert(new EchoCard());
    await expectPcscError(context.getStatusChange([query(SCARD_STATE_PRESENT)], 0), 'SCARD_E_TIMEOUT');
  });

  it('rejects SCARD_E_TIMEOUT when nothing changes in time', async () => {
    const { context } = setup();
    const started = Date.now();
    const error = await expectPcscError(context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], 30), 'SCARD_E_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(error.message).toContain('within 30 ms');
  });

  it('reports the sharing state: in use, exclusive, and free again', async () => {
    const { context } = setup();
    const shared = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    const [inUse] = await context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], 0);
    expect(inUse?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_INUSE | SCARD_STATE_CHANGED, 1));
    await shared.disconnect();
    const exclusive = await context.connect(READER, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1);
    const [held] = await context.getStatusChange([query(inUse?.eventState ?? 0)], 0);
    expect(held?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_EXCLUSIVE | SCARD_STATE_CHANGED, 1));
    const waiting = context.getStatusChange([query(held?.eventState ?? 0)], 1000);
    await exclusive.disconnect();
    const [free] = await waiting;
    expect(free?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_CHANGED, 1));
  });

  it('reports a mute card', async () => {
    const { slot, context } = setup({ empty: true });
    const card = new EchoCard();
    card.failPowerOn = true;
    slot.insert(card);
    const [state] = await context.getStatusChange([query(SCARD_STATE_EMPTY)], 0);
    expect(state?.eventState).toBe(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_MUTE | SCARD_STATE_CHANGED, 1));
  });

  it('sets SCARD_STATE_CHANGED only on the readers that changed', async () => {
    const { system, slot, context } = setup();
    system.addReader('Second');
    const waiting = context.getStatusChange(
      [query(withEventCounter(SCARD_STATE_PRESENT, 1)), query(SCARD_STATE_EMPTY, 'Second')],
      1000,
    );
    slot.remove();
    const [first, second] = await waiting;
    expect(first?.eventState).toBe(withEventCounter(SCARD_STATE_EMPTY | SCARD_STATE_CHANGED, 2));
    expect(second?.eventState).toBe(SCARD_STATE_EMPTY);
  });

  it('reports a reader removed while waiting as unknown and unavailable', async () => {
    const { system, context } = setup();
    const waiting = context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], 1000);
    system.removeReader(READER);
    const [gone] = await waiting;
    expect(gone?.eventState).toBe(SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE | SCARD_STATE_CHANGED);
  });

  it('rejects SCARD_E_UNKNOWN_READER for a reader that does not exist', async () => {
    const { context } = setup();
    await expectPcscError(context.getStatusChange([query(0, 'Nope')], 0), 'SCARD_E_UNKNOWN_READER');
  });

  it('skips readers marked SCARD_STATE_IGNORE, and answers at once when all are', async () => {
    const { context } = setup();
    const [ignored] = await context.getStatusChange([query(SCARD_STATE_IGNORE)], INFINITE);
    expect(ignored?.eventState).toBe(0);
    expect(await context.getStatusChange([], INFINITE)).toEqual([]);
  });

  it('reports readers added and removed on the PnP pseudo reader', async () => {
    const { system, context } = setup();
    const waiting = context.getStatusChange([query(SCARD_STATE_UNAWARE, SCARD_PNP_NOTIFICATION)], Infinity);
    await settle();
    system.addReader('Second');
    const [pnp] = await waiting;
    expect(pnp?.eventState).toBe(withEventCounter(SCARD_STATE_CHANGED, 3));
    // Passing the counter back waits for the next change, and reports one that was missed.
    await expectPcscError(context.getStatusChange([query(pnp?.eventState ?? 0, SCARD_PNP_NOTIFICATION)], 0), 'SCARD_E_TIMEOUT');
    system.removeReader('Second');
    const [missed] = await context.getStatusChange([query(pnp?.eventState ?? 0, SCARD_PNP_NOTIFICATION)], 0);
    expect(missed?.eventState).toBe(withEventCounter(SCARD_STATE_CHANGED, 4));
  });

  it.each([
    ['a negative currentState', [query(-1)], 0, 'SCARD_E_INVALID_VALUE'],
    ['a currentState above 32 bits', [query(2 ** 32)], 0, 'SCARD_E_INVALID_VALUE'],
    ['a reader name that is not a string', [{ readerName: 1, currentState: 0 }], 0, 'SCARD_E_INVALID_VALUE'],
    ['a negative timeout', [query(0)], -1, 'SCARD_E_INVALID_VALUE'],
    ['a NaN timeout', [query(0)], NaN, 'SCARD_E_INVALID_VALUE'],
    ['reader states that are not an array', null, 0, 'SCARD_E_INVALID_PARAMETER'],
  ] as const)('rejects %s', async (_label, states, timeout, name) => {
    const { context } = setup();
    await expectPcscError(context.getStatusChange(states as unknown as ReaderStateQuery[], timeout), name);
  });

  it('leaves no timer behind once it has resolved', async () => {
    vi.useFakeTimers();
    const { slot, context } = setup({ empty: true });
    const waiting = context.getStatusChange([query(SCARD_STATE_EMPTY)], 60_000);
    expect(vi.getTimerCount()).toBe(1);
    slot.insert(new EchoCard());
    await waiting;
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('cancel', () => {
  it('rejects a pending getStatusChange with SCARD_E_CANCELLED and clears its timer', async () => {
    vi.useFakeTimers();
    const { context } = setup();
    const waiting = context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], 60_000);
    await context.cancel();
    await expectPcscError(waiting, 'SCARD_E_CANCELLED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does nothing without a pending call, and later calls still wait', async () => {
    const { slot, context } = setup();
    await context.cancel();
    const waiting = context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], Infinity);
    slot.remove();
    const [state] = await waiting;
    expect(state?.eventState).toBe(withEventCounter(SCARD_STATE_EMPTY | SCARD_STATE_CHANGED, 2));
  });

  it('cancels only the calls of its own context', async () => {
    const { system, slot, context } = setup();
    const other = establishContext(system);
    contexts.push(other);
    const mine = context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], Infinity);
    const theirs = probe(other.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT, 1))], Infinity));
    await context.cancel();
    await expectPcscError(mine, 'SCARD_E_CANCELLED');
    expect(theirs.settled).toBe(false);
    slot.remove();
    await settle();
    expect(theirs.value).toHaveLength(1);
  });
});

describe('release', () => {
  it('makes every later call reject SCARD_E_INVALID_HANDLE', async () => {
    const { context } = setup();
    await context.release();
    expect(context.valid).toBe(false);
    await expectPcscError(context.listReaders(), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(context.getStatusChange([query(0)], 0), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(context.cancel(), 'SCARD_E_INVALID_HANDLE');
    await expectPcscError(context.release(), 'SCARD_E_INVALID_HANDLE');
  });

  it('cancels pending waits and disconnects its handles', async () => {
    const { context } = setup();
    const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    const waiting = context.getStatusChange([query(withEventCounter(SCARD_STATE_PRESENT | SCARD_STATE_INUSE, 1))], Infinity);
    await context.release();
    await expectPcscError(waiting, 'SCARD_E_CANCELLED');
    expect(handle.connected).toBe(false);
    await expectPcscError(handle.transmit(apdu(1)), 'SCARD_E_INVALID_HANDLE');
  });

  it('resets the card under a handle released inside a transaction, so nobody inherits its state', async () => {
    const { system, context, card } = setup();
    const other = establishContext(system);
    contexts.push(other);
    const bystander = await other.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    const holder = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await holder.beginTransaction();
    await context.release();
    expect(card.resets).toBe(1);
    await expectPcscError(bystander.transmit(apdu(1)), 'SCARD_W_RESET_CARD');
  });

  it('leaves the card alone for handles that hold no transaction', async () => {
    const { system, context, card } = setup();
    const other = establishContext(system);
    contexts.push(other);
    const bystander = await other.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await context.release();
    expect(card.resets).toBe(0);
    await expect(bystander.transmit(apdu(1))).resolves.toHaveLength(6);
  });
});
