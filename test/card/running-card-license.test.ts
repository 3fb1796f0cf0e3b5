// The license applet in the running card (src/card/running-card.ts; DESIGN.md "What backs a running card", "License
// containers"): its container lives in the protected information, every change reaches the backing before the card
// answers, it survives a give-back and a reopen (from a backing and from a state file), it shares the card's counter
// and room with the VSC and PIV applets, and a removed card refuses it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DATA_OBJECT_LENGTH, type CardSource } from '../../src/apdu/index.js';
import { wipe } from '../../src/bytes/index.js';
import { openEmulatedCard } from '../../src/card-emulator/index.js';
import { ConditionsNotSatisfiedError, CardStatusError, VscAppletClient } from '../../src/card-client/index.js';
import {
  encodedProtectedInformationLength, encodeProtectedInformation, newProtectedInformation, readLicenseContainer, readLicenseFieldLength, readPivState,
  RunningCard, type CardBacking, type CounterGrant, type OpenedCard,
} from '../../src/card/index.js';
import { EMPTY_CONTAINER, LicenseError, publicView, type LicenseContainer, type UseRequest, LicenseAppletClient } from '../../src/license/index.js';
import { verifyRecord } from '../../src/rental/index.js';
import { MAX_PROTECTED_INFORMATION_BYTES } from '../../src/vsc-protocol/index.js';
import { CARD_SERIAL, containerWith, firstUpdate, FULL_PRODUCT, LICENSOR, productItem, signedUpdate, simpleProduct, T0, updateFile } from '../support/index.js';

/** Keeps what it is given; a save can be made to fail. */
class MemoryBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  readonly saved: Uint8Array[] = [];
  readonly givenBack: Uint8Array[] = [];
  failSaves = false;
  constructor(private readonly opened: OpenedCard) {}
  async open(): Promise<OpenedCard> {
    return { ...this.opened, plaintext: this.opened.plaintext.slice() };
  }
  async grantMore(): Promise<CounterGrant> {
    return new Promise(() => undefined);
  }
  async save(snapshot: Uint8Array): Promise<void> {
    if (this.failSaves) throw new Error('the disk is full');
    this.saved.push(snapshot.slice());
  }
  async giveBack(snapshot: Uint8Array): Promise<void> {
    this.givenBack.push(snapshot.slice());
  }
  async close(): Promise<void> {}
}

function transport(os: CardSource) {
  return { transmit: (command: Uint8Array) => os.transmit(command) };
}

async function open(plaintext: Uint8Array, grant: CounterGrant = { start: 0n, end: 1_000n }) {
  const backing = new MemoryBacking({ serial: CARD_SERIAL, keyMode: 'individual', plaintext, grant });
  const card = await RunningCard.open(backing);
  card.os.powerOn();
  const license = new LicenseAppletClient(transport(card.os));
  await license.select();
  return { card, backing, license, root: { publicKey: card.publicKey, serial: CARD_SERIAL, keyMode: 'individual' as const } };
}

const use: UseRequest = { licensorKey: LICENSOR.publicKey, productCode: 9, features: 1, units: 1, hostTime: T0 + 1 };
const nonce = (fill: number) => new Uint8Array(16).fill(fill);
const error = (promise: Promise<unknown>) => promise.then(() => undefined, (thrown: unknown) => thrown);

