// The running card of `vsc card insert` ([0035]-[0057]): takes the machine lock, inserts the card,
// serves it through vpcd, polls the machine, and removes the card (refusing service first) on
// SIGTERM, on `vsc card remove`, or when the clock jumps. A MUK or PID change disables it at once.
import type { Server } from 'node:net';
import { RunningCard } from '../card/index.js';
import { LockHeldError, type FileLock } from '../files/index.js';
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
  readonly say: (event: Record<string, unknown>, text: string) => void;
}

export type CardProcessEnd = { readonly removed: true } | { readonly removed: false; readonly error: unknown };

/** Inserts and serves until removal; resolves with how it ended (the caller picks the exit code). */
export async function runCardProcess(options: CardProcessOptions): Promise<CardProcessEnd> {
  const { endpoint, serial, stateDir, say } = options;
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
    card = await RunningCard.open(backing, {
      onGrantFailed: (error) => say({ event: 'warning', serial, message: `no further counter window: ${(error as Error).message}` }, `warning: no further counter window: ${(error as Error).message}`),
    });
    if (options.vpcd !== undefined) {
      bridge = new VpcdBridge(card.os, { host: options.vpcd.host, port: options.vpcd.port });
      await bridge.start();
    }

    const ended = new Promise<CardProcessEnd>((resolveEnd) => {
      let removal: Promise<CardProcessEnd> | undefined;
      const remove = (why: string): Promise<CardProcessEnd> =>
        (removal ??= (async () => {
          removing = true;
          polling.stop();
          try {
            await card!.giveBack(async () => bridge?.stop());
            say({ event: 'removed', serial, reason: why }, `card ${serial} removed (${why})`);
            return { removed: true } as const;
          } catch (error) {
            return { removed: false, error } as const;
          }
        })());
      const polling = startPolling({
        intervalMs: options.pollIntervalMs ?? 60_000,
        readMuk: options.readMuk,
        expectedMuk: options.muk,
        onTamper: (reason) => {
          card!.disable();
          void bridge?.stop();
          resolveEnd({ removed: false, error: new Error(`the card disabled itself: ${reason === 'muk-changed' ? 'the machine unique key changed' : 'the process id changed'}`) });
        },
        onClockJump: (direction) => void remove(`the clock jumped ${direction}`).then(resolveEnd),
      });
      const onSignal = () => void remove('signal').then(resolveEnd);
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      const served = serveControlSocket(controlSocketPath(stateDir), async (request): Promise<ControlAnswer> => {
        if (request === 'status') {
          const { next, nextGrant } = card!.counterStatus;
          return {
            kind: 'status',
            status: {
              serial, pid: process.pid, nextCounter: next.toString(), nextWindow: nextGrant === undefined ? null : [String(nextGrant.start), String(nextGrant.end)],
              vpcd: options.vpcd === undefined ? null : `${options.vpcd.host}:${options.vpcd.port}`, removing,
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
          say({ event: 'inserted', serial, vpcd: options.vpcd === undefined ? null : `${options.vpcd.host}:${options.vpcd.port}`, pid: process.pid }, `card ${serial} inserted${options.vpcd === undefined ? '' : ` into vpcd at ${options.vpcd.host}:${options.vpcd.port}`}; SIGTERM, Ctrl-C or "vsc card remove" removes it`);
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
