// ReaderSystem and ReaderSlot: adding and removing readers, inserting and removing cards, the event counter.
import { describe, expect, it } from 'vitest';
import type { CardSource } from '../../src/apdu/index.js';
import { SCARD_ABSENT, SCARD_NEGOTIABLE, SCARD_POWERED, SCARD_PRESENT, SCARD_SWALLOWED } from '../../src/reader-driver/pcsc-constants.js';
import { PcscError } from '../../src/reader-driver/pcsc-errors.js';
import { ReaderSlotError } from '../../src/reader-driver/reader-slot.js';
import { ReaderSystem } from '../../src/reader-driver/reader-system.js';
import { EchoCard } from '../support/index.js';

function pcscName(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PcscError) return error.pcscName;
    throw error;
  }
  return undefined;
}

function slotCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ReaderSlotError) return error.code;
    throw error;
  }
  return undefined;
}

describe('ReaderSystem', () => {
  it('lists readers in the order they were added and forgets removed ones', () => {
    const system = new ReaderSystem();
    system.addReader('Virtual PCD 00 00');
    system.addReader('Virtual PCD 00 01');
    system.removeReader('Virtual PCD 00 00');
    system.addReader('A');
    expect(system.readerNames).toEqual(['Virtual PCD 00 01', 'A']);
    expect(system.getReader('Virtual PCD 00 00')).toBeUndefined();
    expect(system.getReader('A')?.name).toBe('A');
  });

  it('refuses a duplicate name with SCARD_E_DUPLICATE_READER', () => {
    const system = new ReaderSystem();
    system.addReader('R');
    expect(pcscName(() => system.addReader('R'))).toBe('SCARD_E_DUPLICATE_READER');
  });

  it.each([
    ['empty', ''],
    ['too long for MAX_READERNAME', 'x'.repeat(128)],
    ['with a NUL', 'a\0b'],
    ['with a newline', 'a\nb'],
    ['the PnP pseudo reader', '\\\\?PnP?\\Notification'],
  ])('refuses a reader name that is %s', (_label, name) => {
    expect(pcscName(() => new ReaderSystem().addReader(name))).toBe('SCARD_E_INVALID_VALUE');
  });

  it('refuses a name that is not a string with SCARD_E_INVALID_PARAMETER', () => {
    expect(pcscName(() => new ReaderSystem().addReader(42 as unknown as string))).toBe('SCARD_E_INVALID_PARAMETER');
  });

  it('accepts a 127-character name', () => {
    expect(new ReaderSystem().addReader('x'.repeat(127)).name).toHaveLength(127);
  });

  it('refuses to remove an unknown reader with SCARD_E_UNKNOWN_READER', () => {
    expect(pcscName(() => new ReaderSystem().removeReader('nope'))).toBe('SCARD_E_UNKNOWN_READER');
  });

  it('counts reader additions and removals from 1, like pcsc-lite', () => {
    const system = new ReaderSystem();
    expect(system.readerEvents).toBe(1);
    system.addReader('R');
    system.removeReader('R');
    expect(system.readerEvents).toBe(3);
  });

  it('removes the card of a removed reader and refuses later inserts', () => {
    const system = new ReaderSystem();
    const slot = system.addReader('R');
    const card = new EchoCard();
    slot.insert(card);
    system.removeReader('R');
    expect(card.powerOffs).toBe(1);
    expect(slot.present).toBe(false);
    expect(slot.attached).toBe(false);
    expect(slotCode(() => slot.insert(new EchoCard()))).toBe('reader.detached');
  });

  it('tells subscribers about every change until they unsubscribe', () => {
    const system = new ReaderSystem();
    let calls = 0;
    const unsubscribe = system.onChange(() => (calls += 1));
    const slot = system.addReader('R');
    slot.insert(new EchoCard());
    expect(calls).toBe(2);
    unsubscribe();
    slot.remove();
    expect(calls).toBe(2);
  });
});

describe('ReaderSlot', () => {
  it('powers a card on at insertion and off at removal, counting both events', () => {
    const slot = new ReaderSystem().addReader('R');
    const card = new EchoCard();
    expect(slot.cardState).toBe(SCARD_ABSENT);
    slot.insert(card);
    expect(card.powerOns).toBe(1);
    expect(slot.present).toBe(true);
    expect(slot.card).toBe(card);
    expect(slot.eventCounter).toBe(1);
    expect(slot.cardState).toBe(SCARD_PRESENT | SCARD_POWERED | SCARD_NEGOTIABLE);
    expect(slot.remove()).toBe(card);
    expect(card.powerOffs).toBe(1);
    expect(slot.eventCounter).toBe(2);
    expect(slot.cardState).toBe(SCARD_ABSENT);
  });

  it('refuses a second card and the removal of no card', () => {
    const slot = new ReaderSystem().addReader('R');
    expect(slotCode(() => slot.remove())).toBe('reader.empty');
    slot.insert(new EchoCard());
    expect(() => slot.insert(new EchoCard())).toThrow(new ReaderSlotError('reader.occupied', 'expected an empty reader "R", got one holding a card'));
    expect(slotCode(() => slot.insert(new EchoCard()))).toBe('reader.occupied');
  });

  it.each([
    ['null', null],
    ['a card without transmit', { atr: Uint8Array.of(0x3b, 0x00), powerOn() {}, powerOff() {}, reset() {} }],
    ['a 1-byte ATR', Object.assign(new EchoCard(), { atr: Uint8Array.of(0x3b) })],
    ['a 34-byte ATR', Object.assign(new EchoCard(), { atr: new Uint8Array(34).fill(0x3b) })],
  ])('refuses %s', (_label, card) => {
    const slot = new ReaderSystem().addReader('R');
    expect(slotCode(() => slot.insert(card as unknown as CardSource))).toBe('reader.invalid-card');
    expect(slot.present).toBe(false);
  });

  it('keeps a card whose power-on fails as present but mute', () => {
    const slot = new ReaderSystem().addReader('R');
    const card = new EchoCard();
    card.failPowerOn = true;
    slot.insert(card);
    expect(slot.cardState).toBe(SCARD_PRESENT | SCARD_SWALLOWED);
    expect(slot.powerError).toBeInstanceOf(Error);
  });

  it('wraps the event counter from 0xFFFF to 0', () => {
    const slot = new ReaderSystem().addReader('R');
    const card = new EchoCard();
    for (let i = 0; i < 0x8000; i++) {
      slot.insert(card);
      slot.remove();
    }
    expect(slot.eventCounter).toBe(0);
    slot.insert(card);
    expect(slot.eventCounter).toBe(1);
  });
});
