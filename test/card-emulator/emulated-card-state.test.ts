// The binary state file of `vsc card emulate`: encode, decode, round trip, migration of a legacy JSON
// file to the binary form on first open, and a table of malformed files (refused, nothing changed).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clonePivState } from '../../src/apdu/index.js';
import { toHex } from '../../src/bytes/index.js';
import {
  decodeEmulatedCardState, encodeEmulatedCardState, openEmulatedCard, readEmulatedCardState, StateFileError,
  writeEmulatedCardState, type EmulatedCardState,
} from '../../src/card-emulator/index.js';
import { encodePivState } from '../../src/card/index.js';
import { testPivState } from '../support/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-emulated-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const state = (): EmulatedCardState => ({ vsc: { serial: 'DEV-7', keyMode: 'universal', counter: 41n, signingKeySeed: SEED.slice() }, piv: clonePivState(testPivState()) });
const summary = (value: EmulatedCardState) => ({ ...value.vsc, signingKeySeed: toHex(value.vsc.signingKeySeed), pin: toHex(value.piv.pin), keys: [...value.piv.keys.keys()], objects: value.piv.dataObjects.size });

describe('emulated card state file', () => {
  it('encodes magic "vsce", version 1, the serial, the key mode, then the protected information', () => {
    const bytes = encodeEmulatedCardState(state());
    expect(toHex(bytes.subarray(0, 5))).toBe('7673636501');
    expect(bytes[5]).toBe(5);
    expect(new TextDecoder().decode(bytes.subarray(6, 11))).toBe('DEV-7');
    expect(bytes[11]).toBe(1); // universal
    expect(bytes[12]).toBe(0x01); // the protected information's format byte
  });

  it('round-trips through the file, mode 0600', () => {
    const path = join(dir, 'card.state');
    writeEmulatedCardState(path, state());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(summary(readEmulatedCardState(path)!)).toEqual(summary(state()));
    expect(summary(decodeEmulatedCardState(path, encodeEmulatedCardState(state())))).toEqual(summary(state()));
  });

  it('reads a legacy JSON file once and rewrites it in the binary form, keeping the card', async () => {
    const path = join(dir, 'card.json');
    const legacy = state();
    writeFileSync(path, JSON.stringify({
      format: 'vsc-emulated-card/1',
      vsc: { serial: legacy.vsc.serial, keyMode: legacy.vsc.keyMode, counter: legacy.vsc.counter.toString(), signingKeySeed: toHex(SEED) },
      piv: encodePivState(legacy.piv),
    }, null, 2));
    const card = await openEmulatedCard(path);
    try {
      expect(card.created).toBe(false);
      expect(card.serial).toBe('DEV-7');
      const bytes = new Uint8Array(readFileSync(path));
      expect(toHex(bytes.subarray(0, 5))).toBe('7673636501');
      expect(summary(readEmulatedCardState(path)!)).toEqual(summary(legacy));
    } finally {
      await card.close();
    }
  });

  const good = (): Uint8Array => encodeEmulatedCardState(state());
  it.each<[string, () => Uint8Array, RegExp]>([
    ['an empty file', () => new Uint8Array(0), /magic "vsce", version 1/],
    ['another magic', () => { const b = good(); b[0] = 0x56; return b; }, /magic "vsce", version 1/],
    ['another version', () => { const b = good(); b[4] = 2; return b; }, /magic "vsce", version 1/],
    ['a serial longer than the file', () => { const b = good().subarray(0, 9); b[5] = 200; return b; }, /serial number claims 200 bytes/],
    ['a serial with a space', () => { const b = good(); b[8] = 0x20; return b; }, /serial number is malformed/],
    ['an unknown key mode', () => { const b = good(); b[11] = 7; return b; }, /key mode 0 \(individual\) or 1 \(universal\), got 7/],
    ['truncated protected information', () => good().subarray(0, 40), /claims/],
    ['a PIN with letters', () => { const s = state(); s.piv.pin.set([0x41], 0); return encodeEmulatedCardState(s); }, /pin to be 6 to 8 digits/],
  ])('refuses %s, naming the file and never the key, changing nothing', async (_name, build, pattern) => {
    const path = join(dir, 'card.state');
    const content = build();
    writeFileSync(path, content);
    await expect(openEmulatedCard(path)).rejects.toThrow(StateFileError);
    await expect(openEmulatedCard(path)).rejects.toThrow(pattern);
    await expect(openEmulatedCard(path)).rejects.toThrow(path);
    await openEmulatedCard(path).catch((error: Error) => expect(error.message).not.toContain(toHex(SEED).slice(0, 12)));
    expect(toHex(new Uint8Array(readFileSync(path)))).toBe(toHex(content));
  });
});
