// Client and server operations end to end in one process: a real WebSocket server on SQLite, the
// protected channel, Argon2id, sealing. Every row of Fig. 4 and the refusals with their exit codes.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  mukFromOverride, OperationRefused, destroyCard, enrollCard, extendCounterWindow, insertCard, recoverCard,
  removeCard, unblockCard, unchangedUpload as upload, type ServerEndpoint,
} from '../../src/vsc-client/index.js';
import { decodeProtectedInformation } from '../../src/card/index.js';
import { connectSession } from '../../src/channel/index.js';
import { decodeChallenge, encodeHello, issueKeyfile } from '../../src/vsc-protocol/index.js';
import { issueCardKeyfile, loadServerKeys, startVscServer, type CardStore, type RunningVscServer, type ServerKeys, type VscDatabase } from '../../src/vsc-server/index.js';
import { startInProcessServer, type InProcessServer } from '../support/index.js';

const PASSWORD = utf8('correct horse battery staple');
const MUK_A = mukFromOverride('machine-a');
const MUK_B = mukFromOverride('machine-b');
let deployment: InProcessServer;
let dir: string;
let database: VscDatabase;
let store: CardStore;
let endpoint: ServerEndpoint;

beforeAll(async () => {
  deployment = await startInProcessServer('vsc-ops-test-');
  ({ dir, database, store, endpoint } = deployment);
});
afterAll(() => deployment.close());

async function refused(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  return error as OperationRefused;
}

