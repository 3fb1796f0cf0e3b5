// The running card, whatever backs it (DESIGN.md "What backs a running card"): it signs only counter
// values its backing granted, asks for more while a quarter of a grant is left (a backing one round
// trip away) and moves to them when the current ones run out, keeps the PIV state in encrypted memory
// and records each change with the backing, and gives the card back in one sequence ([0057], [0095]).
import { describe, expect, it } from 'vitest';
import { type PivState, encodeCommandApdu, parseResponseApdu } from '../../src/apdu/index.js';
import { bytesToUint, fromHex, toHex } from '../../src/bytes/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import {
  decodeProtectedInformation, encodeProtectedInformation, newProtectedInformation, RunningCard, type CardBacking,
  type CounterGrant, type OpenedCard,
} from '../../src/card/index.js';
import { SELECT_VSC } from '../support/index.js';

/** A backing whose grants the test hands out by hand, and which records what it was given. */
class HandBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  readonly asked: bigint[] = [];
  readonly saved: Uint8Array[] = [];
  readonly givenBack: { snapshot: Uint8Array; nextCounter: bigint }[] = [];
  readonly steps: string[] = [];
  closed = false;
  #answer: { resolve: (grant: CounterGrant) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly opened: OpenedCard) {}

  async open(): Promise<OpenedCard> {
    return { ...this.opened, plaintext: this.opened.plaintext.slice() };
  }

  grantMore(next: bigint): Promise<CounterGrant> {
    this.asked.push(next);
    this.steps.push('grant asked');
    return new Promise((resolve, reject) => (this.#answer = { resolve, reject }));
  }

  answer(grant: CounterGrant | Error): void {
    const answer = this.#answer!;
    this.#answer = undefined;
    if (grant instanceof Error) answer.reject(grant);
    else answer.resolve(grant);
  }

  async save(snapshot: Uint8Array): Promise<void> {
    this.saved.push(snapshot.slice());
  }

  async giveBack(snapshot: Uint8Array, nextCounter: bigint): Promise<void> {
    this.steps.push('given back');
    this.givenBack.push({ snapshot: snapshot.slice(), nextCounter });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

async function runningCard(grant: CounterGrant, counter = 0n) {
  const backing = new HandBacking({ serial: 'SB-1', keyMode: 'individual', plaintext: encodeProtectedInformation({ ...newProtectedInformation(), counter }), grant });
  const failures: unknown[] = [];
  const card = await RunningCard.open(backing, { onGrantFailed: (error) => failures.push(error) });
  card.os.powerOn();
  const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
  /** SIGN AND INCREMENT of a zero hash: the counter it signed with, or the status word it got. */
  let selected = false;
  const sign = async (): Promise<bigint | string> => {
    if (!selected) expect((await send(SELECT_VSC)).sw).toBe(0x9000);
    selected = true;
    const response = await send(toHex(encodeCommandApdu(vscCommands.signAndIncrement(new Uint8Array(32)))));
    return response.sw === 0x9000 ? bytesToUint(response.data.subarray(0, 16)) : response.sw.toString(16);
  };
  /** Lets a grant answered by hand reach the card. */
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { card, backing, sign, settle, failures };
}

describe('running card: counter grants from a backing one round trip away', () => {
  it('signs inside the grant, asks once at a quarter left, refuses past its end until the next grant arrives', async () => {
    const { card, backing, sign, settle } = await runningCard({ start: 100n, end: 108n });
    for (let expected = 100n; expected < 106n; expected++) expect(await sign()).toBe(expected);
    expect(backing.asked).toEqual([108n]); // 2 of 8 left after signing 105: asked for values past 108
    expect(await sign()).toBe(106n);
    expect(await sign()).toBe(107n);
    expect(backing.asked).toHaveLength(1);
    expect(await sign()).toBe('6985');
    expect(card.nextCounter).toBe(108n);
    backing.answer({ start: 300n, end: 308n });
    await settle();
    expect(card.nextCounter).toBe(300n); // a give-back would report a value inside the newest grant
    expect(await sign()).toBe(300n);
    expect(card.nextCounter).toBe(301n);
  });

  it('finishes the current grant before moving to the next, and reports the next grant\'s start meanwhile', async () => {
    const { card, backing, sign, settle } = await runningCard({ start: 0n, end: 4n });
    for (let expected = 0n; expected < 3n; expected++) expect(await sign()).toBe(expected);
    backing.answer({ start: 10n, end: 14n });
    await settle();
    expect(card.nextCounter).toBe(10n);
    expect(card.counterStatus).toEqual({ next: 3n, nextGrant: { start: 10n, end: 14n } });
    expect(await sign()).toBe(3n);
    expect(await sign()).toBe(10n);
    expect(card.counterStatus).toEqual({ next: 11n, nextGrant: undefined });
  });

  it.each([
    ['overlapping values it may have signed', { start: 3n, end: 10n }],
    ['empty', { start: 4n, end: 4n }],
  ])('refuses a grant that is %s, and says so', async (_name, grant) => {
    const { card, backing, sign, settle, failures } = await runningCard({ start: 0n, end: 4n });
    for (let i = 0; i < 3; i++) await sign();
    backing.answer(grant);
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(RangeError);
    expect(card.counterStatus.nextGrant).toBeUndefined();
    expect(card.nextCounter).toBe(3n);
  });

  it('starts past a counter given back earlier when it lies inside the grant, and asks again after a failed request', async () => {
    const { backing, sign, settle, failures } = await runningCard({ start: 0n, end: 8n }, 5n);
    expect(await sign()).toBe(5n);
    expect(backing.asked).toHaveLength(1);
    backing.answer(new Error('server unreachable'));
    await settle();
    expect(failures).toHaveLength(1);
    expect(await sign()).toBe(6n);
    expect(backing.asked).toHaveLength(2);
  });

  it('shows the public key of its signing key, the one GET PUBLIC KEY answers and a keyfile names ([0044])', async () => {
    const { card } = await runningCard({ start: 0n, end: 8n });
    const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
    expect((await send(SELECT_VSC)).sw).toBe(0x9000);
    expect(toHex((await send('8026000020')).data)).toBe(toHex(card.publicKey));
    card.publicKey.fill(0); // a copy: the card's own stays
    expect(toHex((await send('8026000020')).data)).toBe(toHex(card.publicKey));
  });

  it('refuses service once disabled', async () => {
    const { card, sign } = await runningCard({ start: 0n, end: 8n });
    card.disable();
    expect(await sign()).toBe('6985');
  });
});

describe('running card: the one remove sequence', () => {
  it('refuses service, detaches, waits for a grant in flight, gives back the information with its next counter, once', async () => {
    const { card, backing, sign } = await runningCard({ start: 0n, end: 4n });
    for (let i = 0; i < 3; i++) await sign(); // asks for the next grant
    const first = card.giveBack(async () => void backing.steps.push('detached'));
    const second = card.giveBack();
    await new Promise((resolve) => setImmediate(resolve));
    expect(backing.givenBack).toHaveLength(0); // waits for the grant in flight
    backing.answer({ start: 20n, end: 24n });
    await Promise.all([first, second]);
    expect(backing.steps).toEqual(['grant asked', 'detached', 'given back']);
    expect(backing.givenBack).toHaveLength(1);
    expect(backing.givenBack[0]!.nextCounter).toBe(20n);
    expect(decodeProtectedInformation(backing.givenBack[0]!.snapshot).counter).toBe(20n);
    expect(await sign()).toBe('6985');
    await card.destroy();
    expect(backing.closed).toBe(true);
  });
});

describe('running card: PIV state from encrypted memory', () => {
  const SELECT_PIV = '00A4040009A0000003080000100000';
  const verifyPin = (pin: string) => `0020008008${Buffer.from(pin.padEnd(8, '\xff'), 'latin1').toString('hex')}`;

  it('counts PIN tries into encrypted memory and records each with the backing, and holds no secret between commands', async () => {
    const { card, backing } = await runningCard({ start: 0n, end: 8n });
    const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
    expect((await send(SELECT_PIV)).sw).toBe(0x9000);
    expect((await send(verifyPin('999999'))).sw).toBe(0x63c2);
    expect((await send(verifyPin('123456'))).sw).toBe(0x9000);
    expect((await send(verifyPin('000000'))).sw).toBe(0x63c2);
    const uploaded = decodeProtectedInformation(card.snapshot());
    expect(uploaded.piv.pinRetriesLeft).toBe(2);
    // Every try is recorded with the backing before the card answers, and before the comparison: 2 (wrong),
    // 1 then 3 (counted, then reset by the right PIN), 2 (wrong).
    expect(backing.saved.map((snapshot) => decodeProtectedInformation(snapshot).piv.pinRetriesLeft)).toEqual([2, 1, 3, 2]);
    // Between commands the applet's working copy is zeroed: PIN, PUK, management key, private keys.
    const applet = card.os['applets' as keyof typeof card.os] as unknown as { state: PivState }[];
    const working = applet.map((candidate) => candidate.state).find((state) => state !== undefined)!;
    for (const secret of [working.pin, working.puk, working.managementKey.key, ...[...working.keys.values()].map((pair) => pair.privateKey)]) {
      expect(secret.every((byte) => byte === 0)).toBe(true);
    }
    expect(uploaded.piv.pin.some((byte) => byte !== 0)).toBe(true);
    await card.destroy();
  });
});
