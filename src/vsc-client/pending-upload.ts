// A remove that fails loses nothing (issue 13). Before a server-backed card is given back, its sealed
// upload (ciphertext under the owner's protection key) is written to the machine's state directory;
// it is deleted only once the server has taken it. The same file is kept while the card runs, each
// time its information changes (a PIV PIN try, a new key), so a crash loses no PIN retry counter
// either: such a checkpoint names no next counter, and the server then counts the whole granted
// window as used, as at recover. The next `vsc card insert`, `remove`, `status` or `recover` on this
// machine sends what is waiting.
//
// The file holds the per-insert holder secret, which lets whoever reads it finish this one card's
// remove (and nothing else: no password, no protection key). It lives in the user's 0700 state
// directory, 0600, written atomically, beside the machine lock: the same trust boundary as the running
// card process's own memory.
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { wipe } from '../bytes/index.js';
import { writeFileAtomic } from '../files/index.js';
import { MAX_SEALED_BYTES, SERIAL_PATTERN, U128_FIELD, bytesField, decodeFields, encodeFields, textField, type MessageSchema } from '../vsc-protocol/index.js';

export interface PendingUpload {
  readonly serial: string;
  /** Where the card came from: the server's URL and pinned key, and the implementation key files. */
  readonly url: string;
  readonly serverKey: Uint8Array;
  readonly masterKeyFile?: string;
  readonly keyfile?: string;
  readonly holderSecret: Uint8Array;
  readonly sealed: Uint8Array;
  readonly sealedVersion: bigint;
  /** Present once the card was disabled and given back; absent in a checkpoint of a running card. */
  readonly nextCounter?: bigint;
}

const PATH_TEXT = textField(/^\/[^\0\n]{0,4095}$/, 4096);
const SCHEMA: MessageSchema = {
  what: 'pending upload',
  type: 0x50,
  fields: [
    { tag: 1, name: 'serial', value: textField(SERIAL_PATTERN, 64) },
    { tag: 2, name: 'url', value: textField(/^wss?:\/\/[^\s]{1,2000}$/, 2048) },
    { tag: 3, name: 'serverKey', value: bytesField(32) },
    { tag: 4, name: 'masterKeyFile', value: PATH_TEXT, optional: true },
    { tag: 5, name: 'keyfile', value: PATH_TEXT, optional: true },
    { tag: 6, name: 'holderSecret', value: bytesField(32) },
    { tag: 7, name: 'sealed', value: bytesField(1, MAX_SEALED_BYTES) },
    { tag: 8, name: 'sealedVersion', value: U128_FIELD },
    { tag: 9, name: 'nextCounter', value: U128_FIELD, optional: true },
  ],
};

const SUFFIX = '.upload';
const REFUSED_SUFFIX = '.refused';

/** The uploads waiting in one state directory, one file per serial. */
export class PendingUploads {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'pending');
  }

  pathOf(serial: string): string {
    return join(this.dir, `${serial}${SUFFIX}`);
  }

  /** Writes (or replaces) the card's upload durably before anything is sent. */
  keep(upload: PendingUpload): string {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const bytes = encodeFields(SCHEMA, upload as unknown as Record<string, unknown>);
    try {
      writeFileAtomic(this.pathOf(upload.serial), bytes, 0o600);
    } finally {
      wipe(bytes);
    }
    return this.pathOf(upload.serial);
  }

  /** The serials with an upload waiting. */
  serials(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names.filter((name) => name.endsWith(SUFFIX) && SERIAL_PATTERN.test(name.slice(0, -SUFFIX.length))).map((name) => name.slice(0, -SUFFIX.length)).sort();
  }

  /** The waiting upload of `serial` (the caller wipes its holder secret), or undefined. */
  read(serial: string): PendingUpload | undefined {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(this.pathOf(serial)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return decodeFields(SCHEMA, bytes) as unknown as PendingUpload;
    } finally {
      wipe(bytes);
    }
  }

  /** The server took it. */
  done(serial: string): void {
    try {
      unlinkSync(this.pathOf(serial));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /**
   * The server refused it for good (the card was destroyed, recovered elsewhere, ...): it is moved
   * aside, never deleted (it is ciphertext the owner may still want), and never sent again.
   */
  setAside(serial: string): string {
    const aside = `${this.pathOf(serial)}${REFUSED_SUFFIX}`;
    renameSync(this.pathOf(serial), aside);
    return aside;
  }
}
