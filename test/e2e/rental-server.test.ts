// `vsc rental serve|status|bridge` as a customer's machine runs them (patent 003 [0046], [0058], [0062]): the compiled
// CLI owns a `vsc card emulate --vpcd` card through the real pcscd, Writes from many programs run one at a time and
// are fsynced before they are acknowledged, another application using the PIV applet meanwhile is never interleaved
// with, bad input changes nothing, a lost primary trail comes back from its backup, diverging trails are refused, and
// a gap the server did not cause is bridged only on request.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VscAppletClient } from '../../src/card-client/index.js';
import { connectPcscd } from '../../src/reader-driver/index.js';
import { encodeRecordLine, RentalClient, TrailFile, validateThroughServer, verifyRecord, type TrustRoot } from '../../src/rental/index.js';
import { runVsc, spawnTsScript, spawnVsc, startEmulator, waitForCard, type EmulatorProcess, type VscProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const PIV_HOLDER = fileURLToPath(new URL('../support/rental-piv-holder.ts', import.meta.url));

let dir: string;
let emulator: EmulatorProcess;
let trustRoot: TrustRoot;
let offset: bigint;
const trailDir = () => join(dir, 'trail');
const backupDir = () => join(dir, 'backup');
const socketPath = () => join(dir, 'run', 'rental.sock');

/** The card as the keyfile would name it: read through pcscd, not from the server. */
async function readCard(): Promise<{ root: TrustRoot; counter: bigint }> {
  const connection = await connectPcscd(READER);
  try {
    const card = new VscAppletClient(connection);
    await card.select();
    return { root: { serial: await card.serialNumber(), publicKey: await card.publicKey(), keyMode: 'individual' }, counter: await card.counter() };
  } finally {
    connection.disconnect();
  }
}

async function serve(extra: readonly string[] = ['--backup-trail', backupDir()]): Promise<VscProcess> {
  const server = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', trailDir(), '--socket', socketPath(), '--json', ...extra]);
  await server.waitFor(/"event":"serving"/, 30_000);
  return server;
}

const nonce = () => Uint8Array.from(randomBytes(16));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-rental-e2e-'));
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
  ({ root: trustRoot, counter: offset } = await readCard());
});

afterAll(async () => {
  await emulator?.stop().catch(() => null);
  rmSync(dir, { recursive: true, force: true });
});

