// A standalone software card for application developers (the job of vsmartcard's vicc): a card OS
// with the VSC applet whose state lives in a file and survives restarts.
import { resolve } from 'node:path';
import { CardOs, type CardOsOptions } from '../apdu/card-os.js';
import { SoftwareVscCard, VscApplet } from '../apdu/vsc/index.js';
import { PivApplet, clonePivState } from '../apdu/piv/index.js';
import { ed25519KeyFromSeed } from '../crypto/index.js';
import { acquireProcessLock } from '../files/index.js';
import type { VscKeyMode } from '../apdu/vsc/index.js';
import {
  newEmulatedCardState,
  readEmulatedCardState,
  writeEmulatedCardState,
  type EmulatedCardState,
} from './emulated-card-state.js';

export interface OpenEmulatedCardOptions {
  /** Used only when the state file is created. */
  serial?: string;
  keyMode?: VscKeyMode;
  cardOs?: CardOsOptions;
}

export interface EmulatedCard {
  readonly os: CardOs;
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  readonly created: boolean;
  /** Releases the state file's lock. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the card stored in `statePath`, locking the file so that no second process
 * can use the same keys, counter and PIN state. Every change (a counter advance, a PIN try, a new
 * key) is written before the card answers.
 */
export async function openEmulatedCard(statePath: string, options: OpenEmulatedCardOptions = {}): Promise<EmulatedCard> {
  const lock = await acquireProcessLock(`emulated card state ${resolve(statePath)}`);
  try {
    let state: EmulatedCardState | undefined = readEmulatedCardState(statePath);
    const created = state === undefined;
    // Written at once, new or not: a file from before the PIV applet gets its personalisation
    // stored now, so that its keys stay the same across restarts.
    state ??= newEmulatedCardState({ serial: options.serial, keyMode: options.keyMode });
    writeEmulatedCardState(statePath, state);
    const current = state;
    const persist = (next: EmulatedCardState): void => {
      writeEmulatedCardState(statePath, next);
      Object.assign(current, next);
    };
    const key = ed25519KeyFromSeed(current.vsc.signingKeySeed);
    const card = new SoftwareVscCard({
      serial: current.vsc.serial,
      keyMode: current.vsc.keyMode,
      key,
      counter: current.vsc.counter,
      commit: (next) => persist({ ...current, vsc: { ...current.vsc, counter: next } }),
    });
    const piv = new PivApplet(clonePivState(current.piv), { commit: (next) => persist({ ...current, piv: clonePivState(next) }) });
    const os = new CardOs([new VscApplet(card), piv], options.cardOs);
    return { os, serial: current.vsc.serial, keyMode: current.vsc.keyMode, created, close: () => lock.release() };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
