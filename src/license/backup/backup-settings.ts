// When the machine's license agent backs the container up (Wibu 000 "CM-Box Backup" §2.1): per licensor, (1) after any
// update of its firm item, (2) when an interval has passed since the last backup (default one day), (3) when the user
// asks; all three on by default, all off for an item its licensor does not restore. The user edits the list with
// `vsc license backup-settings` or by hand. File (0600, beside the trail), UTF-8 JSON:
//   {"format": "vsc-license-backup-settings/1",
//    "firms": {"<licensor key hex>": {"afterUpdate": bool, "intervalSeconds": n (0: off), "onDemand": bool, "restorable": bool}}}
// A firm item not named has the defaults. Every backup covers every firm item whose triggers are not all off: the card
// signs one record for the whole container (backup-leaf.ts), and the newest state of every item is the one worth keeping.
import { toHex } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import type { FirmItem, UnixSeconds } from '../license-model.js';

export const BACKUP_SETTINGS_FORMAT = 'vsc-license-backup-settings/1';
export const DEFAULT_BACKUP_INTERVAL_SECONDS = 86_400;
const MAX_INTERVAL_SECONDS = 2 ** 40;
const MAX_FIRMS = 1000;

export interface FirmBackupTriggers {
  readonly afterUpdate: boolean;
  /** 0: no backups by interval. */
  readonly intervalSeconds: number;
  readonly onDemand: boolean;
  /** False when the licensor restores nothing (no restoring service at the hub): every trigger is then off. */
  readonly restorable: boolean;
}

export interface BackupSettings {
  /** By licensor key, lowercase hex. */
  readonly firms: ReadonlyMap<string, FirmBackupTriggers>;
}

export const DEFAULT_FIRM_TRIGGERS: FirmBackupTriggers = Object.freeze({ afterUpdate: true, intervalSeconds: DEFAULT_BACKUP_INTERVAL_SECONDS, onDemand: true, restorable: true });
export const EMPTY_BACKUP_SETTINGS: BackupSettings = Object.freeze({ firms: new Map() });

export type BackupTrigger = 'update' | 'interval' | 'demand';

const input = (message: string): LicenseError => new LicenseError('input', `backup settings: ${message}`);

/** The triggers of `firm`: its entry, or the defaults. */
export function triggersOf(settings: BackupSettings, licensorKey: Uint8Array): FirmBackupTriggers {
  return settings.firms.get(toHex(licensorKey)) ?? DEFAULT_FIRM_TRIGGERS;
}

/** Whether a firm item goes into backups at all. */
export function isBackedUp(triggers: FirmBackupTriggers): boolean {
  return triggers.restorable && (triggers.afterUpdate || triggers.intervalSeconds > 0 || triggers.onDemand);
}

/** Whether `trigger` calls for a backup now: for an update of `updated`, by the interval since `lastBackup`, or the user's demand. */
export function backupDue(settings: BackupSettings, firms: readonly FirmItem[], trigger: BackupTrigger, now: UnixSeconds, lastBackup: UnixSeconds | undefined, updated?: Uint8Array): boolean {
  return firms.some((firm) => {
    const triggers = triggersOf(settings, firm.licensorKey);
    if (!triggers.restorable) return false;
    if (trigger === 'demand') return triggers.onDemand;
    if (trigger === 'update') return triggers.afterUpdate && updated !== undefined && toHex(updated) === toHex(firm.licensorKey);
    return triggers.intervalSeconds > 0 && (lastBackup === undefined || now - lastBackup >= triggers.intervalSeconds);
  });
}

export function encodeBackupSettings(settings: BackupSettings): string {
  const firms = Object.fromEntries([...settings.firms].sort(([a], [b]) => a.localeCompare(b)).map(([key, triggers]) => [key, { ...triggers }]));
  return `${JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms }, null, 2)}\n`;
}

function flag(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw input(`${where}: expected true or false`);
  return value;
}

/** Parses the settings file strictly (the user edits it by hand: each mistake is named). */
export function parseBackupSettings(text: string): BackupSettings {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw input('not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw input('expected a JSON object');
  const file = value as Record<string, unknown>;
  const extra = Object.keys(file).find((key) => key !== 'format' && key !== 'firms');
  if (extra !== undefined) throw input(`unknown field ${JSON.stringify(extra.slice(0, 40))}`);
  if (file['format'] !== BACKUP_SETTINGS_FORMAT) throw input(`expected format ${BACKUP_SETTINGS_FORMAT}`);
  const firms = file['firms'];
  if (typeof firms !== 'object' || firms === null || Array.isArray(firms)) throw input('expected firms as an object by licensor key');
  const entries = Object.entries(firms as Record<string, unknown>);
  if (entries.length > MAX_FIRMS) throw input(`expected at most ${MAX_FIRMS} firm entries`);
  const out = new Map<string, FirmBackupTriggers>();
  for (const [key, entry] of entries) {
    if (!/^[0-9a-f]{64}$/.test(key)) throw input(`expected each firm named by its licensor key (64 lowercase hex digits), got ${JSON.stringify(key.slice(0, 70))}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw input(`firms.${key.slice(0, 8)}…: expected an object`);
    const triggers = entry as Record<string, unknown>;
    const keys = ['afterUpdate', 'intervalSeconds', 'onDemand', 'restorable'];
    const unknown = Object.keys(triggers).find((name) => !keys.includes(name));
    if (unknown !== undefined) throw input(`firms.${key.slice(0, 8)}…: unknown field ${JSON.stringify(unknown.slice(0, 40))}`);
    const where = `firms.${key.slice(0, 8)}…`;
    const interval = triggers['intervalSeconds'] ?? DEFAULT_FIRM_TRIGGERS.intervalSeconds;
    if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 0 || interval > MAX_INTERVAL_SECONDS) throw input(`${where}.intervalSeconds: expected whole seconds 0..${MAX_INTERVAL_SECONDS} (0: off)`);
    out.set(key, {
      afterUpdate: flag(triggers['afterUpdate'] ?? DEFAULT_FIRM_TRIGGERS.afterUpdate, `${where}.afterUpdate`),
      intervalSeconds: interval,
      onDemand: flag(triggers['onDemand'] ?? DEFAULT_FIRM_TRIGGERS.onDemand, `${where}.onDemand`),
      restorable: flag(triggers['restorable'] ?? DEFAULT_FIRM_TRIGGERS.restorable, `${where}.restorable`),
    });
  }
  return { firms: out };
}
