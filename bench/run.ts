// `npm run bench`: runs the benchmarks and writes BENCHMARKS.md with the machine, the figures and
// their ratio to the limits the issues name. Figures are measured here, never asserted in tests.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CardOs, SoftwareVscCard, VscApplet } from '../src/apdu/index.js';
import { fromHex } from '../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../src/crypto/index.js';
import { ReaderSystem, VpcdBridge, establishContext, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../src/reader-driver/index.js';
import { ensurePcscd as startPcscd, stopPcscd, waitForCard } from '../test/support/index.js';
import { describeMachine } from './machine.js';
import { measurePcscdRoundTrip, type PcscdRoundTrip } from './pcscd-roundtrip.js';
import { measurePivVersusSoftHsm, type PivVersusSoftHsm } from './piv-vs-softhsm.js';
import { dongleBenchTargets, dongleSection, measureDongle, type DongleFigures } from './dongle-bench.js';
import { measureRental, rentalSection } from './rental-bench.js';
import { licenseSection, measureLicense } from './license-bench.js';
import { lostLicenseSection, measureLostLicenses } from './lost-license-bench.js';
import { measureServerCycles, serverCyclesSection } from './server-cycles.js';
import { SERVER_CYCLES_HEADING } from './server-cycles-section.js';
import { measureSignRate } from './sign-rate.js';
import { measureLatency, type LatencySummary } from './stats.js';

const OUTPUT = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));
const SELECT_VSC = '00A4040006F05653430001';
const GET_COUNTER = '8022000010';
const VPCD_PORT = 35964;
const VPCD_READER = 'Virtual PCD 00 01';
/** A loopback address of its own, so that a quickack route touches nothing else. */
const QUICKACK_ADDRESS = '127.0.0.2';

function newCard(): CardOs {
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  return new CardOs([new VscApplet(new SoftwareVscCard({ serial: 'BENCH-1', keyMode: 'individual', key, counter: 0n }))]);
}

/** A card in an in-process reader, and a transmit function through the PC/SC-style API. */
async function inProcessReader(card: CardOs) {
  const system = new ReaderSystem();
  system.addReader('Bench Reader 00').insert(card);
  const context = establishContext(system);
  const handle = await context.connect('Bench Reader 00', SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  return { transmit: (apdu: Uint8Array) => handle.transmit(apdu), release: () => context.release() };
}

async function inProcessRoundTrip(): Promise<{ reader: LatencySummary; cardOs: LatencySummary }> {
  const card = newCard();
  const { transmit, release } = await inProcessReader(card);
  const select = fromHex(SELECT_VSC);
  const getCounter = fromHex(GET_COUNTER);
  await transmit(select);
  const reader = await measureLatency(() => transmit(getCounter), 50_000, 5_000);
  await release();
  const direct = newCard();
  direct.powerOn();
  await direct.transmit(select);
  const cardOs = await measureLatency(() => direct.transmit(getCounter), 50_000, 5_000);
  return { reader, cardOs };
}

function sh(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(file, args, (error) => (error === null ? resolve() : reject(error))));
}

async function pcscdRoundTrip(host: string): Promise<PcscdRoundTrip> {
  const bridge = new VpcdBridge(newCard(), { host, port: VPCD_PORT });
  await bridge.start();
  try {
    await waitForCard(VPCD_READER, true);
    return await measurePcscdRoundTrip({ reader: VPCD_READER, selectApdu: SELECT_VSC, apdu: GET_COUNTER, iterations: host === QUICKACK_ADDRESS ? 5_000 : 200 });
  } finally {
    await bridge.stop();
    await waitForCard(VPCD_READER, false);
  }
}

interface PcscdFigures {
  stock?: PcscdRoundTrip;
  quickack?: PcscdRoundTrip;
  notes: string[];
}

