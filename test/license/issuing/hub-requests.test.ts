// The licensor's two signed requests to the hub (000 §2.2 licensor registry, §2.10 central locking list): signing,
// strict verification, the signed bytes spelled out, and a table of tampered and malformed bodies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/bytes/index.js';
import { ed25519KeyFromSeed, ed25519Verify } from '../../../src/crypto/index.js';
import {
  LicenseError, signHubLicensorRequest, signHubLockRequest, verifyHubLicensorRequest, verifyHubLockRequest,
} from '../../../src/license/index.js';

const key = ed25519KeyFromSeed(new Uint8Array(32).fill(1));
const other = ed25519KeyFromSeed(new Uint8Array(32).fill(2));
const hex = toHex(key.publicKey);

function reason(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof LicenseError) return error.reason;
    throw error;
  }
  return 'accepted';
}

describe('hub licensor request', () => {
  const body = signHubLicensorRequest({ name: 'Example Soft', restoreUrl: 'https://licensor.example/restore', time: 1_800_000_000 }, key);

  it('signs "vsc-hub-licensor/1\\n" ‖ key hex "\\n" restoreUrl "\\n" time, and verifies back', () => {
    expect(body).toMatchObject({ licensorKey: hex, name: 'Example Soft', restoreUrl: 'https://licensor.example/restore', time: 1_800_000_000 });
    const message = concatBytes(utf8('vsc-hub-licensor/1\n'), utf8(`${hex}\nhttps://licensor.example/restore\n1800000000`));
    expect(ed25519Verify(key.publicKey, message, fromHex(body.signature))).toBe(true);
    const verified = verifyHubLicensorRequest(JSON.parse(JSON.stringify(body)));
    expect(verified).toEqual({ licensorKey: key.publicKey, name: 'Example Soft', restoreUrl: 'https://licensor.example/restore', time: 1_800_000_000, signature: fromHex(body.signature) });
  });

  it.each([
    ['another restore URL', { ...body, restoreUrl: 'https://evil.example/restore' }, 'signature'],
    ['another time', { ...body, time: body.time + 1 }, 'signature'],
    ['another key', { ...body, licensorKey: toHex(other.publicKey) }, 'signature'],
    ['a flipped signature bit', { ...body, signature: `${body.signature.slice(0, -1)}${body.signature.endsWith('0') ? '1' : '0'}` }, 'signature'],
    ['an unknown field', { ...body, extra: 1 }, 'input'],
    ['a missing name', { licensorKey: body.licensorKey, restoreUrl: body.restoreUrl, time: body.time, signature: body.signature }, 'input'],
    ['an ftp URL', { ...body, restoreUrl: 'ftp://licensor.example/' }, 'input'],
    ['a URL with credentials', { ...body, restoreUrl: 'https://user:pw@licensor.example/' }, 'input'],
    ['a fractional time', { ...body, time: 1.5 }, 'input'],
    ['an upper-case key', { ...body, licensorKey: hex.toUpperCase() }, 'input'],
    ['not an object', 'text', 'input'],
  ])('refuses %s', (_name, tampered, expected) => {
    expect(reason(() => verifyHubLicensorRequest(tampered))).toBe(expected);
  });

  it('refuses a stale or future time as replayed when the verifier gives its clock', () => {
    expect(reason(() => verifyHubLicensorRequest(body, { now: body.time + 300 }))).toBe('accepted');
    expect(reason(() => verifyHubLicensorRequest(body, { now: body.time + 301 }))).toBe('replayed');
    expect(reason(() => verifyHubLicensorRequest(body, { now: body.time - 301 }))).toBe('replayed');
    expect(reason(() => verifyHubLicensorRequest(body, { now: body.time + 3000, maxSkewSeconds: 3600 }))).toBe('accepted');
  });

  it('refuses to sign a bad URL or time', () => {
    expect(reason(() => signHubLicensorRequest({ name: 'x', restoreUrl: 'not a url', time: 1 }, key))).toBe('input');
    expect(reason(() => signHubLicensorRequest({ name: 'x', restoreUrl: 'http://a/', time: -1 }, key))).toBe('input');
    expect(reason(() => signHubLicensorRequest({ name: '', restoreUrl: 'http://a/', time: 1 }, key))).toBe('input');
  });
});

describe('hub lock request', () => {
  const body = signHubLockRequest({ serial: 'CARD-0001', time: 1_800_000_000 }, key);

  it('signs "vsc-hub-lock/1\\n" ‖ serial "\\n" key hex "\\n" time, and verifies back', () => {
    expect(body).toMatchObject({ serial: 'CARD-0001', licensorKey: hex, time: 1_800_000_000 });
    const message = concatBytes(utf8('vsc-hub-lock/1\n'), utf8(`CARD-0001\n${hex}\n1800000000`));
    expect(ed25519Verify(key.publicKey, message, fromHex(body.signature))).toBe(true);
    expect(verifyHubLockRequest(JSON.parse(JSON.stringify(body)))).toEqual({ serial: 'CARD-0001', licensorKey: key.publicKey, time: 1_800_000_000, signature: fromHex(body.signature) });
  });

  it.each([
    ['another serial', { ...body, serial: 'CARD-0002' }, 'signature'],
    ['another key', { ...body, licensorKey: toHex(other.publicKey) }, 'signature'],
    ['another time', { ...body, time: 5 }, 'signature'],
    ['a serial with a line break', { ...body, serial: 'CARD\n0001' }, 'input'],
    ['an empty serial', { ...body, serial: '' }, 'input'],
    ['a short signature', { ...body, signature: body.signature.slice(2) }, 'input'],
    ['null', null, 'input'],
  ])('refuses %s', (_name, tampered, expected) => {
    expect(reason(() => verifyHubLockRequest(tampered))).toBe(expected);
  });

  it('refuses to sign a serial with a line break or over 128 UTF-8 bytes', () => {
    expect(reason(() => signHubLockRequest({ serial: 'A\nB', time: 1 }, key))).toBe('input');
    expect(reason(() => signHubLockRequest({ serial: 'é'.repeat(65), time: 1 }, key))).toBe('input');
  });

  it('round-trips any serial without line breaks, and never verifies a signature over another serial', () => {
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\n\r]/u.test(s)), fc.nat(), (serial, time) => {
      const signed = signHubLockRequest({ serial, time }, key);
      expect(verifyHubLockRequest(signed).serial).toBe(serial);
      expect(reason(() => verifyHubLockRequest({ ...signed, serial: `${serial}x` }))).toBe('signature');
    }), { numRuns: 50 });
  });
});
