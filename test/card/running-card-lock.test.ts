// A locked license container locks the running card (src/card/running-card.ts; Wibu 000 §2.10: a box declared lost,
// broken or stolen "cannot longer be used for any encryption or authentication"): the VSC applet refuses SIGN AND
// INCREMENT and the PIV applet its key operations, management key authentication included (6985), from the lock on,
// across a give-back and a reopen; both work again after the authority's unlock.
import { describe, expect, it } from 'vitest';
import { type CardSource } from '../../src/apdu/index.js';
import { ConditionsNotSatisfiedError, VscAppletClient } from '../../src/card-client/index.js';
import { encodeProtectedInformation, newProtectedInformation, readLicenseContainer, RunningCard, type CardBacking, type CounterGrant, type OpenedCard } from '../../src/card/index.js';
import { LicenseAppletClient } from '../../src/license/index.js';
import { CARD_SERIAL, containerWith, DEFAULT_MANAGEMENT_KEY, pivHost, productItem, simpleProduct, T0 } from '../support/index.js';
import { AUTHORITY, lockFile } from '../license/locking/lock-fixture.js';

class MemoryBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  saved: Uint8Array | undefined;
  constructor(public plaintext: Uint8Array) {}
  async open(): Promise<OpenedCard> {
    return { serial: CARD_SERIAL, keyMode: 'individual', plaintext: this.plaintext.slice(), grant: { start: 0n, end: 1_000n } };
  }
  async grantMore(): Promise<CounterGrant> {
    return new Promise(() => undefined);
  }
  async save(snapshot: Uint8Array): Promise<void> {
    this.saved = snapshot.slice();
  }
  async giveBack(snapshot: Uint8Array): Promise<void> {
    this.plaintext = snapshot.slice();
  }
  async close(): Promise<void> {}
}

const transport = (os: CardSource) => ({ transmit: (command: Uint8Array) => os.transmit(command) });
const nonce = new Uint8Array(16).fill(1);

async function open(backing: MemoryBacking) {
  const card = await RunningCard.open(backing);
  card.os.powerOn();
  const license = new LicenseAppletClient(transport(card.os));
  const vsc = new VscAppletClient(transport(card.os));
  const piv = pivHost(card.os);
  /** SIGN AND INCREMENT through the VSC applet: its counter, or the error it refused with. */
  const sign = async () => {
    await vsc.select();
    return vsc.signAndIncrement(new Uint8Array(32)).then((answer) => answer.counter, (error: unknown) => error);
  };
  /** A PIV signature in 9A after VERIFY: its status word. */
  const pivSign = async () => {
    await piv.select();
    expect((await piv.verifyPin('123456')).sw).toBe(0x9000);
    return (await piv.sign(0x9a, new Uint8Array(32).fill(7))).sw;
  };
  /** Management-key authentication (GENERAL AUTHENTICATE 9B, before GENERATE ASYMMETRIC KEY PAIR): its status word. */
  const manage = async () => {
    await piv.select();
    return (await piv.mutualAuth(DEFAULT_MANAGEMENT_KEY)).sw;
  };
  return { card, license, sign, pivSign, manage };
}

describe('a running card with a locked license container', () => {
  it('refuses SIGN AND INCREMENT and PIV signatures from the lock on, after a reopen too, and serves them again after the unlock', async () => {
    const container = { ...containerWith([productItem(simpleProduct(9))]), lockAuthority: AUTHORITY.publicKey };
    const backing = new MemoryBacking(encodeProtectedInformation({ ...newProtectedInformation(), license: container }));
    const first = await open(backing);
    expect(await first.sign()).toBe(0n);
    expect(await first.pivSign()).toBe(0x9000);

    await first.license.select();
    expect((await first.license.locking(nonce, lockFile())).counter).toBe(1n);
    expect(readLicenseContainer(backing.saved!).lock?.time).toBe(T0 + 1000); // with the backing before the answer
    expect(await first.sign()).toBeInstanceOf(ConditionsNotSatisfiedError);
    expect(await first.pivSign()).toBe(0x6985);
    expect(await first.manage()).toBe(0x6985);

    await first.card.giveBack();
    await first.card.destroy();
    const again = await open(backing);
    expect(await again.sign()).toBeInstanceOf(ConditionsNotSatisfiedError);
    expect(await again.pivSign()).toBe(0x6985);

    await again.license.select();
    const unlocked = await again.license.locking(nonce, lockFile({ kind: 'unlock', time: T0 + 2000 }));
    expect(unlocked.text).toMatch(/^license unlock /);
    expect(await again.sign()).toBe(unlocked.counter + 1n);
    expect(await again.pivSign()).toBe(0x9000);
    expect(await again.manage()).toBe(0x9000);
    await again.card.destroy();
  });
});
