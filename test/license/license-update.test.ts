// The signed update and time certificate of src/license/license-update.ts (Wibu 000 §2.2, §2.6): sign, file form,
// strict parsing, tampering; and the card binding a program trusts (card-binding.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import {
  encodeCardBinding, encodeSignedBody, LicenseError, licenseBodyDigest, parseCardBinding, parseSignedBody, signCardBinding, signLicenseBody,
  verifyCardBinding, verifyLicenseBody, type ProductSpec, type UpdateBody,
} from '../../src/license/index.js';

const licensor = ed25519KeyFromSeed(generateEd25519Seed());
const other = ed25519KeyFromSeed(generateEd25519Seed());

const product: ProductSpec = {
  productCode: 7, text: 'Word processor', featureMap: 0b101, payment: 'prepaid', licenseQuantity: 1, unitLimit: 100, expiration: 1_900_000_000,
  countries: { allow: ['DE', 'AT'] }, timeZones: { minOffsetMinutes: 0, maxOffsetMinutes: 120 }, boundTo: new Uint8Array(32).fill(9),
  protectedData: Uint8Array.of(1, 2), hiddenData: Uint8Array.of(3), secretData: new Uint8Array(0),
};

function update(overrides: Partial<UpdateBody> = {}): UpdateBody {
  return {
    kind: 'update', serial: 'VSC-0001', licensorKey: licensor.publicKey, firmCode: 10101, time: 1_800_000_000, updateCounter: 0,
    operations: [{ op: 'create-firm', text: 'ACME' }, { op: 'put-product', product }], ...overrides,
  };
}

function refusal(run: () => unknown): LicenseError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LicenseError);
    return error as LicenseError;
  }
  throw new Error('expected a LicenseError');
}

