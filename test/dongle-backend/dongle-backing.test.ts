// Claim 10 of patent 004 on the emulated dongle ([0104]-[0110]; DESIGN.md "Dongle-backed card"): a card put on a
// dongle opens only with that dongle's key and the owner's password, its counter lives on the dongle and never
// repeats across inserts, every change survives removal, and every refusal leaves the dongle as it was.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommandApdu, parseResponseApdu } from '../../src/apdu/index.js';
import { bytesToUint, fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import { RunningCard } from '../../src/card/index.js';
import { ed25519Verify, sha256 } from '../../src/crypto/index.js';
import {
  DongleAuthenticationError, DongleBacking, DongleError, dongleSecrets, initAuthority, initDongleCard, openDongle, type Dongle,
} from '../../src/dongle-backend/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { SELECT_VSC } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-dongle-backing-'));
const passphraseFile = join(root, 'passphrase');
const otherPassphraseFile = join(root, 'other-passphrase');
const PASSWORD = 'correct horse battery staple';

const secrets = dongleSecrets(async () => {
  throw new Error('the tests name every passphrase in the URI');
});
const uri = (dir: string, pin = passphraseFile) => `emulated:${dir}?pin-source=file:${pin}`;
const open = (dir: string, pin?: string): Promise<Dongle> => openDongle(uri(dir, pin), secrets);

