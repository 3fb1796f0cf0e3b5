// The binary protected-information codec: encode, decode, round trip, field readers and updater, and a
// table of malformed inputs (each refused with an error naming the field, never a secret value).
import { describe, expect, it } from 'vitest';
import { clonePivState, type PivState } from '../../src/apdu/index.js';
import { toHex } from '../../src/bytes/index.js';
import {
  PROTECTED_INFORMATION_FORMAT, ProtectedInformationError, decodeProtectedInformation, encodeProtectedInformation, encodedProtectedInformationLength,
  readCounter, readPivState, readSigningSeed, updateProtectedInformation, type ProtectedInformation,
} from '../../src/card/index.js';
import { p256GenerateKey } from '../../src/crypto/index.js';
import { testPivState } from '../support/piv-fixture.js';

const SEED = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 ^ i);
const info = (piv: PivState = clonePivState(testPivState()), counter = 0x0102n): ProtectedInformation => ({ signingSeed: SEED.slice(), counter, piv });
const comparable = (value: ProtectedInformation) => ({
  seed: toHex(value.signingSeed), counter: value.counter, pin: toHex(value.piv.pin), puk: toHex(value.piv.puk), retries: [value.piv.pinRetriesLeft, value.piv.pukRetriesLeft],
  managementKey: [value.piv.managementKey.algorithm, toHex(value.piv.managementKey.key)],
  keys: [...value.piv.keys].map(([slot, pair]) => [slot, toHex(pair.privateKey), toHex(pair.publicKey)]),
  dataObjects: [...value.piv.dataObjects].sort(([a], [b]) => a - b).map(([tag, content]) => [tag, toHex(content)]),
});

describe('protected information codec', () => {
  it('encodes the format byte, then the seed, the counter and the PIV part as tagged, length-prefixed fields', () => {
    const bytes = encodeProtectedInformation(info());
    expect(bytes[0]).toBe(PROTECTED_INFORMATION_FORMAT);
    expect(toHex(bytes.subarray(1, 6))).toBe('0100000020'); // tag 01, length 32
    expect(toHex(bytes.subarray(6, 38))).toBe(toHex(SEED));
    expect(toHex(bytes.subarray(38, 43))).toBe('0200000010'); // tag 02, length 16
    expect(toHex(bytes.subarray(43, 59))).toBe('00'.repeat(14) + '0102');
    expect(bytes[59]).toBe(0x10); // PIV part
  });

  it('counts its encoded length without encoding: with keys, objects, either management key, and none', () => {
    const states: PivState[] = [info().piv, clonePivState(info().piv), clonePivState(info().piv)];
    states[1]!.managementKey = { algorithm: 'aes128', key: new Uint8Array(16).fill(9) };
    states[2]!.keys.clear();
    states[2]!.dataObjects.clear();
    states[2]!.dataObjects.set(0x5fc10d, new Uint8Array(16_384));
    for (const piv of states) expect(encodedProtectedInformationLength(piv)).toBe(encodeProtectedInformation({ ...info(), piv }).length);
  });

  it('round-trips, and is binary: smaller than the hex of its data objects', () => {
    const original = info();
    const bytes = encodeProtectedInformation(original);
    expect(comparable(decodeProtectedInformation(bytes))).toEqual(comparable(original));
    const objects = [...original.piv.dataObjects.values()].reduce((sum, content) => sum + content.length, 0);
    expect(bytes.length).toBeLessThan(objects * 2);
  });

  it('opens single fields without the rest: the seed as a fresh copy, the counter, the PIV part', () => {
    const original = info();
    const bytes = encodeProtectedInformation(original);
    const seed = readSigningSeed(bytes);
    expect(toHex(seed)).toBe(toHex(SEED));
    seed.fill(0);
    expect(toHex(readSigningSeed(bytes))).toBe(toHex(SEED)); // zeroing the copy leaves the information intact
    expect(readCounter(bytes)).toBe(0x0102n);
    expect(comparable({ ...original, piv: readPivState(bytes) })).toEqual(comparable(original));
  });

  it('reads the seed even when the PIV part would not decode', () => {
    const broken = info();
    broken.piv.pinRetriesLeft = 9;
    const bytes = encodeProtectedInformation(broken);
    expect(toHex(readSigningSeed(bytes))).toBe(toHex(SEED));
    expect(() => readPivState(bytes)).toThrow(ProtectedInformationError);
  });

  it('replaces the counter or the PIV part and keeps the rest', () => {
    const original = info();
    const bytes = encodeProtectedInformation(original);
    const counted = updateProtectedInformation(bytes, { counter: (1n << 128n) - 1n });
    expect(readCounter(counted)).toBe((1n << 128n) - 1n);
    expect(comparable({ ...decodeProtectedInformation(counted), counter: 0x0102n })).toEqual(comparable(original));
    const piv = clonePivState(original.piv);
    piv.pinRetriesLeft = 1;
    const updated = updateProtectedInformation(bytes, { piv });
    expect(readPivState(updated).pinRetriesLeft).toBe(1);
    expect(readCounter(updated)).toBe(0x0102n);
    expect(toHex(readSigningSeed(updated))).toBe(toHex(SEED));
    expect(() => updateProtectedInformation(bytes, { counter: -1n })).toThrow(ProtectedInformationError);
  });
});

