// `npm run demo`: the story of a virtual card, narrated step by step. It needs nothing beyond
// `npm ci`: the in-process reader shows everything; the pcscd part runs only where pcscd does.
import { execFile } from 'node:child_process';
import { CardOs, encodeCommandApdu, SoftwareVscCard, VscApplet, type CommandApdu } from '../apdu/index.js';
import { parseSignAndIncrement, verifySignAndIncrement, vscCommands } from '../card-client/index.js';
import { bytesToUint, toHex, utf8 } from '../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256 } from '../crypto/index.js';
import {
  ReaderSystem, establishContext, PcscError, VpcdBridge, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED, SCARD_STATE_EMPTY,
  SCARD_STATE_PRESENT, SCARD_STATE_UNAWARE, SCARD_LEAVE_CARD, type PcscContext, type ReaderState,
} from '../reader-driver/index.js';
import { dongleStory } from './dongle-demo.js';
import { rentalStory } from './rental-demo.js';
import { licenseStory } from './license-demo.js';
import { serverStory } from './server-demo.js';
import { Story, spaced, type Narrator } from './story.js';

/** The demo prints every APDU it sends; the card client's builders make them. */
const apduHex = (command: CommandApdu): string => toHex(encodeCommandApdu(command));

const READER = 'VSC Virtual Reader 00';
const VPCD_PORT = 35964; // Debian's second vpcd reader, so a card the user emulates on 35963 stays put

function stateName(eventState: number): string {
  if ((eventState & SCARD_STATE_PRESENT) !== 0) return 'card present';
  if ((eventState & SCARD_STATE_EMPTY) !== 0) return 'empty';
  return `state ${eventState.toString(16)}`;
}

async function waitForState(context: PcscContext, known: number, timeoutMs: number): Promise<ReaderState> {
  const [state] = await context.getStatusChange([{ readerName: READER, currentState: known }], timeoutMs);
  if (state === undefined) throw new Error('expected one reader state');
  return state;
}

function runTool(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 15_000 }, (error, stdout) => resolve(error === null ? stdout : undefined));
  });
}

