// The customer's side of lost licenses (Wibu 000 "Single Action License Restore Process" and "CM-Box Backup" §2.1-2.5,
// §2.3; DESIGN.md "Restore degree"): `vsc license restore` sends the backup to the restore hub in one action, shows each
// licensor's answer as it comes, and puts every restored firm item onto this machine's card (and the user's own data
// back, which no licensor vouches for); `target-info` describes this card for the hub's page, whose downloaded answer
// `restore --answer F` applies; `restore-preview` prints what a unit-counter rule gives back by the backup's age.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { toHex } from '../../bytes/index.js';
import { ExitCode, UsageError } from '../../errors/index.js';
import { JSON_OPTION, optionList, optionText, requireOption, say, type Command, type OptionValues } from '../command.js';
import { durationOption } from './duration-option.js';
import { readTextFile, SOCKET_OPTION, wholeOption } from './license-customer.js';
import { hubCall } from './license-hub-call.js';

type Link = Awaited<ReturnType<Awaited<ReturnType<typeof license>>['AgentLicenseLink']['connect']>>;
const license = () => import('../../license/index.js');
const POLL_MS = 200;

const backup = license;

const restorePreviewCommand: Command = {
  kind: 'command',
  name: 'restore-preview',
  summary: 'print what a unit-counter restore rule gives back by the backup\'s age, one row per day',
  details: 'Wibu 000 §2.3: below --max-time a counter is restored whole; from --max-time (--max-degree %) to --min-time (--min-degree %) the degree falls linearly; older backups restore no units. Restored units are rounded up. Durations: 90s, 30m, 12h, 1d, 2w or seconds.',
  options: {
    'max-time': { type: 'string', value: 'DURATION', description: 'age up to which counters are restored whole (MaxUnitCounterRestoreTime)' },
    'max-degree': { type: 'string', value: 'PERCENT', description: 'degree at --max-time, whole percent' },
    'min-time': { type: 'string', value: 'DURATION', description: 'age after which no units are restored (MinUnitCounterRestoreTime)' },
    'min-degree': { type: 'string', value: 'PERCENT', description: 'degree at --min-time, whole percent' },
    units: { type: 'string', value: 'N', description: 'the counter in the backup', default: '1000' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { checkUnitRestoreRule, restorePreview } = await backup();
    const rule = {
      maxTimeSeconds: durationOption(values, 'max-time'), maxDegreePercent: wholeOption(values, 'max-degree', undefined, 100),
      minTimeSeconds: durationOption(values, 'min-time'), minDegreePercent: wholeOption(values, 'min-degree', undefined, 100),
    };
    try {
      checkUnitRestoreRule(rule);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const units = wholeOption(values, 'units', 1000, Number.MAX_SAFE_INTEGER);
    const rows = restorePreview(rule, units);
    const lines = ['age (days)  degree (%)  units', ...rows.map((row) => `${String(row.days).padStart(10)}  ${row.degreePercent.toFixed(2).padStart(10)}  ${row.units}`)];
    say(values)({ event: 'restore-preview', rule, units, rows }, lines.join('\n'));
    return 0;
  },
};

/** This card as a restore's target: serial, card key and the firm update counter of every licensor it holds. */
async function targetOf(link: Link): Promise<{ serial: string; cardPublicKey: string; firmUpdateCounters: Record<string, number> }> {
  const container = await link.readContainer();
  return { serial: link.card.serial, cardPublicKey: toHex(link.card.publicKey), firmUpdateCounters: Object.fromEntries(container.firms.map((firm) => [toHex(firm.licensorKey), firm.updateCounter])) };
}

const targetInfoCommand: Command = {
  kind: 'command',
  name: 'target-info',
  summary: 'describe this machine\'s card as the target of a restore (for the restore hub\'s page)',
  options: { out: { type: 'string', value: 'FILE', description: 'write the target info file here (default: print it)' }, ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const target = await targetOf(link);
      const out = optionText(values, 'out');
      if (out === undefined) console.log(JSON.stringify(target));
      else {
        writeFileSync(out, `${JSON.stringify(target)}\n`, { mode: 0o600 });
        say(values)({ event: 'target-info', ...target, file: out }, `target info of card ${target.serial} written to ${out}`);
      }
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

interface JobItem {
  readonly licensorKey: string;
  readonly firmCode: number;
  readonly name?: string;
  readonly status: 'pending' | 'restored' | 'not-restorable' | 'refused' | 'approval';
  readonly update?: string;
  readonly binding?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly degreePercent?: number;
  readonly restored?: number[];
  readonly skipped?: number[];
}

function describeItem(item: JobItem): string {
  const who = `${item.name ?? 'licensor'} (firm ${item.firmCode})`;
  switch (item.status) {
    case 'pending': return `${who}: waiting for the licensor`;
    case 'restored': return `${who}: restored product${item.restored?.length === 1 ? '' : 's'} ${item.restored?.join(', ')}${item.skipped?.length ? `, not ${item.skipped.join(', ')} (the licensor's policy)` : ''}; unit counters at ${item.degreePercent} %`;
    case 'approval': return `${who}: waits for the licensor's approval (${item.message ?? 'repeated restores'})`;
    default: return `${who}: ${item.status === 'not-restorable' ? 'not restorable' : 'refused'}: ${item.message ?? item.reason ?? ''}`;
  }
}

/**
 * Applies restored updates on the card (binding first), sends each card-signed receipt to the licensor's restoring
 * service (found at the hub), then writes back the user's own data of the restored items. Answers the receipts that
 * could not be sent (the licensor then keeps the restored licenses pending; the update stands on the card).
 */
async function applyRestored(link: Link, hub: string, items: readonly JobItem[], user: readonly { licensorKey: Uint8Array; productCode: number; userData: Uint8Array }[]): Promise<{ texts: string[]; unsent: string[] }> {
  const { parseCardBinding, IssuingClient } = await license();
  const services = new Map(((await hubCall(hub, 'GET', '/v1/licensors'))['licensors'] as Array<{ licensorKey: string; restoreUrl: string }>).map((entry) => [entry.licensorKey, entry.restoreUrl]));
  const texts: string[] = [];
  const unsent: string[] = [];
  for (const item of items) {
    if (item.status !== 'restored' || item.update === undefined) continue;
    if (item.binding !== undefined) await link.bind(parseCardBinding(item.binding));
    const record = await link.apply(item.update);
    texts.push(record.text);
    const service = services.get(item.licensorKey);
    try {
      if (service === undefined) throw new Error('no restoring service at the hub');
      await new IssuingClient({ server: service }).receipt({ serial: link.card.serial, record });
    } catch (error) {
      unsent.push(`firm ${item.firmCode}: ${(error as Error).message.split('\n')[0]}`);
    }
    for (const entry of user) {
      if (toHex(entry.licensorKey) === item.licensorKey && item.restored?.includes(entry.productCode)) await link.writeUserData(entry.licensorKey, entry.productCode, entry.userData);
    }
  }
  return { texts, unsent };
}

async function restoreFromHub(values: OptionValues, link: Link, hub: string): Promise<number> {
  const { parseBackupFile } = await license();
  const text = readTextFile(values, 'backup');
  const backupFile = parseBackupFile(text);
  const select = optionList(values, 'licensor-key');
  for (const key of select) if (!/^[0-9a-f]{64}$/.test(key)) throw new UsageError('--licensor-key: expected 64 lowercase hex digits');
  const target = await targetOf(link);
  const { job } = await hubCall(hub, 'POST', '/v1/restore-jobs', { backup: JSON.parse(text) as unknown, target, ...(select.length === 0 ? {} : { select }) }) as { job: string };
  const print = say(values);
  print({ event: 'restore-started', job, serial: target.serial, items: backupFile.items.length }, `restoring ${select.length === 0 ? backupFile.items.length : select.length} firm item(s) of card ${backupFile.box.serial} onto card ${target.serial} through ${hub}`);
  const seen = new Map<string, string>();
  let items: JobItem[];
  for (;;) {
    const view = await hubCall(hub, 'GET', `/v1/restore-jobs/${job}`) as { state: 'running' | 'done'; items: JobItem[] };
    items = view.items;
    for (const item of items) {
      const key = `${item.licensorKey}:${item.firmCode}`;
      if (seen.get(key) === item.status) continue;
      seen.set(key, item.status);
      print({ event: 'restore-progress', licensorKey: item.licensorKey, firmCode: item.firmCode, status: item.status, ...(item.reason === undefined ? {} : { reason: item.reason }), ...(item.message === undefined ? {} : { message: item.message }) }, describeItem(item));
    }
    if (view.state === 'done') break;
    await sleep(POLL_MS);
  }
  const { texts: applied, unsent } = await applyRestored(link, hub, items, backupFile.user);
  const failed = items.filter((item) => item.status !== 'restored');
  print({ event: 'restored', serial: target.serial, applied, failed: failed.map((item) => ({ firmCode: item.firmCode, status: item.status, reason: item.reason ?? null })), unsentReceipts: unsent },
    `${applied.length} firm item(s) restored onto card ${target.serial}${failed.length === 0 ? '' : `; ${failed.length} not restored`}${unsent.length === 0 ? '' : `; receipts not sent (${unsent.join('; ')})`}`);
  return failed.length === 0 ? ExitCode.ok : ExitCode.refusedByState;
}

async function applyAnswerFile(values: OptionValues, link: Link, path: string): Promise<number> {
  let answer: unknown;
  try {
    answer = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`--answer: cannot read ${path} as JSON: ${(error as NodeJS.ErrnoException).code ?? 'not JSON'}`);
  }
  const file = answer as { format?: unknown; updates?: unknown };
  if (file?.format !== 'vsc-license-restore-answer/1' || !Array.isArray(file.updates) || file.updates.some((update) => typeof update !== 'string')) throw new UsageError('--answer: expected a restore answer file (format vsc-license-restore-answer/1) from the restore hub\'s page');
  const applied: string[] = [];
  for (const update of file.updates as string[]) applied.push((await link.apply(update)).text);
  say(values)({ event: 'restored', serial: link.card.serial, applied, failed: [] }, `${applied.length} firm item(s) restored onto card ${link.card.serial}`);
  return ExitCode.ok;
}

const restoreCommand: Command = {
  kind: 'command',
  name: 'restore',
  summary: 'restore a lost card\'s licenses onto this machine\'s card in one action, through the restore hub',
  details: 'With --hub and --backup: the hub sends each firm item, and only that item, to its licensor\'s restoring service, all at once; each licensor\'s answer is shown as it comes and applied here. --licensor-key (repeatable) restores only those licensors\' items (a partial restore, or one split over several cards). With --answer: applies a restore answer downloaded from the hub\'s page. The lost card is locked when it next contacts a licensor. Exit 3 when an item was not restored.',
  options: {
    hub: { type: 'string', value: 'URL', description: 'the restore hub (e.g. http://127.0.0.1:8720)' },
    backup: { type: 'string', value: 'FILE', description: 'the lost card\'s backup file' },
    'licensor-key': { type: 'string', value: 'HEX', multiple: true, description: 'restore only this licensor\'s item (repeatable)' },
    answer: { type: 'string', value: 'FILE', description: 'apply a restore answer file downloaded from the hub\'s page instead' },
    ...SOCKET_OPTION, ...JSON_OPTION,
  },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const answer = optionText(values, 'answer');
    const hub = optionText(values, 'hub');
    if ((answer === undefined) === (hub === undefined)) throw new UsageError('expected --hub URL --backup FILE, or --answer FILE');
    if (hub !== undefined) requireOption(values, 'backup');
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      return answer !== undefined ? await applyAnswerFile(values, link, answer) : await restoreFromHub(values, link, hub!);
    } finally {
      await link.close();
    }
  },
};

export const licenseRestoreCommands: Command[] = [restoreCommand, targetInfoCommand, restorePreviewCommand];
