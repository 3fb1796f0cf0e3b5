// The restore hub as one object (Wibu 000 P002 §2.1 "Hub Web Service", "CM-Box Backup" §2.10 "Locking instance"): its
// data directory (authority key, admin token), its database (licensor registry, central locking list, audit), the
// restore jobs in memory, and how it reaches the licensors' restoring services. The HTTP service and the CLI's unlock
// both work on it.
import { resolve } from 'node:path';
import type { Ed25519SigningKey } from '../../crypto/index.js';
import { loadHubData } from './hub-data.js';
import { openHubDatabase, type HubDatabase } from './hub-database.js';
import { DEFAULT_FORWARD_TIMEOUT_MS, type HubFetch } from './hub-forward.js';
import { RestoreJobStore } from './hub-job-store.js';

export interface HubBackend {
  readonly dataDir: string;
  readonly database: HubDatabase;
  /** The central authority: signs lock and unlock sequences. */
  readonly authority: Ed25519SigningKey;
  readonly adminTokenHash: Uint8Array;
  /** Unix seconds (tests move it). */
  now(): number;
  readonly jobs: RestoreJobStore;
  /** How long one call to a licensor's restoring service may take. */
  readonly forwardTimeoutMs: number;
  readonly fetch: HubFetch;
  close(): Promise<void>;
}

export interface HubBackendOptions {
  readonly dataDir: string;
  /** Default DIR/hub.sqlite. */
  readonly databaseUrl?: string;
  readonly now?: () => number;
  readonly forwardTimeoutMs?: number;
  /** Restore jobs are forgotten this long after they started (default one hour). */
  readonly jobLifetimeSeconds?: number;
  readonly fetch?: HubFetch;
}

const systemSeconds = (): number => Math.floor(Date.now() / 1000);

/** Opens the hub of data directory `dataDir`: creates the directory, its key, token and database at the first use. */
export async function openHubBackend(options: HubBackendOptions): Promise<HubBackend> {
  const timeout = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeout) || timeout < 100 || timeout > 600_000) throw new TypeError(`expected a forward timeout of 100..600000 ms, got ${String(timeout)}`);
  const data = loadHubData(resolve(options.dataDir));
  const database = await openHubDatabase(options.databaseUrl ?? data.databaseUrl);
  const now = options.now ?? systemSeconds;
  return Object.freeze({
    dataDir: data.dir,
    database,
    authority: data.authority,
    adminTokenHash: data.adminTokenHash,
    now,
    jobs: new RestoreJobStore({ now, ...(options.jobLifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.jobLifetimeSeconds }) }),
    forwardTimeoutMs: timeout,
    fetch: options.fetch ?? globalThis.fetch,
    close: () => database.close(),
  });
}
