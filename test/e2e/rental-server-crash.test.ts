// kill -9 of `vsc rental serve` at each step of a Write (patent 003 [0062]; the issue: "journals a SIGN AND INCREMENT
// before sending it and replays after a crash, so a crash between sign and append leaves no hole"): the compiled CLI
// owns a `vsc card emulate --vpcd` card through the real pcscd; VSC_CRASH_AT kills it by SIGKILL at the named step
// while programs write. After a restart the trail validates (ValidateTrail, [0060], with the card's key and the offset
// as trust root) and every acknowledged Write is in it; the Write that died is dropped, bridged or replayed as the
// step says.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/bytes/index.js';
import { VscAppletClient } from '../../src/card-client/index.js';
import { connectPcscd } from '../../src/reader-driver/index.js';
import { RentalClient, RentalSocketError, TrailFile, validateTrail, type AuditRecord, type TrustRoot } from '../../src/rental/index.js';
import { spawnVsc, startEmulator, waitForCard, type EmulatorProcess, type VscProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';

let dir: string;
let emulator: EmulatorProcess;
let trustRoot: TrustRoot;
let offset: bigint;
const acknowledged: AuditRecord[] = [];
const trailPath = () => join(dir, 'trail', 'trail.jsonl');
const backupPath = () => join(dir, 'backup', 'trail.jsonl');
const socketPath = () => join(dir, 'run', 'rental.sock');
const nonce = () => Uint8Array.from(randomBytes(16));

/**
 * A pcscd connection to the card for the test's own reads and for ValidateTrail, closed by `run`'s end. A server
 * killed inside its exclusive transaction holds the card until pcscd notices it died: wait for that.
 */
async function withCard<T>(run: (card: VscAppletClient) => Promise<T>): Promise<T> {
  let connection: Awaited<ReturnType<typeof connectPcscd>> | undefined;
  for (let attempt = 0; connection === undefined; attempt++) {
    connection = await connectPcscd(READER).catch(async (error: unknown) => {
      if ((error as { code?: string }).code !== 'pcscd.busy' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return undefined;
    });
  }
  try {
    const card = new VscAppletClient(connection);
    await card.select();
    return await run(card);
  } finally {
    connection.disconnect();
  }
}

async function serve(env: Record<string, string> = {}): Promise<VscProcess> {
  const server = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'trail'), '--backup-trail', join(dir, 'backup'), '--socket', socketPath()], { env });
  await server.waitFor(/serving on/, 30_000);
  return server;
}

/** Acknowledged Writes through a server that then stops normally. */
async function writeAcknowledged(count: number): Promise<void> {
  const server = await serve();
  const client = await RentalClient.connect(socketPath());
  try {
    for (let i = 0; i < count; i++) acknowledged.push((await client.write(nonce(), `acknowledged ${acknowledged.length}`)).record);
  } finally {
    client.close();
    expect((await server.stop()).code, server.output()).toBe(0);
  }
}

function includes(records: readonly AuditRecord[], record: AuditRecord): boolean {
  return records.some((r) => r.counter === record.counter && r.text === record.text && bytesEqual(r.nonce, record.nonce) && bytesEqual(r.signature, record.signature));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-rental-crash-'));
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
  await withCard(async (card) => {
    trustRoot = { serial: await card.serialNumber(), publicKey: await card.publicKey(), keyMode: 'individual' };
    offset = await card.counter();
  });
});

afterAll(async () => {
  await emulator?.stop().catch(() => null);
  rmSync(dir, { recursive: true, force: true });
});

