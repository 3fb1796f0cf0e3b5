// The dongle issuing authority with real emulated dongles (patent 004 [0107] recover and destroy, [0007];
// DESIGN.md "Dongle-backed card", lost dongle): replacement onto a new dongle in the next epoch, the signed
// revocation list, destroyed as final, and interrupted replacements that never leave two live dongles.
// Each emulated dongle costs an Argon2id of its passphrase, so one authority and its dongles serve the whole file.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { acquireFileLock } from '../../src/files/index.js';
import { deriveOwnerKeys } from '../../src/vsc-protocol/index.js';
import { decodeCardRecord, epochStart, type AuthorityReference, type CardRecordHeader } from '../../src/dongle-backend/card-record.js';
import { dongleSealingSecret, openInner, openOuter } from '../../src/dongle-backend/card-sealing.js';
import { DongleBacking } from '../../src/dongle-backend/dongle-backing.js';
import { initDongleCard } from '../../src/dongle-backend/dongle-card-init.js';
import { DongleError, type Dongle, type DongleSlot } from '../../src/dongle-backend/dongle.js';
import { openEmulatedDongle } from '../../src/dongle-backend/emulated-dongle.js';
import { escrowPath, inspectEscrow, writeEscrow } from '../../src/dongle-backend/escrow.js';
import { initAuthority, listCards, readAuthorityList, readAuthorityReference, replaceDongle, revokeDongle } from '../../src/dongle-backend/issuing-authority.js';
import { dongleSecrets } from '../../src/dongle-backend/open-dongle.js';
import { isSerialDestroyed, readAuthorityRevocationList, revokedEntry } from '../../src/dongle-backend/revocation-list.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-authority-'));
const authorityDir = join(dir, 'authority');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pinFile = join(dir, 'dongle-passphrase');
writeFileSync(pinFile, 'dongle passphrase\n', { mode: 0o600 });
const secrets = dongleSecrets(() => Promise.reject(new Error('the tests never prompt')));
const opened = new Map<string, Dongle>();
/** The emulated dongle named `name`, opened once (its key stays open across tests). */
const dongle = (name: string): Dongle => {
  if (!opened.has(name)) opened.set(name, openEmulatedDongle(`emulated:${join(dir, `dongle-${name}`)}?pin-source=file:${pinFile}`, secrets));
  return opened.get(name)!;
};
const fingerprint = async (name: string): Promise<Uint8Array> => (await dongle(name).ensureKey()).fingerprint;
const password = utf8('the owner password');

/** A dongle whose next write to `slot` fails: before the bytes are written, or after ("pulled as it answered"). */
function crashing(inner: Dongle, slot: DongleSlot, when: 'before' | 'after'): Dongle {
  let armed = true;
  return {
    uri: inner.uri,
    identify: () => inner.identify(),
    ensureKey: () => inner.ensureKey(),
    sign: (message) => inner.sign(message),
    read: (name) => inner.read(name),
    write: async (name, bytes) => {
      if (armed && name === slot) {
        armed = false;
        if (when === 'after') await inner.write(name, bytes);
        throw new Error('simulated crash');
      }
      return inner.write(name, bytes);
    },
    close: () => inner.close(),
  };
}

/** The card record on `name` and its information, opened as the card program opens it (both layers). */
async function openRecord(name: string): Promise<{ header: CardRecordHeader; plaintext: Uint8Array }> {
  const bytes = await dongle(name).read('card');
  expect(bytes, `dongle ${name} holds a card`).toBeDefined();
  const record = decodeCardRecord(bytes!);
  const inner = openOuter(await dongleSealingSecret(dongle(name), record.header), record.headerBytes, record.sealed);
  expect(inner, `the outer layer opens with dongle ${name}`).toBeDefined();
  const plaintext = openInner(protectionKey, record.header.serial, inner!);
  expect(plaintext, 'the inner layer opens with the owner password').toBeDefined();
  return { header: record.header, plaintext: plaintext! };
}

const pendingFiles = (): string[] => readdirSync(join(authorityDir, 'pending'));
const card = (serial: string) => listCards(authorityDir).find((entry) => entry.serial === serial);

let reference: AuthorityReference;
let protectionKey: Uint8Array;
let original: Uint8Array;

