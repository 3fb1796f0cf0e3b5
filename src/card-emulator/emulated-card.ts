// A standalone software card for application developers (the job of vsmartcard's vicc): a card OS
// with the VSC applet whose state lives in a file and survives restarts.
import { resolve } from 'node:path';
import { CardOs, type CardOsOptions } from '../apdu/card-os.js';
import { SoftwareVscCard, VscApplet } from '../apdu/vsc/index.js';
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

export class StateConflictError extends Error {}

/**
 * Opens (or creates) the card stored in `statePath`, locking the file so that no second process
 * can sign with the same key and counter. Every counter advance is written before the signature
 * leaves the card.
 */
export async function openEmulatedCard(statePath: string, options: OpenEmulatedCardOptions = {}): Promise<EmulatedCard> {
  const lock = await acquireProcessLock(`emulated card state ${resolve(statePath)}`);
  try {
    let state: EmulatedCardState | undefined = readEmulatedCardState(statePath);
    const created = state === undefined;
    if (state === undefined) {
      state = newEmulatedCardState({ serial: options.serial, keyMode: options.keyMode });
      writeEmulatedCardState(statePath, state);
    }
    const current = state;
    const key = ed25519KeyFromSeed(current.vsc.signingKeySeed);
    const card = new SoftwareVscCard({
      serial: current.vsc.serial,
      keyMode: current.vsc.keyMode,
      key,
      counter: current.vsc.counter,
      commit: (next) => {
        writeEmulatedCardState(statePath, { ...current, vsc: { ...current.vsc, counter: next } });
        current.vsc.counter = next;
      },
    });
    const os = new CardOs([new VscApplet(card)], options.cardOs);
    return { os, serial: current.vsc.serial, keyMode: current.vsc.keyMode, created, close: () => lock.release() };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
