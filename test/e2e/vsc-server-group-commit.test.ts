// Group commit under kill -9 (issue 18): a real `vsc server start` on SQLite, armed to die by SIGKILL
// when a group of two or more operations is written and not yet committed (VSC_CRASH_AT=
// commit-group.committing). Concurrent removes from this process fill the groups. After the crash, read
// from the database the server left: every remove that was acknowledged is there, every one that is not
// there was not acknowledged, and the crashing group lost at least two. Restarted, the server takes the
// lost removes again from their holders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollCard, insertCard, mukFromOverride, removeCard, unchangedUpload, type InsertedCard, type ServerEndpoint } from '../../src/vsc-client/index.js';
import { CardStore, loadServerKeys, openDatabase } from '../../src/vsc-server/index.js';
import { runVsc, SPAWNED_PASSWORD, spawnVsc, type VscProcess } from '../support/index.js';

const CARDS = Array.from({ length: 12 }, (_, i) => `GROUP-${String(i).padStart(2, '0')}`);
const MUK = mukFromOverride('group-commit machine');
const ROUNDS = 5;

let dir = '';
let data = '';
let server: VscProcess | undefined;
let endpoint: ServerEndpoint;

async function startServer(crash: boolean): Promise<void> {
  server = spawnVsc(['server', 'start', '--data', data, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { env: { VSC_CRASH_AT: crash ? 'commit-group.committing' : undefined } });
  const [, url] = (await server.waitFor(/listening on (ws:\/\/\S+)\nserver public key:\n[0-9a-f]{64}/, 20_000)) as unknown as [string, string];
  const keys = loadServerKeys(data);
  endpoint = { url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey, timeoutMs: 20_000, retryMs: 0 };
}

/** The cards' states as the database holds them now (what survived the crash), read past the dead server. */
function statesOnDisk(): Record<string, string> {
  const database = new Database(join(data, 'vsc.db'), { readonly: true });
  try {
    const rows = database.prepare('SELECT serial, state FROM cards').all() as { serial: string; state: string }[];
    return Object.fromEntries(rows.map((row) => [row.serial, row.state]));
  } finally {
    database.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-group-crash-'));
  data = join(dir, 'server');
  const init = await runVsc(['server', 'init', '--data', data]);
  expect(init.code, init.stderr).toBe(0);
  const database = await openDatabase(join(data, 'vsc.db'));
  const tokens: string[] = [];
  try {
    const store = new CardStore(database);
    for (const serial of CARDS) tokens.push(await store.create(serial));
  } finally {
    await database.close();
  }
  // Enrolled one at a time: each operation is a group of one, which the armed crash point lets commit.
  await startServer(true);
  for (const [i, serial] of CARDS.entries()) await enrollCard(endpoint, serial, tokens[i]!, SPAWNED_PASSWORD, MUK);
}, 120_000);

afterAll(async () => {
  if (server?.running()) await server.stop('SIGTERM', 10_000);
  rmSync(dir, { recursive: true, force: true });
});

describe('group commit and kill -9', () => {
  it('loses no acknowledged operation and acknowledges none it lost; a restarted server takes the lost ones again', { timeout: 240_000 }, async () => {
    let inserted = new Map<string, InsertedCard>();
    let acknowledged: string[] = [];
    let unanswered: string[] = [];
    for (let round = 0; round < ROUNDS && unanswered.length === 0; round++) {
      // Inserted one at a time (groups of one), then removed all at once (groups of several).
      inserted = new Map();
      for (const serial of CARDS) inserted.set(serial, await insertCard(endpoint, serial, { password: SPAWNED_PASSWORD }, MUK));
      const results = await Promise.allSettled(CARDS.map((serial) => {
        const card = inserted.get(serial)!;
        return removeCard(endpoint, serial, unchangedUpload(card, MUK, card.counterWindow[0]));
      }));
      acknowledged = CARDS.filter((_, i) => results[i]!.status === 'fulfilled');
      // A remove left unanswered means the server died: no more rounds.
      unanswered = CARDS.filter((_, i) => results[i]!.status === 'rejected');
    }
    // The removes fail as the socket drops; the process's exit may be reported a moment later.
    await Promise.race([server!.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    expect(server!.running(), `the crash point fired within ${ROUNDS} rounds of concurrent removes (no group of two formed otherwise)`).toBe(false);
    const run = await server!.exited;
    expect(run.signal, server!.output()).toBe('SIGKILL');
    expect(server!.stderr()).toContain('crash point commit-group.committing: killing this process');

    const states = statesOnDisk();
    for (const serial of acknowledged) expect(states[serial], `${serial}: acknowledged, so committed`).toBe('idle');
    const lost = CARDS.filter((serial) => states[serial] === 'in-use');
    for (const serial of lost) expect(unanswered, `${serial}: lost, so never acknowledged`).toContain(serial);
    expect(lost.length, 'the crashing group held two or more removes, none committed').toBeGreaterThanOrEqual(2);

    // The holders send their removes again; a remove that was committed but not answered is answered as done.
    await startServer(false);
    for (const serial of unanswered) {
      const card = inserted.get(serial)!;
      await removeCard(endpoint, serial, unchangedUpload(card, MUK, card.counterWindow[0]));
    }
    await server!.stop('SIGTERM', 10_000);
    expect(Object.values(statesOnDisk())).toEqual(CARDS.map(() => 'idle'));
  });
});
