// A card OS with the VSC and license applets on one software card, as the license applet tests drive it: raw commands
// with GET RESPONSE, the container as READ CONTAINER shows it, the shared counter, a SIGN AND INCREMENT through the VSC
// applet (refused while the container is locked, as the running card assembles it), records as trail records.
import { expect } from 'vitest';
import { CardOs, commandApdu, encodeCommandApdu, parseResponseApdu, SoftwareVscCard, VscApplet, type VscKeyMode } from '../../../src/apdu/index.js';
import { bytesToUint, concatBytes } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../../src/crypto/index.js';
import { decodeLicenseContainer, EMPTY_CONTAINER, LICENSE_AID, LicenseApplet, MemoryLicenseStore, type LicenseContainer, type LicenseStore } from '../../../src/license/index.js';
import { CARD_SERIAL, TEST_PUBLIC_KEY, TEST_SEED } from '../../support/index.js';

export const SELECT = commandApdu({ cla: 0x00, ins: 0xa4, p1: 0x04, data: LICENSE_AID });
const SELECT_VSC = Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x06, 0xf0, 0x56, 0x53, 0x43, 0x00, 0x01);
/** What the card's generator draws: generate-secret of 3 bytes gets exactly SECRET; longer draws (salts) SECRET ‖ 00…. */
export const SECRET = Uint8Array.of(0x5e, 0xc7, 0xe7);
export const nonce = (fill: number) => new Uint8Array(16).fill(fill);

export interface LicenseCardInit {
  readonly container?: LicenseContainer;
  readonly store?: LicenseStore;
  readonly counter?: bigint;
  readonly keyMode?: VscKeyMode;
  readonly maxBytes?: number;
  readonly disabled?: () => boolean;
}

export async function licenseCard(init: LicenseCardInit = {}) {
  const card = new SoftwareVscCard({ serial: CARD_SERIAL, keyMode: init.keyMode ?? 'individual', key: ed25519KeyFromSeed(TEST_SEED), counter: init.counter ?? 0n });
  const store = init.store ?? new MemoryLicenseStore(init.container ?? EMPTY_CONTAINER, init.maxBytes === undefined ? {} : { maxBytes: init.maxBytes });
  const random = (length: number) => concatBytes(SECRET, new Uint8Array(Math.max(0, length - SECRET.length))).slice(0, length);
  const license = new LicenseApplet(card, { store, random, ...(init.disabled === undefined ? {} : { disabled: init.disabled }) });
  const os = new CardOs([new VscApplet(card, { locked: () => store.read().lock !== undefined }), license]);
  os.powerOn();
  /** One command, its 61xx answers collected with GET RESPONSE. */
  const run = async (ins: number, data: Uint8Array = new Uint8Array(0), header: { cla?: number; p1?: number; p2?: number } = {}) => {
    let response = parseResponseApdu(await os.transmit(encodeCommandApdu(commandApdu({ cla: 0x80, ins, data, ne: 256, ...header }))));
    const parts = [response.data];
    while (response.sw >> 8 === 0x61) {
      response = parseResponseApdu(await os.transmit(Uint8Array.of(0x00, 0xc0, 0x00, 0x00, response.sw & 0xff)));
      parts.push(response.data);
    }
    return { sw: response.sw, data: concatBytes(...parts), first: parts[0]! };
  };
  expect(parseResponseApdu(await os.transmit(encodeCommandApdu(SELECT))).sw).toBe(0x9000);
  const read = async () => decodeLicenseContainer((await run(0x30)).data);
  /** Runs `body` with the VSC applet selected, then selects the license applet again. */
  const viaVsc = async <T>(body: () => Promise<T>): Promise<T> => {
    await os.transmit(SELECT_VSC);
    try {
      return await body();
    } finally {
      await os.transmit(encodeCommandApdu(SELECT));
    }
  };
  /** The VSC applet's counter, read through GET COUNTER. */
  const counter = () => viaVsc(async () => bytesToUint(parseResponseApdu(await os.transmit(Uint8Array.of(0x80, 0x22, 0x00, 0x00, 0x10))).data));
  /** The status word of a SIGN AND INCREMENT of 32 zero bytes through the VSC applet. */
  const signAndIncrement = () => viaVsc(async () => {
    const p1 = (init.keyMode ?? 'individual') === 'universal' ? 0x01 : 0x00;
    return parseResponseApdu(await os.transmit(encodeCommandApdu(commandApdu({ cla: 0x80, ins: 0x24, p1, data: new Uint8Array(32), ne: 256 })))).sw;
  });
  const trustRoot = { publicKey: TEST_PUBLIC_KEY, serial: CARD_SERIAL, keyMode: init.keyMode ?? 'individual' } as const;
  /** The answer of APPLY, USE or LOCKING as the trail record it makes with its nonce. */
  const record = (fill: number, data: Uint8Array) => ({ nonce: nonce(fill), counter: bytesToUint(data.subarray(0, 16)), signature: data.slice(16, 80), text: new TextDecoder().decode(data.subarray(80)) });
  return { os, card, store, run, read, counter, signAndIncrement, trustRoot, record };
}