async function pcscdFigures(): Promise<PcscdFigures> {
  const notes: string[] = [];
  try {
    await startPcscd();
  } catch (error) {
    return { notes: [`not measured: ${(error as Error).message}`] };
  }
  try {
    const stock = await pcscdRoundTrip('127.0.0.1');
    let quickack: PcscdRoundTrip | undefined;
    const route = ['route', 'add', 'local', `${QUICKACK_ADDRESS}/32`, 'dev', 'lo', 'table', 'local', 'quickack', '1'];
    try {
      await sh('ip', route);
    } catch (error) {
      notes.push(`quickack route not measured (needs root and iproute2): ${(error as Error).message.split('\n')[0]}`);
    }
    if (notes.length === 0) {
      try {
        quickack = await pcscdRoundTrip(QUICKACK_ADDRESS);
      } finally {
        await sh('ip', ['route', 'del', 'local', `${QUICKACK_ADDRESS}/32`, 'dev', 'lo', 'table', 'local']);
      }
    }
    return { stock, quickack, notes };
  } catch (error) {
    return { notes: [...notes, `not measured: ${(error as Error).message}`] };
  } finally {
    await stopPcscd();
  }
}

const us = (value: number): string => `${value.toFixed(1)} µs`;
const rate = (value: number): string => `${Math.round(value).toLocaleString('en-US')}/s`;

/** The sections `npm run bench -- --only NAME` re-measures alone, in the order BENCHMARKS.md holds them. */
const ONLY: Record<string, { heading: string; what: string; measure: () => Promise<string[]> }> = {
  server: { heading: SERVER_CYCLES_HEADING, what: 'VSC server only: crypto floor, closed and open loop, SQLite and PostgreSQL, the code before issue 18', measure: async () => serverCyclesSection(await measureServerCycles()) },
  rental: { heading: '## Software rental (patent 003)', what: 'software rental only: durable Writes, full and incremental trail validation', measure: async () => rentalSection(await measureRental()) },
  license: { heading: '## License containers (Wibu 002)', what: 'license containers only: activations with 100 clients, counted checks', measure: async () => licenseSection(await measureLicense()) },
  lost: { heading: '## Lost licenses (Wibu 000)', what: 'lost licenses only: backup of 500 firm items, restore through the hub with 5 services', measure: async () => lostLicenseSection(await measureLostLicenses()) },
};

/**
 * `text` with the section under `heading` (up to the next level-2 heading, which may be one no
 * --only re-measures, e.g. the dongles' after the server's) replaced by `lines`; appended when absent.
 */
export function replaceSection(text: string, heading: string, lines: readonly string[]): string {
  const at = text.indexOf(`${heading}\n`);
  const nextHeading = at === -1 ? -1 : text.indexOf('\n## ', at + heading.length);
  const before = (at === -1 ? text : text.slice(0, at)).trimEnd();
  const after = nextHeading === -1 ? '' : text.slice(nextHeading + 1).trimEnd();
  return [before, '', ...lines, '', ...(after === '' ? [] : [after, ''])].join('\n');
}

/**
 * `npm run bench -- --only server|rental|license|lost`: measures one section alone and puts it in place of the same section of
 * BENCHMARKS.md (every ratio in it is still measured in the same run as its figure); the rest of the file is kept.
 */
async function runOnly(name: string): Promise<number> {
  const only = ONLY[name]!;
  console.log(`benchmark: ${only.what}…`);
  const section = await only.measure();
  let previous = '';
  try {
    previous = readFileSync(OUTPUT, 'utf8');
  } catch {
    previous = '# Benchmarks\n';
  }
  const stamp = `(This section re-measured on ${new Date().toISOString()} with \`npm run bench -- --only ${name}\`.)`;
  writeFileSync(OUTPUT, replaceSection(previous, only.heading, [...section, stamp]));
  console.log(section.join('\n'));
  return 0;
}

