// The license figures of BENCHMARKS.md (issue "License containers", Show): activations per second of the issuing
// service with 100 concurrent clients (p50 / p99), and license checks per second in a program against the card's SIGN
// AND INCREMENT rate through the same rental server (a counted check is one SIGN AND INCREMENT and one durable trail
// record), measured in the same run.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CardOs, signedDigest, SoftwareVscCard, VscApplet } from '../src/apdu/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../src/crypto/index.js';
import {
  AgentLicenseLink, encodeSignedBody, formatLicenseRecordText, IssuingClient, License, LicenseApplet, licenseExtensions, licensorDigest, MemoryLicenseStore, signCardBinding, signLicenseBody,
} from '../src/license/index.js';
import { fromHex } from '../src/bytes/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../src/reader-driver/index.js';
import { claimRentalSocket, handleCardAccess, recordHash, RentalClient, RentalListener, RentalServer } from '../src/rental/index.js';
import { measureRate, percentile } from './stats.js';

const CLIENTS = 100;
const ACTIVATIONS = 3_000;
const REPO = new URL('..', import.meta.url).pathname;

export interface ActivationFigures {
  readonly clients: number;
  readonly activations: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface CheckFigures {
  /** Counted checks (units 0) per second through License.check(). */
  readonly checksPerSecond: number;
  /** Counted uses (units 1) per second through License.use(). */
  readonly usesPerSecond: number;
  /** Plain rental Writes per second through the same rental server: SIGN AND INCREMENT with a durable record. */
  readonly writesPerSecond: number;
}

export interface LicenseFigures {
  readonly activations?: ActivationFigures;
  readonly checks: CheckFigures;
  readonly notes: readonly string[];
}

function vsc(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'vsc.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`vsc ${args.slice(0, 3).join(' ')} exited ${code}`))));
  });
}

/** `vsc license serve` in a process of its own (SQLite in a temp directory), loaded by 100 clients in this one. */
async function measureActivations(): Promise<ActivationFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-issuing-'));
  const data = join(dir, 'data');
  const keyFile = join(dir, 'api.key'); // beside the data directory, created by licensor add
  await vsc(['license', 'licensor', 'add', '--data', data, '--name', 'Bench Software', '--firm-code', '7', '--api-key-out', keyFile]);
  const child = spawn(process.execPath, [join(REPO, 'bin', 'vsc.js'), 'license', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--per-client', '1000000', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        const event = JSON.parse(line) as { event: string; url?: string };
        if (event.event === 'serving') resolve(event.url!);
      });
      child.once('exit', () => reject(new Error('vsc license serve exited before serving')));
    });
    const licensor = new IssuingClient({ server: url, apiKey: readFileSync(keyFile, 'utf8').trim() });
    await licensor.defineProduct({ code: 1, text: 'Bench product', template: { featureMap: 1 } });
    const tickets: string[] = [];
    // An order holds at most 1,000 tickets: three orders, as an ERP would send them.
    for (let part = 0; tickets.length < ACTIVATIONS; part++) tickets.push(...(await licensor.placeOrder({ orderId: `bench-${part}`, items: [{ productCode: 1, quantity: Math.min(1_000, ACTIVATIONS - tickets.length) }] })).tickets);
    const customer = new IssuingClient({ server: url });
    const samples: number[] = [];
    let next = 0;
    // One activation as a customer runs it: the signed update asked for, applied on the card (a software key stands in),
    // the receipt sent back and confirmed: two requests, each a database transaction with the audit row.
    const worker = async (): Promise<void> => {
      const key = ed25519KeyFromSeed(generateEd25519Seed());
      while (next < tickets.length) {
        const ticket = tickets[next++]!;
        const serial = `BENCH-${randomBytes(6).toString('hex')}`;
        const started = process.hrtime.bigint();
        const answer = await customer.activate({ ticket, serial, cardPublicKey: key.publicKey, firmUpdateCounter: null, requestId: Uint8Array.from(randomBytes(16)) });
        const receiptText = receiptTextOf(answer.update, answer.digest);
        const nonce = Uint8Array.from(randomBytes(16));
        const record = { nonce, text: receiptText, counter: 0n, signature: key.sign(signedDigest(recordHash(nonce, receiptText), 0n, 'individual', serial)) };
        await customer.receipt({ ticket, serial, record });
        samples.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    };
    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: CLIENTS }, worker));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return { clients: CLIENTS, activations: samples.length, perSecond: samples.length / seconds, p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) };
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The receipt text the card writes for an update: `license update LD FIRM counter 1 digest D`. */
function receiptTextOf(update: string, digest: string): string {
  const body = JSON.parse((JSON.parse(update) as { body: string }).body) as { licensorKey: string; firmCode: number };
  return formatLicenseRecordText({ kind: 'update', licensor: licensorDigest(fromHex(body.licensorKey)), firmCode: body.firmCode, counter: 1, digest });
}

