// Durable rental Writes per second through the rental server (patent 003 [0058], [0062]: each Write journaled twice,
// signed in one exclusive card transaction, fsynced to the trail and its backup before it is acknowledged), against
// the card's bare SIGN AND INCREMENT rate over the same reader, measured in the same run. In-process reader always;
// through pcscd when a reader holding a VSC card is named: the caller starts pcscd and serves the card from another
// process (`vsc card emulate --vpcd`, test/support startEmulator). A VpcdBridge in this process would deadlock:
// libpcsclite's context, reader listing and status calls block the event loop the bridge needs to answer pcscd.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardOs, SoftwareVscCard, VscApplet } from '../src/apdu/index.js';
import { VscAppletClient } from '../src/card-client/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../src/crypto/index.js';
import { connectPcscd, establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../src/reader-driver/index.js';
import { handleCardAccess, pcscdCardAccess, RentalClient, RentalListener, RentalServer, type RentalCardAccess } from '../src/rental/index.js';
import { measureRate } from './stats.js';

const READER = 'Bench Rental Reader 00';

/** A software VSC card in an in-process reader: the server's transactional access, and another application's client. */
async function inProcessCard(): Promise<{ access: RentalCardAccess; other: VscAppletClient }> {
  const system = new ReaderSystem();
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  system.addReader(READER).insert(new CardOs([new VscApplet(new SoftwareVscCard({ serial: 'BENCH-RENTAL-W', keyMode: 'individual', key, counter: 0n }))]));
  const connect = () => establishContext(system).connect(READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  const other = new VscAppletClient(await connect());
  await other.select();
  return { access: handleCardAccess(await connect()), other };
}

export interface RentalWriteRate {
  /** Acknowledged Writes per second, `clients` programs writing back to back over the socket. */
  readonly writesPerSecond: number;
  /** SIGN AND INCREMENT per second on the same card and reader, the applet selected once, nothing journaled. */
  readonly signsPerSecond: number;
  /** writesPerSecond / signsPerSecond. */
  readonly ratio: number;
  readonly clients: number;
  readonly writes: number;
}

export interface RentalWriteFigures {
  readonly inProcess: RentalWriteRate;
  readonly pcscd?: RentalWriteRate;
}

export interface RentalWriteOptions {
  /** How long each rate is measured (default 3 s). */
  readonly durationMs?: number;
  /** Programs writing at once (default 4). */
  readonly clients?: number;
  /** A pcscd reader holding a VSC card (e.g. "Virtual PCD 00 01" with `vsc card emulate` behind it). */
  readonly pcscdReader?: string;
  /** With a backup trail, as [0062] recommends (default true). */
  readonly backup?: boolean;
}

/** Writes by `clients` connections back to back for `durationMs`, through a server over `access`. */
async function writeRate(access: RentalCardAccess, clients: number, durationMs: number, backup: boolean): Promise<{ writesPerSecond: number; writes: number }> {
  const root = mkdtempSync(join(tmpdir(), 'vsc-bench-rental-'));
  try {
    const server = await RentalServer.open({ card: access, directory: join(root, 'trail'), ...(backup ? { backupDirectory: join(root, 'backup') } : {}) });
    const listener = await RentalListener.listen(join(root, 'rental.sock'), server);
    const connections = await Promise.all(Array.from({ length: clients }, () => RentalClient.connect(listener.path)));
    try {
      const text = 'bench execution public key 0123456789abcdef0123456789abcdef';
      // Warm up: the first Writes open files and connections.
      for (const client of connections) await client.write(Uint8Array.from(randomBytes(16)), text);
      let writes = 0;
      const start = process.hrtime.bigint();
      const deadline = start + BigInt(durationMs) * 1_000_000n;
      await Promise.all(connections.map(async (client) => {
        while (process.hrtime.bigint() < deadline) {
          await client.write(Uint8Array.from(randomBytes(16)), text);
          writes += 1;
        }
      }));
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      return { writesPerSecond: writes / seconds, writes };
    } finally {
      for (const client of connections) client.close();
      await listener.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function rate(write: { writesPerSecond: number; writes: number }, signsPerSecond: number, clients: number): RentalWriteRate {
  return { ...write, signsPerSecond, ratio: write.writesPerSecond / signsPerSecond, clients };
}

/** Measures the in-process reader, and pcscd when `pcscdReader` is given. */
export async function measureRentalWrites(options: RentalWriteOptions = {}): Promise<RentalWriteFigures> {
  const durationMs = options.durationMs ?? 3_000;
  const clients = options.clients ?? 4;
  const backup = options.backup ?? true;
  const h = new Uint8Array(32).fill(0x5a);

  const card = await inProcessCard();
  const inProcessSigns = await measureRate(() => card.other.signAndIncrement(h), durationMs);
  const inProcess = rate(await writeRate(card.access, clients, durationMs, backup), inProcessSigns, clients);
  if (options.pcscdReader === undefined) return { inProcess };

  const connection = await connectPcscd(options.pcscdReader, { exclusive: true });
  let pcscdSigns: number;
  try {
    const client = new VscAppletClient(connection);
    await client.select();
    pcscdSigns = await measureRate(() => client.signAndIncrement(h), durationMs);
  } finally {
    connection.disconnect();
  }
  const pcscd = rate(await writeRate(pcscdCardAccess(options.pcscdReader), clients, durationMs, backup), pcscdSigns, clients);
  return { inProcess, pcscd };
}
