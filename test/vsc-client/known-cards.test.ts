// A rogue server cannot weaken the password's KDF or roll a card back (issue 13): the client refuses
// parameters below the design's and below what this machine last used, and a sealed version older
// than it last saw. The "rogue server" is a real server whose database the test rewrites. Also: an
// unknown and an enrolled serial look the same on the wire before the owner is proven.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { connectSession } from '../../src/channel/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  KnownCards, enrollCard, insertCard, mukFromOverride, removeCard, unchangedUpload, type ServerEndpoint,
} from '../../src/vsc-client/index.js';
import { checkKdfParams, decodeChallenge, encodeChallenge, encodeHello, type Operation } from '../../src/vsc-protocol/index.js';
import type { CardStore, VscDatabase } from '../../src/vsc-server/index.js';
import { startInProcessServer, type InProcessServer } from '../support/index.js';

const PASSWORD = utf8('rogue server test password');
const MUK = mukFromOverride('known-cards machine');
let deployment: InProcessServer;
let dir: string;
let database: VscDatabase;
let store: CardStore;
let endpoint: ServerEndpoint;

beforeAll(async () => {
  deployment = await startInProcessServer('vsc-known-cards-');
  ({ dir, database, store } = deployment);
  endpoint = { ...deployment.endpoint, knownCards: new KnownCards(join(dir, 'machine')) };
});
afterAll(() => deployment.close());

const password = (): Uint8Array => PASSWORD.slice();

/** Enrolls `serial`, inserts and removes it once (sealed version 2), as this machine. */
async function usedCard(serial: string): Promise<void> {
  await enrollCard(endpoint, serial, await store.create(serial), password(), MUK);
  const inserted = await insertCard(endpoint, serial, { password: password() }, MUK);
  await removeCard(endpoint, serial, unchangedUpload(inserted, MUK, inserted.counterWindow[0]));
}

describe('what the client remembers of its cards', { timeout: 60_000 }, () => {
  it('remembers the KDF parameters and the newest sealed version it uploaded', async () => {
    await usedCard('KC-1');
    expect(endpoint.knownCards!.get('KC-1')).toEqual({ memoryKiB: 65536, iterations: 3, parallelism: 1, sealedVersion: '2' });
  });

  it('refuses a server that serves an older sealed version than this machine uploaded (exit 4), and opens nothing', async () => {
    await usedCard('KC-2');
    // The rogue server restores the enrollment's upload (version 1): a replay of the card's older state.
    const row = await database.db.selectFrom('cards').select(['sealed']).where('serial', '=', 'KC-2').executeTakeFirstOrThrow();
    await database.db.updateTable('cards').set({ sealed_version: 1, sealed: row.sealed }).where('serial', '=', 'KC-2').execute();
    await expect(insertCard(endpoint, 'KC-2', { password: password() }, MUK)).rejects.toMatchObject({ code: 'server.rollback', exitCode: ExitCode.authenticationFailed });
  });

  it('refuses a server that lowers the parameters below what this machine last used, before deriving anything', async () => {
    await usedCard('KC-3');
    // This machine last derived with raised parameters; the server now offers the old ones.
    const known = endpoint.knownCards!.get('KC-3')!;
    endpoint.knownCards!.remember('KC-3', { ...known, memoryKiB: 131072 }, 2n);
    const started = performance.now();
    await expect(insertCard(endpoint, 'KC-3', { password: password() }, MUK)).rejects.toMatchObject({ code: 'server.rollback', message: expect.stringMatching(/weaker password parameters/) });
    expect(performance.now() - started).toBeLessThan(150); // no Argon2id run (it takes longer at 64 MiB)
  });

  it('refuses a challenge that offers less than the design\'s 64 MiB and t = 3, whatever this machine remembers', async () => {
    // A server whose database says 8 MiB cannot even encode the challenge: it refuses the operation.
    await enrollCard(endpoint, 'KC-4', await store.create('KC-4'), password(), MUK);
    await database.db.updateTable('cards').set({ kdf_memory_kib: 8192, kdf_iterations: 1 }).where('serial', '=', 'KC-4').execute();
    await expect(insertCard({ ...endpoint, knownCards: new KnownCards(join(dir, 'another machine')) }, 'KC-4', { password: password() }, MUK)).rejects.toMatchObject({ code: 'server.protocol' });
    // A rogue server's own code could send one: the client's decoder refuses it before any Argon2id.
    const challenge = { salt: new Uint8Array(16), memoryKiB: 65536, iterations: 3, parallelism: 1, ri1: new Uint8Array(32), keyfileKey: new Uint8Array(32) };
    const frame = encodeChallenge('insert', challenge);
    const memoryField = Buffer.from(frame).indexOf(Buffer.from([2, 0, 0, 0, 4, 0, 1, 0, 0]));
    expect(memoryField).toBeGreaterThan(0);
    frame.set([0, 0, 0x20, 0], memoryField + 5); // 8192 KiB
    expect(() => decodeChallenge('insert', frame)).toThrow(/expected "memoryKiB" as an integer in 65536\.\.1048576, got 8192/);
    expect(() => checkKdfParams({ algorithm: 'argon2id', ...challenge, iterations: 2 })).toThrow(/iterations to be an integer in 3\.\.64/);
  });
});

describe('before the owner is proven', () => {
  /** The challenge a peer without the password gets for `serial`. */
  async function challengeOf(operation: Operation, serial: string) {
    const session = await connectSession(endpoint.url, endpoint.serverKey);
    try {
      await session.send(encodeHello({ operation, serial }));
      const answer = decodeChallenge(operation, await session.receive());
      if (answer.refused) throw new Error(`refused: ${answer.refusal.reason}`);
      return answer.message;
    } finally {
      session.close();
    }
  }

  it('an unknown serial and an enrolled one get the same challenge: default parameters and a salt that never changes', async () => {
    await store.create('KC-BLANK');
    for (const serial of ['KC-NOPE', 'KC-BLANK']) {
      const first = await challengeOf('insert', serial);
      const second = await challengeOf('insert', serial);
      expect(first).toMatchObject({ memoryKiB: 65536, iterations: 3, parallelism: 1 });
      expect(second.salt).toEqual(first.salt);
      expect(second.ri1).not.toEqual(first.ri1);
    }
    const enrolled = await challengeOf('insert', 'KC-1');
    expect(Object.keys(enrolled).sort()).toEqual(Object.keys(await challengeOf('insert', 'KC-NOPE')).sort());
    // Enroll: the card id comes wrapped; without the token it is random bytes of the same length.
    const wrappedUnknown = (await challengeOf('enroll', 'KC-NOPE')).wrappedCardId!;
    const wrappedBlank = (await challengeOf('enroll', 'KC-BLANK')).wrappedCardId!;
    expect(wrappedUnknown).toHaveLength(32);
    expect(wrappedBlank).toHaveLength(32);
  });
});
