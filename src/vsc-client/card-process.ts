// The running card of `vsc card insert` ([0035]-[0057]): takes the machine lock, inserts the card,
// serves it through vpcd, polls the machine, and removes the card (refusing service first) on
// SIGTERM, on `vsc card remove`, or when the clock jumps. A MUK or PID change disables it at once.
import type { Server } from 'node:net';
import { wipe } from '../bytes/index.js';
import { acquireProcessLock, type ProcessLock } from '../files/index.js';
import { VpcdBridge } from '../reader-driver/vpcd-bridge.js';
import { controlSocketPath, machineLockName } from './client-config.js';
import { serveControlSocket, type ControlAnswer } from './control-socket.js';
import { EncryptedMemory } from './encrypted-memory.js';
import type { OwnerKeys } from './key-derivation.js';
import { startPolling } from './polling.js';
import { ServerBackedCard } from './server-backed-card.js';
import { extendCounterWindow, insertCard, removeCard, type ServerEndpoint } from './server-operations.js';

export interface CardProcessOptions {
  readonly endpoint: ServerEndpoint;
  readonly serial: string;
  readonly password: Uint8Array;
  readonly muk: Uint8Array;
  readonly readMuk: () => Promise<Uint8Array>;
  readonly stateDir: string;
  readonly vpcd?: { host: string; port: number };
  readonly pollIntervalMs?: number;
  readonly say: (event: Record<string, unknown>, text: string) => void;
}

export type CardProcessEnd = { readonly removed: true } | { readonly removed: false; readonly error: unknown };

/** Inserts and serves until removal; resolves with how it ended (the caller picks the exit code). */
export async function runCardProcess(options: CardProcessOptions): Promise<CardProcessEnd> {
  const { endpoint, serial, stateDir, say } = options;
  let lock: ProcessLock;
  try {
    lock = await acquireProcessLock(machineLockName(stateDir));
  } catch (error) {
    throw Object.assign(error as Error, { message: `another virtual card already runs on this machine (${stateDir}); remove it first` });
  }
  let card: ServerBackedCard | undefined;
  let bridge: VpcdBridge | undefined;
  let control: Server | undefined;
  let keys: EncryptedMemory | undefined;
  try {
    const inserted = await insertCard(endpoint, serial, { password: options.password }, options.muk);
    wipe(options.password);
    // Only the owner keys are kept, sealed like the card's secrets; the password is gone.
    const ownerKeys = new Uint8Array(64);
    ownerKeys.set(inserted.keys.authKey, 0);
    ownerKeys.set(inserted.keys.protectionKey, 32);
    wipe(inserted.keys.authKey, inserted.keys.protectionKey);
    keys = EncryptedMemory.seal(ownerKeys);
    const ownerCredentials = (): OwnerKeys => keys!.use((bytes) => ({ authKey: bytes.slice(0, 32), protectionKey: bytes.slice(32) }));
    let removing = false;
    const extendWindow = async (): Promise<void> => {
      if (removing) return;
      const credentials = ownerCredentials();
      try {
        card!.grantCounterWindow(await extendCounterWindow(endpoint, serial, { keys: credentials }, { muk: options.muk, holderSecret: inserted.holderSecret }));
      } catch (error) {
        card!.counterWindowRefused();
        say({ event: 'warning', serial, message: `no further counter window: ${(error as Error).message}` }, `warning: no further counter window: ${(error as Error).message}`);
      } finally {
        wipe(credentials.authKey, credentials.protectionKey);
      }
    };
    let extending: Promise<void> | undefined;
    card = new ServerBackedCard({
      serial, plaintext: inserted.plaintext, counterWindow: inserted.counterWindow,
      onCounterWindowLow: () => void (extending = extendWindow().finally(() => (extending = undefined))),
    });
    wipe(inserted.plaintext);
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
          card!.disable(); // [0057]: refuse service first
          await bridge?.stop();
          await extending; // the server serialises operations on the serial: let a window request finish
          const plaintext = card!.snapshot();
          try {
            const credentials = ownerCredentials();
            try {
              await removeCard(endpoint, serial, { keys: credentials }, {
                muk: options.muk, holderSecret: inserted.holderSecret, cardId: inserted.cardId, plaintext, sealedVersion: inserted.sealedVersion + 1n, nextCounter: card!.nextCounter,
              });
            } finally {
              wipe(credentials.authKey, credentials.protectionKey);
            }
            say({ event: 'removed', serial, reason: why }, `card ${serial} removed (${why})`);
            return { removed: true } as const;
          } catch (error) {
            return { removed: false, error } as const;
          } finally {
            wipe(plaintext);
          }
        })());
      const polling = startPolling({
        intervalMs: options.pollIntervalMs ?? 60_000,
        readMuk: options.readMuk,
        expectedMuk: options.muk,
        expectedPid: process.pid,
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
          const { next, nextWindow } = card!.counterStatus;
          return {
            kind: 'status',
            status: {
              serial, pid: process.pid, nextCounter: next.toString(), nextWindow: nextWindow === undefined ? null : [String(nextWindow[0]), String(nextWindow[1])],
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
    card?.destroy();
    keys?.destroy();
    await lock.release();
  }
}
