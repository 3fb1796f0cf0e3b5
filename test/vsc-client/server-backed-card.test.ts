// An inserted server-backed card signs only inside the counter windows the server granted, asks for
// the next window while a quarter of the current one is left, and moves to it when it runs out.
import { describe, expect, it } from 'vitest';
import { parseResponseApdu } from '../../src/apdu/response-apdu.js';
import { bytesToUint, fromHex } from '../../src/bytes/index.js';
import type { PivState } from '../../src/apdu/piv/index.js';
import { decodeProtectedInformation, encodeProtectedInformation, newProtectedInformation } from '../../src/vsc-client/protected-information.js';
import { ServerBackedCard } from '../../src/vsc-client/server-backed-card.js';
import { SELECT_VSC } from '../support/index.js';

function insertedCard(counterWindow: readonly [bigint, bigint], counter = 0n) {
  let lowCalls = 0;
  const card = new ServerBackedCard({
    serial: 'SB-1',
    plaintext: encodeProtectedInformation({ ...newProtectedInformation(), counter }),
    counterWindow,
    onCounterWindowLow: () => void lowCalls++,
  });
  card.os.powerOn();
  const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
  /** SIGN AND INCREMENT of a zero hash: the counter it signed with, or the status word it got. */
  let selected = false;
  const sign = async (): Promise<bigint | string> => {
    if (!selected) expect((await send(SELECT_VSC)).sw).toBe(0x9000);
    selected = true;
    const response = await send(`8024000020${'00'.repeat(32)}`);
    return response.sw === 0x9000 ? bytesToUint(response.data.subarray(0, 16)) : response.sw.toString(16);
  };
  return { card, sign, lowCalls: () => lowCalls };
}

describe('server-backed card: counter windows', () => {
  it('signs inside the window, asks once at a quarter left, refuses past its end until the next window is granted', async () => {
    const { card, sign, lowCalls } = insertedCard([100n, 108n]);
    for (let expected = 100n; expected < 106n; expected++) expect(await sign()).toBe(expected);
    expect(lowCalls()).toBe(1); // 2 of 8 left after signing 105
    expect(await sign()).toBe(106n);
    expect(await sign()).toBe(107n);
    expect(lowCalls()).toBe(1);
    expect(await sign()).toBe('6985');
    expect(card.nextCounter).toBe(108n);
    card.grantCounterWindow([300n, 308n]);
    expect(card.nextCounter).toBe(300n); // remove would report a value inside the newest window
    expect(await sign()).toBe(300n);
    expect(card.nextCounter).toBe(301n);
  });

  it('finishes the current window before moving to a granted one, and reports the granted start meanwhile', async () => {
    const { card, sign } = insertedCard([0n, 4n]);
    for (let expected = 0n; expected < 3n; expected++) expect(await sign()).toBe(expected);
    card.grantCounterWindow([10n, 14n]);
    expect(card.nextCounter).toBe(10n);
    expect(card.counterStatus).toEqual({ next: 3n, nextWindow: [10n, 14n] });
    expect(await sign()).toBe(3n);
    expect(await sign()).toBe(10n);
    expect(card.counterStatus).toEqual({ next: 11n, nextWindow: undefined });
  });

  it('refuses a granted window that overlaps values it may already have signed', () => {
    const { card } = insertedCard([0n, 4n]);
    expect(() => card.grantCounterWindow([3n, 10n])).toThrow(RangeError);
    expect(() => card.grantCounterWindow([4n, 4n])).toThrow(RangeError);
    expect(card.nextCounter).toBe(0n);
  });

  it('starts past a counter uploaded earlier when it lies inside the window, and asks again after a refused request', async () => {
    const { card, sign, lowCalls } = insertedCard([0n, 8n], 5n);
    expect(await sign()).toBe(5n);
    expect(lowCalls()).toBe(1);
    card.counterWindowRefused();
    expect(await sign()).toBe(6n);
    expect(lowCalls()).toBe(2);
  });

  it('refuses service once disabled for removal', async () => {
    const { card, sign } = insertedCard([0n, 8n]);
    card.disable();
    expect(await sign()).toBe('6985');
  });
});

describe('server-backed card: PIV state from encrypted memory', () => {
  const SELECT_PIV = '00A4040009A0000003080000100000';
  const verifyPin = (pin: string) => `0020008008${Buffer.from(pin.padEnd(8, '\xff'), 'latin1').toString('hex')}`;

  it('counts PIN tries into encrypted memory, so the upload at remove carries them, and holds no secret between commands', async () => {
    const card = new ServerBackedCard({ serial: 'SB-PIV', plaintext: encodeProtectedInformation(newProtectedInformation()), counterWindow: [0n, 8n] });
    card.os.powerOn();
    const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
    expect((await send(SELECT_PIV)).sw).toBe(0x9000);
    expect((await send(verifyPin('999999'))).sw).toBe(0x63c2);
    expect((await send(verifyPin('123456'))).sw).toBe(0x9000);
    expect((await send(verifyPin('000000'))).sw).toBe(0x63c2);
    const uploaded = decodeProtectedInformation(card.snapshot());
    expect(uploaded.piv.pinRetriesLeft).toBe(2);
    // Between commands the applet's working copy is zeroed: PIN, PUK, management key, private keys.
    const applet = card.os['applets' as keyof typeof card.os] as unknown as { state: PivState }[];
    const working = applet.map((candidate) => candidate.state).find((state) => state !== undefined)!;
    for (const secret of [working.pin, working.puk, working.managementKey.key, ...[...working.keys.values()].map((pair) => pair.privateKey)]) {
      expect(secret.every((byte) => byte === 0)).toBe(true);
    }
    expect(uploaded.piv.pin.some((byte) => byte !== 0)).toBe(true);
    card.destroy();
  });
});
