// The host-side card client against the real card OS and applets, through the in-process PC/SC-style
// reader: every command of the VSC applet (DESIGN.md "The VSC applet"), its status words as typed
// errors, PIV VERIFY's 63Cx as WrongPinError (SP 800-73-4 Part 2 3.2.1), and malformed answers.
import { describe, expect, it } from 'vitest';
import { clonePivState, commandApdu, PivApplet, PivTag, VscIns, VSC_CLA } from '../../src/apdu/index.js';
import { sha256 } from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/bytes/index.js';
import {
  CardStatusError,
  ConditionsNotSatisfiedError,
  MalformedResponseError,
  NotFoundError,
  NotSupportedError,
  PivAppletClient,
  PinBlockedError,
  SecurityStatusError,
  statusError,
  VscAppletClient,
  WrongLengthError,
  WrongParametersError,
  WrongPinError,
  exchange,
  verifySignAndIncrement,
  vscCommands,
  type CardTransport,
} from '../../src/card-client/index.js';
import { VscError } from '../../src/errors/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../../src/reader-driver/index.js';
import { TEST_PUBLIC_KEY, testPivState, vscFixture } from '../support/index.js';

/** A card with both applets in an in-process reader; the client talks to it through a PC/SC-style handle. */
async function connectedCard(init: Parameters<typeof vscFixture>[0] = {}, pivState = clonePivState(testPivState())) {
  const fixture = vscFixture({ ...init, extraApplets: [new PivApplet(pivState)] });
  const system = new ReaderSystem();
  system.addReader('Client Test Reader 00').insert(fixture.os);
  const context = establishContext(system);
  const handle = await context.connect('Client Test Reader 00', SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  return { ...fixture, handle, vsc: new VscAppletClient(handle), piv: new PivAppletClient(handle) };
}

describe('VSC applet client', () => {
  it('reads serial, counter and public key, and signs with a verifiable SIGN AND INCREMENT', async () => {
    const { vsc } = await connectedCard({ serial: 'SN-CLIENT', counter: 7n });
    await vsc.select();
    expect(await vsc.serialNumber()).toBe('SN-CLIENT');
    expect(await vsc.counter()).toBe(7n);
    const publicKey = await vsc.publicKey();
    expect(toHex(publicKey)).toBe(toHex(TEST_PUBLIC_KEY));
    const h = sha256(new TextEncoder().encode('rented program, one use'));
    const first = await vsc.signAndIncrement(h);
    const second = await vsc.signAndIncrement(h);
    expect([first.counter, second.counter]).toEqual([7n, 8n]);
    expect(verifySignAndIncrement(first, h, { publicKey, serial: 'SN-CLIENT' })).toBe(true);
    // The signature binds the counter: the first signature does not verify as the second's.
    expect(verifySignAndIncrement({ counter: second.counter, signature: first.signature }, h, { publicKey, serial: 'SN-CLIENT' })).toBe(false);
    expect(await vsc.counter()).toBe(9n);
  });

  it('signs on a universal-key card with P1 01, and a wrong key mode is WrongParametersError (6A86)', async () => {
    const { vsc } = await connectedCard({ serial: 'SN-UNIVERSAL', keyMode: 'universal' });
    await vsc.select();
    const h = new Uint8Array(32).fill(0x11);
    const answer = await vsc.signAndIncrement(h, 'universal');
    expect(verifySignAndIncrement(answer, h, { publicKey: TEST_PUBLIC_KEY, serial: 'SN-UNIVERSAL', keyMode: 'universal' })).toBe(true);
    const refused = await vsc.signAndIncrement(h, 'individual').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WrongParametersError);
    expect(refused).toMatchObject({ sw: 0x6a86, code: 'card.wrong-parameters' });
  });

  it('builds SIGN AND INCREMENT as the fixed APDU (80 24 P1 00 20 h 00) and refuses an h that is not 32 bytes', () => {
    const h = new Uint8Array(32).fill(0xab);
    expect(vscCommands.signAndIncrement(h)).toMatchObject({ cla: 0x80, ins: 0x24, p1: 0x00, p2: 0x00, ne: 256 });
    expect(vscCommands.signAndIncrement(h, 'universal').p1).toBe(0x01);
    expect(() => vscCommands.signAndIncrement(new Uint8Array(31))).toThrow('expected a 32-byte h, got 31 bytes');
  });

  it('maps a refused signature (counter exhausted) to ConditionsNotSatisfiedError, and an unselected applet to NotFoundError', async () => {
    const { vsc } = await connectedCard({ counter: (1n << 128n) - 1n });
    await vsc.select();
    await expect(vsc.signAndIncrement(new Uint8Array(32))).rejects.toBeInstanceOf(ConditionsNotSatisfiedError);
    const bare = new VscAppletClient({ transmit: async () => Uint8Array.of(0x6a, 0x82) });
    await expect(bare.select()).rejects.toBeInstanceOf(NotFoundError);
  });

  it.each([
    ['a 31-byte h', commandApdu({ cla: VSC_CLA, ins: VscIns.SIGN_AND_INCREMENT, data: new Uint8Array(31), ne: 256 }), WrongLengthError, 0x6700, 'card.wrong-length'],
    ['GET COUNTER with P2 01', commandApdu({ cla: VSC_CLA, ins: VscIns.GET_COUNTER, p2: 0x01, ne: 16 }), WrongParametersError, 0x6a86, 'card.wrong-parameters'],
    ['an INS the applet does not know', commandApdu({ cla: VSC_CLA, ins: 0x30, ne: 256 }), NotSupportedError, 0x6d00, 'card.not-supported'],
    ['the applet INS under CLA 00', commandApdu({ cla: 0x00, ins: VscIns.GET_COUNTER, ne: 16 }), NotSupportedError, 0x6e00, 'card.not-supported'],
  ] as const)('answers %s from the real applet with its typed error', async (_name, command, type, sw, code) => {
    const { vsc, handle } = await connectedCard();
    await vsc.select();
    const error = await exchange(handle, command).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(type);
    expect(error).toBeInstanceOf(CardStatusError);
    expect(error).toBeInstanceOf(VscError);
    expect(error).toMatchObject({ sw, code, ins: command.ins });
  });

  it.each([
    [0x6700, WrongLengthError, 'card.wrong-length'],
    [0x6982, SecurityStatusError, 'card.security-status'],
    [0x6983, PinBlockedError, 'card.pin-blocked'],
    [0x6985, ConditionsNotSatisfiedError, 'card.conditions-not-satisfied'],
    [0x6a82, NotFoundError, 'card.not-found'],
    [0x6a88, NotFoundError, 'card.not-found'],
    [0x6a86, WrongParametersError, 'card.wrong-parameters'],
    [0x6b00, WrongParametersError, 'card.wrong-parameters'],
    [0x6d00, NotSupportedError, 'card.not-supported'],
    [0x6e00, NotSupportedError, 'card.not-supported'],
    [0x63c2, WrongPinError, 'card.wrong-pin'],
    [0x6581, CardStatusError, 'card.status'],
  ] as const)('maps status word %s to its typed error with a stable code', (sw, type, code) => {
    const error = statusError(sw, 0x24);
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ sw, code, ins: 0x24 });
    expect(error.message).toMatch(/^the card refused INS 24 with /);
  });

  it.each([
    ['no status word', 'counter', new Uint8Array(0), /at least 2 bytes/],
    ['one byte', 'counter', Uint8Array.of(0x90), /at least 2 bytes/],
    ['a counter of the wrong length', 'counter', Uint8Array.of(1, 2, 3, 0x90, 0x00), /expected a counter of 16 bytes, got 3/],
    ['a public key of the wrong length', 'publicKey', fromHex(`${'00'.repeat(31)}9000`), /expected a public key of 32 bytes, got 31/],
    ['a serial number that is not UTF-8', 'serialNumber', fromHex('41ff9000'), /expected a serial number in UTF-8, got 2 bytes that are not/],
    ['a signature answer without the signature', 'signAndIncrement', fromHex(`${'00'.repeat(16)}9000`), /expected a SIGN AND INCREMENT answer of 80 bytes, got 16/],
    ['a signature answer with a byte too many', 'signAndIncrement', fromHex(`${'00'.repeat(81)}9000`), /expected a SIGN AND INCREMENT answer of 80 bytes, got 81/],
  ] as const)('refuses a malformed answer: %s', async (_name, method, answer, message) => {
    const client = new VscAppletClient({ transmit: async () => answer });
    const call = method === 'signAndIncrement' ? client.signAndIncrement(new Uint8Array(32)) : client[method]();
    const error = await call.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MalformedResponseError);
    expect((error as Error).message).toMatch(message);
  });

  it('stops a card that never ends its 61xx chain, and a GET RESPONSE answer without status word', async () => {
    const endless: CardTransport = { transmit: async () => Uint8Array.of(...new Uint8Array(256), 0x61, 0x00) };
    await expect(exchange(endless, vscCommands.getSerialNumber())).rejects.toThrow(/expected at most 65536 response bytes, got more/);
    const answers = [Uint8Array.of(0xaa, 0x61, 0x01), Uint8Array.of(0x90)];
    const cut: CardTransport = { transmit: async () => answers.shift()! };
    await expect(exchange(cut, vscCommands.getSerialNumber())).rejects.toBeInstanceOf(MalformedResponseError);
  });

  it('collects 61xx answers with GET RESPONSE and repeats a 6Cxx-refused command with the Le the card named', async () => {
    const sent: string[] = [];
    const answers = [Uint8Array.of(0x6c, 0x02), Uint8Array.of(0xaa, 0x61, 0x01), Uint8Array.of(0xbb, 0x90, 0x00)];
    const transport: CardTransport = { transmit: async (command) => (sent.push(toHex(command)), answers.shift()!) };
    expect(toHex(await exchange(transport, vscCommands.getCounter()))).toBe('aabb');
    expect(sent).toEqual(['8022000010', '8022000002', '00c0000001']);
  });
});

