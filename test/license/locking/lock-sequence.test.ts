// Lock and unlock sequences of the central locking authority (src/license/locking/lock-sequence.ts; Wibu 000 §2.10):
// the exact signed bytes, round trips, verification under the body's key, the digest, and strict parsing (a table of
// malformed files and a fuzz that never throws anything but LicenseError 'input').
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex, utf8 } from '../../../src/bytes/index.js';
import { ed25519Verify } from '../../../src/crypto/index.js';
import {
  encodeLockSequence, LicenseError, LOCK_FORMAT, lockSequenceDigest, MAX_LOCK_SEQUENCE_BYTES, parseLockSequence, signLockSequence, verifyLockSequence,
  type LockBody,
} from '../../../src/license/index.js';
import { CARD_SERIAL, LICENSOR, T0, thrown } from '../../support/index.js';
import { AUTHORITY } from './lock-fixture.js';

const BODY: LockBody = { kind: 'lock', serial: CARD_SERIAL, authorityKey: AUTHORITY.publicKey, time: T0, reason: 'lost on a train', nonce: new Uint8Array(16).fill(7) };

function reason(run: () => unknown): string | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('lock sequences', () => {
  it('signs "vsc-license-lock/1\\n" ‖ the exact body text, and the file carries that text', () => {
    const signed = signLockSequence(BODY, AUTHORITY);
    expect(signed.bodyText).toBe(`{"kind":"lock","serial":"${CARD_SERIAL}","authorityKey":"${toHex(AUTHORITY.publicKey)}","time":${T0},"reason":"lost on a train","nonce":"${'07'.repeat(16)}"}`);
    expect(ed25519Verify(AUTHORITY.publicKey, concatBytes(utf8('vsc-license-lock/1\n'), utf8(signed.bodyText)), signed.signature)).toBe(true);
    const file = encodeLockSequence(signed);
    expect(JSON.parse(file)).toEqual({ format: LOCK_FORMAT, body: signed.bodyText, signature: toHex(signed.signature) });
    expect(parseLockSequence(file)).toEqual(signed);
    expect(parseLockSequence(utf8(file))).toEqual(signed);
    expect(verifyLockSequence(parseLockSequence(file))).toBe(true);
  });

  it('the digest is SHA-256 of what was signed ‖ the signature (checked against node:crypto)', () => {
    const signed = signLockSequence({ ...BODY, kind: 'unlock' }, AUTHORITY);
    const expected = createHash('sha256').update(`vsc-license-lock/1\n${signed.bodyText}`).update(signed.signature).digest('hex');
    expect(toHex(lockSequenceDigest(signed))).toBe(expected);
    expect(toHex(lockSequenceDigest(signLockSequence({ ...BODY, nonce: new Uint8Array(16) }, AUTHORITY)))).not.toBe(expected);
  });

  it('keeps a body text written by another program exactly (no canonical form needed)', () => {
    const text = `{ "nonce":"${'00'.repeat(16)}", "kind":"unlock","reason":"found again","time":${T0 + 9},"authorityKey":"${toHex(AUTHORITY.publicKey)}","serial":"${CARD_SERIAL}" }`;
    const signature = AUTHORITY.sign(concatBytes(utf8('vsc-license-lock/1\n'), utf8(text)));
    const parsed = parseLockSequence(JSON.stringify({ format: LOCK_FORMAT, body: text, signature: toHex(signature) }));
    expect(parsed.bodyText).toBe(text);
    expect(parsed.body).toMatchObject({ kind: 'unlock', time: T0 + 9, reason: 'found again' });
    expect(verifyLockSequence(parsed)).toBe(true);
  });

  it.each<[string, (signed: ReturnType<typeof signLockSequence>) => ReturnType<typeof signLockSequence>]>([
    ['another body text', (signed) => ({ ...signed, bodyText: signed.bodyText.replace('lost', 'LOST') })],
    ['a zero signature', (signed) => ({ ...signed, signature: new Uint8Array(64) })],
    ['a body naming another key than the signer\'s', (signed) => ({ ...signed, body: { ...signed.body, authorityKey: LICENSOR.publicKey } })],
  ])('does not verify with %s', (_name, tamper) => {
    expect(verifyLockSequence(tamper(signLockSequence(BODY, AUTHORITY)))).toBe(false);
  });

  it.each<[string, Partial<LockBody>]>([
    ['an empty serial', { serial: '' }],
    ['a serial of 129 bytes', { serial: 'x'.repeat(129) }],
    ['a reason of 129 bytes', { reason: 'r'.repeat(129) }],
    ['a reason with a newline', { reason: 'a\nb' }],
    ['a 15-byte nonce', { nonce: new Uint8Array(15) }],
    ['a 31-byte authority key', { authorityKey: new Uint8Array(31) }],
    ['a negative time', { time: -1 }],
    ['a fractional time', { time: 1.5 }],
    ['another kind', { kind: 'erase' as LockBody['kind'] }],
  ])('refuses to sign %s', (_name, change) => {
    expect(reason(() => signLockSequence({ ...BODY, ...change }, AUTHORITY))).toBe('input');
  });

  it('refuses to sign with a key that is not the body\'s authorityKey', () => {
    expect(reason(() => signLockSequence(BODY, LICENSOR))).toBe('input');
  });
});