/** Every file of a dongle directory and its bytes: what "changes nothing" compares. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, toHex(sha256(readFileSync(join(dir, name))))]));
}

async function insert(dir: string, password = PASSWORD, pin?: string) {
  const backing = new DongleBacking({ dongle: await open(dir, pin), password: utf8(password) });
  const card = await RunningCard.open(backing);
  card.os.powerOn();
  const send = async (hex: string) => parseResponseApdu(await card.os.transmit(fromHex(hex)));
  expect((await send(SELECT_VSC)).sw).toBe(0x9000);
  const sign = async () => {
    const h = sha256(utf8(`record ${Math.random()}`));
    const response = await send(toHex(encodeCommandApdu(vscCommands.signAndIncrement(h))));
    expect(response.sw).toBe(0x9000);
    return { h, counter: bytesToUint(response.data.subarray(0, 16)), signature: response.data.subarray(16) };
  };
  return { card, backing, sign, send };
}

let cardDir: string;
let otherDir: string;
let publicKey: Uint8Array;

beforeAll(async () => {
  writeFileSync(passphraseFile, 'stick passphrase\n', { mode: 0o600 });
  writeFileSync(otherPassphraseFile, 'another passphrase\n', { mode: 0o600 });
  cardDir = join(root, 'stick');
  otherDir = join(root, 'other-stick');
  const dongle = await open(cardDir);
  ({ publicKey } = await initDongleCard({ dongle, serial: 'DG-1', password: utf8(PASSWORD) }));
  await dongle.close();
  await (await open(otherDir)).ensureKey();
}, 30_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a dongle-backed card (claim 10)', () => {
  it('opens with its dongle and password, signs with the key init reported, and counts on the dongle', async () => {
    const { card, sign } = await insert(cardDir);
    expect(card.serial).toBe('DG-1');
    expect(toHex(card.publicKey)).toBe(toHex(publicKey));
    const first = await sign();
    const second = await sign();
    expect(second.counter).toBe(first.counter + 1n);
    // The counter value is signed with the digest of DESIGN.md's VSC applet (P1 00): SHA-256(h ‖ counter).
    const digest = sha256(first.h, fromHex(first.counter.toString(16).padStart(32, '0')));
    expect(ed25519Verify(publicKey, digest, first.signature)).toBe(true);
    await card.giveBack();
    await card.destroy();
  }, 30_000);

  it('never signs a counter value twice over remove and re-insert, nor after a crash without remove', async () => {
    const seen: bigint[] = [];
    for (let round = 0; round < 3; round++) {
      const { card, sign } = await insert(cardDir);
      for (let i = 0; i < 3; i++) seen.push((await sign()).counter);
      // Round 1 "crashes": no giveBack, only the memory is dropped. The counter on the dongle was advanced
      // before each signature left the card, so the next insert starts past every value signed.
      if (round !== 1) await card.giveBack();
      await card.destroy();
    }
    expect(new Set(seen.map(String)).size).toBe(seen.length);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  }, 60_000);

  it('keeps a PIN change made while inserted (the change is written before the card answers)', async () => {
    const { card, send } = await insert(cardDir);
    expect((await send('00A4040009A00000030800001000')).sw).toBe(0x9000); // SELECT PIV
    // CHANGE REFERENCE DATA of the PIN: 123456 → 654321 (each padded with FF to 8 bytes).
    expect((await send('0024008010313233343536FFFF363534333231FFFF')).sw).toBe(0x9000);
    await card.destroy(); // not even given back
    const again = await insert(cardDir);
    expect((await again.send('00A4040009A00000030800001000')).sw).toBe(0x9000);
    expect((await again.send('0020008008363534333231FFFF')).sw).toBe(0x9000);
    expect((await again.send('0024008010363534333231FFFF313233343536FFFF')).sw).toBe(0x9000);
    await again.card.giveBack();
    await again.card.destroy();
  }, 30_000);

  it('refuses a wrong password (exit 4) and changes nothing on the dongle', async () => {
    const before = contents(cardDir);
    const error = await insert(cardDir, 'wrong password').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DongleAuthenticationError);
    expect((error as DongleAuthenticationError).exitCode).toBe(ExitCode.authenticationFailed);
    expect((error as Error).message).toMatch(/wrong password for card DG-1/);
    expect(contents(cardDir)).toEqual(before);
  }, 30_000);

  it('refuses the card\'s contents copied onto another dongle (another key): exit 4, neither dongle changed', async () => {
    for (const name of readdirSync(cardDir).filter((file) => file !== 'dongle.key')) cpSync(join(cardDir, name), join(otherDir, name));
    const before = contents(otherDir);
    const original = contents(cardDir);
    const error = await insert(otherDir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DongleAuthenticationError);
    expect((error as Error).message).toMatch(/was sealed to dongle [0-9a-f]{16}, not to this one/);
    expect(contents(otherDir)).toEqual(before);
    expect(contents(cardDir)).toEqual(original);
  }, 30_000);

  it('refuses a copied emulated directory without its passphrase (exit 4), changing nothing', async () => {
    const copy = join(root, 'copied-stick');
    cpSync(cardDir, copy, { recursive: true });
    const before = contents(copy);
    const error = await insert(copy, PASSWORD, otherPassphraseFile).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DongleAuthenticationError);
    expect((error as Error).message).toMatch(/passphrase does not open the emulated dongle/);
    expect(contents(copy)).toEqual(before);
  }, 30_000);

  it('refuses to start when the counter was deleted from the dongle, rather than sign old values again', async () => {
    const copy = join(root, 'no-counter');
    cpSync(cardDir, copy, { recursive: true });
    for (const name of readdirSync(copy).filter((file) => file.startsWith('counter.'))) rmSync(join(copy, name));
    const error = await insert(copy).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DongleError);
    expect((error as DongleError).code).toBe('dongle.counter-missing');
    expect((error as DongleError).exitCode).toBe(ExitCode.refusedByState);
  }, 30_000);

  it('falls back to the older copy when the newest copy of a slot is torn (two-slot-store.ts)', async () => {
    const copy = join(root, 'torn');
    cpSync(cardDir, copy, { recursive: true });
    const { card, sign } = await insert(copy);
    const last = (await sign()).counter;
    await card.giveBack();
    await card.destroy();
    // Tear the newest copy of the counter: whichever of counter.a and counter.b was written last.
    const newest = ['counter.a', 'counter.b']
      .map((name) => ({ name, generation: bytesToUint(readFileSync(join(copy, name)).subarray(4, 12)) }))
      .sort((a, b) => Number(b.generation - a.generation))[0]!;
    const bytes = readFileSync(join(copy, newest.name));
    writeFileSync(join(copy, newest.name), bytes.subarray(0, bytes.length >> 1), { mode: 0o600 });
    const again = await insert(copy);
    // The older copy holds the value granted just before the last one: the card then starts at or past
    // the information's own counter, which the record (written at remove) carries.
    expect((await again.sign()).counter).toBeGreaterThan(last);
    await again.card.destroy();
  }, 30_000);

  it('carries its authority\'s newest revocation list once it opens, and a refused insert writes nothing, not even the list', async () => {
    const stick = join(root, 'with-authority');
    const authority = await initAuthority(join(root, 'authority'));
    const dongle = await open(stick);
    await initDongleCard({ dongle, serial: 'DG-AUTH', password: utf8(PASSWORD), authority });
    await dongle.close();
    const before = contents(stick);
    expect(Object.keys(before).some((name) => name.startsWith('revocations.'))).toBe(false);
    await expect(insert(stick, 'wrong password')).rejects.toBeInstanceOf(DongleAuthenticationError);
    expect(contents(stick)).toEqual(before);
    const { card } = await insert(stick);
    expect(Object.keys(contents(stick)).some((name) => name.startsWith('revocations.'))).toBe(true);
    await card.giveBack();
    await card.destroy();
  }, 30_000);
});
