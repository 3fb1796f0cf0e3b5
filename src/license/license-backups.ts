// The license agent's backups (Wibu 000 "CM-Box Backup" §2.1 "Backup File Created by User"): the container saved to a
// file by the card's BACKUP command (one card-signed record for every firm item, backup-leaf.ts), when a licensor's
// trigger calls for it (backup-settings.ts): after an update of its firm item, when its interval has passed (checked
// every minute), or when the user asks. Files live beside the trail, 0600 in a 0700 directory:
//   TRAIL_DIR/licenses/backups/backup-<time>-<counter>.json   the newest BACKUPS_KEPT of them
//   TRAIL_DIR/licenses/backups/latest.json                     a copy of the newest
//   TRAIL_DIR/licenses/backup-settings.json                    the triggers (the user's to edit)
// A failed automatic backup changes nothing and is reported by `license.backup-status` (and the next trigger retries).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, utf8 } from '../bytes/index.js';
import { ensurePrivateDirectory, writeFileAtomic } from '../files/index.js';
import type { RentalServer } from '../rental/index.js';
import {
  assembleBackup, backupDue, EMPTY_BACKUP_SETTINGS, encodeBackupFile, encodeBackupSettings, isBackedUp, parseBackupFile, parseBackupSettings, triggersOf,
  type BackupFile, type BackupSettings, type BackupTrigger,
} from './backup/index.js';
import { LicenseAppletClient } from './card/index.js';
import { LicenseError } from './license-error.js';
import type { LicenseContainer, UnixSeconds } from './license-model.js';

export const BACKUPS_DIRECTORY_NAME = 'backups';
export const BACKUP_SETTINGS_FILE_NAME = 'backup-settings.json';
export const LATEST_BACKUP_FILE_NAME = 'latest.json';
export const BACKUPS_KEPT = 10;
const INTERVAL_CHECK_MS = 60_000;

export interface BackupSummary {
  readonly path: string;
  readonly time: UnixSeconds;
  /** Firm codes in the file. */
  readonly firms: readonly number[];
  /** Firm codes left out (their licensor restores nothing, or the user turned every trigger off). */
  readonly leftOut: readonly number[];
}

export interface BackupStatus {
  readonly latest?: BackupSummary;
  readonly lastFailure?: { readonly at: UnixSeconds; readonly trigger: BackupTrigger; readonly message: string };
}

export interface LicenseBackupsOptions {
  readonly now?: () => UnixSeconds;
  /** How often the interval triggers are checked; 0 turns the timer off (tests drive backups themselves). */
  readonly checkEveryMs?: number;
}

export class LicenseBackups {
  readonly #server: RentalServer;
  readonly #directory: string;
  readonly #settingsPath: string;
  readonly #now: () => UnixSeconds;
  readonly #timer: NodeJS.Timeout | undefined;
  #latest: BackupSummary | undefined;
  #lastFailure: BackupStatus['lastFailure'];
  #running: Promise<unknown> = Promise.resolve();