describe('malformed protected information', () => {
  const good = (): Uint8Array => encodeProtectedInformation(info());
  const withPiv = (change: (piv: PivState) => void): Uint8Array => {
    const piv = clonePivState(testPivState());
    change(piv);
    return encodeProtectedInformation(info(piv));
  };
  const otherKey = p256GenerateKey();
  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['no bytes', () => new Uint8Array(0), /format 1, got no bytes/],
    ['another format', () => Uint8Array.of(0x02, ...good().subarray(1)), /got format 2/],
    ['a truncated field header', () => good().subarray(0, 4), /expected a 5-byte field header/],
    ['a length beyond the end', () => good().subarray(0, 30), /field 01 claims 32 bytes, 24 remain/],
    ['a short seed', () => { const b = good(); b[4] = 31; return b; }, /claims|signing seed/],
    ['fields out of order', () => { const b = good(); b[1] = 0x02; return b; }, /signing seed, counter, PIV part in that order/],
    ['a trailing field', () => Uint8Array.of(...good(), 0x11, 0, 0, 0, 0), /in that order/],
    ['a PIN with letters', () => withPiv((p) => p.pin.set([0x41], 0)), /pin to be 6 to 8 digits/],
    ['a short PUK', () => withPiv((p) => p.puk.fill(0xff, 4)), /puk to be 6 to 8 bytes/],
    ['too many PIN retries', () => withPiv((p) => (p.pinRetriesLeft = 4)), /pinRetriesLeft to be 0..3, got 4/],
    ['too many PUK retries', () => withPiv((p) => (p.pukRetriesLeft = 200)), /pukRetriesLeft to be 0..3, got 200/],
    ['a management key of the wrong length', () => withPiv((p) => (p.managementKey = { algorithm: 'aes128', key: p.managementKey.key })), /managementKey.key to be 16 bytes, got 24/],
    ['a scalar out of range', () => withPiv((p) => p.keys.get(0x9a)!.privateKey.fill(0xff)), /keys.9a.privateKey to be a P-256 scalar/],
    ['a zero scalar', () => withPiv((p) => p.keys.get(0x9a)!.privateKey.fill(0)), /keys.9a.privateKey to be a P-256 scalar/],
    ['a public key of another key', () => withPiv((p) => p.keys.set(0x9c, { privateKey: p.keys.get(0x9c)!.privateKey, publicKey: otherKey.publicKey })), /keys.9c.publicKey to be the public key of keys.9c.privateKey/],
    ['a key in an unknown slot', () => withPiv((p) => p.keys.set(0x9b as 0x9a, otherKey)), /slot 9a, 9c, 9d or 9e, got 9b/],
    ['an invalid data object tag', () => withPiv((p) => p.dataObjects.set(0x5f, new Uint8Array(0))), /BER-TLV tags/],
    ['oversized content', () => withPiv((p) => p.dataObjects.set(0x5fc102, new Uint8Array(16_385))), /dataObjects.5fc102 to be at most 16384 bytes, got 16385/],
    ['a discovery object without its 7E', () => withPiv((p) => p.dataObjects.set(0x7e, Uint8Array.of(0x4f, 0x00))), /dataObjects.7e to be one whole 7E data object/],
  ];

  it.each(cases)('refuses %s', (_name, build, message) => {
    const bytes = build();
    const before = toHex(bytes);
    expect(() => decodeProtectedInformation(bytes)).toThrow(ProtectedInformationError);
    expect(() => decodeProtectedInformation(bytes)).toThrow(message);
    expect(toHex(bytes)).toBe(before); // refusing changes nothing
  });

  it('never puts secret bytes in its error messages', () => {
    const state = testPivState();
    const secrets = [toHex(SEED), toHex(state.pin), toHex(state.puk), toHex(state.managementKey.key), toHex(state.keys.get(0x9a)!.privateKey)];
    for (const [, build] of cases) {
      let message = '';
      try {
        decodeProtectedInformation(build());
      } catch (error) {
        message = (error as Error).message.toLowerCase();
      }
      for (const secret of secrets) expect(message).not.toContain(secret.slice(0, 12));
    }
  });
});

describe('legacy JSON protected information', () => {
  it('still opens information sealed in the JSON form before the binary codec', async () => {
    const { encodePivState } = await import('../../src/card/index.js');
    const original = info();
    const json = new TextEncoder().encode(JSON.stringify({ format: 'vsc-protected/1', signingSeed: toHex(SEED), counter: '258', piv: encodePivState(original.piv) }));
    expect(comparable(decodeProtectedInformation(json))).toEqual(comparable(original));
    expect(() => decodeProtectedInformation(new TextEncoder().encode('{"format":"other"}'))).toThrow(ProtectedInformationError);
  });
});
