// The running card of `vsc card insert --dongle URI` (patent 004 claim 10, [0104]-[0110]): the same card
// program as for a server-backed card (card-process.ts), backed by the dongle instead of the server and
// watched by challenges to the dongle instead of machine polls. [0106]: attached and answering is in-use;
// [0107]: a missing or wrong answer is remove: the card refuses service, leaves the reader, and its
// information goes back to the dongle only if the dongle still answers.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { toHex } from '../bytes/index.js';
import { RunningCard } from '../card/index.js';
import { DEFAULT_POLL_INTERVAL_MS, DongleBacking, watchDongle, type ChallengeTable, type Dongle, type RevocationCache } from '../dongle-backend/index.js';
import { ensurePrivateDirectory, readPrivateFile, writeFileAtomic } from '../files/index.js';
import { serveCard, type CardProcessEnd } from './card-process.js';

export interface DongleCardProcessOptions {
  readonly dongle: Dongle;
  /** The owner's password; wiped once the card is open. */
  readonly password: Uint8Array;
  readonly stateDir: string;
  /** This user's persistent data directory: the revocation lists seen are kept there. */
  readonly dataDir: string;
  readonly vpcd?: { host: string; port: number } | undefined;
  /** How often the dongle is challenged (default 1 s). */
  readonly pollIntervalMs?: number;
  /** Challenge with the vendor's table of precomputed pairs (Fig. 14) instead of signed nonces. */
  readonly challengeTable?: ChallengeTable;
  readonly say: (event: Record<string, unknown>, text: string) => void;
}

/** The newest revocation list of each authority this user has seen, in DATA/revocations (0700, files 0600). */
export function revocationCacheIn(dataDir: string): RevocationCache {
  const directory = join(dataDir, 'revocations');
  const path = (authorityKey: Uint8Array) => join(directory, `${toHex(authorityKey)}.list`);
  return {
    read: (authorityKey) => (existsSync(path(authorityKey)) ? readPrivateFile(path(authorityKey)) : undefined),
    write: (authorityKey, list) => {
      ensurePrivateDirectory(directory);
      writeFileAtomic(path(authorityKey), list);
    },
  };
}

export async function runDongleCardProcess(options: DongleCardProcessOptions): Promise<CardProcessEnd> {
  const { dongle, say } = options;
  const backing = new DongleBacking({
    dongle,
    password: options.password,
    revocations: revocationCacheIn(options.dataDir),
    warn: (message) => say({ event: 'warning', message }, `warning: ${message}`),
  });
  return serveCard({
    stateDir: options.stateDir,
    vpcd: options.vpcd,
    say,
    open: () => RunningCard.open(backing),
    watch: (_card, actions) => {
      const watcher = watchDongle({
        dongle,
        identity: backing.identity!,
        intervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
        ...(options.challengeTable === undefined ? {} : { challenge: options.challengeTable }),
        onGone: (reason) => actions.remove(reason),
      });
      return () => watcher.stop();
    },
  });
}
