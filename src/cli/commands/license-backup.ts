// `vsc license backup | backup-settings | locking`: the customer's backups (Wibu 000 "CM-Box Backup" §2.1: created by
// the user, on demand or by the agent's triggers, per licensor) and the central authority's lock and unlock sequences
// applied by hand (§2.10; a licensor's or time service's answer applies them by itself).
import { copyFileSync } from 'node:fs';
import { toHex } from '../../bytes/index.js';
import { ExitCode, UsageError } from '../../errors/index.js';
import { JSON_OPTION, optionText, say, type Command, type OptionValues } from '../command.js';
import { durationOption } from './duration-option.js';
import { keyOption, readTextFile, SOCKET_OPTION } from './license-customer.js';
import { hubCall } from './license-hub-call.js';

const license = () => import('../../license/index.js');

function onOff(values: OptionValues, name: string): boolean | undefined {
  const value = optionText(values, name);
  if (value === undefined) return undefined;
  if (value !== 'on' && value !== 'off') throw new UsageError(`--${name}: expected on or off`);
  return value === 'on';
}

const backupCommand: Command = {
  kind: 'command',
  name: 'backup',
  summary: 'back the license container up now: a file of every restorable firm item, signed by the card',
  details: 'The license agent (vsc rental serve) writes the file beside its trail (licenses/backups/, 0600) and also backs up by itself after a licensor\'s update and once a day (see "vsc license backup-settings"). --out copies the file.',
  options: { out: { type: 'string', value: 'FILE', description: 'also copy the backup file here' }, ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const backup = await link.backup();
      const out = optionText(values, 'out');
      if (out !== undefined) copyFileSync(backup.path, out);
      const left = backup.leftOut.length === 0 ? '' : `; left out (not restorable): firm ${backup.leftOut.join(', ')}`;
      say(values)({ event: 'backup', ...backup, ...(out === undefined ? {} : { copy: out }) }, `backed up firm item${backup.firms.length === 1 ? '' : 's'} ${backup.firms.join(', ') || '(none)'} at ${new Date(backup.time * 1000).toISOString()} to ${out ?? backup.path}${left}`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const settingsCommand: Command = {
  kind: 'command',
  name: 'backup-settings',
  summary: 'show or change when the agent backs each licensor\'s firm item up (after an update, by interval, on demand)',
  details: 'Without change options: prints the settings. With --firm-key HEX and any of --after-update, --interval, --on-demand, --restorable: changes that licensor\'s entry. --hub URL turns every trigger off for licensors with no restoring service at that hub, and on again for those with one.',
  options: {
    'firm-key': { type: 'string', value: 'HEX', description: 'the licensor whose triggers change (its public key)' },
    'after-update': { type: 'string', value: 'on|off', description: 'back up after each update of its firm item' },
    interval: { type: 'string', value: 'DURATION|off', description: 'back up when this long has passed since the last backup (default 1d)' },
    'on-demand': { type: 'string', value: 'on|off', description: 'include it when the user asks (vsc license backup)' },
    restorable: { type: 'string', value: 'on|off', description: 'off: the licensor restores nothing, every trigger is off' },
    hub: { type: 'string', value: 'URL', description: 'ask this restore hub which licensors restore, and set restorable accordingly' },
    ...SOCKET_OPTION, ...JSON_OPTION,
  },
  async run(values) {
    const { AgentLicenseLink, encodeBackupSettings, parseBackupSettings, triggersOf } = await license();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const settings = parseBackupSettings(await link.backupSettings());
      const firms = new Map(settings.firms);
      const hub = optionText(values, 'hub');
      if (hub !== undefined) {
        const answer = await hubCall(hub, 'GET', '/v1/licensors');
        const registered = new Set((answer['licensors'] as Array<{ licensorKey: string }>).map((entry) => entry.licensorKey));
        for (const firm of (await link.readContainer()).firms) {
          const key = toHex(firm.licensorKey);
          firms.set(key, { ...triggersOf(settings, firm.licensorKey), restorable: registered.has(key) });
        }
      }
      if (optionText(values, 'firm-key') !== undefined) {
        const key = keyOption(values, 'firm-key');
        const interval = optionText(values, 'interval') === 'off' ? 0 : optionText(values, 'interval') === undefined ? undefined : durationOption(values, 'interval');
        const changes = { afterUpdate: onOff(values, 'after-update'), intervalSeconds: interval, onDemand: onOff(values, 'on-demand'), restorable: onOff(values, 'restorable') };
        const current = triggersOf({ firms }, key);
        firms.set(toHex(key), {
          afterUpdate: changes.afterUpdate ?? current.afterUpdate, intervalSeconds: changes.intervalSeconds ?? current.intervalSeconds,
          onDemand: changes.onDemand ?? current.onDemand, restorable: changes.restorable ?? current.restorable,
        });
      } else if (['after-update', 'interval', 'on-demand', 'restorable'].some((name) => optionText(values, name) !== undefined)) {
        throw new UsageError('--firm-key HEX names the licensor whose triggers change');
      }
      const text = firms.size === settings.firms.size && hub === undefined && optionText(values, 'firm-key') === undefined ? encodeBackupSettings(settings) : await link.backupSettings(encodeBackupSettings({ firms }));
      const shown = parseBackupSettings(text);
      const lines = [...shown.firms].map(([key, triggers]) => `${key.slice(0, 16)}…  after update ${triggers.afterUpdate ? 'on' : 'off'}, every ${triggers.intervalSeconds === 0 ? 'off' : `${triggers.intervalSeconds} s`}, on demand ${triggers.onDemand ? 'on' : 'off'}${triggers.restorable ? '' : ', not restorable (no backups)'}`);
      say(values)({ event: 'backup-settings', firms: Object.fromEntries(shown.firms) }, lines.length === 0 ? 'every firm item: after each update, once a day, on demand (the defaults)' : lines.join('\n'));
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const lockingCommand: Command = {
  kind: 'command',
  name: 'locking',
  summary: 'apply a central authority\'s lock or unlock sequence file to this machine\'s card',
  details: 'A licensor or time service hands a locked card\'s sequence over by itself when the card contacts it; an unlock sequence comes from the central authority (vsc license hub unlock) as a file.',
  options: { sequence: { type: 'string', value: 'FILE', description: 'the lock or unlock sequence file' }, ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const sequence = readTextFile(values, 'sequence').trim();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const record = await link.locking(sequence);
      say(values)({ event: 'locking', text: record.text, counter: record.counter.toString() }, `${record.text.startsWith('license lock ') ? 'locked' : 'unlocked'}: ${record.text}`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

export const licenseBackupCommands: Command[] = [backupCommand, settingsCommand, lockingCommand];
