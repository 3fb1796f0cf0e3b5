// The emulated card's state file: created once, counter written before each signature, strict
// parsing that never echoes the key, and one process per state file.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmulatedCard, readEmulatedCardState, StateFileError } from '../../src/card-emulator/index.js';
import { LockHeldError } from '../../src/files/index.js';
import { parseResponseApdu } from '../../src/apdu/index.js';
import { bytesToUint, fromHex } from '../../src/bytes/index.js';
import { vscCommands } from '../../src/card-client/index.js';
import { commandHex, SELECT_VSC, spawnTsScript } from '../support/index.js';

/** A second process that opens a state file and holds it until killed. */
const HOLD_EMULATED_CARD = join(import.meta.dirname, '../support/hold-emulated-card.ts');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-emulated-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function send(card: Awaited<ReturnType<typeof openEmulatedCard>>, hex: string) {
  return parseResponseApdu(await card.os.transmit(fromHex(hex)));
}

describe('emulated card', () => {
  it('creates the state file (mode 0600) and keeps serial, key and counter across reopenings', async () => {
    const path = join(dir, 'card.json');
    const first = await openEmulatedCard(path, { serial: 'DEV-1' });
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    first.os.powerOn();
    await send(first, SELECT_VSC);
    const publicKey = (await send(first, '8026000020')).data;
    await send(first, commandHex(vscCommands.signAndIncrement(new Uint8Array(32).fill(0xaa))));
    await send(first, commandHex(vscCommands.signAndIncrement(new Uint8Array(32).fill(0xbb))));
    // Written before the signature left the card, not at close.
    expect(readEmulatedCardState(path)?.vsc.counter).toBe(2n);
    await first.close();

    const second = await openEmulatedCard(path, { serial: 'IGNORED' });
    expect(second.created).toBe(false);
    expect(second.serial).toBe('DEV-1');
    second.os.powerOn();
    await send(second, SELECT_VSC);
    expect((await send(second, '8026000020')).data).toEqual(publicKey);
    expect(bytesToUint((await send(second, '8022000010')).data)).toBe(2n);
    await second.close();
  });

  it('refuses a second opening of the same state file while the first is open', async () => {
    const path = join(dir, 'card.json');
    const first = await openEmulatedCard(path);
    await expect(openEmulatedCard(path)).rejects.toThrow(LockHeldError);
    await expect(openEmulatedCard(join(dir, '.', 'card.json'))).rejects.toThrow(/in use by another process/);
    await first.close();
    await (await openEmulatedCard(path)).close();
  });

  it('refuses while another process holds the card, and frees it when that process is killed -9', async () => {
    const path = join(dir, 'card.json');
    const holder = spawnTsScript(HOLD_EMULATED_CARD, [path]);
    try {
      await holder.waitFor(/^open\n/);
      await expect(openEmulatedCard(path)).rejects.toThrow(LockHeldError);
    } finally {
      await holder.kill();
    }
    await (await openEmulatedCard(path)).close();
  });

  it('a failed counter write refuses the signature and leaves the counter unchanged', async () => {
    const path = join(dir, 'card.json');
    const card = await openEmulatedCard(path);
    card.os.powerOn();
    await send(card, SELECT_VSC);
    // Put a non-empty directory where the state file was: the atomic rename must fail, even for root.
    rmSync(path);
    mkdirSync(path);
    writeFileSync(join(path, 'occupied'), '');
    try {
      const refused = await send(card, commandHex(vscCommands.signAndIncrement(new Uint8Array(32).fill(0xaa))));
      expect(refused.sw).toBe(0x6581);
      expect(refused.data).toHaveLength(0);
      expect(bytesToUint((await send(card, '8022000010')).data)).toBe(0n);
      expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    } finally {
      await card.close();
    }
  });

  const seedHex = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
  const valid = { format: 'vsc-emulated-card/1', vsc: { serial: 'S-1', keyMode: 'individual', counter: '5', signingKeySeed: seedHex } };
  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['wrong format tag', JSON.stringify({ ...valid, format: 'other/1' }), /expected "format"/],
    ['missing vsc', JSON.stringify({ format: valid.format }), /"vsc" object/],
    ['bad key mode', JSON.stringify({ ...valid, vsc: { ...valid.vsc, keyMode: 'both' } }), /keyMode/],
    ['negative counter', JSON.stringify({ ...valid, vsc: { ...valid.vsc, counter: '-1' } }), /counter/],
    ['counter above 2^128-1', JSON.stringify({ ...valid, vsc: { ...valid.vsc, counter: (1n << 128n).toString() } }), /counter/],
    ['short seed', JSON.stringify({ ...valid, vsc: { ...valid.vsc, signingKeySeed: seedHex.slice(2) } }), /signingKeySeed/],
    ['serial with a space', JSON.stringify({ ...valid, vsc: { ...valid.vsc, serial: 'A B' } }), /serial/],
  ])('rejects a state file with %s, naming the file and never the key', async (_name, content, pattern) => {
    const path = join(dir, 'card.json');
    writeFileSync(path, content);
    let error: unknown;
    try {
      await openEmulatedCard(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StateFileError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).not.toContain(seedHex.slice(2, 40));
    // Nothing was overwritten and the lock is free again.
    expect(readFileSync(path, 'utf8')).toBe(content);
    await expect(openEmulatedCard(path)).rejects.toThrow(StateFileError);
  });
});
