// The license agent's backups (Wibu 000 "CM-Box Backup" §2.1: triggers per licensor after an update, by interval, on
// demand; §2.6 each firm item verifiable by its licensor) and lock sequences applied through it (§2.10), with the real
// applets, rental server and socket.
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import {
  AgentLicenseLink, BACKUP_SETTINGS_FORMAT, encodeLockSequence, parseBackupFile, signLockSequence, splitBackup, verifyBackupItem, type BackupFile,
} from '../../src/license/index.js';
import { CARD_SERIAL, firstUpdate, LICENSOR, OTHER_LICENSOR, simpleProduct, startLicenseAgent, T0, type RunningLicenseAgent } from '../support/license-fixture.js';

const AUTHORITY = ed25519KeyFromSeed(new Uint8Array(32).fill(0x4a));
let agent: RunningLicenseAgent | undefined;
let link: AgentLicenseLink | undefined;

afterEach(async () => {
  await link?.close();
  await agent?.close();
  agent = undefined;
  link = undefined;
});

async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('timed out');
}

const backupOf = (path: string): BackupFile => parseBackupFile(readFileSync(path));

describe('the license agent\'s backups', () => {
  it('backs up by itself after a licensor\'s update; each firm item verifies for its licensor', async () => {
    agent = await startLicenseAgent(CARD_SERIAL, { backups: { checkEveryMs: 0, now: () => T0 } });
    link = await AgentLicenseLink.connect(agent.socket);
    await agent.activate(firstUpdate([{ op: 'put-product', product: simpleProduct(1, 10) }]));
    const latest = await waitFor(async () => (await link!.backupStatus()).latest);
    expect(latest.firms).toEqual([10101]);
    const [item] = splitBackup(backupOf(latest.path));
    const verified = verifyBackupItem(item!, { licensorKey: LICENSOR.publicKey, cardPublicKey: agent.root.publicKey });
    expect(verified.firm.products.map((product) => product.unitLimit)).toEqual([10]);
    expect(statSync(latest.path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(latest.path)).mode & 0o777).toBe(0o700);
    const texts = readFileSync(agent.trail, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
    expect(texts.filter((text) => text.startsWith('license backup items 1 root '))).toHaveLength(1);
  });

  it('backs up on demand; a licensor whose items cannot be restored is left out, and then no demand backs up', async () => {
    agent = await startLicenseAgent(CARD_SERIAL, { backups: { checkEveryMs: 0, now: () => T0 } });
    link = await AgentLicenseLink.connect(agent.socket);
    await link.backupSettings(JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(OTHER_LICENSOR.publicKey)]: { restorable: false } } }));
    await agent.activate(firstUpdate([{ op: 'put-product', product: simpleProduct(1, 10) }]), firstUpdate([{ op: 'put-product', product: simpleProduct(2) }], { licensor: OTHER_LICENSOR, firmCode: 20202 }));
    const backup = await link.backup();
    expect(backup).toMatchObject({ firms: [10101], leftOut: [20202] });
    expect(backupOf(backup.path).items.map((item) => item.firmCode)).toEqual([10101]);
    await link.backupSettings(JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { onDemand: false }, [toHex(OTHER_LICENSOR.publicKey)]: { restorable: false } } }));
    await expect(link.backup()).rejects.toMatchObject({ reason: 'not-restorable' });
    await expect(link.backupSettings('{"format": "other"}')).rejects.toMatchObject({ reason: 'input' });
  });

  it('backs up when a licensor\'s interval has passed, and not before', async () => {
    const clock = { now: T0 };
    agent = await startLicenseAgent(CARD_SERIAL, { backups: { checkEveryMs: 20, now: () => clock.now } });
    link = await AgentLicenseLink.connect(agent.socket);
    await link.backupSettings(JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { afterUpdate: false, intervalSeconds: 3600 } } }));
    await agent.activate(firstUpdate([{ op: 'put-product', product: simpleProduct(1, 10) }]));
    const first = await waitFor(async () => (await link!.backupStatus()).latest);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await link.backupStatus()).latest?.path).toBe(first.path);
    clock.now = T0 + 3600;
    const second = await waitFor(async () => {
      const latest = (await link!.backupStatus()).latest;
      return latest !== undefined && latest.path !== first.path ? latest : undefined;
    });
    expect(second.time).toBe(T0 + 3600);
  });

  it('applies the central authority\'s lock sequence: no use, no backup; its unlock gives everything back', async () => {
    agent = await startLicenseAgent(CARD_SERIAL, { backups: { checkEveryMs: 0, now: () => T0 } });
    link = await AgentLicenseLink.connect(agent.socket);
    await agent.activate(firstUpdate([{ op: 'set-lock-authority', key: AUTHORITY.publicKey }, { op: 'put-product', product: simpleProduct(1, 10) }]));
    const sequence = (kind: 'lock' | 'unlock', time: number) => encodeLockSequence(signLockSequence({ kind, serial: CARD_SERIAL, authorityKey: AUTHORITY.publicKey, time, reason: 'restored elsewhere', nonce: new Uint8Array(16).fill(time % 256) }, AUTHORITY));
    const locked = await link.locking(sequence('lock', T0));
    expect(locked.text).toMatch(/^license lock [0-9a-f]{32} \d+ digest [0-9a-f]{64}$/);
    const request = { licensorKey: LICENSOR.publicKey, productCode: 1, features: 0, units: 1, hostTime: T0 };
    await expect(link.use(request)).rejects.toMatchObject({ reason: 'locked' });
    await expect(link.backup()).rejects.toMatchObject({ reason: 'locked' });
    await expect(link.locking('{"not": "a sequence"}')).rejects.toMatchObject({ reason: 'input' });
    await link.locking(sequence('unlock', T0 + 60));
    expect((await link.use({ ...request, hostTime: T0 + 60 })).text).toContain('left 9');
  });
});
