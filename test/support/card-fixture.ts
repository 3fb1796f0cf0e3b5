// Builds cards for tests: a card OS holding the VSC applet on a software card with a fixed key.
import {
  CardOs, type CardOsOptions, type Applet, SoftwareVscCard, VscApplet, type CounterCommit, type VscKeyMode,
  parseResponseApdu, type ResponseApdu,
} from '../../src/apdu/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import { fromHex } from '../../src/bytes/index.js';

/** RFC 8032 section 7.1, TEST 1: secret key and public key. */
export const TEST_SEED = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
export const TEST_PUBLIC_KEY = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');

export interface VscFixtureInit {
  serial?: string;
  keyMode?: VscKeyMode;
  counter?: bigint;
  commit?: CounterCommit;
  extraApplets?: Applet[];
  options?: CardOsOptions;
}

export function vscFixture(init: VscFixtureInit = {}) {
  const card = new SoftwareVscCard({
    serial: init.serial ?? 'SN-0042',
    keyMode: init.keyMode ?? 'individual',
    key: ed25519KeyFromSeed(TEST_SEED),
    counter: init.counter ?? 0n,
    commit: init.commit,
  });
  const os = new CardOs([new VscApplet(card), ...(init.extraApplets ?? [])], init.options);
  os.powerOn();
  /** Sends an APDU given as hex and parses the response. */
  const send = async (hex: string): Promise<ResponseApdu> => parseResponseApdu(await os.transmit(fromHex(hex)));
  return { card, os, send };
}

export const SELECT_VSC = '00A4040006F05653430001';
