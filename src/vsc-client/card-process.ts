// The running card of `vsc card insert` ([0035]-[0057]): takes the machine lock, inserts the card,
// serves it through vpcd, watches it, and removes the card (refusing service first) on SIGTERM, on
// `vsc card remove`, or when its watcher says so. A server-backed card's watcher polls the machine
// (a clock jump removes it; a MUK or PID change disables it at once); a dongle-backed card's watcher
// challenges the dongle (dongle-card-process.ts).
import type { Server } from 'node:net';
import { RunningCard } from '../card/index.js';
import { LockHeldError, writeFileAtomic, type FileLock } from '../files/index.js';
import { VpcdBridge } from '../reader-driver/index.js';
import { acquireMachineLock, controlSocketPath } from './client-config.js';
import { serveControlSocket, type ControlAnswer } from './control-socket.js';
import { wipe } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { describeDelivery, deliverPendingUploads } from './pending-delivery.js';
import { PendingUploads } from './pending-upload.js';
import { startPolling } from './polling.js';
import { ServerBacking } from './server-backing.js';
import type { ServerEndpoint } from './server-operations.js';

export interface CardProcessOptions {
  readonly endpoint: ServerEndpoint;
  readonly serial: string;
  readonly password: Uint8Array;
  readonly muk: Uint8Array;
  readonly readMuk: () => Promise<Uint8Array>;
  readonly stateDir: string;
  /** Where uploads wait until the server takes them (dataDirectory). */
  readonly dataDir: string;
  readonly vpcd?: { host: string; port: number };
  readonly pollIntervalMs?: number;
  /**
   * Where to write the server's attestation of a server-held card's key (patent 003 [0096]), for the owner to send
   * to a software vendor. A card the server attests nothing for gets a warning, and runs.
   */
  readonly attestationOut?: string;
  readonly say: (event: Record<string, unknown>, text: string) => void;
}

export type CardProcessEnd = { readonly removed: true } | { readonly removed: false; readonly error: unknown };

/** What a watcher of a running card may do: disable it at once (tampering), or remove it. */
export interface CardWatchActions {
  /** [0057]: refuse service at once, leave the reader, end with `message` as the error; nothing is given back. */
  disable(message: string): void;
  /** The remove sequence (refuse service, leave the reader, give the card back), then end. */
  remove(reason: string): void;
}

export interface CardServiceOptions {
  readonly stateDir: string;
  readonly vpcd?: { host: string; port: number } | undefined;
  readonly say: (event: Record<string, unknown>, text: string) => void;
  /** Opens the card, under the machine lock. */
  readonly open: () => Promise<RunningCard>;
  /** Starts watching the machine or the backing while the card runs; returns how to stop. */
  readonly watch: (card: RunningCard, actions: CardWatchActions) => () => void;
}

/** Inserts a server-backed card and serves it until removal; resolves with how it ended (the caller picks the exit code). */
export async function runCardProcess(options: CardProcessOptions): Promise<CardProcessEnd> {
  const { endpoint, serial, say } = options;
  return serveCard({
    stateDir: options.stateDir,
    vpcd: options.vpcd,
    say,
    open: async () => {
      // What an earlier card process of this machine could not give back goes first.
      for (const delivery of await deliverPendingUploads({ dataDir: options.dataDir, muk: options.muk })) {
        say({ event: 'pending-upload', ...delivery }, describeDelivery(delivery));
        if (delivery.serial === serial && delivery.outcome === 'waiting') {
          wipe(options.password);
          throw new VscError('card.pending', `card ${serial} still has changes waiting on this machine (${delivery.path}); not inserted until the server takes them`, { exitCode: ExitCode.refusedByState });
        }
      }
      const pending = new PendingUploads(options.dataDir);
      const backing = new ServerBacking({ endpoint, serial, credentials: { password: options.password }, muk: options.muk, pending });
      const card = await RunningCard.open(backing, {
        onGrantFailed: (error) => say({ event: 'warning', serial, message: `no further counter window: ${(error as Error).message}` }, `warning: no further counter window: ${(error as Error).message}`),
      });
      if (options.attestationOut !== undefined) writeAttestation(options.attestationOut, serial, backing.attestation, say);
      return card;
    },
    watch: (_card, actions) => {
      const polling = startPolling({
        intervalMs: options.pollIntervalMs ?? 60_000,
        readMuk: options.readMuk,
        expectedMuk: options.muk,
        onTamper: (reason) => actions.disable(`the card disabled itself: ${reason === 'muk-changed' ? 'the machine unique key changed' : 'the process id changed'}`),
        onClockJump: (direction) => actions.remove(`the clock jumped ${direction}`),
      });
      return () => polling.stop();
    },
  });
}