/** What the restart must have done with the Write that died, given the card's counter E it was to be signed at. */
const OUTCOMES = {
  // The intent was journaled, the card never asked: dropped, the card's counter where it was.
  'rental.write.intent-journaled': { signed: false, kept: false, log: /^(?![\s\S]*replayed)(?![\s\S]*lost)/ },
  // The card signed, its answer died with the server: the value is named by a card-signed bridge.
  'rental.write.signed': { signed: true, kept: false, log: /signature was lost in a crash .*"skipped (\d+) \1"/ },
  // The answer was journaled, no trail written: replayed into both.
  'rental.write.answer-journaled': { signed: true, kept: true, log: /replayed the record for counter/ },
  // The primary was written, not the backup: the backup is brought up to date.
  'rental.write.appended': { signed: true, kept: true, log: /brought the backup .* up to date/ },
  // Both written, the program never answered: nothing to repair.
  'rental.write.backup-appended': { signed: true, kept: true, log: /^(?![\s\S]*replayed)/ },
  // Half a line in the primary: cut, and the journaled record replayed.
  'rental.write.torn': { signed: true, kept: true, log: /cut the torn last line [\s\S]*replayed the record for counter/ },
} as const;

describe('kill -9 of vsc rental serve at each crash point ([0062])', () => {
  for (const [point, outcome] of Object.entries(OUTCOMES)) {
    it(`${point}: after a restart the trail validates, no acknowledged Write is lost, and the Write that died is ${outcome.kept ? 'kept' : outcome.signed ? 'bridged' : 'dropped'}`, async () => {
      await writeAcknowledged(2);
      const before = await withCard((card) => card.counter());

      const doomed = await serve({ VSC_CRASH_AT: point });
      const clients = await Promise.all([0, 1, 2].map(() => RentalClient.connect(socketPath())));
      const dying = { nonce: nonce(), text: `dies at ${point}` };
      const first = clients[0]!.write(dying.nonce, dying.text).then(() => 'acknowledged', (error: unknown) => error);
      // Others queued behind it once it has reached the server: never acknowledged, never written.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const queued = clients.slice(1).map((client, i) => client.write(nonce(), `queued ${i}`).then(() => 'acknowledged', (error: unknown) => error));
      const results = await Promise.all([first, ...queued]);
      for (const client of clients) client.close();
      for (const result of results) expect(result).toBeInstanceOf(RentalSocketError);
      const death = await doomed.exited;
      expect(death.signal, doomed.output()).toBe('SIGKILL');
      expect(death.stderr).toContain(`crash point ${point}: killing this process`);
      expect(await withCard((card) => card.counter())).toBe(outcome.signed ? before + 1n : before);

      const restarted = await serve();
      expect(restarted.stderr(), restarted.output()).toMatch(outcome.log);
      const client = await RentalClient.connect(socketPath());
      const status = await client.status();
      client.close();
      expect((await restarted.stop()).code).toBe(0);
      expect(status.journal).toBe('empty');
      expect(status.gap).toBeNull();
      expect(readFileSync(backupPath(), 'utf8')).toBe(readFileSync(trailPath(), 'utf8'));

      const records = new TrailFile(trailPath()).readAll();
      for (const record of acknowledged) expect(includes(records, record), `acknowledged counter ${record.counter}`).toBe(true);
      const died = records.find((record) => bytesEqual(record.nonce, dying.nonce));
      expect(died !== undefined).toBe(outcome.kept);
      if (died !== undefined) expect(died).toMatchObject({ counter: before, text: dying.text });
      if (outcome.signed && !outcome.kept) expect(records.at(-1)).toMatchObject({ text: `skipped ${before} ${before}`, counter: before + 1n });
      expect(records.some((record) => record.text.startsWith('queued'))).toBe(false);

      // [0060] ValidateTrail with the card's key and the offset as trust root, the card reached through pcscd.
      const validation = await withCard((card) => validateTrail({
        card: { signAndIncrement: (h1) => card.signAndIncrement(h1, 'individual'), getCounter: () => card.counter() },
        trustRoot, offset, trail: new TrailFile(trailPath()), verifiers: null,
      }));
      expect(validation.valid).toBe(true);
      expect(validation.bridged.map((range) => range.from)).toEqual(records.filter((record) => record.text.startsWith('skipped')).map((record) => BigInt(record.text.split(' ')[1]!)));
      // The validation record went to the primary only: the next start brings the backup up to date.
    }, 120_000);
  }
});
