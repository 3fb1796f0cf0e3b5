// Where the license applet's container lives between commands (DESIGN.md "What backs a running card"): the running
// card keeps it in encrypted memory and records changes with its backing (src/card/running-card.ts); this store keeps
// it in process memory, for tests and tools, in its binary form so every read is a fresh copy the applet may wipe.
import { decodeLicenseContainer, encodeLicenseContainer } from '../license-container-codec.js';
import { EMPTY_CONTAINER, type LicenseContainer } from '../license-model.js';
import { LicenseError } from '../license-error.js';

export interface LicenseStore {
  /** The container as it stands: a fresh copy for one command, whose hidden and secret data the applet zeroes after it. */
  read(): LicenseContainer;
  /**
   * Records `next` durably and makes it current, before the applet answers. Throws LicenseError 'capacity' when it
   * would not fit (nothing changed); any other error is a storage failure, after which the container is as it was.
   */
  write(next: LicenseContainer): void | Promise<void>;
}

export interface MemoryLicenseStoreOptions {
  /** Largest encoded container accepted when it grows (a container already past it may still shrink or stay). */
  readonly maxBytes?: number;
}

export class MemoryLicenseStore implements LicenseStore {
  #bytes: Uint8Array;
  readonly #maxBytes: number;

  constructor(initial: LicenseContainer = EMPTY_CONTAINER, options: MemoryLicenseStoreOptions = {}) {
    this.#bytes = encodeLicenseContainer(initial);
    this.#maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
  }

  read(): LicenseContainer {
    return decodeLicenseContainer(this.#bytes);
  }

  write(next: LicenseContainer): void {
    const bytes = encodeLicenseContainer(next);
    if (bytes.length > this.#maxBytes && bytes.length > this.#bytes.length) {
      throw new LicenseError('capacity', `the license container would grow to ${bytes.length} bytes; the store has room for ${this.#maxBytes}`);
    }
    this.#bytes = bytes;
  }

  /** The encoded length of the container as it stands. */
  get size(): number {
    return this.#bytes.length;
  }
}
