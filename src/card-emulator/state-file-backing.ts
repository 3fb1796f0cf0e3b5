// The local state file as the backing of a running card (`vsc card emulate`): open locks and reads the
// file (or creates the card), and every change is written durably before the card answers. A counter
// value is granted by writing the counter past it, so a crash can skip a value but never sign it twice.
import { resolve } from 'node:path';
import type { VscKeyMode } from '../apdu/index.js';
import { constantTimeEqual, wipe } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { VscError } from '../errors/index.js';
import { encodeProtectedInformation, updateProtectedInformation, type CardBacking, type CounterGrant, type OpenedCard } from '../card/index.js';
import { acquireFileLock, writeFileAtomic, type FileLock } from '../files/index.js';
import { wipeContainerSecrets } from '../license/index.js';
import { encodeStateFile, newEmulatedCardState, readEmulatedCardState, writeEmulatedCardState } from './emulated-card-state.js';

export interface StateFileBackingOptions {
  /** Used only when the state file is created. */
  readonly serial?: string;
  readonly keyMode?: VscKeyMode;
}

export class StateFileBacking implements CardBacking {
  readonly grantMode = 'on-demand' as const;
  readonly path: string;
  #lock: FileLock | undefined;
  #header: { serial: string; keyMode: VscKeyMode } | undefined;
  /** SHA-256 of the information last written, so that giving back an unchanged card writes nothing. */
  #written: Uint8Array | undefined;
  /** Whether open() created the state file. */
  created = false;

  constructor(
    path: string,
    private readonly options: StateFileBackingOptions = {},
  ) {
    this.path = path;
  }

  async open(): Promise<OpenedCard> {
    // No second process may use the same keys, counter and PIN state. The lock is a file beside the
    // state file, not the state file itself: every write replaces that file with a new one.
    this.#lock = await acquireFileLock(`${resolve(this.path)}.lock`, `emulated card state ${resolve(this.path)}`);
    try {
      let state = readEmulatedCardState(this.path);
      this.created = state === undefined;
      state ??= newEmulatedCardState({ serial: this.options.serial, keyMode: this.options.keyMode });
      // Written at once, new or not: a legacy JSON file is rewritten in the binary format, and a file
      // from before the PIV applet gets its personalisation stored, so its keys stay the same.
      writeEmulatedCardState(this.path, state);
      const { serial, keyMode, counter, signingKeySeed } = state.vsc;
      this.#header = { serial, keyMode };
      const plaintext = encodeProtectedInformation({ signingSeed: signingKeySeed, counter, piv: state.piv, license: state.license });
      wipe(signingKeySeed);
      if (state.license !== undefined) wipeContainerSecrets(state.license);
      this.#written = sha256(plaintext);
      return { serial, keyMode, plaintext, grant: { start: counter, end: counter } };
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** One value at a time: the file records the counter past `next` before the card signs with it. */
  async grantMore(next: bigint, snapshot: () => Uint8Array): Promise<CounterGrant> {
    const current = snapshot();
    try {
      this.#write(updateProtectedInformation(current, { counter: next + 1n }));
    } finally {
      wipe(current);
    }
    return { start: next, end: next + 1n };
  }

  async save(snapshot: Uint8Array): Promise<void> {
    this.#write(snapshot.slice());
  }

  /** Every change was written when it happened; the file is written again only if it would differ. */
  async giveBack(snapshot: Uint8Array): Promise<void> {
    if (this.#written === undefined || !constantTimeEqual(sha256(snapshot), this.#written)) this.#write(snapshot.slice());
  }

  async close(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    lock?.release();
  }

  /** Writes the file durably and wipes `information` and the file image. */
  #write(information: Uint8Array): void {
    if (this.#header === undefined) throw new VscError('state-file.not-open', 'the state file is not open');
    try {
      const bytes = encodeStateFile(this.#header.serial, this.#header.keyMode, information);
      try {
        writeFileAtomic(this.path, bytes);
        this.#written = sha256(information);
      } finally {
        wipe(bytes);
      }
    } finally {
      wipe(information);
    }
  }
}