describe('signed license updates', () => {
  it('round trips through the file form and verifies under the licensor key', () => {
    const signed = signLicenseBody(update(), licensor);
    const parsed = parseSignedBody(encodeSignedBody(signed));
    expect(parsed.bodyText).toBe(signed.bodyText);
    expect(verifyLicenseBody(parsed)).toBe(true);
    expect(parsed.body).toEqual(signed.body);
    expect(toHex(licenseBodyDigest(parsed))).toBe(toHex(licenseBodyDigest(signed)));
  });

  it('set-lock-authority is written as {"op":"set-lock-authority","key": 64 hex} and round trips (000 §2.10)', () => {
    const signed = signLicenseBody(update({ operations: [{ op: 'create-firm', text: 'ACME' }, { op: 'set-lock-authority', key: other.publicKey }] }), licensor);
    expect(JSON.parse(signed.bodyText).operations[1]).toEqual({ op: 'set-lock-authority', key: toHex(other.publicKey) });
    const parsed = parseSignedBody(encodeSignedBody(signed));
    expect(parsed.body).toEqual(signed.body);
    expect(verifyLicenseBody(parsed)).toBe(true);
  });

  it('a time certificate round trips', () => {
    const signed = signLicenseBody({ kind: 'time', serial: 'VSC-0001', licensorKey: licensor.publicKey, firmCode: 10101, time: 1_800_000_100, nonce: new Uint8Array(16).fill(4), resetClock: false }, licensor);
    const parsed = parseSignedBody(encodeSignedBody(signed));
    expect(parsed.body).toEqual(signed.body);
    expect(verifyLicenseBody(parsed)).toBe(true);
  });

  it('refuses to sign with a key that is not the body\'s licensor', () => {
    expect(refusal(() => signLicenseBody(update(), other)).reason).toBe('input');
  });

  it('a changed body, a changed signature or a body claiming another licensor does not verify', () => {
    const signed = signLicenseBody(update(), licensor);
    const file = JSON.parse(encodeSignedBody(signed)) as { body: string; signature: string };
    const changedBody = parseSignedBody(JSON.stringify({ ...file, body: file.body.replace('"unitLimit":100', '"unitLimit":999') }));
    expect(verifyLicenseBody(changedBody)).toBe(false);
    const flipped = (file.signature[0] === '0' ? '1' : '0') + file.signature.slice(1);
    expect(verifyLicenseBody(parseSignedBody(JSON.stringify({ ...file, signature: flipped })))).toBe(false);
    const foreign = parseSignedBody(JSON.stringify({ ...file, body: file.body.replace(toHex(licensor.publicKey), toHex(other.publicKey)) }));
    expect(verifyLicenseBody(foreign)).toBe(false);
    // Another licensor's digest differs from the genuine one's.
    expect(toHex(licenseBodyDigest(changedBody))).not.toBe(toHex(licenseBodyDigest(signed)));
  });

  const bodyOf = (changes: Record<string, unknown>): string => JSON.stringify({ ...JSON.parse(signLicenseBody(update(), licensor).bodyText) as object, ...changes });
  const malformed: Array<[string, string]> = [
    ['not JSON', '{'],
    ['an array', '[]'],
    ['the wrong format', JSON.stringify({ format: 'other/1', body: bodyOf({}), signature: '00'.repeat(64) })],
    ['an extra field', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({}), signature: '00'.repeat(64), extra: 1 })],
    ['a short signature', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({}), signature: '00' })],
    ['upper-case hex', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({}), signature: 'AA'.repeat(64) })],
    ['an unknown kind', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ kind: 'grant' }), signature: '00'.repeat(64) })],
    ['an unknown body field', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ admin: true }), signature: '00'.repeat(64) })],
    ['a negative counter', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ updateCounter: -1 }), signature: '00'.repeat(64) })],
    ['a fractional firm code', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ firmCode: 1.5 }), signature: '00'.repeat(64) })],
    ['no operations', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [] }), signature: '00'.repeat(64) })],
    ['an unknown operation', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'grant-all' }] }), signature: '00'.repeat(64) })],
    ['delete-firm beside another op', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'delete-firm' }, { op: 'delete-product', productCode: 1 }] }), signature: '00'.repeat(64) })],
    ['create-firm not first', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'delete-product', productCode: 1 }, { op: 'create-firm', text: 'x' }] }), signature: '00'.repeat(64) })],
    ['a lower-case country', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'put-product', product: { ...JSON.parse(signLicenseBody(update(), licensor).bodyText).operations[1].product, countries: { allow: ['de'] } } }] }), signature: '00'.repeat(64) })],
    ['a control character in a text', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'set-firm-text', text: 'a\u0007b' }] }), signature: '00'.repeat(64) })],
    ['a lock authority of 31 bytes', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'set-lock-authority', key: '00'.repeat(31) }] }), signature: '00'.repeat(64) })],
    ['a lock authority in upper-case hex', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'set-lock-authority', key: 'AB'.repeat(32) }] }), signature: '00'.repeat(64) })],
    ['set-lock-authority with an extra field', JSON.stringify({ format: 'vsc-license-update/1', body: bodyOf({ operations: [{ op: 'set-lock-authority', key: 'ab'.repeat(32), force: true }] }), signature: '00'.repeat(64) })],
  ];
  it.each(malformed)('refuses %s with reason input', (_name, text) => {
    expect(refusal(() => parseSignedBody(text)).reason).toBe('input');
  });

  it('refuses a file over the size limit before parsing it', () => {
    expect(refusal(() => parseSignedBody('x'.repeat(16 * 1024 + 1))).message).toMatch(/at most 16384 bytes/);
  });

  it('never throws anything but LicenseError for any input (fuzz)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 300 })), (input) => {
      try {
        parseSignedBody(input);
      } catch (error) {
        expect(error).toBeInstanceOf(LicenseError);
      }
    }), { numRuns: 500 });
  });
});

describe('card bindings', () => {
  const card = { serial: 'VSC-0001', cardPublicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const };

  it('round trip and verify under the licensor key only', () => {
    const binding = parseCardBinding(encodeCardBinding(signCardBinding(licensor, card)));
    expect(() => verifyCardBinding(binding, licensor.publicKey)).not.toThrow();
    expect(refusal(() => verifyCardBinding(binding, other.publicKey)).reason).toBe('signature');
  });

  it('a binding for another card key does not verify', () => {
    const binding = signCardBinding(licensor, card);
    const swapped = { ...binding, cardPublicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey };
    expect(refusal(() => verifyCardBinding(swapped, licensor.publicKey)).reason).toBe('signature');
    expect(refusal(() => verifyCardBinding({ ...binding, serial: 'VSC-0002' }, licensor.publicKey)).reason).toBe('signature');
  });

  it.each([['not JSON', 'x'], ['a missing field', '{"format":"vsc-license-card/1"}'], ['a bad key mode', encodeCardBinding(signCardBinding(licensor, card)).replace('individual', 'other')]])('refuses %s', (_name, text) => {
    expect(refusal(() => parseCardBinding(text)).reason).toBe('input');
  });
});