describe('the license container in a running card', () => {
  it('is stored with the backing before each answer, survives give-back and reopen, and shares the card\'s counter', async () => {
    const first = await open(encodeProtectedInformation(newProtectedInformation()));
    expect(await first.license.readContainer()).toEqual(EMPTY_CONTAINER);
    const applied = await first.license.apply(nonce(1), updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(9, 5) }, { op: 'put-product', product: FULL_PRODUCT }])));
    expect(readLicenseContainer(first.backing.saved.at(-1)!).firms[0]!.products).toHaveLength(2);
    const used = await first.license.use(nonce(2), use);
    expect(readLicenseContainer(first.backing.saved.at(-1)!).firms[0]!.products.find((product) => product.productCode === 9)!.unitsUsed).toBe(1);
    // The VSC applet signs with the next value of the same counter.
    const vsc = new VscAppletClient(transport(first.card.os));
    await vsc.select();
    expect((await vsc.signAndIncrement(new Uint8Array(32))).counter).toBe(2n);
    expect([applied.counter, used.counter]).toEqual([0n, 1n]);
    expect(verifyRecord({ nonce: nonce(2), ...used }, first.root)).toBe(true);

    await first.card.giveBack();
    await first.card.destroy();
    const [given] = first.backing.givenBack;
    const expected: LicenseContainer = containerWith([productItem(FULL_PRODUCT), productItem(simpleProduct(9, 5), { unitsUsed: 1, firstUse: T0 + 1 })].sort((a, b) => a.productCode - b.productCode), {}, T0 + 1);
    expect(readLicenseContainer(given!)).toEqual(expected);

    const again = await open(given!, { start: 3n, end: 1_000n });
    expect(await again.license.readContainer()).toEqual(publicView(expected));
    const next = await again.license.use(nonce(3), { ...use, hostTime: T0 + 2 });
    expect(next.counter).toBe(3n);
    expect(next.text).toContain('left 3');
    expect(readPivState(given!).pinRetriesLeft).toBe(3); // the PIV part came through as well
    await again.card.destroy();
  });

  it('a change the backing cannot save is not answered (6581), and the card keeps the container it had', async () => {
    const start = encodeProtectedInformation({ ...newProtectedInformation(), license: containerWith([productItem(simpleProduct(9, 5))]) });
    const { card, backing, license } = await open(start);
    backing.failSaves = true;
    const refused = await error(license.use(nonce(1), use));
    expect(refused).toBeInstanceOf(CardStatusError);
    expect((refused as CardStatusError).sw).toBe(0x6581);
    backing.failSaves = false;
    expect((await license.readContainer()).firms[0]!.products[0]!.unitsUsed).toBe(0);
    expect((await license.use(nonce(2), use)).text).toContain('left 4');
    await card.destroy();
  });

  it('counts the container in the room the PIV applet checks, and refuses an update past the room (capacity)', async () => {
    const info = newProtectedInformation();
    // Fill the card with PIV data objects until fewer than 400 bytes are left.
    for (let tag = 0x5fc10d; encodedProtectedInformationLength(info.piv) < MAX_PROTECTED_INFORMATION_BYTES - 400; tag++) {
      const room = MAX_PROTECTED_INFORMATION_BYTES - 400 - encodedProtectedInformationLength(info.piv);
      info.piv.dataObjects.set(tag, new Uint8Array(Math.min(MAX_DATA_OBJECT_LENGTH, Math.max(1, room))));
    }
    const { card, license } = await open(encodeProtectedInformation({ ...info, license: containerWith([productItem(simpleProduct(9, 5))]) }));
    const snapshot = card.snapshot();
    expect(encodedProtectedInformationLength(readPivState(snapshot), readLicenseFieldLength(snapshot))).toBe(snapshot.length);
    wipe(snapshot);
    const big = signedUpdate({ updateCounter: 1, operations: [{ op: 'put-product', product: { ...FULL_PRODUCT, protectedData: new Uint8Array(1024) } }] });
    const refused = await error(license.apply(nonce(1), updateFile(big)));
    expect(refused).toBeInstanceOf(LicenseError);
    expect((refused as LicenseError).reason).toBe('capacity');
    expect((await license.readContainer()).firms[0]!.products).toHaveLength(1);
    expect((await license.use(nonce(2), use)).text).toContain('left 4'); // what does not grow goes on
    await card.destroy();
  });

  it('refuses every license command once the card is being removed', async () => {
    const { card, license } = await open(encodeProtectedInformation({ ...newProtectedInformation(), license: containerWith([productItem(simpleProduct(9))]) }));
    card.disable();
    expect(await error(license.readContainer())).toBeInstanceOf(ConditionsNotSatisfiedError);
    expect(await error(license.use(nonce(1), use))).toBeInstanceOf(ConditionsNotSatisfiedError);
    await card.destroy();
  });
});

describe('the license container of an emulated card (state file)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vsc-license-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is in the file after every change and opens again with the card', async () => {
    const path = join(dir, 'card.state');
    const first = await openEmulatedCard(path, { serial: CARD_SERIAL });
    try {
      first.os.powerOn();
      const license = new LicenseAppletClient(transport(first.os));
      await license.select();
      await license.apply(nonce(1), updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(9, 5) }])));
      await license.use(nonce(2), use);
    } finally {
      await first.close();
    }
    const again = await openEmulatedCard(path);
    try {
      again.os.powerOn();
      const license = new LicenseAppletClient(transport(again.os));
      await license.select();
      const container = await license.readContainer();
      expect(container.firms[0]!.products[0]!.unitsUsed).toBe(1);
      expect((await license.use(nonce(3), { ...use, hostTime: T0 + 2 })).text).toContain('left 3');
    } finally {
      await again.close();
    }
  });
});
