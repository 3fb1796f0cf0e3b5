// The license container as field 20 of the protected information (src/card/protected-information-codec.ts): absent
// while empty, so information from before it is byte for byte the same; read, replaced and copied unopened.
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex, uintToBytes } from '../../src/bytes/index.js';
import {
  decodeProtectedInformation, encodedProtectedInformationLength, encodeProtectedInformation, licenseFieldLength, newProtectedInformation,
  ProtectedInformationError, readCounter, readLicenseContainer, readLicenseFieldLength, readPivState, updateProtectedInformation,
} from '../../src/card/index.js';
import { EMPTY_CONTAINER, encodeLicenseContainer } from '../../src/license/index.js';
import { containerWith, FULL_PRODUCT, productItem, thrown } from '../support/index.js';

const base = { ...newProtectedInformation(), counter: 42n };
const container = containerWith([productItem(FULL_PRODUCT)]);

describe('protected information with a license container', () => {
  it('carries no field for the empty container: older information is unchanged and reads as EMPTY_CONTAINER', () => {
    const without = encodeProtectedInformation(base);
    expect(toHex(encodeProtectedInformation({ ...base, license: EMPTY_CONTAINER }))).toBe(toHex(without));
    expect(readLicenseContainer(without)).toBe(EMPTY_CONTAINER);
    expect(readLicenseFieldLength(without)).toBe(0);
    expect(decodeProtectedInformation(without)).not.toHaveProperty('license');
  });

  it('appends field 20 after the PIV part and round trips it', () => {
    const bytes = encodeProtectedInformation({ ...base, license: container });
    const without = encodeProtectedInformation(base);
    const value = encodeLicenseContainer(container);
    expect(toHex(bytes)).toBe(toHex(concatBytes(without, Uint8Array.of(0x20) /* tag */, uintToBytes(BigInt(value.length), 4) /* length */, value)));
    expect(readLicenseContainer(bytes)).toEqual(container);
    expect(decodeProtectedInformation(bytes).license).toEqual(container);
    expect(readLicenseFieldLength(bytes)).toBe(licenseFieldLength(container));
    expect(encodedProtectedInformationLength(base.piv, readLicenseFieldLength(bytes))).toBe(bytes.length);
  });

  it('replaces the container, keeps it when the counter or PIV part change, and removes the field when it empties', () => {
    const bytes = encodeProtectedInformation(base);
    const withLicense = updateProtectedInformation(bytes, { license: container });
    expect(readLicenseContainer(withLicense)).toEqual(container);
    const counted = updateProtectedInformation(withLicense, { counter: 43n, piv: readPivState(withLicense) });
    expect(readCounter(counted)).toBe(43n);
    expect(readLicenseContainer(counted)).toEqual(container);
    expect(toHex(updateProtectedInformation(counted, { license: EMPTY_CONTAINER }))).toBe(toHex(updateProtectedInformation(bytes, { counter: 43n })));
  });

  it.each<[string, Uint8Array]>([
    ['a license field that does not decode', concatBytes(encodeProtectedInformation(base), Uint8Array.of(0x20, 0, 0, 0, 1, 0x02))],
    ['a field after the license container', concatBytes(encodeProtectedInformation({ ...base, license: container }), Uint8Array.of(0x20, 0, 0, 0, 0))],
    ['another tag in place of the license container', concatBytes(encodeProtectedInformation(base), Uint8Array.of(0x21, 0, 0, 0, 0))],
  ])('refuses %s with ProtectedInformationError', (_name, bytes) => {
    expect(thrown(() => readLicenseContainer(bytes))).toBeInstanceOf(ProtectedInformationError);
    expect(thrown(() => decodeProtectedInformation(bytes))).toBeInstanceOf(ProtectedInformationError);
  });
});
