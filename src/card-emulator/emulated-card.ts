// A standalone software card for application developers (the job of vsmartcard's vicc): the one card
// program of src/card, backed by a state file that survives restarts.
import type { CardOs, CardOsOptions, VscKeyMode } from '../apdu/index.js';
import { RunningCard } from '../card/index.js';
import { StateFileBacking } from './state-file-backing.js';

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
  /** Writes the final state and releases the state file's lock. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the card stored in `statePath`, locking the file so that no second process
 * can use the same keys, counter and PIN state. Every change (a counter advance, a PIN try, a new
 * key) is written before the card answers.
 */
export async function openEmulatedCard(statePath: string, options: OpenEmulatedCardOptions = {}): Promise<EmulatedCard> {
  const backing = new StateFileBacking(statePath, { ...(options.serial === undefined ? {} : { serial: options.serial }), ...(options.keyMode === undefined ? {} : { keyMode: options.keyMode }) });
  const card = await RunningCard.open(backing, options.cardOs === undefined ? {} : { cardOs: options.cardOs });
  const keyMode = card.keyMode;
  return {
    os: card.os,
    serial: card.serial,
    keyMode,
    created: backing.created,
    async close() {
      try {
        await card.giveBack();
      } finally {
        await card.destroy();
      }
    },
  };
}