describe('vsc rental serve through pcscd', () => {
  it('serves many programs at once: every counter signed once, the trail consecutive, every acknowledged record in it and in the backup', async () => {
    const server = await serve();
    try {
      const clients = await Promise.all(Array.from({ length: 8 }, () => RentalClient.connect(socketPath())));
      const hello = await clients[0]!.hello();
      expect(hello.card.serial).toBe(trustRoot.serial);
      expect(hello.counter).toBe(offset);
      const acks = (await Promise.all(clients.map((client, c) => Promise.all(Array.from({ length: 6 }, (_, i) => client.write(nonce(), `p${c} execution ${i}`)))))).flat();
      for (const client of clients) client.close();
      const counters = acks.map((ack) => ack.record.counter).sort((a, b) => (a < b ? -1 : 1));
      expect(counters).toEqual(Array.from({ length: 48 }, (_, i) => offset + BigInt(i)));
      for (const ack of acks) expect(verifyRecord(ack.record, trustRoot)).toBe(true);
      const primary = readFileSync(join(trailDir(), 'trail.jsonl'), 'utf8');
      for (const ack of acks) expect(primary).toContain(`${encodeRecordLine(ack.record)}\n`);
      expect(new TrailFile(join(trailDir(), 'trail.jsonl')).readAll().map((record) => record.counter)).toEqual(counters);
      expect(readFileSync(join(backupDir(), 'trail.jsonl'), 'utf8')).toBe(primary);
      const status = await runVsc(['rental', 'status', '--socket', socketPath(), '--json']);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ card: { serial: trustRoot.serial }, counter: String(offset + 48n), trail: { records: 48 }, backup: { records: 48 }, journal: 'empty', gap: null });
    } finally {
      const stopped = await server.stop();
      expect(stopped.code, server.output()).toBe(0);
    }
    expect(existsSync(socketPath())).toBe(false);
  });

  it('another process using the PIV applet through pcscd is never interleaved with: the Write waits until it lets go', async () => {
    const server = await serve();
    const client = await RentalClient.connect(socketPath());
    try {
      const holder = spawnTsScript(PIV_HOLDER, [READER, '1500']);
      const holding = await holder.waitFor(/holding (\d+) select=(\w+)/);
      expect(holding[2]).toBe('9000');
      const write = client.write(nonce(), 'while PIV is busy').then((answer) => ({ answer, at: Date.now() }));
      const done = await holder.exited;
      expect(done.code, done.stderr).toBe(0);
      const piv = /still-piv (\d+) sw=(\w+)/.exec(done.stdout);
      expect(piv, done.stdout).not.toBeNull();
      // The PIV applet was still the holder's current application after the Write was asked for.
      expect(piv![2]).toMatch(/^(9000|61..)$/);
      const { answer, at } = await write;
      expect(at).toBeGreaterThanOrEqual(Number(piv![1]));
      expect(verifyRecord(answer.record, trustRoot)).toBe(true);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('bad input over the socket changes nothing: the trail and the card counter stay as they were', async () => {
    const server = await serve();
    const client = await RentalClient.connect(socketPath());
    try {
      const before = { trail: readFileSync(join(trailDir(), 'trail.jsonl')), counter: await client.counter() };
      const lines = ['{', '{"id":1,"op":"write","nonce":"zz","text":"x"}', `{"id":2,"op":"write","nonce":"${'0'.repeat(32)}","text":"x","expectCounter":"${before.counter + 5n}"}`, '{"id":3,"op":"reset"}'];
      const answers = await new Promise<string[]>((resolve, reject) => {
        const socket = connect(socketPath());
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('close', () => resolve(text.split('\n').filter((line) => line.length > 0)));
        socket.on('error', reject);
        socket.write(`${lines.join('\n')}\n${'x'.repeat(70_000)}\n`);
      });
      expect(answers.map((line) => (JSON.parse(line) as { error: { reason: string } }).error.reason)).toEqual(['input', 'input', 'counter-moved', 'input', 'input']);
      expect(readFileSync(join(trailDir(), 'trail.jsonl'))).toEqual(before.trail);
      expect(await client.counter()).toBe(before.counter);
      expect((await readCard()).counter).toBe(before.counter);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('refuses a second server on the same socket (exit 3) and leaves the first serving', async () => {
    const server = await serve();
    try {
      const second = await runVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'other-trail'), '--socket', socketPath()]);
      expect(second.code).toBe(3);
      expect(second.stderr).toMatch(/a rental server already answers on/);
      const client = await RentalClient.connect(socketPath());
      expect(await client.counter()).toBeGreaterThan(offset);
      client.close();
    } finally {
      await server.stop();
    }
  });
});

describe('backup trail ([0062])', () => {
  it('a primary deleted while the server was stopped is restored from the backup at start', async () => {
    const backup = readFileSync(join(backupDir(), 'trail.jsonl'), 'utf8');
    rmSync(join(trailDir(), 'trail.jsonl'));
    const server = await serve();
    try {
      expect(server.stderr()).toMatch(/restored the trail .* from its backup/);
      expect(readFileSync(join(trailDir(), 'trail.jsonl'), 'utf8')).toBe(backup);
      const client = await RentalClient.connect(socketPath());
      const trail = new TrailFile(join(trailDir(), 'trail.jsonl'));
      await expect(validateThroughServer({ link: client, trustRoot, offset, text: (c) => `${c}`, records: () => trail.recordBatches() })).resolves.toMatchObject({ valid: true });
      client.close();
    } finally {
      await server.stop();
    }
  });

  it('diverging trails make `vsc rental serve` refuse to start (exit 3), naming the first differing line', async () => {
    const path = join(backupDir(), 'trail.jsonl');
    const original = readFileSync(path, 'utf8');
    const lines = original.split('\n');
    lines[4] = JSON.stringify({ ...(JSON.parse(lines[4]!) as object), text: 'rewritten' });
    writeFileSync(path, lines.join('\n'));
    const run = await runVsc(['rental', 'serve', '--reader', READER, '--trail', trailDir(), '--backup-trail', backupDir(), '--socket', socketPath()]);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(/differ at line 5/);
    expect(existsSync(socketPath())).toBe(false);
    writeFileSync(path, original);
  });
});

describe('a gap the server did not cause', () => {
  it('is reported at start, shown by `vsc rental status`, and bridged by `vsc rental bridge` with a card-signed record', async () => {
    // Another program signs outside the server while it is stopped.
    const connection = await connectPcscd(READER);
    try {
      const card = new VscAppletClient(connection);
      await card.select();
      await card.signAndIncrement(new Uint8Array(32));
      await card.signAndIncrement(new Uint8Array(32));
    } finally {
      connection.disconnect();
    }
    const server = await serve();
    try {
      expect(server.stderr()).toMatch(/counters \d+\.\.\d+ carry no record.*vsc rental bridge/);
      const status = JSON.parse((await runVsc(['rental', 'status', '--socket', socketPath(), '--json'])).stdout) as { gap: { from: string; to: string } };
      expect(BigInt(status.gap.to) - BigInt(status.gap.from)).toBe(1n);
      const bridge = await runVsc(['rental', 'bridge', '--socket', socketPath(), '--json']);
      expect(bridge.code, bridge.stderr).toBe(0);
      expect(JSON.parse(bridge.stdout)).toMatchObject({ event: 'bridged', from: status.gap.from, to: status.gap.to, text: `skipped ${status.gap.from} ${status.gap.to}` });
      const client = await RentalClient.connect(socketPath());
      const trail = new TrailFile(join(trailDir(), 'trail.jsonl'));
      const validation = await validateThroughServer({ link: client, trustRoot, offset, text: (c) => `${c}`, records: () => trail.recordBatches() });
      expect(validation.bridged).toEqual([{ from: BigInt(status.gap.from), to: BigInt(status.gap.to) }]);
      client.close();
      const none = await runVsc(['rental', 'bridge', '--socket', socketPath()]);
      expect(none.stdout).toMatch(/nothing to bridge/);
    } finally {
      await server.stop();
    }
  });

  it('`vsc rental status` without a server says so (exit 3)', async () => {
    const run = await runVsc(['rental', 'status', '--socket', socketPath()]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/no rental server answers on/);
  });
});
