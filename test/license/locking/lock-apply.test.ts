// A lock or unlock sequence applied to a container (src/license/locking/lock-apply.ts; Wibu 000 §2.10): the lock and
// its record text, the unlock, and each refusal in the order the card checks them (a table). Containers are frozen:
// nothing may change them in place.
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  applyLockSequence, LicenseError, licensorDigest, lockSequenceDigest, parseContainerRecordText, type LicenseContainer, type LicenseReason,
  type SignedLockSequence,
} from '../../../src/license/index.js';
import { CARD_SERIAL, containerWith, deepFreeze, productItem, simpleProduct, T0, thrown } from '../../support/index.js';
import { AUTHORITY, lockSequence, OTHER_AUTHORITY } from './lock-fixture.js';

const OPEN: LicenseContainer = { ...containerWith([productItem(simpleProduct(9))]), lockAuthority: AUTHORITY.publicKey };
const LOCKED: LicenseContainer = { ...OPEN, lock: { time: T0 + 1000, digest: lockSequenceDigest(lockSequence()) } };
const apply = (container: LicenseContainer, signed: SignedLockSequence, serial = CARD_SERIAL) => applyLockSequence(deepFreeze(structuredClone(container)), signed, serial);

describe('applyLockSequence', () => {
  it('locks: the lock holds the sequence\'s time and digest, everything else stays; the text names authority, time and digest', () => {
    const signed = lockSequence();
    const { container, text } = apply(OPEN, signed);
    expect(container).toEqual(LOCKED);
    expect(parseContainerRecordText(text)).toEqual({ kind: 'lock', authority: licensorDigest(AUTHORITY.publicKey), time: T0 + 1000, digest: toHex(lockSequenceDigest(signed)) });
  });

  it('unlocks with a newer unlock: the container is as before the lock', () => {
    const signed = lockSequence({ kind: 'unlock', time: T0 + 1001 });
    const { container, text } = apply(LOCKED, signed);
    expect(container).toEqual({ ...OPEN, unlockedAt: T0 + 1001 });
    expect(Object.keys(container)).not.toContain('lock');
    expect(parseContainerRecordText(text)).toMatchObject({ kind: 'unlock', time: T0 + 1001, digest: toHex(lockSequenceDigest(signed)) });
  });

  it('an old lock sequence cannot lock the card again after its unlock (a licensor\'s list downloaded before the unlock); a newer one can', () => {
    const unlocked = apply(LOCKED, lockSequence({ kind: 'unlock', time: T0 + 1001 })).container;
    expect(thrown(() => apply(unlocked, lockSequence()))).toMatchObject({ reason: 'replayed' });
    expect(thrown(() => apply(unlocked, lockSequence({ time: T0 + 1001 })))).toMatchObject({ reason: 'replayed' });
    expect(apply(unlocked, lockSequence({ time: T0 + 2000 })).container.lock?.time).toBe(T0 + 2000);
  });

  const tampered = (signed: SignedLockSequence): SignedLockSequence => ({ ...signed, signature: signed.signature.map((byte, i) => (i === 0 ? byte ^ 1 : byte)) });
  it.each<[string, LicenseContainer, () => SignedLockSequence, LicenseReason, string?]>([
    ['a container without lock authority', containerWith([]), () => lockSequence(), 'foreign'],
    ['another authority', OPEN, () => lockSequence({ authority: OTHER_AUTHORITY }), 'foreign'],
    ['another card', OPEN, () => lockSequence(), 'foreign', 'VSC-OTHER'],
    ['another authority with a broken signature (the key is checked first)', OPEN, () => tampered(lockSequence({ authority: OTHER_AUTHORITY })), 'foreign'],
    ['a signature that does not verify', OPEN, () => tampered(lockSequence()), 'signature'],
    ['a body changed after signing', OPEN, () => ({ ...lockSequence(), bodyText: lockSequence().bodyText.replace('lost', 'LOST') }), 'signature'],
    ['a second lock', LOCKED, () => lockSequence({ time: T0 + 5000 }), 'locked'],
    ['a second lock with a broken signature (the signature is checked first)', LOCKED, () => tampered(lockSequence({ time: T0 + 5000 })), 'signature'],
    ['an unlock of a container not locked', OPEN, () => lockSequence({ kind: 'unlock', time: T0 + 2000 }), 'input'],
    ['an unlock as old as the lock', LOCKED, () => lockSequence({ kind: 'unlock', time: T0 + 1000 }), 'replayed'],
    ['an unlock by another authority', LOCKED, () => lockSequence({ kind: 'unlock', time: T0 + 2000, authority: OTHER_AUTHORITY }), 'foreign'],
  ])('refuses %s: %s', (_name, container, signed, reason, serial) => {
    const error = thrown(() => apply(container, signed(), serial));
    expect(error).toBeInstanceOf(LicenseError);
    expect((error as LicenseError).reason).toBe(reason);
  });
});