describe('PIV applet client', () => {
  it('counts wrong PINs down as WrongPinError { retriesLeft }, then PinBlockedError', async () => {
    const { piv } = await connectedCard();
    await piv.select();
    expect(await piv.pinRetriesLeft()).toBe(3);
    const errors = [];
    for (let i = 0; i < 3; i++) errors.push(await piv.verifyPin('999999').catch((error: unknown) => error));
    expect(errors.map((error) => (error as WrongPinError).retriesLeft)).toEqual([2, 1, 0]);
    expect(errors.every((error) => error instanceof WrongPinError)).toBe(true);
    await expect(piv.verifyPin('123456')).rejects.toBeInstanceOf(PinBlockedError);
  });

  it('reads a PIN-protected data object only after VERIFY (6982 is SecurityStatusError)', async () => {
    const state = clonePivState(testPivState());
    state.dataObjects.set(PivTag.PRINTED_INFO, Uint8Array.of(0x01, 0x03, 0x41, 0x42, 0x43));
    const { piv } = await connectedCard({}, state);
    await piv.select();
    const refused = await piv.getData(PivTag.PRINTED_INFO).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SecurityStatusError);
    expect(refused).toMatchObject({ sw: 0x6982, code: 'card.security-status' });
    await piv.verifyPin('123456');
    expect(toHex(await piv.getData(PivTag.PRINTED_INFO))).toBe('0103414243');
  });

  it('refuses a PIN longer than 8 digits before anything is sent', async () => {
    const sent: Uint8Array[] = [];
    const piv = new PivAppletClient({ transmit: async (command) => (sent.push(command), Uint8Array.of(0x90, 0x00)) });
    await expect(piv.verifyPin('123456789')).rejects.toThrow('expected a PIN of at most 8 digits, got 9');
    expect(sent).toEqual([]);
  });

  it.each([
    ['another tag', '540100'],
    ['bytes after the object', '53010000'],
    ['a truncated object', '530500'],
    ['no data', ''],
  ])('refuses a GET DATA answer with %s: MalformedResponseError', async (_name, hex) => {
    const piv = new PivAppletClient({ transmit: async () => fromHex(`${hex}9000`) });
    const error = await piv.getData(PivTag.CHUID).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MalformedResponseError);
    expect(error).toMatchObject({ code: 'card.malformed-response', message: 'expected GET DATA to answer one 53 data object' });
  });

  it('verifies the right PIN and reads a data object', async () => {
    const { piv } = await connectedCard();
    await piv.select();
    await piv.verifyPin('123456');
    expect(await piv.pinRetriesLeft()).toBe('verified');
    const chuid = await piv.getData(PivTag.CHUID);
    expect(chuid.length).toBeGreaterThan(20);
    await expect(piv.getData(0x5fc10d)).rejects.toBeInstanceOf(NotFoundError);
  });
});
