// A VSC server in the test's own process that serves server-held cards (patent 003 [0096]): real keys and an
// attestation key in a temp data directory (made by `initServerData`, as `vsc server init` makes them), a real SQLite
// database, a real WebSocket listener, and the administrator's store with the server's key for sealing seeds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8 } from '../../src/bytes/index.js';
import { enrollCard, type ServerEndpoint } from '../../src/vsc-client/index.js';
import {
  CardStore, heldSeedSealer, initServerData, loadOrCreateAttestationKey, loadServerKeys, openDatabase, serverAttester, startVscServer,
  type HeldSeedSealer, type RunningVscServer, type ServerAttester, type ServerKeys, type ServerLimits, type VscDatabase,
} from '../../src/vsc-server/index.js';

export const SERVER_HELD_PASSWORD = utf8('server-held card password');

export interface ServerHeldServer {
  readonly dir: string;
  /** The server's data directory. */
  readonly data: string;
  readonly keys: ServerKeys;
  readonly database: VscDatabase;
  readonly server: RunningVscServer;
  /** The administrator's side of the same database, able to create server-held cards. */
  readonly store: CardStore;
  /** What seals this server's held seeds: the test reads a seed back through it, as only the server could. */
  readonly seeds: HeldSeedSealer;
  readonly attester: ServerAttester;
  readonly endpoint: ServerEndpoint;
  /** `vsc admin enroll --server-held` then `vsc card enroll` from `muk`, through the library; returns the card's public key. */
  enrollServerHeld(serial: string, muk: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function startServerHeldServer(prefix: string, limits?: Partial<ServerLimits>): Promise<ServerHeldServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const data = join(dir, 'server');
  await initServerData(data);
  const keys = loadServerKeys(data);
  const attestationSeed = loadOrCreateAttestationKey(data);
  const attester = serverAttester(attestationSeed, keys.channelPublicKey);
  const database = await openDatabase(join(data, 'vsc.db'));
  const server = await startVscServer({ keys, database, attestationSeed, ...(limits === undefined ? {} : { limits }) });
  const seeds = heldSeedSealer(keys);
  const store = new CardStore(database, { heldSeeds: seeds, attester });
  const endpoint: ServerEndpoint = { url: server.url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey, retryMs: 0 };
  return {
    dir, data, keys, database, server, store, seeds, attester, endpoint,
    async enrollServerHeld(serial, muk) {
      const token = await store.create(serial, undefined, { serverHeld: true });
      const { publicKey, kind } = await enrollCard(endpoint, serial, token, SERVER_HELD_PASSWORD, muk);
      if (kind !== 'server-held') throw new Error(`expected card ${serial} to enroll as server-held, got ${kind}`);
      return publicKey;
    },
    async close() {
      await server.close();
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
