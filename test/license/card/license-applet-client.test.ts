// The typed host-side client of the license applet (src/card-client/license-applet-client.ts) over the card OS: every
// call, command chaining for long updates, GET RESPONSE for long answers, 91xx as LicenseError, checked inputs and
// malformed answers.
import { describe, expect, it } from 'vitest';
import { CardOs, parseCommandApdu, SoftwareVscCard, VscApplet, type CommandApdu } from '../../../src/apdu/index.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/bytes/index.js';
import { MalformedResponseError, type CardTransport } from '../../../src/card-client/index.js';
import { ed25519KeyFromSeed, hmacSha256 } from '../../../src/crypto/index.js';
import { assembleBackup, parseContainerRecordText, splitBackup, verifyBackupItem } from '../../../src/license/index.js';
import { EMPTY_CONTAINER, LicenseError, openHiddenData, parseLicenseRecordText, publicView, type LicenseContainer, type UseRequest, LicenseApplet, MemoryLicenseStore, LicenseAppletClient, parseCardRecordAnswer } from '../../../src/license/index.js';
import { verifyRecord } from '../../../src/rental/index.js';
import {
  CARD_SERIAL, containerWith, FIRM_CODE, firstUpdate, FULL_PRODUCT, LICENSOR, LICENSOR_SEED, productItem, signedUpdate, simpleProduct, T0,
  TEST_PUBLIC_KEY, TEST_SEED, updateFile,
} from '../../support/index.js';
import { AUTHORITY, lockFile } from '../locking/lock-fixture.js';

const SECRET = Uint8Array.of(1, 2, 3, 4);

/** A card OS with the VSC and license applets, and a transport that records every command it carries. */
function clientFor(container: LicenseContainer = EMPTY_CONTAINER) {
  const card = new SoftwareVscCard({ serial: CARD_SERIAL, keyMode: 'individual', key: ed25519KeyFromSeed(TEST_SEED), counter: 0n });
  const store = new MemoryLicenseStore(container);
  // generate-secret of 4 bytes draws SECRET; longer draws (a backup's salts) SECRET ‖ 00….
  const random = (length: number) => concatBytes(SECRET, new Uint8Array(Math.max(0, length - SECRET.length))).slice(0, length);
  const os = new CardOs([new VscApplet(card), new LicenseApplet(card, { store, random })]);
  os.powerOn();
  const sent: CommandApdu[] = [];
  const transport: CardTransport = {
    transmit: (command) => {
      sent.push(parseCommandApdu(command));
      return os.transmit(command);
    },
  };
  return { client: new LicenseAppletClient(transport), sent, store };
}

const request: UseRequest = { licensorKey: LICENSOR.publicKey, productCode: 9, features: 1, units: 2, hostTime: T0 + 5 };
const root = { publicKey: TEST_PUBLIC_KEY, serial: CARD_SERIAL, keyMode: 'individual' } as const;

