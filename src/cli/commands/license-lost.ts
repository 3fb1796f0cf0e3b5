// `vsc license restore-policy | alerts | checkpoint | transfer | reactivate`: the licensor's restore policy and alerts
// (Wibu 000 "CM-Box Backup" §2.3, §2.11), and the customer's checkpoint renewals, transfers and reactivations (000
// §2.12; 001 "Reactivating a License", "Checkpoint Licenses"). Each customer command that reaches a licensor and hears
// that its card is on a locking list hands the lock sequence to the card (license-locked.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fromHex, toHex } from '../../bytes/index.js';
import { ExitCode, UsageError } from '../../errors/index.js';
import { JSON_OPTION, optionText, requireOption, say, type Command, type OptionSpec, type OptionValues } from '../command.js';
import { keyOption, readTextFile, SOCKET_OPTION, ticketOf } from './license-customer.js';
import { licensorClient, SERVICE } from './license-issuing.js';
import { applyWithdrawal, lockedByAnswer } from './license-locked.js';

const license = () => import('../../license/index.js');
type Link = Awaited<ReturnType<Awaited<ReturnType<typeof license>>['AgentLicenseLink']['connect']>>;

const SERVER: Record<string, OptionSpec> = { server: SERVICE['server']! };
const TICKET: Record<string, OptionSpec> = { 'ticket-file': { type: 'string', value: 'FILE', description: 'a file holding the ticket code (never on the command line)' } };

async function withLink<T>(values: OptionValues, name: string, body: (link: Link) => Promise<T>): Promise<T> {
  const { AgentLicenseLink } = await license();
  const link = await AgentLicenseLink.connect(optionText(values, name));
  try {
    return await body(link);
  } finally {
    await link.close();
  }
}

async function customerClient(values: OptionValues) {
  const { IssuingClient } = await license();
  return new IssuingClient({ server: requireOption(values, 'server') });
}