  constructor(server: RentalServer, licensesDirectory: string, options: LicenseBackupsOptions = {}) {
    this.#server = server;
    this.#directory = join(licensesDirectory, BACKUPS_DIRECTORY_NAME);
    this.#settingsPath = join(licensesDirectory, BACKUP_SETTINGS_FILE_NAME);
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#latest = this.#readLatest();
    const every = options.checkEveryMs ?? INTERVAL_CHECK_MS;
    this.#timer = every > 0 ? setInterval(() => void this.trigger('interval'), every).unref() : undefined;
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  status(): BackupStatus {
    return { ...(this.#latest === undefined ? {} : { latest: this.#latest }), ...(this.#lastFailure === undefined ? {} : { lastFailure: this.#lastFailure }) };
  }

  settings(): BackupSettings {
    let text: string;
    try {
      text = readFileSync(this.#settingsPath, 'utf8');
    } catch {
      return EMPTY_BACKUP_SETTINGS;
    }
    return parseBackupSettings(text);
  }

  /** Replaces the settings file with `settings` (checked as the file is). */
  writeSettings(text: string): BackupSettings {
    const settings = parseBackupSettings(text);
    ensurePrivateDirectory(join(this.#settingsPath, '..'));
    writeFileAtomic(this.#settingsPath, utf8(encodeBackupSettings(settings)));
    return settings;
  }

  /**
   * Backs up when `trigger` calls for it (an update of `updated`'s firm item, the interval, the user's demand).
   * Resolves to the new backup, or undefined when no trigger asked for one; automatic triggers never throw (their
   * failure is kept for status), a demand does.
   */
  trigger(trigger: BackupTrigger, updated?: Uint8Array): Promise<BackupSummary | undefined> {
    const run = this.#running.then(async () => {
      try {
        const settings = this.settings();
        const container = await this.#readContainer();
        if (container.lock !== undefined) throw new LicenseError('locked', 'the container is locked: nothing to back up');
        if (!backupDue(settings, container.firms, trigger, this.#now(), this.#latest?.time, updated)) {
          if (trigger === 'demand') throw new LicenseError('not-restorable', 'no firm item on the card is backed up on demand (see vsc license backup-settings)');
          return undefined;
        }
        const summary = await this.#backup(settings, container);
        this.#lastFailure = undefined;
        return summary;
      } catch (error) {
        this.#lastFailure = { at: this.#now(), trigger, message: (error as Error).message.split('\n')[0]!.slice(0, 300) };
        if (trigger === 'demand') throw error;
        return undefined;
      }
    });
    this.#running = run.catch(() => undefined);
    return run;
  }

  async #readContainer(): Promise<LicenseContainer> {
    return this.#server.withCard(async ({ transport, client: vsc }) => {
      const license = new LicenseAppletClient(transport);
      await license.select();
      try {
        return await license.readContainer();
      } finally {
        await vsc.select();
      }
    });
  }

  async #backup(settings: BackupSettings, container: LicenseContainer): Promise<BackupSummary> {
    let leaves: Uint8Array[] = [];
    const answer = await this.#server.cardWrite('license backup pending', async ({ transport }, nonce) => {
      const license = new LicenseAppletClient(transport);
      try {
        await license.select();
        const backup = await license.backup(nonce, this.#now());
        leaves = backup.leaves;
        return backup.record;
      } catch (error) {
        if (error instanceof LicenseError) return { refused: error };
        throw error;
      }
    });
    const card = this.#server.card;
    const user = container.firms.flatMap((firm) => firm.products.filter((product) => product.userData.length > 0).map((product) => ({ licensorKey: firm.licensorKey, productCode: product.productCode, userData: product.userData })));
    const whole = assembleBackup({ box: { serial: card.serial, cardPublicKey: card.publicKey, keyMode: card.keyMode, containerFormat: 1 }, record: answer.record, leaves, user });
    const kept = whole.items.filter((item) => isBackedUp(triggersOf(settings, item.licensorKey)));
    const file: BackupFile = { ...whole, items: kept, user: whole.user.filter((entry) => kept.some((item) => bytesEqual(item.licensorKey, entry.licensorKey))) };
    const text = utf8(`${encodeBackupFile(file)}\n`);
    ensurePrivateDirectory(this.#directory);
    const path = join(this.#directory, `backup-${file.time}-${answer.record.counter}.json`);
    writeFileAtomic(path, text);
    writeFileAtomic(join(this.#directory, LATEST_BACKUP_FILE_NAME), text);
    this.#prune();
    const summary: BackupSummary = { path, time: file.time, firms: kept.map((item) => item.firmCode), leftOut: whole.items.filter((item) => !kept.includes(item)).map((item) => item.firmCode) };
    this.#latest = summary;
    return summary;
  }

  /** Keeps the newest BACKUPS_KEPT backup files. */
  #prune(): void {
    const names = readdirSync(this.#directory).filter((name) => /^backup-\d+-\d+\.json$/.test(name));
    const byAge = names.map((name) => ({ name, time: Number(name.split('-')[1]), counter: BigInt(name.split('-')[2]!.replace('.json', '')) }))
      .sort((a, b) => (a.time - b.time) || (a.counter < b.counter ? -1 : a.counter > b.counter ? 1 : 0));
    for (const old of byAge.slice(0, Math.max(0, byAge.length - BACKUPS_KEPT))) rmSync(join(this.#directory, old.name), { force: true });
  }

  #readLatest(): BackupSummary | undefined {
    const path = join(this.#directory, LATEST_BACKUP_FILE_NAME);
    try {
      const file = parseBackupFile(readFileSync(path));
      return { path, time: file.time, firms: file.items.map((item) => item.firmCode), leftOut: [] };
    } catch {
      return undefined;
    }
  }
}
