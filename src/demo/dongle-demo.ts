// The dongle part of `npm run demo` (patent 004 claim 10, Fig. 14/15, [0104]-[0110]) on emulated dongles in a
// temp dir: an issuing authority, a card put on dongle A, attached and used through the in-process reader,
// A taken away (the card leaves the reader), A lost, the same card issued on dongle B in the next counter
// epoch, and A refused when it turns up again. Every line reports what the card and the dongles really did.
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommandApdu } from '../apdu/index.js';
import { toHex, utf8 } from '../bytes/index.js';
import { RunningCard } from '../card/index.js';
import { parseSignAndIncrement, verifySignAndIncrement, vscCommands } from '../card-client/index.js';
import { sha256 } from '../crypto/index.js';
import {
  DongleBacking, dongleSecrets, initAuthority, initDongleCard, openDongle, readAuthorityReference, replaceDongle, shortFingerprint, watchDongle,
  type Dongle,
} from '../dongle-backend/index.js';
import { VscError } from '../errors/index.js';
import { establishContext, ReaderSystem, SCARD_LEAVE_CARD, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED, SCARD_STATE_EMPTY, SCARD_STATE_UNAWARE } from '../reader-driver/index.js';
import type { Story } from './story.js';

const SERIAL = 'DEMO-DONGLE-1';
const READER = 'VSC Virtual Reader 02';
const POLL_MS = 200;

export async function dongleStory(story: Story): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-demo-dongle-'));
  // The demo's passphrases and password are fixed; real use reads them from a prompt or a 0600 file.
  const secrets = dongleSecrets(async () => utf8('demo stick passphrase'));
  const password = () => utf8('correct horse battery staple');
  const stickA = join(dir, 'stick-A');
  const stickB = join(dir, 'stick-B');
  const open = (path: string): Promise<Dongle> => openDongle(`emulated:${path}`, secrets);
  const system = new ReaderSystem();
  system.addReader(READER);
  const context = establishContext(system);
  try {
    story.heading('A card on a dongle instead of a server (claim 10)');
    const authorityDir = join(dir, 'authority');
    await initAuthority(authorityDir);
    story.line(`an issuing authority keeps escrows and a signed revocation list in ${authorityDir}`);
    const dongleA = await open(stickA);
    const issued = await initDongleCard({ dongle: dongleA, serial: SERIAL, password: password(), authority: readAuthorityReference(authorityDir) });
    await dongleA.close();
    story.line(`$ vsc dongle init --dongle emulated:${stickA} --serial ${SERIAL} --authority ${authorityDir}`);
    story.line(`card ${SERIAL} is on dongle A (${shortFingerprint(issued.dongle.fingerprint)}), sealed to A's key and the owner's password; escrowed: ${issued.escrowed}`);
    story.line('(an emulated dongle is a directory: NOT duplication-protected; a PKCS#11 token or the TPM is)');

    const attach = async (path: string, label: string) => {
      const dongle = await open(path);
      const backing = new DongleBacking({ dongle, password: password() });
      const card = await RunningCard.open(backing);
      const before = (await context.getStatusChange([{ readerName: READER, currentState: SCARD_STATE_UNAWARE }], 1_000))[0]!;
      system.getReader(READER)?.insert(card.os);
      await context.getStatusChange([{ readerName: READER, currentState: before.eventState }], 5_000);
      story.line(`dongle ${label} attached and answering: card ${card.serial} is in "${READER}"`);
      let left: (reason: string) => void = () => undefined;
      const gone = new Promise<string>((resolve) => (left = resolve));
      const watcher = watchDongle({ dongle, identity: backing.identity!, intervalMs: POLL_MS, onGone: (reason) => left(reason) });
      const remove = async () => {
        watcher.stop();
        await card.giveBack(async () => void system.getReader(READER)?.remove());
        await card.destroy();
      };
      return { card, gone, remove };
    };

    const signThrough = async (what: string): Promise<bigint> => {
      const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
      try {
        await handle.transmit(encodeCommandApdu(vscCommands.select()));
        const publicKey = parseResponse(await handle.transmit(encodeCommandApdu(vscCommands.getPublicKey())));
        const h = sha256(utf8(what));
        const signed = parseSignAndIncrement(parseResponse(await handle.transmit(encodeCommandApdu(vscCommands.signAndIncrement(h)))));
        const valid = verifySignAndIncrement(signed, h, { publicKey, serial: SERIAL });
        story.line(`SIGN AND INCREMENT of SHA-256("${what}") → counter ${signed.counter} (0x${signed.counter.toString(16)}), signature ${valid ? 'verifies' : 'DOES NOT verify'} with key ${toHex(publicKey).slice(0, 16)}…`);
        return signed.counter;
      } finally {
        await handle.disconnect(SCARD_LEAVE_CARD).catch(() => undefined);
      }
    };

    story.heading('Attach dongle A and sign through the reader');
    let session = await attach(stickA, 'A');
    await signThrough('first use');
    await signThrough('second use');

    story.heading('Pull dongle A out: the card leaves the reader');
    const pulledAt = Date.now();
    renameSync(stickA, `${stickA}.in-a-pocket`);
    const reason = await session.gone;
    await session.remove();
    const state = (await context.getStatusChange([{ readerName: READER, currentState: SCARD_STATE_UNAWARE }], 1_000))[0]!;
    story.line(`${reason} (${Date.now() - pulledAt} ms after it was pulled, polling every ${POLL_MS} ms)`);
    story.line(`"${READER}": ${(state.eventState & SCARD_STATE_EMPTY) !== 0 ? 'empty' : 'still holds a card (this should not happen)'}`);

    story.heading('Put it back: the card resumes where it left off');
    renameSync(`${stickA}.in-a-pocket`, stickA);
    session = await attach(stickA, 'A');
    await signThrough('after re-attaching');
    await session.remove();

    story.heading('Dongle A is lost: the authority issues the same card on dongle B');
    renameSync(stickA, `${stickA}.lost`);
    const dongleB = await open(stickB);
    const replaced = await replaceDongle(authorityDir, SERIAL, dongleB);
    await dongleB.close();
    story.line(`$ vsc dongle authority replace --data ${authorityDir} --serial ${SERIAL} --dongle emulated:${stickB}`);
    story.line(`card ${SERIAL} is on dongle B in counter epoch ${replaced.epoch} (values from ${replaced.epoch}·2^96); dongle A is on the signed revocation list`);
    session = await attach(stickB, 'B');
    await signThrough('on the replacement');
    await session.remove();

    story.heading('Dongle A turns up again: refused');
    renameSync(`${stickA}.lost`, stickA);
    try {
      const old = await attach(stickA, 'A');
      story.line('dongle A was accepted: this should not happen');
      await old.remove();
    } catch (error) {
      story.line(`inserting card ${SERIAL} from dongle A → ${error instanceof VscError ? `refused (exit ${error.exitCode}): ${error.message}` : String(error)}`);
    }
  } finally {
    await context.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseResponse(response: Uint8Array): Uint8Array {
  const sw = (response[response.length - 2]! << 8) | response[response.length - 1]!;
  if (sw !== 0x9000) throw new Error(`the card answered ${sw.toString(16)}`);
  return response.subarray(0, response.length - 2);
}
