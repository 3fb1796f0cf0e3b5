// This project's programs reaching a card through the real pcscd (DESIGN.md "What backs a running card": a PC/SC
// client library, here the libpcsclite binding `smartcard`): the typed VSC applet client over a pcscd connection,
// and an exclusive connection that keeps every other application's command out while it runs (what the rental
// server needs around one Write, patent 003 [0058]).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VscAppletClient } from '../../src/card-client/index.js';
import { connectPcscd, listPcscdReaders, PcscdError, withExclusiveCard } from '../../src/reader-driver/index.js';
import { runTool, startEmulator, waitForCard, type EmulatorProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const EMPTY_READER = 'Virtual PCD 00 01';
const SELECT_VSC = '00A4040006F05653430001';

let dir: string;
let emulator: EmulatorProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-pcscd-client-'));
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.json') });
  await waitForCard(READER, true);
});

afterAll(async () => {
  await emulator?.stop().catch(() => null);
  await rm(dir, { recursive: true, force: true });
});

describe('the pcscd client (libpcsclite through smartcard)', () => {
  it('lists pcscd\'s readers and which hold a card', async () => {
    const readers = await listPcscdReaders();
    expect(readers).toContainEqual({ name: READER, cardPresent: true });
    expect(readers.find((reader) => reader.name === EMPTY_READER)?.cardPresent).toBe(false);
  });

  it('carries the typed VSC applet client: serial, counter, SIGN AND INCREMENT verified with the card\'s key', async () => {
    const connection = await connectPcscd(READER);
    try {
      expect(connection.atr.length).toBeGreaterThan(2);
      const client = new VscAppletClient(connection);
      await client.select();
      expect(await client.serialNumber()).toMatch(/\S/);
      const before = await client.counter();
      const publicKey = await client.publicKey();
      const answer = await client.signAndIncrement(randomBytes(32));
      expect(answer.counter).toBe(before);
      expect(await client.counter()).toBe(before + 1n);
      expect(publicKey.length).toBe(32);
    } finally {
      connection.disconnect();
    }
  });

  it('an exclusive connection keeps other applications out until it ends', async () => {
    await withExclusiveCard(READER, async (connection) => {
      const client = new VscAppletClient(connection);
      await client.select();
      const other = await runTool('opensc-tool', ['-c', 'default', '-r', READER, '-s', SELECT_VSC]).then(
        () => 'answered',
        (error: unknown) => String((error as Error).message),
      );
      expect(other).not.toBe('answered');
      await expect(connectPcscd(READER)).rejects.toMatchObject({ code: 'pcscd.busy' });
      await client.counter(); // still ours
    });
    const { stdout } = await runTool('opensc-tool', ['-c', 'default', '-r', READER, '-s', SELECT_VSC]);
    expect(stdout).toMatch(/SW1=0x90, SW2=0x00/);
  });

  it('names what is wrong: no such reader, no card in the reader (exit 3), never a raw binding error', async () => {
    const unknown = await connectPcscd('No Such Reader 99').catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(PcscdError);
    expect((unknown as PcscdError).code).toBe('pcscd.no-reader');
    expect((unknown as Error).message).toContain(READER);
    const empty = await connectPcscd(EMPTY_READER).catch((error: unknown) => error);
    expect(empty).toBeInstanceOf(PcscdError);
    expect((empty as PcscdError).code).toBe('pcscd.no-card');
    expect((empty as PcscdError).exitCode).toBe(3);
  });
});
