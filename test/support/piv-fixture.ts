// Builds cards for PIV tests: a card OS holding the PIV applet, and a small host side that does
// chaining, GET RESPONSE and the management key handshakes the way OpenSC and yubico-piv-tool do.
import { X509Certificate, type KeyObject } from 'node:crypto';
import {
  CardOs, type CardOsOptions, commandApdu, encodeCommandApdu, parseResponseApdu, type ResponseApdu, decodeTlv,
  PivApplet, type PivAppletOptions, parseDynamicAuthenticationTemplate, type PivState,
} from '../../src/apdu/index.js';
import { personalisePiv } from '../../src/card/index.js';
import { concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import { decryptBlock, encryptBlock, type BlockCipherAlgorithm, p256GenerateKey } from '../../src/crypto/index.js';

export const SELECT_PIV = '00A4040009A0000003080000100000';
export const DEFAULT_MANAGEMENT_KEY = fromHex('010203040506070801020304050607080102030405060708');

/** One personalised card for the whole test file: keys and certificates take a while to make. */
let template: PivState | undefined;
export function testPivState(): PivState {
  if (template === undefined) {
    template = personalisePiv({ expiry: '20351231' });
    // A key management key too, for the ECDH tests (the personalisation has none).
    template.keys.set(0x9d, p256GenerateKey());
  }
  return template;
}

export interface PivFixtureInit {
  state?: PivState;
  commit?: PivAppletOptions['commit'];
  capacity?: PivAppletOptions['capacity'];
  options?: CardOsOptions;
}

export function pivFixture(init: PivFixtureInit = {}) {
  const state = init.state ?? testPivState();
  const applet = new PivApplet(state, { commit: init.commit, ...(init.capacity === undefined ? {} : { capacity: init.capacity }) });
  const os = new CardOs([applet], init.options);
  os.powerOn();
  return { applet, os, ...pivHost(os) };
}

/** The host side of PIV tests on a powered card OS (a bare applet, or a whole running card). */
export function pivHost(os: CardOs) {
  /** Sends one APDU given as hex and parses the response, as it comes. */
  const send = async (hex: string): Promise<ResponseApdu> => parseResponseApdu(await os.transmit(fromHex(hex)));

  /** Sends a command with short APDUs only (as vpcd must): chains the data, follows 61xx. */
  const exchange = async (ins: number, p1: number, p2: number, data: Uint8Array = new Uint8Array(0)): Promise<ResponseApdu> => {
    let offset = 0;
    let response: ResponseApdu;
    do {
      const part = data.subarray(offset, offset + 255);
      offset += part.length;
      const last = offset >= data.length;
      const apdu = commandApdu({ cla: last ? 0x00 : 0x10, ins, p1, p2, data: part, ne: last ? 256 : 0 });
      response = parseResponseApdu(await os.transmit(encodeCommandApdu(apdu)));
      if (!last && response.sw !== 0x9000) return response;
    } while (offset < data.length);
    const parts = [response.data];
    while (response.sw >> 8 === 0x61) {
      response = await send(`00C00000${(response.sw & 0xff).toString(16).padStart(2, '0')}`);
      parts.push(response.data);
    }
    return { data: concatBytes(...parts), sw: response.sw };
  };

  const select = (): Promise<ResponseApdu> => send(SELECT_PIV);
  const verifyPin = (pin: string): Promise<ResponseApdu> => exchange(0x20, 0x00, 0x80, padded(pin));
  const getData = (tag: number): Promise<ResponseApdu> => {
    const tagBytes = fromHex(tag.toString(16).padStart(tag > 0xffff ? 6 : tag > 0xff ? 4 : 2, '0'));
    return exchange(0xcb, 0x3f, 0xff, concatBytes(Uint8Array.of(0x5c, tagBytes.length), tagBytes));
  };
  /** GENERAL AUTHENTICATE with 7C{82 00, 81 digest}. */
  const sign = (slot: number, digest: Uint8Array): Promise<ResponseApdu> =>
    exchange(0x87, 0x11, slot, tlv(0x7c, concatBytes(Uint8Array.of(0x82, 0x00), tlv(0x81, digest))));
  /** GENERAL AUTHENTICATE with 7C{82 00, 85 point}. */
  const ecdh = (slot: number, point: Uint8Array): Promise<ResponseApdu> =>
    exchange(0x87, 0x11, slot, tlv(0x7c, concatBytes(Uint8Array.of(0x82, 0x00), tlv(0x85, point))));

  /** Mutual authentication with the management key (yubico-piv-tool's ykpiv_authenticate). */
  const mutualAuth = async (key: Uint8Array, algorithm: BlockCipherAlgorithm = '3des'): Promise<ResponseApdu> => {
    const p1 = algorithm === '3des' ? 0x03 : 0x08;
    const first = await exchange(0x87, p1, 0x9b, fromHex('7c028000'));
    if (first.sw !== 0x9000) return first;
    const encrypted = parseDynamicAuthenticationTemplate(first.data).get(0x80)!;
    const witness = decryptBlock(algorithm, key, encrypted);
    const challenge = new Uint8Array(encrypted.length).fill(0x5a);
    const second = await exchange(0x87, p1, 0x9b, tlv(0x7c, concatBytes(tlv(0x80, witness), tlv(0x81, challenge))));
    if (second.sw !== 0x9000) return second;
    const answer = parseDynamicAuthenticationTemplate(second.data).get(0x82)!;
    // The card proves it holds the key too.
    if (toHex(answer) !== toHex(encryptBlock(algorithm, key, challenge))) throw new Error('the card answered the challenge wrongly');
    return second;
  };

  /** External authentication with the management key (OpenSC's piv_general_external_authenticate). */
  const externalAuth = async (key: Uint8Array, algorithm: BlockCipherAlgorithm = '3des'): Promise<ResponseApdu> => {
    const p1 = algorithm === '3des' ? 0x03 : 0x08;
    const first = await exchange(0x87, p1, 0x9b, fromHex('7c028100'));
    if (first.sw !== 0x9000) return first;
    const challenge = parseDynamicAuthenticationTemplate(first.data).get(0x81)!;
    return exchange(0x87, p1, 0x9b, tlv(0x7c, tlv(0x82, encryptBlock(algorithm, key, challenge))));
  };

  return { send, exchange, select, verifyPin, getData, sign, ecdh, mutualAuth, externalAuth };
}

/** FF-pads a PIN or PUK to its 8-byte reference data. */
export function padded(value: string): Uint8Array {
  const out = new Uint8Array(8).fill(0xff);
  out.set(new TextEncoder().encode(value).subarray(0, 8));
  return out;
}

/** A simple BER-TLV for the host side (lengths up to 65535). */
export function tlv(tag: number, value: Uint8Array): Uint8Array {
  const tagBytes = tag > 0xffff ? [tag >> 16, (tag >> 8) & 0xff, tag & 0xff] : tag > 0xff ? [tag >> 8, tag & 0xff] : [tag];
  const n = value.length;
  const length = n < 0x80 ? [n] : n <= 0xff ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concatBytes(Uint8Array.from([...tagBytes, ...length]), value);
}

/** The certificate's public key from a GET DATA answer 53{70 cert, 71, FE}, read by node's X.509 parser. */
export function certificatePublicKey(getDataAnswer: Uint8Array): KeyObject {
  const container = decodeTlv(getDataAnswer);
  const certificate = decodeTlv(container.value);
  if (container.tag !== 0x53 || certificate.tag !== 0x70) throw new Error('expected 53 { 70 certificate ... }');
  return new X509Certificate(certificate.value).publicKey;
}
