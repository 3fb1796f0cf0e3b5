// The personalisation of a new card's PIV applet (DESIGN.md "The PIV applet"): defaults, fresh keys with
// self-signed certificates in 9A and 9C, options, and refusal of invalid options.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeTlvList, CERT_TAG_OF_SLOT, PivStateError, PivTag } from '../../src/apdu/index.js';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { DEFAULT_MANAGEMENT_KEY_HEX, personalisePiv } from '../../src/card/index.js';

describe('personalisePiv', () => {
  it('makes a card with the default PIN, PUK and management key and keys with certificates in 9A and 9C', () => {
    const state = personalisePiv();
    expect(toHex(state.pin)).toBe(toHex(fromHex('313233343536ffff'))); // "123456" FF FF
    expect(toHex(state.puk)).toBe('3132333435363738'); // "12345678"
    expect(state.pinRetriesLeft).toBe(3);
    expect(state.pukRetriesLeft).toBe(3);
    expect(state.managementKey.algorithm).toBe('3des');
    expect(toHex(state.managementKey.key)).toBe(DEFAULT_MANAGEMENT_KEY_HEX);
    expect([...state.keys.keys()].sort()).toEqual([0x9a, 0x9c]);
    for (const [slot, name] of [[0x9a, 'PIV Authentication'], [0x9c, 'Digital Signature']] as const) {
      const container = decodeTlvList(state.dataObjects.get(CERT_TAG_OF_SLOT.get(slot)!)!);
      expect(container.map((tlv) => tlv.tag)).toEqual([0x70, 0x71, 0xfe]);
      const certificate = new X509Certificate(container[0]!.value);
      expect(certificate.subject).toContain(`CN=${name}`);
      // The certificate holds the slot's key and is signed by it.
      const jwk = certificate.publicKey.export({ format: 'jwk' });
      const point = state.keys.get(slot)!.publicKey;
      expect(Buffer.from(jwk.x!, 'base64url').toString('hex')).toBe(toHex(point.subarray(1, 33)));
      expect(certificate.verify(certificate.publicKey)).toBe(true);
    }
    for (const tag of [PivTag.CHUID, PivTag.CCC, PivTag.DISCOVERY, PivTag.KEY_HISTORY]) expect(state.dataObjects.has(tag)).toBe(true);
  });

  it('gives every card its own keys and GUID', () => {
    const a = personalisePiv();
    const b = personalisePiv();
    expect(toHex(a.keys.get(0x9a)!.privateKey)).not.toBe(toHex(b.keys.get(0x9a)!.privateKey));
    const guid = (state: typeof a) => toHex(decodeTlvList(state.dataObjects.get(PivTag.CHUID)!).find((t) => t.tag === 0x34)!.value);
    expect(guid(a)).not.toBe(guid(b));
  });

  it('takes a PIN, PUK, management key and expiry, and refuses invalid ones', () => {
    const state = personalisePiv({ pin: '87654321', puk: 'abcdef', managementKey: { algorithm: 'aes128', key: new Uint8Array(16).fill(7) }, expiry: '20300101' });
    expect(toHex(state.pin)).toBe('3837363534333231');
    expect(toHex(state.puk)).toBe('616263646566ffff');
    expect(state.managementKey.algorithm).toBe('aes128');
    const expiry = decodeTlvList(state.dataObjects.get(PivTag.CHUID)!).find((t) => t.tag === 0x35)!.value;
    expect(Buffer.from(expiry).toString()).toBe('20300101');
    expect(() => personalisePiv({ pin: '12a456' })).toThrow(PivStateError);
    expect(() => personalisePiv({ pin: '123456789' })).toThrow(PivStateError);
    expect(() => personalisePiv({ puk: '12345' })).toThrow(PivStateError);
    expect(() => personalisePiv({ managementKey: { algorithm: 'aes128', key: new Uint8Array(24) } })).toThrow(/aes128 with 24 bytes/);
  });
});
