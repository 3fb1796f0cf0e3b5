// Race (issue 6, DESIGN.md "Card states"): 16 machines insert one idle card at once; exactly one wins
// each round and the others are refused by state (exit code 3). 200 rounds on one server on SQLite
// and 200 on two server processes sharing one PostgreSQL, through the client library with every
// proof held back until all 16 have sent theirs; then a smaller race of real `vsc card insert`
// processes on each, so the exit code is seen from real processes.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, utf8, wipe } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  deriveOwnerKeys, type OwnerKeys, MUK_LENGTH, OperationRefused, insertCard, removeCard, unchangedUpload, type InsertedCard,
  type ServerEndpoint,
} from '../../src/vsc-client/index.js';
import {
  ProofBarrier, startHoldingRelay, type HoldingRelay, POSTGRES_TWO_SERVERS, SQLITE, readTables, startDeployment,
  type ServerHarness,
} from '../support/index.js';

const CONTENDERS = 16;
const ROUNDS = 200;
const CLI_ROUNDS = 5;
const PASSWORD = 'race password';

/** Successful `operation`s of `serial` in the events table (read from the database: refusals make it large). */
async function successful(harness: ServerHarness, serial: string, operation: string): Promise<number> {
  const events = (await readTables(harness)).get('events')!;
  return events.filter((event) => event['serial'] === serial && event['operation'] === operation && event['outcome'] === 'ok').length;
}

/** The owner keys of `serial`, derived once from the password and the card's Argon2id parameters. */
async function ownerKeys(harness: ServerHarness, serial: string): Promise<OwnerKeys> {
  const row = (await readTables(harness)).get('cards')!.find((card) => card['serial'] === serial) as { kdf_salt: Buffer; kdf_memory_kib: number; kdf_iterations: number; kdf_parallelism: number };
  return deriveOwnerKeys(utf8(PASSWORD), { algorithm: 'argon2id', salt: new Uint8Array(row.kdf_salt), memoryKiB: row.kdf_memory_kib, iterations: row.kdf_iterations, parallelism: row.kdf_parallelism });
}

type Outcome = { readonly contender: number; readonly card: InsertedCard } | { readonly contender: number; readonly error: unknown };

describe.each([SQLITE, POSTGRES_TWO_SERVERS])('16 machines insert one idle card at once on $name', (deployment) => {
  let harness: ServerHarness;
  const barrier = new ProofBarrier();
  let relays: HoldingRelay[] = [];
  beforeAll(async () => {
    harness = await startDeployment(deployment, { port: 23_000 + (process.pid % 2000) + 2 * (deployment === SQLITE ? 0 : 1) });
    relays = await Promise.all(harness.urls.map((url) => startHoldingRelay({ host: '127.0.0.1', port: Number(new URL(url).port) }, barrier)));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(relays.map((relay) => relay.close()));
    await harness.close();
  });

  it(`${ROUNDS} rounds through the client library: exactly one winner each round, the other ${CONTENDERS - 1} refused with exit code 3; the winner removes through another server process`, { timeout: 600_000 }, async () => {
    await harness.enroll('RACE', PASSWORD);
    const keys = await ownerKeys(harness, 'RACE');
    const serverKey = fromHex(harness.serverKey());
    const masterKey = fromHex(readFileSync(join(harness.data, 'master.key'), 'utf8').trim());
    const direct: ServerEndpoint[] = harness.urls.map((url) => ({ url, serverKey, masterKey }));
    const held: ServerEndpoint[] = relays.map((relay) => ({ url: relay.url, serverKey, masterKey }));
    const muks = Array.from({ length: CONTENDERS }, () => new Uint8Array(randomBytes(MUK_LENGTH)));
    const reasons = new Map<string, number>();
    const winsByServer = harness.urls.map(() => 0);
    const started = performance.now();

    for (let round = 0; round < ROUNDS; round++) {
      barrier.begin(CONTENDERS);
      const outcomes = await Promise.all(
        muks.map((muk, contender) =>
          insertCard(held[contender % held.length]!, 'RACE', { keys }, muk).then(
            (card): Outcome => ({ contender, card }),
            (error: unknown): Outcome => ({ contender, error }),
          ),
        ),
      );
      const winners = outcomes.filter((outcome) => 'card' in outcome);
      const refusals = outcomes.filter((outcome) => 'error' in outcome).map((outcome) => outcome.error);
      expect(winners, `round ${round}: ${refusals.map(String).join('; ')}`).toHaveLength(1);
      for (const error of refusals) {
        expect(error, `round ${round}`).toBeInstanceOf(OperationRefused);
        expect((error as OperationRefused).exitCode, `round ${round}: ${String(error)}`).toBe(ExitCode.refusedByState);
        const reason = (error as OperationRefused).reason;
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
      const { contender, card } = winners[0]!;
      winsByServer[contender % held.length]!++;
      try {
        // The other process (when there are two) checks the holder the winning one recorded.
        await removeCard(direct[(contender + 1) % direct.length]!, 'RACE', unchangedUpload(card, muks[contender]!, card.counterWindow[0]));
      } finally {
        wipe(card.plaintext, card.holderSecret, card.keys.authKey, card.keys.protectionKey);
      }
    }

    const seconds = (performance.now() - started) / 1000;
    console.log(`race on ${deployment.name}: ${ROUNDS} rounds in ${seconds.toFixed(1)} s; refusals by reason ${JSON.stringify(Object.fromEntries(reasons))}; wins by server process ${JSON.stringify(winsByServer)}`);
    expect(barrier.stalled, 'rounds whose 16 proofs did not all reach the barrier').toBe(0);
    expect([...reasons.values()].reduce((sum, count) => sum + count, 0)).toBe(ROUNDS * (CONTENDERS - 1));
    if (harness.servers > 1) for (const wins of winsByServer) expect(wins, 'every server process wins some rounds').toBeGreaterThan(0);
    expect(await successful(harness, 'RACE', 'insert')).toBe(ROUNDS);
    expect(await successful(harness, 'RACE', 'remove')).toBe(ROUNDS);
    expect(await harness.state('RACE')).toBe('idle');
    wipe(keys.authKey, keys.protectionKey);
  });

  it(`${CLI_ROUNDS} rounds of real \`vsc card insert\` processes: one keeps running, the others exit 3`, { timeout: 600_000 }, async () => {
    await harness.enroll('RACE-CLI', PASSWORD);
    for (let round = 0; round < CLI_ROUNDS; round++) {
      // startInsert spreads the processes round-robin over the server processes.
      const started = await Promise.all(Array.from({ length: CONTENDERS }, (_, i) => harness.startInsert('RACE-CLI', PASSWORD, `race-${i}`)));
      const outcomes = await Promise.all(started.map(async ({ child, exited }) => (child.exitCode === null && child.signalCode === null ? 'running' : (await exited).code)));
      const winners = started.filter((_, i) => outcomes[i] === 'running');
      expect(winners, `round ${round}: ${JSON.stringify(outcomes)}`).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome !== 'running' && outcome !== 3), `round ${round}`).toEqual([]);
      winners[0]!.child.kill('SIGTERM');
      expect((await winners[0]!.exited).code).toBe(0);
    }
    expect(await successful(harness, 'RACE-CLI', 'insert')).toBe(CLI_ROUNDS);
    expect(await successful(harness, 'RACE-CLI', 'remove')).toBe(CLI_ROUNDS);
    expect(await harness.state('RACE-CLI')).toBe('idle');
  });
});