beforeAll(async () => {
  reference = await initAuthority(authorityDir);
  await initDongleCard({ dongle: dongle('A'), serial: 'CARD-1', password: password.slice(), authority: reference });
  const { header } = decodeCardRecord((await dongle('A').read('card'))!);
  ({ protectionKey } = await deriveOwnerKeys(password, header.kdf));
  original = (await openRecord('A')).plaintext;
}, 60_000);

describe('initAuthority', () => {
  it('makes a private directory with the keys, a signed empty list and the escrow folder; refuses a second init', async () => {
    expect(statSync(authorityDir).mode & 0o7777).toBe(0o700);
    expect(statSync(join(authorityDir, 'escrow')).mode & 0o7777).toBe(0o700);
    for (const file of ['authority.key', 'revocations.list']) expect(statSync(join(authorityDir, file)).mode & 0o777).toBe(0o600);
    expect(readAuthorityReference(authorityDir)).toEqual(reference);
    expect(reference.escrowDirectory).toBe(authorityDir);
    expect(reference.signingKey).toHaveLength(32);
    expect(reference.escrowKey).toHaveLength(32);
    expect(readAuthorityRevocationList(reference)).toMatchObject({ sequence: 0, entries: [] });
    await expect(initAuthority(authorityDir)).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/already holds an issuing authority/) });
    expect(() => readAuthorityReference(join(dir, 'nothing'))).toThrow(/no issuing authority in .*nothing; run "vsc dongle authority init --data/);
  });

  it('knows the card "vsc dongle init --authority" escrowed', async () => {
    expect(listCards(authorityDir)).toEqual([{ serial: 'CARD-1', state: 'active', dongle: await fingerprint('A'), epoch: 0, lastEscrowed: expect.any(Date), keysOnToken: false }]);
  });
});

describe('replaceDongle ([0107] recover)', () => {
  it('issues the same card onto a new dongle in the next epoch and revokes the old one on the signed list', async () => {
    const done = await replaceDongle(authorityDir, 'CARD-1', dongle('B'));
    expect(done).toMatchObject({ serial: 'CARD-1', epoch: 1, resumed: false, previousDongle: await fingerprint('A') });
    expect(done.dongle.fingerprint).toEqual(await fingerprint('B'));

    const { header, plaintext } = await openRecord('B');
    expect(header).toMatchObject({ serial: 'CARD-1', epoch: 1, fresh: true, keysOnToken: false, keyMode: 'individual', authority: reference });
    expect(header.dongleFingerprint).toEqual(await fingerprint('B'));
    expect(plaintext).toEqual(original); // the same card: same keys, same password

    const list = readAuthorityRevocationList(reference)!;
    expect(list.sequence).toBe(1);
    expect(revokedEntry(list, await fingerprint('A'))).toMatchObject({ serial: 'CARD-1', epoch: 0, reason: 'replaced' });
    expect(revokedEntry(list, await fingerprint('B'))).toBeUndefined();
    expect(await dongle('B').read('revocations')).toEqual(list.bytes); // the new dongle carries the list

    const escrow = inspectEscrow(readFileSync(escrowPath(authorityDir, 'CARD-1')));
    expect(escrow).toMatchObject({ epoch: 1, dongleFingerprint: await fingerprint('B') });
    expect(pendingFiles()).toEqual([]);
    expect(card('CARD-1')).toMatchObject({ state: 'active', epoch: 1, dongle: await fingerprint('B') });
  });

  it('the card program opens the replacement, counting from the new epoch, and refuses the old dongle', async () => {
    const replacement = new DongleBacking({ dongle: dongle('B'), password: password.slice() });
    const card = await replacement.open();
    expect(card.grant.start).toBe(epochStart(1));
    expect(card.plaintext).toEqual(original);
    const old = new DongleBacking({ dongle: dongle('A'), password: password.slice() });
    await expect(old.open()).rejects.toMatchObject({ code: 'dongle.revoked', message: expect.stringMatching(/revoked \(replaced\)/) });
  });

  it('refuses the old dongle, the current one, a dongle that holds a card, and a card it has no escrow of', async () => {
    await expect(replaceDongle(authorityDir, 'CARD-1', dongle('A'))).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/is on the revocation list \(replaced, card CARD-1\): it never holds a card again/) });
    await expect(replaceDongle(authorityDir, 'CARD-1', dongle('B'))).rejects.toThrow(/is card CARD-1's current dongle/);
    await initDongleCard({ dongle: dongle('C'), serial: 'CARD-2', password: password.slice(), authority: reference });
    await expect(replaceDongle(authorityDir, 'CARD-1', dongle('C'))).rejects.toThrow(/already holds card CARD-2: a replacement needs a dongle without a card/);
    await expect(replaceDongle(authorityDir, 'NOPE', dongle('C'))).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/holds no escrow of card NOPE/) });
    expect(readAuthorityList(authorityDir).sequence).toBe(1); // nothing was written
    expect(pendingFiles()).toEqual([]);
  });

  it('lost, then replaced again: the lost dongle stays listed as lost, the card moves to epoch 2', async () => {
    const lost = await revokeDongle(authorityDir, 'CARD-1', 'lost');
    expect(lost).toMatchObject({ serial: 'CARD-1', reason: 'lost', sequence: 2, dongles: [await fingerprint('B')] });
    expect(card('CARD-1')?.state).toBe('lost');
    expect(await revokeDongle(authorityDir, 'CARD-1', 'lost')).toMatchObject({ dongles: [], sequence: 2 });
    const done = await replaceDongle(authorityDir, 'CARD-1', dongle('D'));
    expect(done.epoch).toBe(2);
    const list = readAuthorityList(authorityDir);
    expect(list.sequence).toBe(2); // the lost entry already revoked B: nothing to add
    expect(revokedEntry(list, await fingerprint('B'))?.reason).toBe('lost');
    expect((await openRecord('D')).plaintext).toEqual(original);
    expect(card('CARD-1')).toMatchObject({ state: 'active', epoch: 2 });
  });
});