/** A card with the VSC and license applets in-process, a rental server over it, a product with no unit limit. */
async function measureChecks(): Promise<CheckFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-license-'));
  const card = new SoftwareVscCard({ serial: 'BENCH-LICENSE', keyMode: 'individual', key: ed25519KeyFromSeed(generateEd25519Seed()), counter: 0n });
  const system = new ReaderSystem();
  system.addReader('Bench License Reader').insert(new CardOs([new VscApplet(card), new LicenseApplet(card, { store: new MemoryLicenseStore() })]));
  const handle = await establishContext(system).connect('Bench License Reader', SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  const server = await RentalServer.open({ card: handleCardAccess(handle), directory: join(dir, 'trail') });
  const socket = join(dir, 'rental.sock');
  await claimRentalSocket(socket);
  const listener = await RentalListener.listen(socket, server, licenseExtensions(server, join(dir, 'trail')));
  try {
    const licensor = ed25519KeyFromSeed(generateEd25519Seed());
    const now = Math.floor(Date.now() / 1000);
    const update = signLicenseBody({
      kind: 'update', serial: card.serial, licensorKey: licensor.publicKey, firmCode: 7, time: now, updateCounter: 0,
      operations: [{ op: 'create-firm', text: 'Bench' }, { op: 'put-product', product: { productCode: 1, text: 'Bench', featureMap: 1, payment: 'postpaid', licenseQuantity: 1, protectedData: new Uint8Array(0), hiddenData: new Uint8Array(0), secretData: new Uint8Array(0) } }],
    }, licensor);
    const link = await AgentLicenseLink.connect(socket);
    await link.apply(encodeSignedBody(update));
    await link.bind(signCardBinding(licensor, { serial: card.serial, cardPublicKey: card.publicKey, keyMode: 'individual' }));
    await link.close();
    const license = await License.open({ licensorKey: licensor.publicKey, productCode: 1, socket });
    const check = async () => {
      if (!(await license.check(1)).allowed) throw new Error('a check was refused');
    };
    const use = async () => {
      if (!(await license.use(1, 1)).allowed) throw new Error('a use was refused');
    };
    const client = await RentalClient.connect(socket);
    const write = () => client.write(Uint8Array.from(randomBytes(16)), 'bench write');
    for (let i = 0; i < 200; i++) await check();
    const checksPerSecond = await measureRate(check, 3_000);
    const usesPerSecond = await measureRate(use, 3_000);
    const writesPerSecond = await measureRate(write, 3_000);
    client.close();
    await license.close();
    return { checksPerSecond, usesPerSecond, writesPerSecond };
  } finally {
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureLicense(): Promise<LicenseFigures> {
  const notes: string[] = [];
  let activations: ActivationFigures | undefined;
  try {
    activations = await measureActivations();
  } catch (error) {
    notes.push(`activations not measured: ${(error as Error).message.split('\n')[0]}`);
  }
  return { ...(activations === undefined ? {} : { activations }), checks: await measureChecks(), notes };
}

const perSecond = (value: number): string => `${Math.round(value).toLocaleString('en-US')}/s`;

export function licenseSection(figures: LicenseFigures): string[] {
  const { activations, checks } = figures;
  const rows = [
    '## License containers (Wibu 002)',
    '',
    '| figure | measured | goal | ratio |',
    '|---|---|---|---|',
  ];
  if (activations !== undefined) {
    rows.push(`| activations through \`vsc license serve\` (SQLite), ${activations.clients} concurrent clients, ${activations.activations.toLocaleString('en-US')} tickets | ${perSecond(activations.perSecond)} (p50 ${activations.p50Ms.toFixed(1)} ms, p99 ${activations.p99Ms.toFixed(1)} ms) | – (reported) | – |`);
  }
  rows.push(
    `| counted license checks in a program (\`License.check()\`: one SIGN AND INCREMENT and one durable trail record each) | ${perSecond(checks.checksPerSecond)} | – (ratio reported) | ${(checks.checksPerSecond / checks.writesPerSecond * 100).toFixed(1)} % of the ${perSecond(checks.writesPerSecond)} plain rental Writes through the same server |`,
    `| counted uses (\`License.use(feature, 1)\`: a unit counted on the card) | ${perSecond(checks.usesPerSecond)} | – | ${(checks.usesPerSecond / checks.writesPerSecond * 100).toFixed(1)} % of the same Writes |`,
    '',
    '- Activations: one activation is what a customer\'s `vsc license activate` sends: POST /v1/activations (the service checks the ticket, signs the update with the licensor\'s key opened from its sealed seed, writes the activation and its audit row in one transaction) and POST /v1/receipts (the card-signed receipt verified, the activation confirmed, audited). The service runs in its own process; the 100 clients share this one, each with a card key of its own signing the receipt record as the card would.',
    '- Checks: the program, the rental server with its license agent and the card (VSC and license applets) on the in-process reader; each check is one license.use request on the socket, one exclusive card transaction (SELECT license applet, USE: decide, count, SIGN AND INCREMENT; SELECT VSC, GET COUNTER), the journal fsynced twice and the record fsynced to the trail, then the program checks the signature under the licensor-bound card key and the text. The Write row is the rental server\'s plain Write on the same card and trail: what SIGN AND INCREMENT costs once it is durable. Without a backup trail here.',
    ...figures.notes.map((note) => `- ${note}`),
    '',
  );
  return rows;
}