/** Writes the insert's attestation to `path`; the card runs whether or not there is one to write. */
function writeAttestation(path: string, serial: string, attestation: Uint8Array | undefined, say: CardProcessOptions['say']): void {
  const warn = (message: string): void => say({ event: 'warning', serial, message }, `warning: ${message}`);
  if (attestation === undefined) {
    warn(`card ${serial} came with no attestation (it is not server-held, or its server has no attestation key); nothing written to ${path}`);
    return;
  }
  try {
    // Public: the card's serial and public key, signed by the server; meant to be sent to a vendor.
    writeFileAtomic(path, attestation, 0o644);
    say({ event: 'attestation', serial, path }, `attestation of card ${serial} written to ${path}`);
  } catch (error) {
    warn(`the attestation of card ${serial} could not be written to ${path}: ${(error as Error).message}`);
  }
}

/**
 * The running card of any backing: takes the machine lock, opens the card, serves it through vpcd, and
 * removes it (refusing service first) on SIGTERM, on `vsc card remove`, or when its watcher says so.
 */
export async function serveCard(options: CardServiceOptions): Promise<CardProcessEnd> {
  const { stateDir, say } = options;
  let lock: FileLock;
  try {
    lock = await acquireMachineLock(stateDir);
  } catch (error) {
    if (!(error instanceof LockHeldError)) throw error;
    throw Object.assign(error, { message: `another virtual card already runs on this machine (${stateDir}); remove it first` });
  }
  let card: RunningCard | undefined;
  let bridge: VpcdBridge | undefined;
  let control: Server | undefined;
  let removing = false;
  try {
    card = await options.open();
    const serial = card.serial;
    if (options.vpcd !== undefined) {
      bridge = new VpcdBridge(card.os, { host: options.vpcd.host, port: options.vpcd.port });
      await bridge.start();
    }
    const running = card;
    const vpcdText = options.vpcd === undefined ? null : `${options.vpcd.host}:${options.vpcd.port}`;

    const ended = new Promise<CardProcessEnd>((resolveEnd) => {
      let removal: Promise<CardProcessEnd> | undefined;
      let stopWatching = (): void => undefined;
      const remove = (why: string): Promise<CardProcessEnd> =>
        (removal ??= (async () => {
          removing = true;
          stopWatching();
          try {
            await running.giveBack(async () => bridge?.stop());
            say({ event: 'removed', serial, reason: why }, `card ${serial} removed (${why})`);
            return { removed: true } as const;
          } catch (error) {
            return { removed: false, error } as const;
          }
        })());
      stopWatching = options.watch(running, {
        disable: (message) => {
          stopWatching();
          running.disable();
          void bridge?.stop();
          resolveEnd({ removed: false, error: new Error(message) });
        },
        remove: (reason) => void remove(reason).then(resolveEnd),
      });
      const onSignal = () => void remove('signal').then(resolveEnd);
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      const served = serveControlSocket(controlSocketPath(stateDir), async (request): Promise<ControlAnswer> => {
        if (request === 'status') {
          const { next, nextGrant } = running.counterStatus;
          return {
            kind: 'status',
            status: {
              serial, pid: process.pid, nextCounter: next.toString(), nextWindow: nextGrant === undefined ? null : [String(nextGrant.start), String(nextGrant.end)],
              vpcd: vpcdText, removing,
            },
          };
        }
        const end = await remove('vsc card remove');
        // The answer is written before the process ends: resolve only after the handler returns.
        setImmediate(() => resolveEnd(end));
        return end.removed ? { kind: 'removed' } : { kind: 'error', message: (end.error as Error).message };
      });
      served.then(
        (server) => {
          control = server;
          // Announced only once every way to remove it is in place.
          say({ event: 'inserted', serial, vpcd: vpcdText, pid: process.pid }, `card ${serial} inserted${vpcdText === null ? '' : ` into vpcd at ${vpcdText}`}; SIGTERM, Ctrl-C or "vsc card remove" removes it`);
        },
        // Without its control socket the card could only be removed by a signal: give it back at once.
        (error: unknown) => void remove('the control socket could not listen').then(() => resolveEnd({ removed: false, error })),
      );
    });
    return await ended;
  } finally {
    control?.close();
    await bridge?.stop().catch(() => undefined);
    await card?.destroy();
    lock.release();
  }
}
