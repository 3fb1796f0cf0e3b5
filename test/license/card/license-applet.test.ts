// The license applet through the card OS (src/apdu/license/license-applet.ts; DESIGN.md "License containers and lost
// licenses"; Wibu 000 §2.2-2.8): every INS, every refusal's status word, records that verify as rental trail records
// under the card's key (patent 003 [0056], [0059]), one counter shared with the VSC applet, durable counting.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CardOs, COUNTER_MAX, commandApdu, encodeCommandApdu, parseResponseApdu, SoftwareVscCard, type VscKeyMode } from '../../../src/apdu/index.js';
import { concatBytes, toHex, uintToBytes, utf8 } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, hmacSha256 } from '../../../src/crypto/index.js';
import { decodeLicenseContainer, EMPTY_CONTAINER, encodeLicenseContainer, encodeUseRequest, LICENSE_REASONS, openHiddenData, parseLicenseRecordText,
  publicView, type UseRequest, LicenseApplet, licenseReasonOfStatusWord, licenseStatusWord, MemoryLicenseStore, type LicenseStore } from '../../../src/license/index.js';
import { verifyRecord } from '../../../src/rental/index.js';
import {
  CARD_SERIAL, containerWith, FIRM_CODE, firstUpdate, FULL_PRODUCT, LICENSOR, LICENSOR_SEED, OTHER_LICENSOR, productItem, signedUpdate, simpleProduct,
  T0, TEST_SEED, timeCertificate, updateFile,
} from '../../support/index.js';
import { lockFile } from '../locking/lock-fixture.js';
import { licenseCard, nonce, SECRET, SELECT } from './license-card-fixture.js';

const item = (productCode: number, key = LICENSOR.publicKey) => concatBytes(key, uintToBytes(BigInt(productCode), 4));
/** A request every option of FULL_PRODUCT allows. */
const allowed: UseRequest = {
  licensorKey: LICENSOR.publicKey, productCode: 7, features: 0b1, units: 1, hostTime: T0, country: 'DE', timeZoneOffsetMinutes: 60, user: 'alice',
  computer: new Uint8Array(32).fill(0x42), version: 4, releaseTime: T0,
};
const use = (request: UseRequest, fill = 3) => concatBytes(nonce(fill), encodeUseRequest(request));
const apply = (file: string, fill = 2) => concatBytes(nonce(fill), utf8(file));