/** Shows the card system-wide through pcscd, if pcscd with vpcd runs here. */
async function throughPcscd(story: Story, card: CardOs): Promise<void> {
  story.heading('The same card, system-wide through pcscd');
  const bridge = new VpcdBridge(card, { port: VPCD_PORT });
  const connected = await Promise.race([
    bridge.start().then(() => true, () => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_500)),
  ]);
  if (!connected) {
    await bridge.stop();
    story.line(`pcscd's vpcd driver is not listening on 127.0.0.1:${VPCD_PORT}: this part is skipped.`);
    story.line('To see it: apt-get install pcscd vsmartcard-vpcd opensc; pcscd; npm run demo');
    return;
  }
  story.line(`the card connected to vpcd on 127.0.0.1:${VPCD_PORT}: pcscd now shows it in its reader`);
  // pcscd polls its readers: give it a moment to notice the card.
  let list: string | undefined;
  for (let attempt = 0; attempt < 25; attempt++) {
    list = await runTool('opensc-tool', ['-l']);
    if (list === undefined || /^\d+\s+Yes\s.*Virtual PCD.*01\s*$/m.test(list)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (list === undefined) {
    story.line('(install opensc to see it with opensc-tool)');
  } else {
    story.line('$ opensc-tool -l');
    for (const row of list.trim().split('\n')) story.line(`  ${row}`);
    const reader = /^\d+\s+Yes\s+\S*\s*(Virtual PCD.*01)\s*$/m.exec(list)?.[1]?.trim();
    if (reader !== undefined) {
      const out = await runTool('opensc-tool', ['-r', reader, '-s', '00A4040006F05653430001', '-s', '8022000010']);
      story.line(`$ opensc-tool -r '${reader}' -s <SELECT VSC> -s <GET COUNTER>`);
      for (const row of (out ?? '(opensc-tool failed)').trim().split('\n')) story.line(`  ${row}`);
    }
  }
  await bridge.stop();
  story.line('the card closed its vpcd connection (that is how a vpcd card is removed)');
  if (list !== undefined) {
    for (let attempt = 0; attempt < 25; attempt++) {
      list = await runTool('opensc-tool', ['-l']);
      if (list === undefined || /^\d+\s+No\s.*Virtual PCD.*01\s*$/m.test(list)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const row = list?.split('\n').find((line) => /Virtual PCD.*01\s*$/.test(line));
    story.line(`$ opensc-tool -l   →   ${row?.trim() ?? '(reader not listed)'}`);
  }
}

export interface DemoOptions {
  say?: Narrator;
  /** Show the pcscd part: 'auto' (default) where vpcd answers, false never. */
  pcscd?: 'auto' | false;
  /** Tell the VSC server part (default true). */
  server?: boolean;
  /** Tell the dongle part (default true). */
  dongle?: boolean;
  /** Tell the software rental part (default true). */
  rental?: boolean;
  /** Tell the license container part (default true). */
  license?: boolean;
}

export async function runDemo(options: DemoOptions = {}): Promise<number> {
  // Parts of the story wait on timers that are unref'd so as never to hold a real card process open (the dongle's
  // presence polling): the demo holds the process open itself until the story ends.
  const alive = setInterval(() => undefined, 60_000);
  try {
    return await tellDemo(options);
  } finally {
    clearInterval(alive);
  }
}

async function tellDemo(options: DemoOptions): Promise<number> {
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const story = new Story(say);
  say('Virtual smart card demo: a software card, a virtual reader, and an application using them.');

  story.heading('A virtual reader appears');
  const system = new ReaderSystem();
  system.addReader(READER);
  const context = establishContext(system);
  story.line(`SCardEstablishContext, then SCardListReaders → ${JSON.stringify(await context.listReaders())}`);
  const first = await waitForState(context, SCARD_STATE_UNAWARE, 1_000);
  story.line(`SCardGetStatusChange → "${READER}": ${stateName(first.eventState)}`);

  story.heading('A card is inserted');
  const seed = generateEd25519Seed();
  const key = ed25519KeyFromSeed(seed);
  seed.fill(0);
  const vscCard = new SoftwareVscCard({ serial: 'DEMO-0001', keyMode: 'individual', key, counter: 0n });
  const card = new CardOs([new VscApplet(vscCard)]);
  story.line('made a software card: serial DEMO-0001, a fresh Ed25519 key, counter 0, the VSC applet');
  const inserted = waitForState(context, first.eventState, 5_000);
  system.getReader(READER)?.insert(card);
  const present = await inserted;
  story.line(`an application waiting in SCardGetStatusChange wakes up: ${stateName(present.eventState)}, ATR ${spaced(present.atr, 32)}`);

  story.heading('An application connects (T=1, shared) and uses the card');
  const handle = await context.connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  await story.apdu(handle, apduHex(vscCommands.select()), 'SELECT the VSC applet by its AID');
  const serial = await story.apdu(handle, apduHex(vscCommands.getSerialNumber()), 'GET SERIAL NUMBER');
  story.line(`  serial: "${new TextDecoder().decode(serial.data)}"`);
  const publicKey = (await story.apdu(handle, apduHex(vscCommands.getPublicKey()), 'GET PUBLIC KEY')).data;
  await story.apdu(handle, apduHex(vscCommands.getCounter()), 'GET COUNTER');
  for (const message of ['m1', 'm2']) {
    const h = sha256(utf8(message));
    const signed = parseSignAndIncrement((await story.apdu(handle, apduHex(vscCommands.signAndIncrement(h)), `SIGN AND INCREMENT of h = SHA-256("${message}")`)).data);
    const { counter } = signed;
    const valid = verifySignAndIncrement(signed, h, { publicKey, serial: vscCard.serial });
    story.line(`  counter used ${counter}; the signature over SHA-256(h ‖ ${counter}) ${valid ? 'verifies' : 'DOES NOT verify'} with the card's public key`);
  }
  const after = await story.apdu(handle, apduHex(vscCommands.getCounter()), 'GET COUNTER');
  story.line(`  counter is now ${bytesToUint(after.data)}: every signature used its own value, and it never goes back`);
  await story.apdu(handle, apduHex(vscCommands.signAndIncrement(new Uint8Array(32), 'universal')), 'SIGN AND INCREMENT with the universal-key P1 on an individual-key card');

  story.heading('The card is removed');
  // Connecting marked the reader in use; wait from the state as it is now.
  const inUse = await waitForState(context, SCARD_STATE_UNAWARE, 1_000);
  const removed = waitForState(context, inUse.eventState, 5_000);
  system.getReader(READER)?.remove();
  story.line(`SCardGetStatusChange wakes up again: ${stateName((await removed).eventState)}`);
  try {
    await handle.transmit(encodeCommandApdu(vscCommands.getCounter()));
    story.line('the old handle still answered: this should not happen');
  } catch (error) {
    story.line(`SCardTransmit on the old handle → ${error instanceof PcscError ? error.pcscName : String(error)}`);
  }
  await handle.disconnect(SCARD_LEAVE_CARD).catch(() => undefined);
  await context.release();

  if (options.server !== false) await serverStory(story);
  if (options.dongle !== false) await dongleStory(story);
  if (options.rental !== false) await rentalStory(story);
  if (options.license !== false) await licenseStory(story);
  if (options.pcscd !== false) await throughPcscd(story, card);

  say('');
  say('Done. Next: `vsc card emulate --state FILE` serves such a card to pcscd until you stop it;');
  say('`vsc server init` and `vsc server start` run a VSC server, `vsc card enroll|insert|remove` use it;');
  say('`vsc dongle init` puts a card on a dongle, `vsc card insert --dongle URI` runs it while the dongle answers;');
  say('`vsc vendor init`, `vsc keyfile create` and `vsc rental serve` rent software on a card (bin/rented-word-count.js is an example);');
  say('`vsc license serve` issues licenses, `vsc license activate|list|use|report` use them on the card.');
  return 0;
}
