// The VSC server part of `npm run demo` (patent 004 Fig. 4): a server on an embedded SQLite in a
// temp dir, one card enrolled, inserted on machine A and used through the in-process reader,
// removed, inserted on machine B, lost in B's crash, refused to A's recover, recovered by B, and
// destroyed. Every line reports what the server and the card really did.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { encodeCommandApdu } from '../apdu/index.js';
import { RunningCard } from '../card/index.js';
import { parseSignAndIncrement, verifySignAndIncrement, vscCommands } from '../card-client/index.js';
import { establishContext, ReaderSystem, SCARD_LEAVE_CARD, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../reader-driver/index.js';
import {
  destroyCard, enrollCard, insertCard, mukFromOverride, OperationRefused, recoverCard, ServerBacking,
  type ServerEndpoint,
} from '../vsc-client/index.js';
import { CardStore, initServerData, loadServerKeys, openServerDatabase, startVscServer } from '../vsc-server/index.js';
import { formatRecoveryCode } from '../vsc-protocol/index.js';
import type { Story } from './story.js';

const SERIAL = 'DEMO-SRV-1';
const READER = 'VSC Virtual Reader 01';

export async function serverStory(story: Story): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-demo-server-'));
  const data = join(dir, 'server');
  await initServerData(data);
  const keys = loadServerKeys(data);
  const database = await openServerDatabase(data);
  const server = await startVscServer({ keys, database });
  const store = new CardStore(database);
  const endpoint: ServerEndpoint = { url: server.url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey };
  const password = () => utf8('correct horse battery staple');
  const machines = { A: mukFromOverride('demo machine A'), B: mukFromOverride('demo machine B'), stranger: mukFromOverride('a stranger') };
  const state = async () => (await store.show(SERIAL)).state;
  const refusal = async (attempt: Promise<unknown>): Promise<string> => {
    try {
      await attempt;
      return 'accepted (this should not happen)';
    } catch (error) {
      if (!(error instanceof OperationRefused)) throw error;
      return `refused, exit code ${error.exitCode}: ${error.message}`;
    }
  };
  const system = new ReaderSystem();
  system.addReader(READER);
  const context = establishContext(system);

  try {
    story.heading('A VSC server keeps cards for their owners');
    story.line(`server keys and an SQLite database in ${data}; listening on ${server.url}`);
    story.line(`clients pin its channel key (Noise NK): ${encodeKey(keys.channelPublicKey)}`);
    const token = await store.create(SERIAL);
    story.line(`the administrator creates card ${SERIAL} and hands its owner a one-time enrollment token`);
    const { publicKey, recoveryCode } = await enrollCard(endpoint, SERIAL, token, password(), machines.A);
    story.line('the owner enrolls on machine A: the client derives keys from the password (Argon2id), generates the card\'s keys,');
    story.line(`seals them and uploads only ciphertext. Card signing key: ${toHex(publicKey).slice(0, 32)}…; state: ${await state()}`);
    story.line(`the server answers with a recovery code, shown once (it lifts a wrong-password block): ${formatRecoveryCode(recoveryCode).slice(0, 9)}…`);

    story.heading('Machine A inserts the card and an application signs with it');
    const onA = new ServerBacking({ endpoint, serial: SERIAL, credentials: { password: password() }, muk: machines.A });
    const cardA = await RunningCard.open(onA);
    story.line(`server: idle → ${await state()}, held by machine A's MUK; counter window ${onA.insertedWindow.join('..')}`);
    await useCard(story, cardA, publicKey, 'A');
    try {
      await cardA.giveBack();
    } finally {
      await cardA.destroy();
    }
    story.line(`machine A removes it: the client refuses service first, re-seals, uploads; server: ${await state()}`);

    story.heading('Machine B inserts it, then crashes');
    const onB = new ServerBacking({ endpoint, serial: SERIAL, credentials: { password: password() }, muk: machines.B });
    const cardB = await RunningCard.open(onB);
    story.line(`server: ${await state()} on machine B, counter window ${onB.insertedWindow.join('..')}`);
    await useCard(story, cardB, publicKey, 'B');
    await cardB.destroy(); // never given back
    story.line(`machine B crashes before removing it: the card is gone from memory, the server still says ${await state()}`);
    story.line(`machine A tries to insert it: ${await refusal(insertCard(endpoint, SERIAL, { password: password() }, machines.A))}`);
    story.line(`machine A tries to recover it: ${await refusal(recoverCard(endpoint, SERIAL, password(), machines.A))}`);
    await recoverCard(endpoint, SERIAL, password(), machines.B);
    story.line(`machine B, the one that lost it, recovers it: server: ${await state()}; its counter window counts as used`);

    story.heading('The owner destroys the card');
    story.line(`a stranger's machine tries a wrong password: ${await refusal(destroyCard(endpoint, SERIAL, { password: utf8('not my password') }, machines.stranger))}`);
    story.line(`and at once again: ${await refusal(destroyCard(endpoint, SERIAL, { password: utf8('not my password') }, machines.stranger))}`);
    await destroyCard(endpoint, SERIAL, { password: password() }, machines.A);
    story.line('the owner on machine A, which has held the card, is not slowed by the stranger\'s failures:');
    story.line(`with the right one: server: ${await state()}, for good`);
    story.line(`machine A tries to insert it: ${await refusal(insertCard(endpoint, SERIAL, { password: password() }, machines.A))}`);
    story.line('the server\'s event log of the card:');
    for (const event of await store.events(SERIAL)) {
      story.line(`  ${event.operation.padEnd(8)} ${event.outcome}${event.fromState === null ? '' : `  ${event.fromState} → ${event.toState ?? ''}`}`);
    }
  } finally {
    await context.release();
    await server.close();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }

  /** Shows the inserted card in the in-process reader and signs twice through PC/SC. */
  async function useCard(s: Story, card: RunningCard, publicKey: Uint8Array, machine: string): Promise<void> {
    s.line('the opened secrets now live in encrypted memory under a per-insert key; the card enters the reader');
    system.getReader(READER)!.insert(card.os);
    const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
    await s.apdu(handle, toHex(encodeCommandApdu(vscCommands.select())), 'SELECT the VSC applet');
    const h = sha256(utf8(`a document signed on machine ${machine}`));
    const signed = parseSignAndIncrement((await s.apdu(handle, toHex(encodeCommandApdu(vscCommands.signAndIncrement(h))), 'SIGN AND INCREMENT')).data);
    const valid = verifySignAndIncrement(signed, h, { publicKey, serial: SERIAL });
    s.line(`  counter ${signed.counter}; the signature ${valid ? 'verifies' : 'DOES NOT verify'} with the enrolled public key`);
    await handle.disconnect(SCARD_LEAVE_CARD);
    system.getReader(READER)!.remove();
  }
}

const encodeKey = (key: Uint8Array): string => `${toHex(key).slice(0, 16)}…`;