describe('license applet: the commands', () => {
  it('READ CONTAINER answers the empty container on a new card', async () => {
    const { run } = await licenseCard();
    const answer = await run(0x30);
    expect(answer.sw).toBe(0x9000);
    expect(toHex(answer.data)).toBe(toHex(encodeLicenseContainer(EMPTY_CONTAINER)));
  });

  it.each<VscKeyMode>(['individual', 'universal'])('APPLY UPDATE on a %s-key card: the container changes and the answer is a record that verifies under the card key', async (keyMode) => {
    const { run, read, trustRoot, record } = await licenseCard({ keyMode, counter: 41n });
    const answer = await run(0x32, apply(updateFile(firstUpdate([{ op: 'put-product', product: FULL_PRODUCT }]))));
    expect(answer.sw).toBe(0x9000);
    const signed = record(2, answer.data);
    expect(signed.counter).toBe(41n);
    expect(verifyRecord(signed, trustRoot)).toBe(true);
    expect(verifyRecord({ ...signed, text: signed.text.replace('counter 1', 'counter 2') }, trustRoot)).toBe(false);
    expect(parseLicenseRecordText(signed.text)).toMatchObject({ kind: 'update', firmCode: FIRM_CODE, counter: 1 });
    expect(await read()).toEqual(publicView(containerWith([productItem(FULL_PRODUCT)])));
  });

  it('READ CONTAINER never shows hidden or secret data, and long answers come through 61xx and GET RESPONSE', async () => {
    const big = simpleProduct(9, 10, { protectedData: new Uint8Array(600).fill(1), hiddenData: Uint8Array.of(1), secretData: SECRET });
    const { run } = await licenseCard({ container: containerWith([productItem(FULL_PRODUCT), productItem(big)]) });
    const answer = await run(0x30);
    expect(answer.sw).toBe(0x9000);
    expect(answer.first).toHaveLength(256);
    const shown = decodeLicenseContainer(answer.data);
    expect(shown.firms[0]!.products.every((product) => product.hiddenData.length === 0 && product.secretData.length === 0)).toBe(true);
    expect(shown.firms[0]!.products[1]!.protectedData).toHaveLength(600);
  });

  it('USE counts down, signs a record of the use, shares the counter with the VSC applet, and is stored before it answers', async () => {
    const store = new MemoryLicenseStore(containerWith([productItem(simpleProduct(9, 3))]));
    const { run, counter, trustRoot, record, read } = await licenseCard({ store, counter: 5n });
    const texts: string[] = [];
    for (const fill of [10, 11, 12]) {
      const answer = await run(0x34, use({ licensorKey: LICENSOR.publicKey, productCode: 9, features: 1, units: 1, hostTime: T0 + fill }, fill));
      expect(answer.sw).toBe(0x9000);
      const signed = record(fill, answer.data);
      expect(verifyRecord(signed, trustRoot)).toBe(true);
      texts.push(signed.text);
      expect(store.read().firms[0]!.products[0]!.unitsUsed).toBe(fill - 9); // durable before the answer
    }
    expect(texts.map((text) => parseLicenseRecordText(text))).toMatchObject([{ left: 2, at: T0 + 10 }, { left: 1 }, { left: 0 }]);
    expect(await counter()).toBe(8n);
    expect((await run(0x34, use({ licensorKey: LICENSOR.publicKey, productCode: 9, features: 0, units: 1, hostTime: T0 + 20 }))).sw).toBe(licenseStatusWord('exhausted'));
    expect(await counter()).toBe(8n);
    // Another applet over the same store (a card opened again) sees the count.
    const again = await licenseCard({ store });
    expect((await again.read()).firms[0]!.products[0]!.unitsUsed).toBe(3);
    expect((await read()).clock).toBe(T0 + 12);
  });

  it('READ HIDDEN seals the hidden data to the licensor, bound to card, item and update counter', async () => {
    const { run } = await licenseCard({ container: containerWith([productItem(FULL_PRODUCT)], { updateCounter: 4 }) });
    const answer = await run(0x36, item(7));
    expect(answer.sw).toBe(0x9000);
    const context = { serial: CARD_SERIAL, firmCode: FIRM_CODE, productCode: 7, updateCounter: 4 };
    expect(openHiddenData(LICENSOR_SEED, context, answer.data)).toEqual(FULL_PRODUCT.hiddenData);
  });

  it('SECRET CHALLENGE answers HMAC-SHA-256 under secret data drawn on the card, which no command shows', async () => {
    const { run, read } = await licenseCard({ container: containerWith([productItem(simpleProduct(9))]) });
    expect((await run(0x38, concatBytes(item(9), Uint8Array.of(1)))).sw).toBe(licenseStatusWord('no-license')); // no secret yet
    expect((await run(0x32, apply(updateFile(signedUpdate({ updateCounter: 1, operations: [{ op: 'generate-secret', productCode: 9, length: 3 }] }))))).sw).toBe(0x9000);
    const challenge = new Uint8Array(64).fill(0xc4);
    const answer = await run(0x38, concatBytes(item(9), challenge));
    expect(answer.sw).toBe(0x9000);
    expect(toHex(answer.data)).toBe(toHex(hmacSha256(SECRET, challenge)));
    expect((await read()).firms[0]!.products[0]!.secretData).toHaveLength(0);
  });

  it('WRITE USER DATA stores the customer\'s data without a record', async () => {
    const { run, read, counter } = await licenseCard({ container: containerWith([productItem(simpleProduct(9))]) });
    expect((await run(0x3a, concatBytes(item(9), utf8('seat 12')))).sw).toBe(0x9000);
    expect((await read()).firms[0]!.products[0]!.userData).toEqual(utf8('seat 12'));
    expect((await run(0x3a, item(9))).sw).toBe(0x9000);
    expect((await read()).firms[0]!.products[0]!.userData).toHaveLength(0);
    expect(await counter()).toBe(0n);
  });
});