describe('operations through the protected channel', { timeout: 60_000 }, () => {
  it('enroll, insert, refuse a second machine, recover only from the holder, insert again, remove, destroy', async () => {
    const token = await store.create('OPS-1');
    const { publicKey } = await enrollCard(endpoint, 'OPS-1', token, PASSWORD, MUK_A);
    // The token is spent: the challenge's wrapped card id no longer opens with it (exit 4).
    await expect(enrollCard(endpoint, 'OPS-1', token, PASSWORD, MUK_A)).rejects.toMatchObject({ code: 'enroll.token', exitCode: ExitCode.authenticationFailed });

    const inserted = await insertCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_A);
    const info = decodeProtectedInformation(inserted.plaintext);
    expect(info.counter).toBe(0n);
    expect(inserted.counterWindow[0]).toBe(0n);
    expect((await store.show('OPS-1')).state).toBe('in-use');
    expect(publicKey).toHaveLength(32);

    const second = await refused(insertCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_B));
    expect(second.exitCode).toBe(ExitCode.refusedByState);
    // The refused machine did not become the holder: it cannot recover, the holder can.
    expect((await refused(recoverCard(endpoint, 'OPS-1', PASSWORD, MUK_B))).exitCode).toBe(ExitCode.mukMismatch);
    await recoverCard(endpoint, 'OPS-1', PASSWORD, MUK_A);
    expect((await store.show('OPS-1')).state).toBe('idle');

    const again = await insertCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_B);
    expect(again.counterWindow[0]).toBe(inserted.counterWindow[1]); // the recovered window counts as used
    const given = upload(again, MUK_B, again.counterWindow[0] + 3n);
    // Another process on the same machine, with the password but not the holder secret, cannot remove it.
    expect((await refused(removeCard(endpoint, 'OPS-1', { ...given, holderSecret: new Uint8Array(32) }))).exitCode).toBe(ExitCode.mukMismatch);
    await removeCard(endpoint, 'OPS-1', given);
    expect(await store.show('OPS-1')).toMatchObject({ state: 'idle', sealedVersion: 2n });

    const third = await insertCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_A);
    expect(third.sealedVersion).toBe(2n);
    expect(third.counterWindow[0]).toBe(again.counterWindow[0] + 3n);
    await destroyCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_A);
    expect((await store.show('OPS-1')).state).toBe('destroyed');
    for (const attempt of [() => insertCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_A), () => recoverCard(endpoint, 'OPS-1', PASSWORD, MUK_A), () => destroyCard(endpoint, 'OPS-1', { password: PASSWORD }, MUK_A)]) {
      const refusal = await refused(attempt());
      expect(refusal.reason).toBe('wrong-state');
      expect(refusal.exitCode).toBe(ExitCode.refusedByState);
    }
  });

  it('a wrong password exits 4 and counts; a client without the master key exits 4 and does not count; the recovery code lifts the back-off', async () => {
    const token = await store.create('OPS-2');
    const { recoveryCode } = await enrollCard(endpoint, 'OPS-2', token, PASSWORD, MUK_A);
    expect((await refused(insertCard(endpoint, 'OPS-2', { password: utf8('wrong') }, MUK_B))).exitCode).toBe(ExitCode.authenticationFailed);
    expect((await store.show('OPS-2')).authFailures).toBe(1);
    const rogue = await refused(insertCard({ ...endpoint, masterKey: new Uint8Array(32) }, 'OPS-2', { password: PASSWORD }, MUK_A));
    expect(rogue.reason).toBe('implementation');
    expect(rogue.exitCode).toBe(ExitCode.authenticationFailed);
    expect(await store.show('OPS-2')).toMatchObject({ state: 'idle', authFailures: 1 });
    // Machine B is within its back-off (1 s) even with the right password; the recovery code lifts it.
    expect((await refused(insertCard(endpoint, 'OPS-2', { password: PASSWORD }, MUK_B))).reason).toBe('retry-later');
    await unblockCard(endpoint, 'OPS-2', recoveryCode);
    expect((await store.show('OPS-2')).authFailures).toBe(0);
    await insertCard(endpoint, 'OPS-2', { password: PASSWORD }, MUK_B);
    await recoverCard(endpoint, 'OPS-2', PASSWORD, MUK_B);
  });

  it('an unknown card answers like a wrong password (exit 4); a wrong server key gets no session at all', async () => {
    expect((await refused(insertCard(endpoint, 'NOPE', { password: PASSWORD }, MUK_A))).exitCode).toBe(ExitCode.authenticationFailed);
    await expect(insertCard({ ...endpoint, serverKey: new Uint8Array(32).fill(9) }, 'OPS-2', { password: PASSWORD }, MUK_A)).rejects.toMatchObject({ code: 'channel.handshake' });
  });

  it('a peer that opens a session and stalls before proving anything keeps no one from the card', async () => {
    const token = await store.create('OPS-4');
    await enrollCard(endpoint, 'OPS-4', token, PASSWORD, MUK_A);
    const stalled = await connectSession(endpoint.url, endpoint.serverKey, { timeoutMs: 30_000 });
    await stalled.send(encodeHello({ operation: 'insert', serial: 'OPS-4' }));
    expect(decodeChallenge('insert', await stalled.receive()).refused).toBe(false);
    const inserted = await insertCard(endpoint, 'OPS-4', { password: PASSWORD }, MUK_A); // while the other one waits
    expect((await store.show('OPS-4')).state).toBe('in-use');
    stalled.close();
    await recoverCard(endpoint, 'OPS-4', PASSWORD, MUK_A);
    expect(inserted.counterWindow[0]).toBe(0n);
  });

  it('the holder extends its counter window while online; the same machine without the holder secret cannot', async () => {
    const token = await store.create('OPS-3');
    await enrollCard(endpoint, 'OPS-3', token, PASSWORD, MUK_A);
    const inserted = await insertCard(endpoint, 'OPS-3', { password: PASSWORD }, MUK_A);
    const holder = { muk: MUK_A, holderSecret: inserted.holderSecret };
    expect((await refused(extendCounterWindow(endpoint, 'OPS-3', { ...holder, holderSecret: new Uint8Array(32) }))).exitCode).toBe(ExitCode.mukMismatch);
    expect((await refused(extendCounterWindow(endpoint, 'OPS-3', { ...holder, muk: MUK_B }))).exitCode).toBe(ExitCode.mukMismatch);
    const window = await extendCounterWindow(endpoint, 'OPS-3', holder);
    expect(window).toEqual([inserted.counterWindow[1], 2n * inserted.counterWindow[1] - inserted.counterWindow[0]]);
    expect((await store.show('OPS-3')).counterWindow).toEqual(window);
    await removeCard(endpoint, 'OPS-3', upload(inserted, MUK_A, window[0]));
  });
});