export async function runBenchmarks(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    if (argv.length === 2 && argv[0] === '--only' && argv[1] !== undefined && argv[1] in ONLY) return runOnly(argv[1]);
    console.error(`usage: npm run bench [-- --only ${Object.keys(ONLY).join('|')}]`);
    return 2;
  }
  console.log('benchmark: APDU round trips in-process…');
  const inProcess = await inProcessRoundTrip();
  console.log('benchmark: SIGN AND INCREMENT against raw Ed25519…');
  const sign = await measureSignRate(async (card) => (await inProcessReader(card)).transmit);
  console.log('benchmark: APDU round trips through pcscd…');
  const pcscd = await pcscdFigures();
  console.log('benchmark: ECDSA through pkcs11-tool, PIV card against SoftHSM2…');
  let piv: PivVersusSoftHsm | undefined;
  const pivNotes: string[] = [];
  try {
    piv = await measurePivVersusSoftHsm({ iterations: 200 });
  } catch (error) {
    pivNotes.push(`PIV against SoftHSM2 not measured: ${(error as Error).message.split('\n')[0]}`);
  }
  console.log('benchmark: VSC server insert + remove cycles (SQLite, +10,000 and +1,000,000 cards, PostgreSQL with one and two server processes)…');
  let serverCycles: string[];
  try {
    serverCycles = serverCyclesSection(await measureServerCycles());
  } catch (error) {
    serverCycles = ['## VSC server: insert + remove cycles', '', `Not measured: ${(error as Error).message.split('\n')[0]}`, ''];
  }

  console.log('benchmark: dongles (emulated, SoftHSM2, swtpm through tpm2-pkcs11): challenges, SIGN AND INCREMENT, polling CPU…');
  const dongleFigures: DongleFigures[] = [];
  const dongleNotes: string[] = [];
  for (const make of dongleBenchTargets()) {
    let target;
    try {
      target = await make.start();
      dongleFigures.push(await measureDongle(target));
    } catch (error) {
      dongleNotes.push(`${make.name} not measured: ${(error as Error).message.split('\n')[0]}`);
    } finally {
      await target?.cleanup();
    }
  }

  console.log('benchmark: software rental: durable Writes, full and incremental trail validation…');
  let rental: string[];
  try {
    rental = rentalSection(await measureRental());
  } catch (error) {
    rental = ['## Software rental (patent 003)', '', `Not measured: ${(error as Error).message.split('\n')[0]}`, ''];
  }

  console.log('benchmark: license containers: activations with 100 clients, counted checks…');
  let license: string[];
  try {
    license = licenseSection(await measureLicense());
  } catch (error) {
    license = ['## License containers (Wibu 002)', '', `Not measured: ${(error as Error).message.split('\n')[0]}`, ''];
  }

  console.log('benchmark: lost licenses: backup of 500 firm items, restore through the hub…');
  let lost: string[];
  try {
    lost = lostLicenseSection(await measureLostLicenses());
  } catch (error) {
    lost = ['## Lost licenses (Wibu 000)', '', `Not measured: ${(error as Error).message.split('\n')[0]}`, ''];
  }

  const rows = [
    '| figure | measured | goal | ratio to the goal |',
    '|---|---|---|---|',
    `| APDU round trip in-process, PC/SC-style API (GET COUNTER), p50 | ${us(inProcess.reader.p50Us)} (p99 ${us(inProcess.reader.p99Us)}) | p50 < 50 µs | ${(inProcess.reader.p50Us / 50).toFixed(3)} of the limit |`,
    `| the same straight into the card OS, p50 | ${us(inProcess.cardOs.p50Us)} (p99 ${us(inProcess.cardOs.p99Us)}) | – | – |`,
  ];
  if (pcscd.stock !== undefined) {
    rows.push(
      `| APDU round trip through pcscd + Debian 12 vpcd, stock loopback, p50 | ${us(pcscd.stock.p50Us)} (p99 ${us(pcscd.stock.p99Us)}) | p50 < 1 ms | ${(pcscd.stock.p50Us / 1000).toFixed(2)} of the limit |`,
    );
  }
  if (pcscd.quickack !== undefined) {
    rows.push(
      `| the same with a quickack route on ${QUICKACK_ADDRESS}, p50 | ${us(pcscd.quickack.p50Us)} (p99 ${us(pcscd.quickack.p99Us)}) | p50 < 1 ms | ${(pcscd.quickack.p50Us / 1000).toFixed(3)} of the limit |`,
    );
  }
  rows.push(
    `| SIGN AND INCREMENT through the PC/SC-style API | ${rate(sign.cardPerSecond)} | ≥ 80 % of raw Ed25519 signing | ${(sign.ratio * 100).toFixed(1)} % of ${rate(sign.rawPerSecond)} (node:crypto, same run) |`,
  );

  if (piv !== undefined) {
    const ms = (value: number): string => `${value.toFixed(1)} ms`;
    rows.push(
      `| ECDSA P-256 signatures through pkcs11-tool (one process each), SoftHSM2 | ${piv.softhsm.perSecond.toFixed(1)}/s (p50 ${ms(piv.softhsm.p50Ms)}, p99 ${ms(piv.softhsm.p99Ms)}) | – | – |`,
      `| the same against the PIV card (OpenSC → pcscd → vpcd on ${piv.vpcdHost}${piv.quickack ? ', quickack route' : ''}) | ${piv.piv.perSecond.toFixed(1)}/s (p50 ${ms(piv.piv.p50Ms)}, p99 ${ms(piv.piv.p99Ms)}) | within 2x of SoftHSM2 | ${piv.slowdown.toFixed(2)}x slower (${(piv.goalSlowdown / piv.slowdown).toFixed(2)} of the goal; ${piv.withinGoal ? 'met' : 'not met'}) |`,
    );
    pivNotes.push(
      `pkcs11-tool signs once per process. Start-up without signing (\`--list-mechanisms\`): SoftHSM2 p50 ${ms(piv.softhsm.startupP50Ms)}, OpenSC with the card p50 ${ms(piv.piv.startupP50Ms)}; OpenSC's module with **no card in any reader** already takes p50 ${ms(piv.openscNoCardP50Ms)} (\`pkcs11-tool -L\`), i.e. ${(piv.openscNoCardP50Ms / piv.softhsm.p50Ms).toFixed(2)}x a whole SoftHSM2 signing process, before the card is touched. Binding the card costs OpenSC's PIV driver about 28 APDUs (it reads the discovery object five times and every certificate), login and signing two more.`,
      ...piv.notes.slice(0, -1),
    );
  }

  const text = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString()}.`,
    '',
    '## Machine',
    '',
    ...describeMachine(),
    '',
    '## Figures',
    '',
    ...rows,
    '',
    '## How they were measured',
    '',
    `- In-process: ${inProcess.reader.n.toLocaleString('en-US')} GET COUNTER commands one after another through \`CardHandle.transmit\` (the in-process PC/SC-style reader), each timed with \`process.hrtime\`, after 5,000 untimed ones.`,
    '- pcscd: `bench/pcsc-roundtrip.c` (libpcsclite, SCardTransmit timed with CLOCK_MONOTONIC) against a card served by this project\'s vpcd bridge on pcscd\'s second vpcd reader.',
    `- SIGN AND INCREMENT: 15 interleaved rounds of 0.4 s each of raw \`sign\` on a node:crypto Ed25519 key and of SIGN AND INCREMENT APDUs (SHA-256(h ‖ counter), sign, counter + 1, response) through the PC/SC-style API; medians compared. The card keeps its counter in memory here: a durable store adds its own write per signature (the emulated card's state file fsyncs). For reference, @noble/curves signs ${rate(sign.noblePerSecond)} on this machine, which is why the crypto facade uses node:crypto.`,
    '',
    '## Notes',
    '',
    '- Debian 12\'s vpcd writes each message\'s 2-byte length and its payload with two separate `send` calls, with Nagle\'s algorithm on. The payload then waits for the card side\'s delayed ACK (40 ms on Linux), so every APDU through stock pcscd + vpcd costs about 40 ms whatever the card does. Node cannot set TCP_QUICKACK on a socket; a loopback route with `quickack 1` for an address of its own removes the stall without touching other traffic: `ip route add local 127.0.0.2/32 dev lo table local quickack 1`, then `vsc card emulate --vpcd 127.0.0.2:35963`. The second pcscd row shows what pcscd itself costs with that route.',
    ...pcscd.notes.map((note) => `- ${note}`),
    ...pivNotes.map((note) => `- ${note}`),
    '',
    ...serverCycles,
    '',
    ...dongleSection(dongleFigures, dongleNotes),
    '',
    ...rental,
    '',
    ...license,
    '',
    ...lost,
  ].join('\n');
  writeFileSync(OUTPUT, text);
  console.log(text);
  return 0;
}