describe('license applet: refusals', () => {
  const fullCard = () => licenseCard({ container: containerWith([productItem(FULL_PRODUCT)]) });

  it('answers every license reason as 91xx, xx its index in LICENSE_REASONS', () => {
    LICENSE_REASONS.forEach((reason, index) => {
      expect(licenseStatusWord(reason)).toBe(0x9100 + index);
      expect(licenseReasonOfStatusWord(0x9100 + index)).toBe(reason);
    });
    expect(licenseReasonOfStatusWord(0x9000)).toBeUndefined();
    expect(licenseReasonOfStatusWord(0x6985)).toBeUndefined();
    expect(licenseReasonOfStatusWord(0x9100 + LICENSE_REASONS.length)).toBeUndefined();
  });

  it.each<[string, Partial<UseRequest>, number]>([
    ['no product item', { productCode: 8 }, 0x9101],
    ['a feature not unlocked', { features: 0b0100 }, 0x9102],
    ['after the expiration', { hostTime: T0 + 366 * 86_400 }, 0x9103],
    ['more units than are left', { units: 101 }, 0x9105],
    ['a host clock set back', { hostTime: T0 - 3_600 }, 0x9106],
    ['a country denied', { country: 'CH' }, 0x9107],
    ['a time zone outside', { timeZoneOffsetMinutes: 180 }, 0x9108],
    ['another user', { user: 'bob' }, 0x9109],
    ['another computer', { computer: new Uint8Array(32) }, 0x910a],
    ['a version outside', { version: 6 }, 0x910b],
    ['a release after maintenance ended', { releaseTime: T0 + 91 * 86_400 }, 0x910c],
  ])('USE with %s: %s, and nothing changes', async (_name, change, sw) => {
    const { run, read, counter } = await fullCard();
    const before = await read();
    expect((await run(0x34, use({ ...allowed, ...change }))).sw).toBe(sw);
    expect(await read()).toEqual(before);
    expect(await counter()).toBe(0n);
    expect((await run(0x34, use(allowed))).sw).toBe(0x9000); // the allowed request goes through
  });

  it('USE before the activation time: 9104', async () => {
    const { run } = await licenseCard({ container: containerWith([productItem({ ...FULL_PRODUCT, activationTime: T0 + 86_400 })]) });
    expect((await run(0x34, use(allowed))).sw).toBe(0x9104);
  });

  it.each<[string, () => string, number]>([
    ['a signature that does not verify', () => updateFile({ ...signedUpdate({ updateCounter: 1, operations: [{ op: 'set-firm-text', text: 'x' }] }), signature: new Uint8Array(64) }), 0x910e],
    ['an update for another card', () => updateFile(signedUpdate({ serial: 'VSC-OTHER', updateCounter: 1, operations: [{ op: 'set-firm-text', text: 'x' }] })), 0x910f],
    ['another licensor\'s firm code', () => updateFile(firstUpdate([], { licensor: OTHER_LICENSOR })), 0x910f],
    ['a replayed update', () => updateFile(firstUpdate()), 0x9110],
    ['create-firm on an existing firm item', () => updateFile(signedUpdate({ updateCounter: 1, operations: [{ op: 'create-firm', text: 'x' }] })), 0x9100],
    ['a time certificate for no firm item', () => updateFile(timeCertificate({ licensor: OTHER_LICENSOR, firmCode: 5 })), 0x9101],
  ])('APPLY UPDATE with %s: %s, and nothing changes', async (_name, file, sw) => {
    const { run, read, counter } = await fullCard();
    const before = await read();
    expect((await run(0x32, apply(file()))).sw).toBe(sw);
    expect(await read()).toEqual(before);
    expect(await counter()).toBe(0n);
  });

  it('APPLY UPDATE past the store\'s room: 9111 (capacity), and nothing changes', async () => {
    const { run, read, counter } = await licenseCard({ maxBytes: 400 });
    expect((await run(0x32, apply(updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(1) }]))))).sw).toBe(0x9000);
    const before = await read();
    expect((await run(0x32, apply(updateFile(signedUpdate({ updateCounter: 1, operations: [{ op: 'put-product', product: FULL_PRODUCT }] }))))).sw).toBe(0x9111);
    expect(await read()).toEqual(before);
    expect(await counter()).toBe(1n);
  });

  it.each<[string, number, Uint8Array, { cla?: number; p1?: number; p2?: number }, number]>([
    ['READ CONTAINER with data', 0x30, Uint8Array.of(0), {}, 0x6700],
    ['APPLY UPDATE with a nonce only', 0x32, nonce(1), {}, 0x6700],
    ['APPLY UPDATE with a file that is not one', 0x32, apply('{"format":"x"}'), {}, 0x6a80],
    ['USE with a short nonce', 0x34, new Uint8Array(10), {}, 0x6700],
    ['USE with a request that does not parse', 0x34, concatBytes(nonce(1), Uint8Array.of(1, 0, 0, 0, 1, 0)), {}, 0x6a80],
    ['READ HIDDEN with 35 bytes', 0x36, item(7).subarray(1), {}, 0x6700],
    ['SECRET CHALLENGE without a challenge', 0x38, item(7), {}, 0x6700],
    ['SECRET CHALLENGE with 65 bytes of challenge', 0x38, concatBytes(item(7), new Uint8Array(65)), {}, 0x6700],
    ['WRITE USER DATA past 1024 bytes', 0x3a, concatBytes(item(7), new Uint8Array(1025)), {}, 0x6700],
    ['READ HIDDEN of an item not there', 0x36, item(8), {}, 0x9101],
    ['P1 not 00', 0x30, new Uint8Array(0), { p1: 1 }, 0x6a86],
    ['P2 not 00', 0x34, use(allowed), { p2: 1 }, 0x6a86],
    ['an unknown INS', 0x40, new Uint8Array(0), {}, 0x6d00],
    ['CLA 00', 0x30, new Uint8Array(0), { cla: 0x00 }, 0x6e00],
  ])('%s: %s', async (_name, ins, data, header, sw) => {
    const { run } = await fullCard();
    expect((await run(ins, data, header)).sw.toString(16)).toBe(sw.toString(16));
  });

  it('a card being removed answers 6985 to every command', async () => {
    let disabled = false;
    const { run } = await licenseCard({ container: containerWith([productItem(FULL_PRODUCT)]), disabled: () => disabled });
    disabled = true;
    for (const [ins, data] of [[0x30, new Uint8Array(0)], [0x34, use(allowed)], [0x36, item(7)]] as const) expect((await run(ins, data)).sw).toBe(0x6985);
  });

  it('a use whose count cannot be stored is not answered (6581) and leaves everything as it was', async () => {
    const inner = new MemoryLicenseStore(containerWith([productItem(FULL_PRODUCT)]));
    let fail = true;
    const store: LicenseStore = { read: () => inner.read(), write: (next) => (fail ? Promise.reject(new Error('disk full')) : inner.write(next)) };
    const { run, counter } = await licenseCard({ store });
    expect((await run(0x34, use(allowed))).sw).toBe(0x6581);
    expect(inner.read().firms[0]!.products[0]!.unitsUsed).toBe(0);
    expect(await counter()).toBe(0n);
    fail = false;
    expect((await run(0x34, use(allowed))).sw).toBe(0x9000);
    expect(inner.read().firms[0]!.products[0]!.unitsUsed).toBe(1);
  });

  it('a signature the card refuses (counter exhausted) answers 6985 and puts the container back', async () => {
    const { run, store } = await licenseCard({ container: containerWith([productItem(FULL_PRODUCT)]), counter: COUNTER_MAX });
    expect((await run(0x34, use(allowed))).sw).toBe(0x6985);
    expect(store.read().firms[0]!.products[0]!.unitsUsed).toBe(0);
    expect(store.read().clock).toBe(T0);
  });
});

