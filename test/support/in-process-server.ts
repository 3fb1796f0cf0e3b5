// A VSC server in the test's own process: real keys in a temp data directory, a real SQLite
// database, a real WebSocket listener on a free port, and the endpoint a client library call needs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerEndpoint } from '../../src/vsc-client/index.js';
import { CardStore, initServerData, loadServerKeys, openDatabase, startVscServer, type RunningVscServer, type ServerKeys, type ServerLimits, type VscDatabase } from '../../src/vsc-server/index.js';

export interface InProcessServer {
  readonly dir: string;
  readonly keys: ServerKeys;
  readonly database: VscDatabase;
  readonly server: RunningVscServer;
  /** The administrator's side of the same database. */
  readonly store: CardStore;
  /** URL, pinned key and master key of the server. */
  readonly endpoint: ServerEndpoint;
  close(): Promise<void>;
}

/** `limits`: the server's (defaults otherwise), for the tests of its caps and rates. */
export async function startInProcessServer(prefix: string, options: { readonly limits?: Partial<ServerLimits> } = {}): Promise<InProcessServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await initServerData(join(dir, 'server'));
  const keys = loadServerKeys(join(dir, 'server'));
  const database = await openDatabase(join(dir, 'server', 'vsc.db'));
  const server = await startVscServer({ keys, database, ...(options.limits === undefined ? {} : { limits: options.limits }) });
  return {
    dir, keys, database, server, store: new CardStore(database),
    endpoint: { url: server.url, serverKey: keys.channelPublicKey, masterKey: keys.masterKey },
    async close() {
      await server.close();
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
