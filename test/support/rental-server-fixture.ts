// The rental server for the unit tests (patent 003 [0058]): the real VSC applet on a software card in the in-process
// card OS, reached through the in-process reader with Begin/EndTransaction, a RentalServer over it with its trail in
// a temporary directory, and its socket in a 0700 directory of its own. No mocks: the card signs, the files are fsynced.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardOs, SoftwareVscCard, VscApplet, type VscKeyMode } from '../../src/apdu/index.js';
import { VscAppletClient } from '../../src/card-client/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED, type CardHandle } from '../../src/reader-driver/index.js';
import { claimRentalSocket, handleCardAccess, RentalListener, RentalServer, type RentalCardAccess, type TrustRoot } from '../../src/rental/index.js';

export interface InProcessRentalCard {
  readonly card: SoftwareVscCard;
  readonly access: RentalCardAccess;
  readonly trustRoot: TrustRoot;
  readonly seed: Uint8Array;
  /** Another application's connection to the same card (shared), its VSC applet selected. */
  other(): Promise<{ handle: CardHandle; client: VscAppletClient }>;
}

let readers = 0;

/** A software VSC card in an in-process reader, and the rental server's transactional access to it. */
export async function inProcessRentalCard(init: { serial?: string; keyMode?: VscKeyMode; counter?: bigint; seed?: Uint8Array } = {}): Promise<InProcessRentalCard> {
  const serial = init.serial ?? 'SN-RENT-SRV';
  const keyMode = init.keyMode ?? 'individual';
  const seed = init.seed ?? generateEd25519Seed();
  const card = new SoftwareVscCard({ serial, keyMode, key: ed25519KeyFromSeed(seed), counter: init.counter ?? 0n });
  const system = new ReaderSystem();
  const name = `Rental Server Test Reader ${String(readers++).padStart(2, '0')}`;
  system.addReader(name).insert(new CardOs([new VscApplet(card)]));
  const context = establishContext(system);
  const handle = await context.connect(name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  return {
    card,
    access: handleCardAccess(handle, `in-process reader ${JSON.stringify(name)}`),
    trustRoot: { publicKey: card.publicKey, serial, keyMode },
    seed,
    async other() {
      const other = await establishContext(system).connect(name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
      const client = new VscAppletClient(other);
      await client.select();
      return { handle: other, client };
    },
  };
}

/** A fresh 0700 temporary directory. */
export function rentalTempDir(prefix = 'vsc-rental-srv-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunningRentalServer {
  readonly server: RentalServer;
  readonly listener: RentalListener;
  readonly socketPath: string;
  /** What the server logged (repairs, warnings). */
  readonly logs: string[];
  stop(): Promise<void>;
}

/** Opens a RentalServer over `access` on `directory` and listens on a socket in its own 0700 directory. */
export async function startRentalServer(options: { access: RentalCardAccess; directory: string; backupDirectory?: string; socketPath?: string }): Promise<RunningRentalServer> {
  const logs: string[] = [];
  const socketPath = options.socketPath ?? join(rentalTempDir('vsc-rs-'), 'rental.sock');
  await claimRentalSocket(socketPath);
  const server = await RentalServer.open({
    card: options.access, directory: options.directory, log: (line) => logs.push(line),
    ...(options.backupDirectory === undefined ? {} : { backupDirectory: options.backupDirectory }),
  });
  const listener = await RentalListener.listen(socketPath, server).catch(async (error: unknown) => {
    await server.close();
    throw error;
  });
  return { server, listener, socketPath, logs, stop: () => listener.close() };
}