describe('parseLockSequence: malformed files', () => {
  const signed = signLockSequence(BODY, AUTHORITY);
  const file = (change: Record<string, unknown>) => JSON.stringify({ format: LOCK_FORMAT, body: signed.bodyText, signature: toHex(signed.signature), ...change });
  const body = (change: Record<string, unknown>) => file({ body: JSON.stringify({ ...JSON.parse(signed.bodyText), ...change }) });

  it.each<[string, string | Uint8Array]>([
    ['not JSON', '{'],
    ['not UTF-8', Uint8Array.of(0x7b, 0xff, 0x7d)],
    ['an array', '[]'],
    ['another format', file({ format: 'vsc-license-update/1' })],
    ['an unknown field', file({ extra: 1 })],
    ['no signature', JSON.stringify({ format: LOCK_FORMAT, body: signed.bodyText })],
    ['an upper-case signature', file({ signature: toHex(signed.signature).toUpperCase() })],
    ['a short signature', file({ signature: toHex(signed.signature).slice(2) })],
    ['a body that is an object, not its text', file({ body: JSON.parse(signed.bodyText) })],
    ['a body that is not JSON', file({ body: 'lock it' })],
    ['a body with an unknown field', body({ extra: true })],
    ['a body without a nonce', file({ body: signed.bodyText.replace(/,"nonce":"[0-9a-f]+"/, '') })],
    ['a body with another kind', body({ kind: 'wipe' })],
    ['a body with a time past 2^40', body({ time: 2 ** 40 + 1 })],
    ['a body with a time as a string', body({ time: String(T0) })],
    ['a body with an upper-case key', body({ authorityKey: toHex(AUTHORITY.publicKey).toUpperCase() })],
    ['a body with an empty serial', body({ serial: '' })],
    ['a body with a control character in the reason', body({ reason: 'a\u0007' })],
    ['a file past the size limit', file({ body: signed.bodyText + ' '.repeat(MAX_LOCK_SEQUENCE_BYTES) })],
  ])('refuses %s with input', (_name, input) => {
    expect(reason(() => parseLockSequence(input))).toBe('input');
  });

  it('never throws anything but LicenseError input on random bytes and mutated files (fuzz)', () => {
    const valid = utf8(encodeLockSequence(signed));
    const mutated = fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
      const copy = valid.slice();
      copy[at] = byte;
      return copy;
    });
    const cut = fc.nat(valid.length).map((length) => valid.subarray(0, length));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated, cut, fc.string().map(utf8)), (bytes) => {
      const outcome = reason(() => parseLockSequence(bytes));
      if (outcome !== undefined) expect(outcome).toBe('input');
    }), { numRuns: 2000 });
  });
});
