// A lock or unlock sequence applied to a container, as the card does it (Wibu 000 §2.10: the Locking Sequence locks the
// box "permanently"; only the central service unlocks it again). Pure: the license applet stores the result and signs
// its record text. Checked in this order:
//   lock    the container's lock authority is the sequence's key (foreign), the serial is the card's (foreign), the
//           signature verifies (signature), the container is not locked yet (locked: no double locking), the lock is
//           newer than the last unlock (replayed: an old sequence a licensor still holds cannot lock the card again)
//   unlock  the same three, then the container is locked (input otherwise), and the unlock is newer than the lock
//           (replayed otherwise)
import { bytesEqual, toHex } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import type { LicenseContainer } from '../license-model.js';
import { formatLicenseRecordText, licensorDigest } from '../license-record-text.js';
import { lockSequenceDigest, verifyLockSequence, type SignedLockSequence } from './lock-sequence.js';

export interface AppliedLockSequence {
  readonly container: LicenseContainer;
  /** The record text the card signs: "license lock AD T digest D" or "license unlock AD T digest D". */
  readonly text: string;
}

const refuse = (reason: LicenseError['reason'], message: string): LicenseError => new LicenseError(reason, `lock sequence: ${message}`);

export function applyLockSequence(container: LicenseContainer, signed: SignedLockSequence, cardSerial: string): AppliedLockSequence {
  const { body } = signed;
  if (container.lockAuthority === undefined) throw refuse('foreign', 'the container has no lock authority (no licensor named one)');
  if (!bytesEqual(container.lockAuthority, body.authorityKey)) throw refuse('foreign', 'signed by another authority than the container\'s');
  if (body.serial !== cardSerial) throw refuse('foreign', `the sequence is for card ${body.serial}, not for card ${cardSerial}`);
  if (!verifyLockSequence(signed)) throw refuse('signature', 'the sequence does not verify under the authority\'s key');
  const digest = lockSequenceDigest(signed);
  let next: LicenseContainer;
  if (body.kind === 'lock') {
    if (container.lock !== undefined) throw refuse('locked', 'the container is locked already');
    if (container.unlockedAt !== undefined && body.time <= container.unlockedAt) throw refuse('replayed', `a lock of ${body.time} is not newer than the unlock of ${container.unlockedAt}`);
    next = { ...container, lock: { time: body.time, digest } };
  } else {
    if (container.lock === undefined) throw refuse('input', 'the container is not locked: nothing to unlock');
    if (body.time <= container.lock.time) throw refuse('replayed', `an unlock of ${body.time} is not newer than the lock of ${container.lock.time}`);
    next = { firms: container.firms, clock: container.clock, lockAuthority: container.lockAuthority, unlockedAt: body.time };
  }
  const text = formatLicenseRecordText({ kind: body.kind, authority: licensorDigest(body.authorityKey), time: body.time, digest: toHex(digest) });
  return { container: next, text };
}