describe('an interrupted replacement', () => {
  it('crashed before the new dongle got the card: the old one is already revoked (no live dongle, never two); a rerun with the same dongle finishes', async () => {
    await expect(replaceDongle(authorityDir, 'CARD-1', crashing(dongle('E'), 'card', 'before'))).rejects.toThrow('simulated crash');
    expect(revokedEntry(readAuthorityList(authorityDir), await fingerprint('D'))?.reason).toBe('replaced');
    expect(await dongle('E').read('card')).toBeUndefined();
    expect(card('CARD-1')).toMatchObject({ state: 'replacing', epoch: 3, dongle: await fingerprint('E') });

    await expect(replaceDongle(authorityDir, 'CARD-1', dongle('F'))).rejects.toMatchObject({
      exitCode: 3, message: expect.stringMatching(/a replacement of card CARD-1 onto dongle [0-9a-f]{16} was interrupted: rerun it with that dongle/),
    });
    expect(await dongle('F').read('card')).toBeUndefined();

    const done = await replaceDongle(authorityDir, 'CARD-1', dongle('E'));
    expect(done).toMatchObject({ epoch: 3, resumed: true, previousDongle: await fingerprint('D') });
    expect((await openRecord('E')).header.epoch).toBe(3);
    expect(card('CARD-1')).toMatchObject({ state: 'active', epoch: 3, dongle: await fingerprint('E') });
    expect(pendingFiles()).toEqual([]);
  });

  it('crashed after the new dongle got the card: the rerun recognises its own record and finishes', async () => {
    await expect(replaceDongle(authorityDir, 'CARD-2', crashing(dongle('G'), 'card', 'after'))).rejects.toThrow('simulated crash');
    const written = await dongle('G').read('card');
    expect(written).toBeDefined();
    const done = await replaceDongle(authorityDir, 'CARD-2', dongle('G'));
    expect(done).toMatchObject({ epoch: 1, resumed: true, previousDongle: await fingerprint('C') });
    expect(await dongle('G').read('card')).toEqual(written); // not written twice
    expect(card('CARD-2')).toMatchObject({ state: 'active', epoch: 1, dongle: await fingerprint('G') });
  });

  it('abandoned with revoke: both dongles are revoked, and the next replacement takes an epoch neither used', async () => {
    await expect(replaceDongle(authorityDir, 'CARD-2', crashing(dongle('H'), 'revocations', 'before'))).rejects.toThrow('simulated crash');
    expect(card('CARD-2')?.state).toBe('replacing');
    const abandoned = await revokeDongle(authorityDir, 'CARD-2', 'lost');
    expect(abandoned.dongles).toEqual([await fingerprint('H')]); // G was revoked as replaced before the crash
    expect(pendingFiles()).toEqual([]);
    expect(card('CARD-2')).toMatchObject({ state: 'lost', epoch: 1 });
    const list = readAuthorityList(authorityDir);
    expect(revokedEntry(list, await fingerprint('H'))).toMatchObject({ reason: 'lost', epoch: 2 });
    const done = await replaceDongle(authorityDir, 'CARD-2', dongle('F'));
    expect(done.epoch).toBe(3);
    await expect(replaceDongle(authorityDir, 'CARD-2', dongle('H'))).rejects.toThrow(/is on the revocation list \(lost/);
  });
});

describe('revokeDongle ([0107] destroy)', () => {
  it('destroyed is final: the current dongle is revoked, no replacement follows, a later "lost" changes nothing', async () => {
    const destroyed = await revokeDongle(authorityDir, 'CARD-1', 'destroyed');
    expect(destroyed.dongles).toEqual([await fingerprint('E')]);
    const list = readAuthorityList(authorityDir);
    expect(isSerialDestroyed(list, 'CARD-1')).toBe(true);
    expect(card('CARD-1')?.state).toBe('destroyed');
    await expect(replaceDongle(authorityDir, 'CARD-1', dongle('F'))).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/card CARD-1 was destroyed; destroyed is final/) });
    expect(await revokeDongle(authorityDir, 'CARD-1', 'lost')).toMatchObject({ dongles: [], sequence: list.sequence });
    expect(await revokeDongle(authorityDir, 'CARD-1', 'destroyed')).toMatchObject({ dongles: [], sequence: list.sequence });
    await expect(revokeDongle(authorityDir, 'NOPE', 'lost')).rejects.toThrow(/holds no escrow of card NOPE/);
  });

  it('a lost dongle marked destroyed later turns its entry to destroyed, keeping when it was revoked', async () => {
    const lost = await revokeDongle(authorityDir, 'CARD-2', 'lost');
    const revokedAt = revokedEntry(readAuthorityList(authorityDir), lost.dongles[0]!)!.revokedAt;
    await revokeDongle(authorityDir, 'CARD-2', 'destroyed', new Date(Date.parse(revokedAt) + 60_000));
    expect(revokedEntry(readAuthorityList(authorityDir), lost.dongles[0]!)).toMatchObject({ reason: 'destroyed', revokedAt });
  });
});

