// Hidden data sealed to its licensor (src/license/license-hidden-data.ts; Wibu 000 §2.7): the licensor's seed opens
// what the card sealed to its Ed25519 key, and a box opens only for the card, item and update state it was read from.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { ed25519PublicKeyToX25519, ed25519SeedToX25519, x25519PublicKey } from '../../src/crypto/index.js';
import { hiddenDataAssociatedData, LicenseError, openHiddenData, sealHiddenData, type HiddenDataContext } from '../../src/license/index.js';
import { LICENSOR, LICENSOR_SEED, OTHER_LICENSOR_SEED, thrown } from '../support/index.js';

const context: HiddenDataContext = { serial: 'VSC-1', firmCode: 10101, productCode: 7, updateCounter: 3 };
const hidden = Uint8Array.of(1, 2, 3, 4);

describe('hidden data sealed to the licensor', () => {
  it('binds serial, firm code, product code and update counter as associated data', () => {
    expect(toHex(hiddenDataAssociatedData(context))).toBe(
      toHex(new TextEncoder().encode('VSC-1')) + '00002775' /* 10101 */ + '00000007' + '0000000000000003',
    );
  });

  it('takes the licensor key as X25519 whose private half comes from the seed (RFC 7748 4.1)', () => {
    expect(toHex(x25519PublicKey(ed25519SeedToX25519(LICENSOR_SEED)))).toBe(toHex(ed25519PublicKeyToX25519(LICENSOR.publicKey)));
  });

  it('opens with the licensor seed, every time with a fresh box', () => {
    const box = sealHiddenData(LICENSOR.publicKey, context, hidden);
    expect(openHiddenData(LICENSOR_SEED, context, box)).toEqual(hidden);
    expect(toHex(sealHiddenData(LICENSOR.publicKey, context, hidden))).not.toBe(toHex(box));
    expect(openHiddenData(LICENSOR_SEED, context, sealHiddenData(LICENSOR.publicKey, context, new Uint8Array(0)))).toEqual(new Uint8Array(0));
  });

  const box = sealHiddenData(LICENSOR.publicKey, context, hidden);
  it.each<[string, Uint8Array, HiddenDataContext, Uint8Array]>([
    ['another licensor', OTHER_LICENSOR_SEED, context, box],
    ['another card', LICENSOR_SEED, { ...context, serial: 'VSC-2' }, box],
    ['another firm code', LICENSOR_SEED, { ...context, firmCode: 10102 }, box],
    ['another product', LICENSOR_SEED, { ...context, productCode: 8 }, box],
    ['another update counter', LICENSOR_SEED, { ...context, updateCounter: 4 }, box],
    ['a changed box', LICENSOR_SEED, context, box.map((byte, i) => (i === box.length - 1 ? byte ^ 1 : byte))],
    ['a cut box', LICENSOR_SEED, context, box.subarray(0, 40)],
  ])('does not open for %s', (_name, seed, where, sealed) => {
    const error = thrown(() => openHiddenData(seed, where, sealed));
    expect(error).toBeInstanceOf(LicenseError);
    expect((error as LicenseError).reason).toBe('input');
  });

  it('refuses a licensor key that is no curve point', () => {
    const error = thrown(() => sealHiddenData(fromHex('ff'.repeat(32)), context, hidden));
    expect((error as LicenseError).reason).toBe('input');
  });
});
