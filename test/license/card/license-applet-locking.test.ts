// The license applet's LOCKING (src/license/card/license-applet.ts INS 3E; Wibu 000 §2.10): the lock authority a
// licensor set, a lock that leaves the card unusable ("it cannot longer be used for any encryption or authentication,
// even the most PIO data cannot be longer read") until the authority's newer unlock, and every refusal leaving the card
// as it was.
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex, uintToBytes, utf8 } from '../../../src/bytes/index.js';
import {
  encodeUseRequest, licenseStatusWord, licensorDigest, lockSequenceDigest, parseContainerRecordText, publicView, type LicenseContainer, type LicenseReason,
} from '../../../src/license/index.js';
import { verifyRecord } from '../../../src/rental/index.js';
import { LICENSOR, signedUpdate, T0, updateFile } from '../../support/index.js';
import { THREE_FIRMS } from '../backup/backup-fixture.js';
import { AUTHORITY, lockFile, lockSequence, OTHER_AUTHORITY } from '../locking/lock-fixture.js';
import { licenseCard, nonce } from './license-card-fixture.js';

const locking = (file: string, fill = 6) => concatBytes(nonce(fill), utf8(file));
const use = concatBytes(nonce(3), encodeUseRequest({ licensorKey: LICENSOR.publicKey, productCode: 9, features: 1, units: 1, hostTime: T0 + 5 }));
const WITH_AUTHORITY: LicenseContainer = { ...THREE_FIRMS, lockAuthority: AUTHORITY.publicKey };
const sw = (reason: LicenseReason) => licenseStatusWord(reason);

/** A card whose first licensor named AUTHORITY through a signed update (set-lock-authority), then locked by AUTHORITY. */
async function lockedCard() {
  const card = await licenseCard({ container: THREE_FIRMS });
  const named = await card.run(0x32, concatBytes(nonce(2), utf8(updateFile(signedUpdate({ updateCounter: 3, operations: [{ op: 'set-lock-authority', key: AUTHORITY.publicKey }] })))));
  expect(named.sw).toBe(0x9000);
  const before = await card.read();
  const answer = await card.run(0x3e, locking(lockFile()));
  expect(answer.sw).toBe(0x9000);
  return { ...card, before, answer };
}