describe('keys on the token', () => {
  it('the escrow is a registration only: never replaced, but its dongle can be revoked', async () => {
    const header: CardRecordHeader = {
      serial: 'TOKEN-1', keyMode: 'individual', keysOnToken: true, fresh: false, dongleFingerprint: new Uint8Array(32).fill(0x70), epoch: 0,
      sealSalt: new Uint8Array(16), kdf: decodeCardRecord((await dongle('A').read('card'))!).header.kdf, authority: reference,
    };
    expect(writeEscrow(reference, header, undefined)).toBe(true);
    expect(card('TOKEN-1')).toMatchObject({ state: 'active', keysOnToken: true });
    await expect(replaceDongle(authorityDir, 'TOKEN-1', dongle('F'))).rejects.toMatchObject({
      exitCode: 3, message: 'card TOKEN-1 keeps its keys on its token and cannot be escrowed: a lost dongle means a new card with new keys',
    });
    expect((await revokeDongle(authorityDir, 'TOKEN-1', 'lost')).dongles).toEqual([header.dongleFingerprint]);
    expect(card('TOKEN-1')?.state).toBe('lost');
  });
});

describe('the authority\'s own files', () => {
  it('one command at a time: a second is refused while the lock is held', async () => {
    const lock = await acquireFileLock(join(authorityDir, 'authority.lock'));
    try {
      await expect(revokeDongle(authorityDir, 'CARD-2', 'lost')).rejects.toThrow(/is in use by another process/);
    } finally {
      lock.release();
    }
  });

  it('refuses to work from a tampered revocation list', async () => {
    const path = join(authorityDir, 'revocations.list');
    const good = readFileSync(path);
    try {
      writeFileSync(path, good.toString('utf8').replace('"destroyed"', '"lost"'));
      expect(() => listCards(authorityDir)).toThrow(DongleError);
      await expect(replaceDongle(authorityDir, 'CARD-2', dongle('F'))).rejects.toThrow(/signature does not verify/);
      expect(() => readAuthorityRevocationList(reference)).toThrow(/signature does not verify/);
    } finally {
      writeFileSync(path, good);
    }
  });
});
