// End to end: `vsc card emulate` behind the real pcscd (vpcd driver), driven by OpenSC's opensc-tool.
// Checks the VSC applet interface of DESIGN.md "The VSC applet" and insert/remove of DESIGN.md "Reader".
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { vscCommands } from '../../src/card-client/index.js';
import { toHex } from '../../src/bytes/index.js';
import { commandHex, sendApdus, waitForCard, type ApduResult, startEmulator, type EmulatorProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';

const SELECT_VSC = '00 A4 04 00 06 F0 56 53 43 00 01';
const GET_SERIAL = '80 20 00 00 00';
const GET_COUNTER = '80 22 00 00 10';
const GET_PUBLIC_KEY = '80 26 00 00 20';
const UNKNOWN_INS = '80 7E 00 00 00';
/** SIGN AND INCREMENT, individual-key card: 80 24 00 00 20 h 00, built by the card client. */
const signAndIncrement = (h: Uint8Array): string => commandHex(vscCommands.signAndIncrement(h));

/** DER SubjectPublicKeyInfo header for Ed25519 (RFC 8410 section 4): SEQUENCE, AlgorithmIdentifier 1.3.101.112, BIT STRING of 33. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function ok(result: ApduResult | undefined, length?: number): Uint8Array {
  expect(result?.sw.toString(16)).toBe('9000');
  if (length !== undefined) expect(result?.data.length).toBe(length);
  return result!.data;
}

const counterOf = (bytes: Uint8Array): bigint => BigInt(`0x${toHex(bytes) || '0'}`);

let dir: string;
let emulator: EmulatorProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-e2e-'));
  // A card left in the reader (an emulator from an earlier run) would answer in place of ours.
  await waitForCard(READER, false, 5_000);
});

afterEach(async () => {
  const running = emulator;
  emulator = undefined;
  await running?.stop().catch(() => null);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function insert(stateFile: string): Promise<EmulatorProcess> {
  emulator = await startEmulator({ port: PORT, stateFile });
  await waitForCard(READER, true).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\nemulator stderr:\n${emulator?.stderr() ?? ''}`);
  });
  return emulator;
}

async function remove(card: EmulatorProcess): Promise<void> {
  const code = await card.stop();
  emulator = undefined;
  expect(code, `emulator stderr:\n${card.stderr()}`).toBe(0);
  await waitForCard(READER, false);
}

describe('vsc card emulate through pcscd and OpenSC', () => {
  it('selects the VSC applet, signs with an incrementing counter, answers 6D00, and leaves the reader empty', async () => {
    const card = await insert(join(dir, 'fresh.json'));
    const h1 = randomBytes(32);
    const h2 = randomBytes(32);
    const [select, counter, sign1, sign2, counterAfter, publicKey, unknown] = await sendApdus(READER, [
      SELECT_VSC,
      GET_COUNTER,
      signAndIncrement(h1),
      signAndIncrement(h2),
      GET_COUNTER,
      GET_PUBLIC_KEY,
      UNKNOWN_INS,
    ]);

    ok(select);
    const start = counterOf(ok(counter, 16));
    const key = ed25519PublicKey(ok(publicKey, 32));
    for (const [h, result, expected] of [
      [h1, sign1, start],
      [h2, sign2, start + 1n],
    ] as const) {
      const data = ok(result, 16 + 64);
      const used = data.subarray(0, 16);
      expect(counterOf(used)).toBe(expected);
      // h' = SHA-256(h ‖ counter) on an individual-key card; the signature is Ed25519 over h'.
      const digest = createHash('sha256').update(h).update(used).digest();
      expect(verify(null, digest, key, data.subarray(16))).toBe(true);
      // The same signature must not verify for another counter value.
      const other = createHash('sha256').update(h).update(Buffer.alloc(16, 0xff)).digest();
      expect(verify(null, other, key, data.subarray(16))).toBe(false);
    }
    expect(counterOf(ok(counterAfter, 16))).toBe(start + 2n);
    expect(unknown?.sw.toString(16)).toBe('6d00');
    expect(unknown?.data.length).toBe(0);

    await remove(card);
  });

  it('keeps counter, public key and serial across an emulator restart with the same state file', async () => {
    const stateFile = join(dir, 'restart.json');
    const first = await insert(stateFile);
    const [, serialBefore, , counterBefore, keyBefore] = await sendApdus(READER, [
      SELECT_VSC,
      GET_SERIAL,
      signAndIncrement(randomBytes(32)),
      GET_COUNTER,
      GET_PUBLIC_KEY,
    ]);
    const serial = ok(serialBefore);
    expect(serial.length).toBeGreaterThan(0);
    const counter = counterOf(ok(counterBefore, 16));
    expect(counter).toBeGreaterThan(0n);
    const key = ok(keyBefore, 32);
    await remove(first);

    const second = await insert(stateFile);
    const [select, serialAfter, counterAfter, keyAfter] = await sendApdus(READER, [SELECT_VSC, GET_SERIAL, GET_COUNTER, GET_PUBLIC_KEY]);
    ok(select);
    expect(toHex(ok(serialAfter))).toBe(toHex(serial));
    expect(counterOf(ok(counterAfter, 16))).toBe(counter);
    expect(toHex(ok(keyAfter, 32))).toBe(toHex(key));
    await remove(second);
  });
});

describe('npm run demo with pcscd running', () => {
  it('shows the card in pcscd\'s second vpcd reader and the reader empty afterwards', async () => {
    const { runDemo } = await import('../../src/demo/index.js');
    const lines: string[] = [];
    expect(await runDemo({ say: (line) => lines.push(line) })).toBe(0);
    const text = lines.join('\n');
    expect(text).toMatch(/^\s+1\s+Yes\s+Virtual PCD 00 01$/m);
    expect(text).toMatch(/Received \(SW1=0x90, SW2=0x00\):\n\s+00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02/);
    expect(text).toMatch(/opensc-tool -l {3}→ {3}1\s+No\s+Virtual PCD 00 01/);
  });
});