function licenseRefusal(error: unknown): LicenseError['reason'] {
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('license applet client', () => {
  it('applies an update sent in chained short APDUs, and its answer is a record that verifies', async () => {
    const { client, sent } = clientFor();
    await client.select();
    const nonce = new Uint8Array(16).fill(9);
    const file = updateFile(firstUpdate([{ op: 'put-product', product: FULL_PRODUCT }, { op: 'put-product', product: simpleProduct(9) }]));
    const answer = await client.apply(nonce, file);
    expect(verifyRecord({ nonce, ...answer }, root)).toBe(true);
    expect(parseLicenseRecordText(answer.text)).toMatchObject({ kind: 'update', firmCode: FIRM_CODE, counter: 1 });
    const chain = sent.filter((command) => command.ins === 0x32);
    expect(chain.length).toBe(Math.ceil((16 + utf8(file).length) / 255));
    expect(chain.every((command) => !command.extended && command.data.length <= 255)).toBe(true);
    expect(chain.map((command) => command.cla)).toEqual([...Array<number>(chain.length - 1).fill(0x90), 0x80]);
    expect(toHex(concatBytes(...chain.map((command) => command.data)))).toBe(toHex(concatBytes(nonce, utf8(file))));
  });

  it('reads the container (through GET RESPONSE when long) as the card shows it', async () => {
    const container = containerWith([productItem(FULL_PRODUCT), productItem(simpleProduct(9, 10, { protectedData: new Uint8Array(700).fill(3) }))]);
    const { client, sent } = clientFor(container);
    await client.select();
    expect(await client.readContainer()).toEqual(publicView(container));
    expect(sent.some((command) => command.ins === 0xc0)).toBe(true);
  });

  it('uses a product item: the record counts down and verifies', async () => {
    const { client } = clientFor(containerWith([productItem(simpleProduct(9, 10))]));
    await client.select();
    const nonce = new Uint8Array(16).fill(1);
    const answer = await client.use(nonce, request);
    expect(answer.counter).toBe(0n);
    expect(verifyRecord({ nonce, ...answer }, root)).toBe(true);
    expect(parseLicenseRecordText(answer.text)).toMatchObject({ kind: 'use', productCode: 9, units: 2, left: 8, at: T0 + 5 });
  });

  it('turns 91xx refusals into LicenseError with their reason', async () => {
    const { client } = clientFor(containerWith([productItem(simpleProduct(9, 1))]));
    await client.select();
    expect(licenseRefusal(await client.use(new Uint8Array(16), request).catch((error: unknown) => error))).toBe('exhausted');
    expect(licenseRefusal(await client.use(new Uint8Array(16), { ...request, productCode: 5 }).catch((error: unknown) => error))).toBe('no-license');
    expect(licenseRefusal(await client.apply(new Uint8Array(16), updateFile(firstUpdate())).catch((error: unknown) => error))).toBe('replayed');
    expect(licenseRefusal(await client.readHidden(LICENSOR.publicKey, 5).catch((error: unknown) => error))).toBe('no-license');
  });

  it('reads hidden data sealed to the licensor, answers secret challenges and writes user data', async () => {
    const { client, store } = clientFor(containerWith([productItem(FULL_PRODUCT), productItem(simpleProduct(9))]));
    await client.select();
    const box = await client.readHidden(LICENSOR.publicKey, 7);
    expect(openHiddenData(LICENSOR_SEED, { serial: CARD_SERIAL, firmCode: FIRM_CODE, productCode: 7, updateCounter: 1 }, box)).toEqual(FULL_PRODUCT.hiddenData);
    await client.apply(new Uint8Array(16), updateFile(signedUpdate({ updateCounter: 1, operations: [{ op: 'generate-secret', productCode: 9, length: 4 }] })));
    expect(await client.secretChallenge(LICENSOR.publicKey, 9, Uint8Array.of(7))).toEqual(hmacSha256(SECRET, Uint8Array.of(7)));
    await client.writeUserData(LICENSOR.publicKey, 9, new Uint8Array(1024).fill(8));
    expect(store.read().firms[0]!.products[1]!.userData).toEqual(new Uint8Array(1024).fill(8));
  });

  it.each<[string, (client: LicenseAppletClient) => Promise<unknown>]>([
    ['a short nonce', (client) => client.apply(new Uint8Array(15), '{}')],
    ['an empty update file', (client) => client.apply(new Uint8Array(16), '')],
    ['a use request outside its limits', (client) => client.use(new Uint8Array(16), { ...request, units: -1 })],
    ['a short licensor key', (client) => client.readHidden(new Uint8Array(31), 1)],
    ['a product code past 32 bits', (client) => client.readHidden(LICENSOR.publicKey, 2 ** 32)],
    ['an empty challenge', (client) => client.secretChallenge(LICENSOR.publicKey, 1, new Uint8Array(0))],
    ['a challenge of 65 bytes', (client) => client.secretChallenge(LICENSOR.publicKey, 1, new Uint8Array(65))],
    ['user data past 1024 bytes', (client) => client.writeUserData(LICENSOR.publicKey, 1, new Uint8Array(1025))],
    ['a backup with a short nonce', (client) => client.backup(new Uint8Array(15), T0)],
    ['a backup with a negative host time', (client) => client.backup(new Uint8Array(16), -1)],
    ['a backup with a fractional host time', (client) => client.backup(new Uint8Array(16), T0 + 0.5)],
    ['an empty lock sequence', (client) => client.locking(new Uint8Array(16), '')],
    ['a lock sequence past 4 KiB', (client) => client.locking(new Uint8Array(16), ' '.repeat(4097))],
  ])('refuses %s before sending anything', async (_name, call) => {
    const { client, sent } = clientFor();
    expect(licenseRefusal(await call(client).catch((error: unknown) => error))).toBe('input');
    expect(sent).toHaveLength(0);
  });

  it.each<[string, Uint8Array, (client: LicenseAppletClient) => Promise<unknown>]>([
    ['a container that does not decode', fromHex('029000'), (client) => client.readContainer()],
    ['a record answer too short for counter and signature', concatBytes(new Uint8Array(79), fromHex('9000')), (client) => client.use(new Uint8Array(16), request)],
    ['an HMAC of the wrong length', fromHex('01029000'), (client) => client.secretChallenge(LICENSOR.publicKey, 1, Uint8Array.of(1))],
    ['a backup answer without its text length', concatBytes(new Uint8Array(81), fromHex('9000')), (client) => client.backup(new Uint8Array(16), T0)],
    ['a backup answer shorter than its text length', concatBytes(new Uint8Array(80), fromHex('0010'), utf8('license'), fromHex('9000')), (client) => client.backup(new Uint8Array(16), T0)],
    ['a backup answer with a broken leaf field', concatBytes(new Uint8Array(80), fromHex('0001'), utf8('x'), fromHex('01000000ff00'), fromHex('9000')), (client) => client.backup(new Uint8Array(16), T0)],
    ['a backup answer with a leaf of another tag', concatBytes(new Uint8Array(80), fromHex('0001'), utf8('x'), fromHex('020000000100'), fromHex('9000')), (client) => client.backup(new Uint8Array(16), T0)],
  ])('refuses %s as a malformed response', async (_name, response, call) => {
    const client = new LicenseAppletClient({ transmit: async () => response });
    expect(await call(client).catch((error: unknown) => error)).toBeInstanceOf(MalformedResponseError);
  });

  it('parses a record answer and refuses a text that is not UTF-8', () => {
    const data = concatBytes(new Uint8Array(15), Uint8Array.of(7), new Uint8Array(64).fill(1), utf8('license time x'));
    expect(parseCardRecordAnswer(data)).toEqual({ counter: 7n, signature: new Uint8Array(64).fill(1), text: 'license time x' });
    expect(() => parseCardRecordAnswer(concatBytes(data.subarray(0, 80), Uint8Array.of(0xff)))).toThrow(MalformedResponseError);
  });

  it('backs up through GET RESPONSE past 64 KiB: one record over the root of every leaf, each item verifying for its licensor', async () => {
    const firms = Array.from({ length: 300 }, (_, i) => ({
      licensorKey: ed25519KeyFromSeed(new Uint8Array(32).fill(i & 0xff).map((byte, j) => (j === 0 ? i >> 8 : byte))).publicKey, firmCode: 1000 + i, text: `Licensor ${i}`,
      updateCounter: 1, products: [productItem(simpleProduct(1, 100, { protectedData: new Uint8Array(64).fill(i % 256) }))],
    }));
    const { client, sent, store } = clientFor({ clock: T0, firms });
    await client.select();
    const nonce = new Uint8Array(16).fill(3);
    const { record, leaves } = await client.backup(nonce, T0 + 60);
    expect(sent.filter((command) => command.ins === 0xc0).length * 256).toBeGreaterThan(64 * 1024);
    expect(verifyRecord({ nonce, ...record }, root)).toBe(true);
    expect(parseContainerRecordText(record.text)).toMatchObject({ kind: 'backup', items: 300, at: T0 + 60 });
    expect(store.read().clock).toBe(T0 + 60);
    const file = assembleBackup({ box: { serial: CARD_SERIAL, cardPublicKey: TEST_PUBLIC_KEY, keyMode: 'individual', containerFormat: 1 }, record: { nonce, ...record }, leaves, user: [] });
    for (const index of [0, 137, 299]) {
      expect(verifyBackupItem(splitBackup(file)[index]!, { licensorKey: firms[index]!.licensorKey, cardPublicKey: TEST_PUBLIC_KEY }).firm.firmCode).toBe(1000 + index);
    }
  });

  it('locks and unlocks with the authority\'s sequences; a locked card\'s refusals are LicenseError locked', async () => {
    const { client } = clientFor({ ...containerWith([productItem(simpleProduct(9, 10))]), lockAuthority: AUTHORITY.publicKey });
    await client.select();
    const nonce = new Uint8Array(16).fill(5);
    const locked = await client.locking(nonce, lockFile());
    expect(verifyRecord({ nonce, ...locked }, root)).toBe(true);
    expect(parseContainerRecordText(locked.text)).toMatchObject({ kind: 'lock', time: T0 + 1000 });
    expect(licenseRefusal(await client.use(new Uint8Array(16), request).catch((error: unknown) => error))).toBe('locked');
    expect(licenseRefusal(await client.backup(new Uint8Array(16), T0).catch((error: unknown) => error))).toBe('locked');
    expect(licenseRefusal(await client.locking(nonce, lockFile()).catch((error: unknown) => error))).toBe('locked');
    expect((await client.readContainer()).firms).toEqual([]);
    expect(licenseRefusal(await client.locking(nonce, utf8(lockFile({ kind: 'unlock', time: T0 + 1000 }))).catch((error: unknown) => error))).toBe('replayed');
    const unlocked = await client.locking(nonce, utf8(lockFile({ kind: 'unlock', time: T0 + 1001 })));
    expect(parseContainerRecordText(unlocked.text)).toMatchObject({ kind: 'unlock', time: T0 + 1001 });
    expect((await client.use(new Uint8Array(16), request)).text).toMatch(/^license use /);
  });
});
