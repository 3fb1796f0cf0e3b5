// The legacy JSON form of the PIV state (read once to migrate cards sealed before the binary codec):
// round trip and a table of malformed input, each refused with a PivStateError that names the field.
import { describe, expect, it } from 'vitest';
import { decodeTlv, PivStateError, PivTag, clonePivState } from '../../src/apdu/index.js';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { decodePivState, encodePivState, type EncodedPivState } from '../../src/card/index.js';
import { p256GenerateKey } from '../../src/crypto/index.js';
import { testPivState } from '../support/index.js';

describe('PIV state codec', () => {
  it('round-trips through JSON, byte for byte', () => {
    const state = clonePivState(testPivState());
    state.pinRetriesLeft = 1;
    state.dataObjects.set(PivTag.CERT_9E, new Uint8Array(0));
    const json = JSON.parse(JSON.stringify(encodePivState(state))) as unknown;
    const decoded = decodePivState(json);
    expect(encodePivState(decoded)).toEqual(encodePivState(state));
    expect(decoded.keys.get(0x9d)!.publicKey).toEqual(state.keys.get(0x9d)!.publicKey);
    expect(decoded.dataObjects.get(PivTag.DISCOVERY)).toEqual(state.dataObjects.get(PivTag.DISCOVERY));
    expect(decoded.pinRetriesLeft).toBe(1);
  });

  it('clones deeply', () => {
    const state = testPivState();
    const copy = clonePivState(state);
    copy.pin[0] = 0x39;
    copy.keys.get(0x9a)!.privateKey[0]! ^= 1;
    copy.dataObjects.delete(PivTag.CHUID);
    expect(state.pin[0]).toBe(0x31);
    expect(toHex(state.keys.get(0x9a)!.privateKey)).not.toBe(toHex(copy.keys.get(0x9a)!.privateKey));
    expect(state.dataObjects.has(PivTag.CHUID)).toBe(true);
  });

  const good = (): EncodedPivState => encodePivState(testPivState());
  const other = p256GenerateKey();
  const cases: Array<[string, (json: EncodedPivState) => unknown, RegExp]> = [
    ['not an object', () => 'state', /expected PIV state to be an object, got a string/],
    ['an array', () => [], /expected PIV state to be an object, got an array/],
    ['a missing field', (j) => Object.fromEntries(Object.entries(j).filter(([k]) => k !== 'pin')), /expected PIV state.pin, got none/],
    ['an unknown field', (j) => ({ ...j, extra: 1 }), /expected only .* got "extra"/],
    ['a short PIN', (j) => ({ ...j, pin: '313233343536' }), /expected pin to be 8 bytes, got 6/],
    ['a PIN with letters', (j) => ({ ...j, pin: '3132333435366162' }), /expected pin to be 6 to 8 digits/],
    ['upper-case hex', (j) => ({ ...j, pin: '313233343536FFFF' }), /expected pin to be lower-case hex/],
    ['a PIN as a number', (j) => ({ ...j, pin: 123456 }), /expected pin to be lower-case hex, got a number/],
    ['a short PUK', (j) => ({ ...j, puk: '3132333435ffffff' }), /expected puk to be 6 to 8 bytes/],
    ['retries above the maximum', (j) => ({ ...j, pinRetriesLeft: 4 }), /expected pinRetriesLeft to be an integer 0..3, got 4/],
    ['negative retries', (j) => ({ ...j, pukRetriesLeft: -1 }), /expected pukRetriesLeft to be an integer 0..3, got -1/],
    ['fractional retries', (j) => ({ ...j, pinRetriesLeft: 1.5 }), /got 1.5/],
    ['retries as a string', (j) => ({ ...j, pinRetriesLeft: '3' }), /got a string of 1 characters/],
    ['an unknown algorithm', (j) => ({ ...j, managementKey: { ...j.managementKey, algorithm: 'des' } }), /expected managementKey.algorithm "3des" or "aes128", got "des"/],
    ['a key of the wrong length', (j) => ({ ...j, managementKey: { algorithm: 'aes128', key: j.managementKey.key } }), /expected managementKey.key to be 16 bytes, got 24/],
    ['an extra management key field', (j) => ({ ...j, managementKey: { ...j.managementKey, iv: '00' } }), /expected only algorithm, key in managementKey/],
    ['an unknown slot', (j) => ({ ...j, keys: { ...j.keys, '9b': j.keys['9a'] } }), /expected keys to be named 9a, 9c, 9d or 9e, got "9b"/],
    ['an upper-case slot', (j) => ({ ...j, keys: { '9A': j.keys['9a'] } }), /got "9A"/],
    ['a zero private key', (j) => ({ ...j, keys: { '9a': { ...j.keys['9a']!, privateKey: '00'.repeat(32) } } }), /keys.9a.privateKey to be a P-256 scalar/],
    ['a mismatched public key', (j) => ({ ...j, keys: { '9a': { ...j.keys['9a']!, publicKey: toHex(other.publicKey) } } }), /keys.9a.publicKey to be the public key of keys.9a.privateKey/],
    ['a short public key', (j) => ({ ...j, keys: { '9a': { ...j.keys['9a']!, publicKey: '04' } } }), /expected keys.9a.publicKey to be 65 bytes, got 1/],
    ['a key pair missing a field', (j) => ({ ...j, keys: { '9a': { privateKey: j.keys['9a']!.privateKey } } }), /expected keys.9a.publicKey, got none/],
    ['keys as an array', (j) => ({ ...j, keys: [] }), /expected keys to be an object, got an array/],
    ['an invalid tag', (j) => ({ ...j, dataObjects: { ...j.dataObjects, '00': '' } }), /expected dataObjects to be named by BER-TLV tags/],
    ['a tag that is not hex', (j) => ({ ...j, dataObjects: { zz: '' } }), /got "zz"/],
    ['a tag with a leading zero byte', (j) => ({ ...j, dataObjects: { '005fc102': '' } }), /got "005fc102"/],
    ['odd hex content', (j) => ({ ...j, dataObjects: { '5fc102': 'abc' } }), /expected dataObjects.5fc102 to be lower-case hex/],
    ['oversized content', (j) => ({ ...j, dataObjects: { '5fc102': '00'.repeat(16_385) } }), /expected dataObjects.5fc102 to be 0 to 16384 bytes, got 16385/],
    ['a discovery object without its 7E', (j) => ({ ...j, dataObjects: { '7e': '4f00' } }), /dataObjects.7e to be one whole 7E data object/],
    ['null', () => null, /got null/],
  ];

  it.each(cases)('refuses %s', (_name, mutate, message) => {
    const json = mutate(good());
    expect(() => decodePivState(json)).toThrow(PivStateError);
    expect(() => decodePivState(json)).toThrow(message);
  });

  it('never puts secret bytes in its error messages', () => {
    const json = good();
    const secrets = [json.pin, json.puk, json.managementKey.key, json.keys['9a']!.privateKey];
    const broken: unknown[] = [
      { ...json, pin: json.pin.toUpperCase() },
      { ...json, pin: json.pin.slice(2) },
      { ...json, puk: json.puk + 'zz' },
      { ...json, managementKey: { algorithm: json.managementKey.key, key: json.managementKey.key } },
      { ...json, managementKey: { algorithm: 'aes128', key: json.managementKey.key } },
      { ...json, keys: { '9a': { ...json.keys['9a']!, privateKey: json.keys['9a']!.privateKey.slice(2) } } },
      { ...json, keys: { [json.keys['9a']!.privateKey]: json.keys['9a'] } },
      { ...json, [json.pin]: 1 },
    ];
    for (const input of broken) {
      let message = '';
      try {
        decodePivState(input);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      for (const secret of secrets) {
        expect(message.toLowerCase()).not.toContain(secret.slice(0, 12));
        expect(message.toLowerCase()).not.toContain(secret.slice(2, 14));
      }
    }
  });

  it('encodes to plain JSON values', () => {
    const json = good();
    expect(typeof json.pinRetriesLeft).toBe('number');
    expect(Object.keys(json.keys).sort()).toEqual(['9a', '9c', '9d']);
    expect(json.dataObjects['5fc105']).toMatch(/^70/);
    expect(decodeTlv(fromHex(json.dataObjects['7e']!)).tag).toBe(0x7e);
  });
});
