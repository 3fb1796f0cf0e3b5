// Wibu 000 "CM-Box Backup" §2.1: per-licensor backup triggers (after an update, by interval, on demand), on by default,
// off for items that cannot be restored, in a file the user may edit (strictly parsed).
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import {
  backupDue, BACKUP_SETTINGS_FORMAT, DEFAULT_FIRM_TRIGGERS, EMPTY_BACKUP_SETTINGS, encodeBackupSettings, isBackedUp, parseBackupSettings, triggersOf, type BackupSettings,
} from '../../../src/license/backup/index.js';
import { LicenseError, type FirmItem } from '../../../src/license/index.js';
import { LICENSOR, OTHER_LICENSOR, T0 } from '../../support/license-fixture.js';

const firm = (key: Uint8Array, firmCode: number): FirmItem => ({ licensorKey: key, firmCode, text: 'x', updateCounter: 1, products: [] });
const FIRMS = [firm(LICENSOR.publicKey, 1), firm(OTHER_LICENSOR.publicKey, 2)];
const DAY = 86_400;

describe('backup settings', () => {
  it('defaults: every trigger on, one day', () => {
    expect(triggersOf(EMPTY_BACKUP_SETTINGS, LICENSOR.publicKey)).toEqual({ afterUpdate: true, intervalSeconds: DAY, onDemand: true, restorable: true });
    expect(backupDue(EMPTY_BACKUP_SETTINGS, FIRMS, 'interval', T0, undefined)).toBe(true);
    expect(backupDue(EMPTY_BACKUP_SETTINGS, FIRMS, 'interval', T0, T0 - DAY + 1)).toBe(false);
    expect(backupDue(EMPTY_BACKUP_SETTINGS, FIRMS, 'interval', T0, T0 - DAY)).toBe(true);
    expect(backupDue(EMPTY_BACKUP_SETTINGS, FIRMS, 'update', T0, T0, LICENSOR.publicKey)).toBe(true);
    expect(backupDue(EMPTY_BACKUP_SETTINGS, FIRMS, 'demand', T0, T0)).toBe(true);
  });

  it('each licensor has its own triggers; a licensor that does not restore triggers nothing', () => {
    const settings: BackupSettings = { firms: new Map([
      [toHex(LICENSOR.publicKey), { ...DEFAULT_FIRM_TRIGGERS, afterUpdate: false, intervalSeconds: 3600 }],
      [toHex(OTHER_LICENSOR.publicKey), { ...DEFAULT_FIRM_TRIGGERS, restorable: false }],
    ]) };
    expect(backupDue(settings, FIRMS, 'update', T0, T0, LICENSOR.publicKey)).toBe(false);
    expect(backupDue(settings, FIRMS, 'update', T0, T0, OTHER_LICENSOR.publicKey)).toBe(false);
    expect(backupDue(settings, FIRMS, 'interval', T0, T0 - 3600)).toBe(true);
    expect(isBackedUp(triggersOf(settings, OTHER_LICENSOR.publicKey))).toBe(false);
    expect(parseBackupSettings(encodeBackupSettings(settings))).toEqual(settings);
  });

  it('missing fields take the defaults', () => {
    const text = JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { onDemand: false } } });
    expect(triggersOf(parseBackupSettings(text), LICENSOR.publicKey)).toEqual({ ...DEFAULT_FIRM_TRIGGERS, onDemand: false });
  });

  it.each([
    ['{', 'not valid JSON'],
    [JSON.stringify({ format: 'other', firms: {} }), 'expected format'],
    [JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { abc: {} } }), 'licensor key'],
    [JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { intervalSeconds: -1 } } }), 'intervalSeconds'],
    [JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { afterUpdate: 'yes' } } }), 'afterUpdate'],
    [JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: { [toHex(LICENSOR.publicKey)]: { when: 1 } } }), 'unknown field'],
    [JSON.stringify({ format: BACKUP_SETTINGS_FORMAT, firms: {}, more: 1 }), 'unknown field'],
  ])('a hand-edited mistake is named: %s', (text, named) => {
    expect(() => parseBackupSettings(text)).toThrow(LicenseError);
    expect(() => parseBackupSettings(text)).toThrow(named);
  });
});
