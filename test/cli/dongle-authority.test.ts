// `vsc dongle authority init|replace|revoke|list` (patent 004 [0107]; DESIGN.md "Dongle-backed card", lost
// dongle), run in-process through main() with emulated dongles: output, --json, and exit codes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { dongleSecrets, initDongleCard, openEmulatedDongle, readAuthorityReference, type Dongle } from '../../src/dongle-backend/index.js';
import { vscInProcess } from '../support/in-process-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-authority-cli-'));
const data = join(dir, 'authority');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pinFile = join(dir, 'dongle-passphrase');
writeFileSync(pinFile, 'dongle passphrase\n', { mode: 0o600 });
const uri = (name: string, withPin = true) => `emulated:${join(dir, `dongle-${name}`)}${withPin ? `?pin-source=file:${pinFile}` : ''}`;
const secrets = dongleSecrets(() => Promise.reject(new Error('the tests never prompt')));
const open = (name: string): Dongle => openEmulatedDongle(uri(name), secrets);

const vsc = vscInProcess;
afterEach(() => vi.restoreAllMocks());

let fingerprintA: string;

beforeAll(async () => {
  const init = await vsc('dongle', 'authority', 'init', '--data', data);
  expect(init.code, init.stderr).toBe(0);
  const dongle = open('A');
  const card = await initDongleCard({ dongle, serial: 'CLI-1', password: utf8('owner password'), authority: readAuthorityReference(data) });
  fingerprintA = toHex(card.dongle.fingerprint);
}, 60_000);

describe('vsc dongle authority', () => {
  it('init prints the two public keys last and refuses a second init (exit 3)', async () => {
    const reference = readAuthorityReference(data);
    const again = await vsc('dongle', 'authority', 'init', '--data', data);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already holds an issuing authority/);
    const other = join(dir, 'other');
    const init = await vsc('dongle', 'authority', 'init', '--data', other);
    expect(init.stdout.split('\n').slice(-2)).toEqual([toHex(readAuthorityReference(other).signingKey), toHex(readAuthorityReference(other).escrowKey)]);
    const json = await vsc('dongle', 'authority', 'init', '--data', join(dir, 'third'), '--json');
    expect(JSON.parse(json.stdout)).toEqual({ data: join(dir, 'third'), signingKey: expect.stringMatching(/^[0-9a-f]{64}$/), escrowKey: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(reference.escrowDirectory).toBe(data);
  });

  it('list shows the escrowed card, in text and --json', async () => {
    const text = await vsc('dongle', 'authority', 'list', '--data', data);
    expect(text.stdout).toMatch(new RegExp(`^CLI-1\\tactive\\tepoch 0\\tdongle ${fingerprintA.slice(0, 16)}\\tescrowed \\d{4}-`));
    const json = await vsc('dongle', 'authority', 'list', '--data', data, '--json');
    expect(JSON.parse(json.stdout)).toEqual([{ serial: 'CLI-1', state: 'active', dongle: fingerprintA, epoch: 0, lastEscrowed: expect.any(String), keysOnToken: false }]);
  });

  it('replace prints the new epoch and dongle fingerprint; the old dongle is refused afterwards', async () => {
    const run = await vsc('dongle', 'authority', 'replace', '--data', data, '--serial', 'CLI-1', '--dongle', uri('B'));
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines.at(-2)).toBe('epoch 1');
    expect(lines.at(-1)).toMatch(/^dongle fingerprint [0-9a-f]{64}$/);
    expect(run.stdout).toContain(`dongle ${fingerprintA.slice(0, 16)} is revoked`);
    const onto = await vsc('dongle', 'authority', 'replace', '--data', data, '--serial', 'CLI-1', '--dongle', uri('A'));
    expect(onto.code).toBe(3);
    expect(onto.stderr).toMatch(/is on the revocation list \(replaced/);
  });

  it('revoke: lost (then replaceable, the PIN from --dongle-pin-file), destroyed (final); a bad reason is a usage error', async () => {
    expect((await vsc('dongle', 'authority', 'revoke', '--data', data, '--serial', 'CLI-1', '--reason', 'stolen')).code).toBe(2);
    const lost = await vsc('dongle', 'authority', 'revoke', '--data', data, '--serial', 'CLI-1', '--reason', 'lost', '--json');
    expect(lost.code, lost.stderr).toBe(0);
    expect(JSON.parse(lost.stdout)).toMatchObject({ event: 'revoked', serial: 'CLI-1', reason: 'lost', sequence: 2, dongles: [expect.stringMatching(/^[0-9a-f]{64}$/)] });
    const again = await vsc('dongle', 'authority', 'revoke', '--data', data, '--serial', 'CLI-1', '--reason', 'lost');
    expect(again.stdout).toBe('card CLI-1: the revocation list already said so; revocation list sequence 2');

    const replaced = await vsc('dongle', 'authority', 'replace', '--data', data, '--serial', 'CLI-1', '--dongle', uri('C', false), '--dongle-pin-file', pinFile, '--json');
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ event: 'replaced', serial: 'CLI-1', epoch: 2, resumed: false });

    const destroyed = await vsc('dongle', 'authority', 'revoke', '--data', data, '--serial', 'CLI-1', '--reason', 'destroyed');
    expect(destroyed.stdout).toMatch(/revoked \(destroyed\); the card is destroyed for good; revocation list sequence 3$/);
    const refused = await vsc('dongle', 'authority', 'replace', '--data', data, '--serial', 'CLI-1', '--dongle', uri('D'));
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/card CLI-1 was destroyed; destroyed is final/);
    expect(JSON.parse((await vsc('dongle', 'authority', 'list', '--data', data, '--json')).stdout)).toMatchObject([{ serial: 'CLI-1', state: 'destroyed', epoch: 2 }]);
  });

  it('usage errors exit 2; a missing authority exits 1 naming "authority init"', async () => {
    expect((await vsc('dongle', 'authority', 'list')).code).toBe(2);
    expect((await vsc('dongle', 'authority', 'replace', '--data', data, '--serial', 'CLI-1')).code).toBe(2);
    const missing = await vsc('dongle', 'authority', 'list', '--data', join(dir, 'nothing'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/run "vsc dongle authority init --data/);
    const help = await vsc('dongle', 'authority', '--help');
    expect(help.stdout).toMatch(/init\s+create an issuing authority/);
  });
});