describe('license applet: LOCKING', () => {
  it('locks under the authority a licensor set: a signed record, the lock stored, READ CONTAINER shows no firm item', async () => {
    const { answer, record, trustRoot, store, read, before } = await lockedCard();
    const signed = record(6, answer.data);
    expect(verifyRecord(signed, trustRoot)).toBe(true);
    const digest = toHex(lockSequenceDigest(lockSequence()));
    expect(parseContainerRecordText(signed.text)).toEqual({ kind: 'lock', authority: licensorDigest(AUTHORITY.publicKey), time: T0 + 1000, digest });
    expect(store.read().lock).toEqual({ time: T0 + 1000, digest: lockSequenceDigest(lockSequence()) });
    expect(await read()).toEqual({ clock: before.clock, firms: [], lockAuthority: AUTHORITY.publicKey, lock: { time: T0 + 1000, digest: lockSequenceDigest(lockSequence()) } });
  });

  it('a locked card refuses SIGN AND INCREMENT (6985) and every license command but READ CONTAINER and LOCKING (9116)', async () => {
    const { run, signAndIncrement, counter, store } = await lockedCard();
    const stored = store.read();
    const count = await counter();
    expect(await signAndIncrement()).toBe(0x6985);
    const item = concatBytes(LICENSOR.publicKey, uintToBytes(7n, 4));
    for (const [ins, data] of [
      [0x32, concatBytes(nonce(2), utf8(updateFile(signedUpdate({ updateCounter: 4, operations: [{ op: 'set-firm-text', text: 'x' }] }))))],
      [0x34, use], [0x36, item], [0x38, concatBytes(item, Uint8Array.of(1))], [0x3a, item], [0x3c, concatBytes(nonce(4), uintToBytes(BigInt(T0 + 9), 8))],
    ] as const) {
      expect((await run(ins, data)).sw, `INS ${ins.toString(16)}`).toBe(sw('locked'));
    }
    expect((await run(0x30)).sw).toBe(0x9000);
    expect(store.read()).toEqual(stored);
    expect(await counter()).toBe(count);
  });

  it('the authority\'s newer unlock restores everything: container, uses, signatures', async () => {
    const { run, read, record, trustRoot, signAndIncrement, before } = await lockedCard();
    const answer = await run(0x3e, locking(lockFile({ kind: 'unlock', time: T0 + 2000 }), 7));
    expect(answer.sw).toBe(0x9000);
    const signed = record(7, answer.data);
    expect(verifyRecord(signed, trustRoot)).toBe(true);
    expect(parseContainerRecordText(signed.text)).toMatchObject({ kind: 'unlock', time: T0 + 2000 });
    expect(await read()).toEqual({ ...before, unlockedAt: T0 + 2000 });
    expect((await run(0x34, use)).sw).toBe(0x9000);
    expect(await signAndIncrement()).toBe(0x9000);
  });

  it.each<[string, () => string, LicenseReason]>([
    ['an unlock not newer than the lock', () => lockFile({ kind: 'unlock', time: T0 + 1000 }), 'replayed'],
    ['an unlock older than the lock', () => lockFile({ kind: 'unlock', time: T0 + 999 }), 'replayed'],
    ['an unlock by another authority', () => lockFile({ kind: 'unlock', time: T0 + 2000, authority: OTHER_AUTHORITY }), 'foreign'],
    ['an unlock for another card', () => lockFile({ kind: 'unlock', time: T0 + 2000, serial: 'VSC-OTHER' }), 'foreign'],
    ['a second lock (no double locking)', () => lockFile({ time: T0 + 3000, nonce: new Uint8Array(16).fill(9) }), 'locked'],
    ['the same lock again', () => lockFile(), 'locked'],
  ])('while locked, %s: %s, and nothing changes', async (_name, file, reason) => {
    const { run, store, counter } = await lockedCard();
    const stored = store.read();
    const count = await counter();
    expect((await run(0x3e, locking(file()))).sw).toBe(sw(reason));
    expect(store.read()).toEqual(stored);
    expect(await counter()).toBe(count);
  });

  it.each<[string, LicenseContainer, () => string, LicenseReason]>([
    ['a lock by another key than the lock authority', WITH_AUTHORITY, () => lockFile({ authority: OTHER_AUTHORITY }), 'foreign'],
    ['a lock for another serial', WITH_AUTHORITY, () => lockFile({ serial: 'VSC-OTHER' }), 'foreign'],
    ['a lock on a container without a lock authority', THREE_FIRMS, () => lockFile(), 'foreign'],
    ['a lock whose signature does not verify', WITH_AUTHORITY, () => {
      const signed = lockSequence();
      return JSON.stringify({ format: 'vsc-license-lock/1', body: signed.bodyText, signature: toHex(signed.signature.map((byte, i) => (i === 0 ? byte ^ 1 : byte))) });
    }, 'signature'],
    ['an unlock of a card that is not locked', WITH_AUTHORITY, () => lockFile({ kind: 'unlock', time: T0 + 2000 }), 'input'],
  ])('%s: refused, and nothing changes', async (_name, container, file, reason) => {
    const { run, store, counter, signAndIncrement } = await licenseCard({ container });
    expect((await run(0x3e, locking(file()))).sw).toBe(sw(reason));
    expect(store.read()).toEqual(container);
    expect(await counter()).toBe(0n);
    expect(await signAndIncrement()).toBe(0x9000);
  });

  it.each<[string, Uint8Array, number]>([
    ['a nonce only', nonce(1), 0x6700],
    ['a sequence past the size limit', concatBytes(nonce(1), new Uint8Array(4097).fill(0x20)), 0x6700],
    ['a file that is not a lock sequence', locking('{"format":"vsc-license-update/1"}'), 0x6a80],
    ['a lock sequence of another kind', locking(lockFile().replace('\\"kind\\":\\"lock\\"', '\\"kind\\":\\"wipe\\"')), 0x6a80],
  ])('%s: %s', async (_name, data, expected) => {
    const { run } = await licenseCard({ container: WITH_AUTHORITY });
    expect((await run(0x3e, data)).sw.toString(16)).toBe(expected.toString(16));
  });

  it('a lock whose record cannot be signed (counter exhausted) leaves the card unlocked', async () => {
    const { run, store } = await licenseCard({ container: WITH_AUTHORITY, counter: (1n << 128n) - 1n });
    expect((await run(0x3e, locking(lockFile()))).sw).toBe(0x6985);
    expect(store.read().lock).toBeUndefined();
  });

  it('the public view the card answers while locked is publicView of the stored container', async () => {
    const { read, store } = await lockedCard();
    expect(await read()).toEqual(publicView(store.read()));
  });
});