describe('license applet: fuzz', () => {
  it('answers any data to any of its INS with a status word, never an internal error (6F00)', async () => {
    const internal: unknown[] = [];
    const card = new SoftwareVscCard({ serial: CARD_SERIAL, keyMode: 'individual', key: ed25519KeyFromSeed(TEST_SEED), counter: 0n });
    const store = new MemoryLicenseStore(containerWith([productItem(FULL_PRODUCT), productItem(simpleProduct(9))]));
    const os = new CardOs([new LicenseApplet(card, { store })], { onInternalError: (error) => internal.push(error) });
    os.powerOn();
    await os.transmit(encodeCommandApdu(SELECT));
    const prefix = fc.constantFrom(
      new Uint8Array(0), nonce(0), item(7), item(9), concatBytes(nonce(0), encodeUseRequest(allowed)), concatBytes(nonce(0), uintToBytes(BigInt(T0), 8)),
      concatBytes(nonce(0), utf8(lockFile())),
    );
    await fc.assert(fc.asyncProperty(fc.constantFrom(0x30, 0x32, 0x34, 0x36, 0x38, 0x3a, 0x3c, 0x3e), prefix, fc.uint8Array({ maxLength: 80 }), async (ins, head, tail) => {
      const response = parseResponseApdu(await os.transmit(encodeCommandApdu(commandApdu({ cla: 0x80, ins, data: concatBytes(head, tail), ne: 256 }))));
      expect(response.sw).not.toBe(0x6f00);
    }), { numRuns: 300 });
    expect(internal).toEqual([]);
  });
});