function jsonFile(values: OptionValues, name: string): unknown {
  try {
    return JSON.parse(readTextFile(values, name));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--${name}: not a JSON file`);
  }
}

const restorePolicyCommand: Command = {
  kind: 'command',
  name: 'restore-policy',
  summary: 'show or set the licensor\'s restore policy, reactivation rules and honey-pot setting at its issuing service',
  details: 'The policy file is JSON: {"mode": "full"|"partial"|"none", "products"?, "units": {"maxTimeSeconds", "maxDegreePercent", "minTimeSeconds", "minDegreePercent"}, "secretData": {"mode", ...}, "alerts": {"intervalSeconds", "alertAt", "stopAt"}, "reactivation"?: {"maxPerPeriod", "periodSeconds", "approval", "blacklist"}, "honeyPot"?: bool}, as GET /openapi.json describes PUT /v1/restore-policy. Until set, the licensor restores nothing. Preview a unit rule with "vsc license restore-preview".',
  options: { ...SERVICE, policy: { type: 'string', value: 'FILE', description: 'set the policy from this JSON file (default: show it)' }, ...JSON_OPTION },
  async run(values) {
    const client = await licensorClient(values);
    const answer = optionText(values, 'policy') === undefined ? await client.restorePolicy() : await client.setRestorePolicy(jsonFile(values, 'policy') as Record<string, unknown>);
    say(values)({ event: 'restore-policy', ...answer }, JSON.stringify(answer, null, 2));
    return ExitCode.ok;
  },
};

const alertsCommand: Command = {
  kind: 'command',
  name: 'alerts',
  summary: 'the licensor\'s alerts (repeated restores along a chain of cards, reactivations waiting) and their approval',
  options: { ...SERVICE, approve: { type: 'string', value: 'ID', description: 'approve this alert: the stopped request then goes ahead, once' }, ...JSON_OPTION },
  async run(values) {
    const client = await licensorClient(values);
    const id = optionText(values, 'approve');
    if (id !== undefined) {
      if (!/^[1-9][0-9]{0,14}$/.test(id)) throw new UsageError('--approve: expected an alert id');
      const alert = await client.approveAlert(Number(id));
      say(values)({ event: 'approved', alert }, `alert ${id} approved`);
      return ExitCode.ok;
    }
    const alerts = await client.alerts();
    say(values)({ event: 'alerts', alerts }, alerts.length === 0 ? 'no alerts' : alerts.map((alert) => JSON.stringify(alert)).join('\n'));
    return ExitCode.ok;
  },
};

const checkpointCommand: Command = {
  kind: 'command',
  name: 'checkpoint',
  summary: 'renew a checkpoint license when it is due (run it daily from a timer); a card on a locking list is locked instead',
  details: '001 "Checkpoint Licenses": the license runs offline until its expiration; fewer than the product\'s threshold days before it, this command gets the extension from the licensor. Not due yet: exit 0 and the due time.',
  options: { ...SERVER, ...TICKET, 'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor (default: asked of the service with the ticket)' }, ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { IssuingRefusal } = await license();
    const ticket = ticketOf(values);
    const client = await customerClient(values);
    const licensorKey = optionText(values, 'licensor-key') === undefined ? (await client.ticket(ticket)).licensor.publicKey : toHex(keyOption(values, 'licensor-key'));
    return withLink(values, 'socket', async (link) => {
      const firm = (await link.readContainer()).firms.find((entry) => toHex(entry.licensorKey) === licensorKey);
      if (firm === undefined) throw new UsageError('this card holds no firm item of the ticket\'s licensor: activate the ticket first');
      try {
        const answer = await lockedByAnswer(link, () => client.checkpoint({ ticket, serial: link.card.serial, firmUpdateCounter: firm.updateCounter, requestId: Uint8Array.from(randomBytes(16)) }));
        await applyWithdrawal(link, client, answer);
        const record = await link.apply(answer.update);
        await client.receipt({ serial: link.card.serial, record });
        say(values)({ event: 'renewed', expiration: answer.expiration, text: record.text }, `checkpoint license renewed until ${new Date(answer.expiration * 1000).toISOString()}`);
        return ExitCode.ok;
      } catch (error) {
        if (!(error instanceof IssuingRefusal) || error.reason !== 'limit' || error.details.dueAt === undefined) throw error;
        say(values)({ event: 'not-due', dueAt: error.details.dueAt }, `not due: renewal from ${new Date(error.details.dueAt * 1000).toISOString()}`);
        return ExitCode.ok;
      }
    });
  },
};

const transferCommand: Command = {
  kind: 'command',
  name: 'transfer',
  summary: 'move one licensor\'s firm item from this machine\'s card to another card (000 §2.12); the source is not locked',
  details: 'Run where the source card is: it backs the card up, the licensor answers a delete for the source, the card applies it, and its record is the proof the licensor turns into the update for the target (secret data does not move). --target is the other card\'s "vsc license target-info" file; the target\'s update goes to --update-out and --binding-out for "vsc license apply" there, or straight onto it with --target-socket. If a step fails, run the same command with --transfer ID --proof RECORD to send the proof again.',
  options: {
    ...SERVER, 'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor whose item moves' },
    target: { type: 'string', value: 'FILE', description: 'the target card\'s target info file' },
    'target-socket': { type: 'string', value: 'PATH', description: 'the target card\'s license agent, when it runs on this machine' },
    'update-out': { type: 'string', value: 'FILE', description: 'write the target\'s update here' },
    'binding-out': { type: 'string', value: 'FILE', description: 'write the licensor\'s card binding of the target here' },
    ...SOCKET_OPTION, ...JSON_OPTION,
  },
  async run(values) {
    const { splitBackup, parseBackupFile, backupItemFileJson } = await license();
    const licensorKey = toHex(keyOption(values, 'licensor-key'));
    const target = jsonFile(values, 'target') as { serial?: unknown; cardPublicKey?: unknown; firmUpdateCounters?: Record<string, unknown> };
    if (typeof target?.serial !== 'string' || typeof target.cardPublicKey !== 'string' || !/^[0-9a-f]{64}$/.test(target.cardPublicKey)) throw new UsageError('--target: expected a target info file (vsc license target-info)');
    const counter = target.firmUpdateCounters?.[licensorKey];
    const targetCounter = typeof counter === 'number' ? counter : null;
    if (optionText(values, 'target-socket') === undefined && optionText(values, 'update-out') === undefined) throw new UsageError('expected --target-socket PATH or --update-out FILE for the target\'s update');
    const client = await customerClient(values);
    const print = say(values);
    const moved = await withLink(values, 'socket', async (link) => {
      const backup = await link.backup();
      const item = splitBackup(parseBackupFile(readFileSync(backup.path))).find((entry) => toHex(entry.item.licensorKey) === licensorKey);
      if (item === undefined) throw new UsageError('this card\'s backup holds no firm item of that licensor (see vsc license backup-settings)');
      const started = await lockedByAnswer(link, () => client.transfer({ item: backupItemFileJson(item), target: { serial: target.serial as string, cardPublicKey: fromHex(target.cardPublicKey as string), firmUpdateCounter: targetCounter }, requestId: Uint8Array.from(randomBytes(16)) }));
      const record = await link.apply(started.deleteUpdate);
      print({ event: 'deleted', transfer: started.transfer, text: record.text }, `transfer ${started.transfer}: the firm item is deleted on this card (${record.text})`);
      return client.proveTransfer(started.transfer, { record });
    });
    const socket = optionText(values, 'target-socket');
    if (socket !== undefined) {
      const { parseCardBinding } = await license();
      await withLink(values, 'target-socket', async (link) => {
        await link.bind(parseCardBinding(moved.binding));
        await client.receipt({ serial: link.card.serial, record: await link.apply(moved.update) });
      });
    }
    const updateOut = optionText(values, 'update-out');
    if (updateOut !== undefined) writeFileSync(updateOut, `${moved.update}\n`, { mode: 0o600 });
    const bindingOut = optionText(values, 'binding-out');
    if (bindingOut !== undefined) writeFileSync(bindingOut, `${moved.binding}\n`, { mode: 0o600 });
    print({ event: 'transferred', target: target.serial, restored: moved.restored, applied: socket !== undefined }, `transferred product${moved.restored.length === 1 ? '' : 's'} ${moved.restored.join(', ')} to card ${target.serial}${socket !== undefined ? '' : `: apply ${updateOut} there`}`);
    return ExitCode.ok;
  },
};

const reactivateCommand: Command = {
  kind: 'command',
  name: 'reactivate',
  summary: 'reactivate a ticket on this machine\'s card after a reset, re-image or repair, or onto another device (001), within the licensor\'s rules',
  options: {
    ...SERVER, ...TICKET, reason: { type: 'string', value: 'same-device|other-device', description: 'this card was reset (same-device) or replaces another one (other-device)', default: 'other-device' },
    ...SOCKET_OPTION, ...JSON_OPTION,
  },
  async run(values) {
    const { parseCardBinding } = await license();
    const reason = optionText(values, 'reason');
    if (reason !== 'same-device' && reason !== 'other-device') throw new UsageError('--reason: expected same-device or other-device');
    const ticket = ticketOf(values);
    const client = await customerClient(values);
    const licensorKey = (await client.ticket(ticket)).licensor.publicKey;
    return withLink(values, 'socket', async (link) => {
      const counter = (await link.readContainer()).firms.find((firm) => toHex(firm.licensorKey) === licensorKey)?.updateCounter ?? null;
      const answer = await lockedByAnswer(link, () => client.reactivate({ ticket, serial: link.card.serial, cardPublicKey: link.card.publicKey, firmUpdateCounter: counter, requestId: Uint8Array.from(randomBytes(16)), reason }));
      await applyWithdrawal(link, client, answer);
      if (answer.binding !== undefined) await link.bind(parseCardBinding(answer.binding));
      const record = await link.apply(answer.update);
      const confirmed = await client.receipt({ ticket, serial: link.card.serial, record });
      say(values)({ event: 'reactivated', text: record.text, confirmed }, `reactivated on card ${link.card.serial}: ${record.text}`);
      return ExitCode.ok;
    });
  },
};

export const licenseLostCommands: Command[] = [transferCommand, reactivateCommand, checkpointCommand, restorePolicyCommand, alertsCommand];
