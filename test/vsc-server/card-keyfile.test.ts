// `vsc admin keyfile` on the server's side (patent 004 [0044]): the keyfile names the enrolled card by
// serial and by the public key stored at its enrollment; a card not yet enrolled, unknown or destroyed
// gets none (exit 3), and a keyfile for enrollment names no card.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { OperationRefused, checkKeyfileCard, openKeyfile } from '../../src/vsc-protocol/index.js';
import { CardStore, initServerData, issueCardKeyfile, openServerDatabase, type Enrollment, type ServerKeys, type VscDatabase } from '../../src/vsc-server/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const CARD_KEY = ed25519KeyFromSeed(bytes(0x44)).publicKey;
const ENROLLMENT: Enrollment = {
  kdfSalt: bytes(2, 16), kdfMemoryKiB: 65536, kdfIterations: 3, kdfParallelism: 1, authVerifier: bytes(1), sealed: bytes(3, 64), publicKey: CARD_KEY,
};

let dir: string;
let keys: ServerKeys;
let database: VscDatabase;
let store: CardStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-card-keyfile-'));
  keys = await initServerData(join(dir, 'server'));
  database = await openServerDatabase(join(dir, 'server'));
  store = new CardStore(database);
  await store.enroll('KEYED-1', await store.create('KEYED-1'), bytes(0xa), ENROLLMENT);
  await store.create('WAITING-1');
  await store.enroll('GONE-1', await store.create('GONE-1'), bytes(0xa), ENROLLMENT);
  await store.destroy('GONE-1', 'admin');
});
afterAll(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

const open = (file: Uint8Array) => openKeyfile(file, { masterKey: keys.masterKey, serverSigningPublicKey: ed25519KeyFromSeed(keys.signingSeed).publicKey });

async function refused(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  expect((error as OperationRefused).exitCode).toBe(ExitCode.refusedByState);
  return error as OperationRefused;
}

describe('issuing a keyfile for a card', () => {
  it('names the enrolled card by serial and the public key it enrolled with; the client check passes for that card only', async () => {
    const keyfile = open(await issueCardKeyfile(database, keys, { installId: 'laptop-1', card: { serial: 'KEYED-1' } }));
    expect(keyfile.installId).toBe('laptop-1');
    expect(keyfile.card?.serial).toBe('KEYED-1');
    expect(toHex(keyfile.card!.publicKey)).toBe(toHex(CARD_KEY));
    expect(() => checkKeyfileCard(keyfile, { serial: 'KEYED-1', publicKey: CARD_KEY })).not.toThrow();
    expect(() => checkKeyfileCard(keyfile, { serial: 'KEYED-1', publicKey: ed25519KeyFromSeed(bytes(0x45)).publicKey })).toThrow(/another public key/);
  });

  it('refuses a card not yet enrolled, pointing at --enrollment; an unknown and a destroyed card too', async () => {
    const waiting = await refused(issueCardKeyfile(database, keys, { installId: 'laptop-1', card: { serial: 'WAITING-1' } }));
    expect(waiting.reason).toBe('not-enrolled');
    expect(waiting.message).toMatch(/--enrollment/);
    expect((await refused(issueCardKeyfile(database, keys, { installId: 'laptop-1', card: { serial: 'NOPE-1' } }))).reason).toBe('unknown-card');
    expect((await refused(issueCardKeyfile(database, keys, { installId: 'laptop-1', card: { serial: 'GONE-1' } }))).reason).toBe('wrong-state');
  });

  it('for enrollment names no card', async () => {
    const keyfile = open(await issueCardKeyfile(database, keys, { installId: 'laptop-1', card: 'enrollment' }));
    expect(keyfile.card).toBeUndefined();
    expect(() => checkKeyfileCard(keyfile, { serial: 'KEYED-1', publicKey: CARD_KEY })).toThrow(/only to enroll/);
  });
});