describe('a deployment that demands keyfiles ([0044])', { timeout: 60_000 }, () => {
  let strict: RunningVscServer;
  let strictEndpoint: ServerEndpoint;
  let keys: ServerKeys;
  beforeAll(async () => {
    keys = loadServerKeys(join(dir, 'server'));
    strict = await startVscServer({ keys, database, implementationProofs: 'both' });
    // For enrollment: a keyfile that names no card yet.
    const keyfile = await issueCardKeyfile(database, keys, { installId: 'install-7', card: 'enrollment' });
    strictEndpoint = { ...endpoint, url: strict.url, keyfile };
  });
  afterAll(() => strict.close());

  it('refuses a client without a keyfile or with another server\'s keyfile (exit 4), and serves one with its own', async () => {
    const token = await store.create('KF-1');
    const refusedEnroll = await refused(enrollCard({ ...endpoint, url: strict.url }, 'KF-1', token, PASSWORD, MUK_A));
    expect(refusedEnroll.reason).toBe('implementation');
    expect(refusedEnroll.exitCode).toBe(ExitCode.authenticationFailed);
    const foreign = issueKeyfile({ signingSeed: new Uint8Array(32).fill(5), keyfileSecret: new Uint8Array(32).fill(6), masterKey: endpoint.masterKey!, installId: 'install-7' });
    await expect(enrollCard({ ...strictEndpoint, keyfile: foreign }, 'KF-1', token, PASSWORD, MUK_A)).rejects.toMatchObject({ code: 'keyfile.invalid', exitCode: ExitCode.authenticationFailed });
    await enrollCard(strictEndpoint, 'KF-1', token, PASSWORD, MUK_A);
    // The enrollment keyfile names no card: insert opens the card, refuses, and gives it straight back.
    await expect(insertCard(strictEndpoint, 'KF-1', { password: PASSWORD }, MUK_A)).rejects.toMatchObject({ code: 'keyfile.no-card', exitCode: ExitCode.authenticationFailed });
    expect((await store.show('KF-1')).state).toBe('idle');
    const cardKeyfile = await issueCardKeyfile(database, keys, { installId: 'install-7', card: { serial: 'KF-1' } });
    const inserted = await insertCard({ ...strictEndpoint, keyfile: cardKeyfile }, 'KF-1', { password: PASSWORD }, MUK_A);
    expect((await store.show('KF-1')).state).toBe('in-use');
    await recoverCard(strictEndpoint, 'KF-1', PASSWORD, MUK_A);
    expect(inserted.counterWindow[0]).toBe(0n);
  });

  it('[0044]-[0047]: a keyfile issued for card A does not open card B; B is given back at once, unchanged', async () => {
    for (const serial of ['KF-A', 'KF-B']) await enrollCard(strictEndpoint, serial, await store.create(serial), PASSWORD, MUK_A);
    const forA = await issueCardKeyfile(database, keys, { installId: 'install-7', card: { serial: 'KF-A' } });
    await expect(insertCard({ ...strictEndpoint, keyfile: forA }, 'KF-B', { password: PASSWORD }, MUK_A)).rejects.toMatchObject({ code: 'keyfile.wrong-card', exitCode: ExitCode.authenticationFailed });
    expect(await store.show('KF-B')).toMatchObject({ state: 'idle', sealedVersion: 2n });
    const inserted = await insertCard({ ...strictEndpoint, keyfile: forA }, 'KF-A', { password: PASSWORD }, MUK_A);
    await removeCard({ ...strictEndpoint, keyfile: forA }, 'KF-A', upload(inserted, MUK_A, inserted.counterWindow[0]));
  });
});
