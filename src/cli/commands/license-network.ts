// `vsc license network serve | seat`, `vsc license borrow | return`: the network license server of a machine's
// container and its clients (Wibu 002 Table 1: network / floating, overflow, borrowable, hot and cold standby).
import { once } from 'node:events';
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { parseHostPort } from '../../host-port/index.js';
import { JSON_OPTION, optionText, requireOption, say, type Command, type CommandGroup, type OptionSpec } from '../command.js';
import { keyOption, readTextFile, SOCKET_OPTION, wholeOption } from './license-customer.js';

const license = () => import('../../license/index.js');

const ITEM: Record<string, OptionSpec> = {
  server: { type: 'string', value: 'URL', description: 'the network license server ("vsc license network serve" printed it)' },
  'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor\'s public key' },
  product: { type: 'string', value: 'CODE', description: 'the product code' },
  features: { type: 'string', value: 'BITS', description: 'the feature bits needed (decimal)', default: '0' },
  client: { type: 'string', value: 'NAME', description: 'this program\'s name at the server (default: host name and process id)' },
};

const clientName = (given: string | undefined): string => given ?? `${process.env['HOSTNAME'] ?? 'host'}-${process.pid}`;

const serve: Command = {
  kind: 'command',
  name: 'serve',
  summary: 'serve the network items of this machine\'s container to programs on other machines (floating seats, borrowing)',
  details: 'The container is reached through this machine\'s license agent (the rental server). Every seat is decided and signed by the card; seats are kept in --state. A standby server serves only items with a matching standby license: hot at once, cold after --standby-active.',
  options: {
    ...SOCKET_OPTION, ...JSON_OPTION,
    listen: { type: 'string', value: 'HOST:PORT', description: 'where to listen (port 0: any free port)', default: '127.0.0.1:8720' },
    state: { type: 'string', value: 'FILE', description: 'the seats, kept across restarts (0600)' },
    'lease-seconds': { type: 'string', value: 'N', description: 'how long a seat lasts without a heartbeat', default: '60' },
    standby: { type: 'string', value: 'hot|cold', description: 'run as a standby server' },
    'standby-active': { type: 'boolean', description: 'a cold standby: the operator switched over to it' },
  },
  async run(values) {
    const { AgentLicenseLink, startLicenseServer } = await license();
    const { host, port } = parseHostPort(requireOption(values, 'listen'), { anyPort: true });
    const standbyKind = optionText(values, 'standby');
    if (standbyKind !== undefined && standbyKind !== 'hot' && standbyKind !== 'cold') throw new UsageError('--standby: expected hot or cold');
    if (values['standby-active'] === true && standbyKind !== 'cold') throw new UsageError('--standby-active: only with --standby cold');
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    const state = optionText(values, 'state');
    const running = await startLicenseServer({
      link, host, port, leaseSeconds: wholeOption(values, 'lease-seconds', 60, 86_400),
      ...(state === undefined ? {} : { stateFile: resolve(state) }),
      ...(standbyKind === undefined ? {} : { standby: { kind: standbyKind, active: standbyKind === 'hot' || values['standby-active'] === true } }),
    });
    say(values)({ event: 'serving', url: running.url, serial: link.card.serial, pid: process.pid }, `network license server for card ${link.card.serial} listening on ${running.url}; SIGTERM or Ctrl-C stops it`);
    const stop = new AbortController();
    await Promise.race([once(process, 'SIGTERM', stop), once(process, 'SIGINT', stop)]).catch(() => undefined);
    stop.abort();
    await running.close();
    await link.close();
    say(values)({ event: 'stopped' }, 'network license server stopped');
    return ExitCode.ok;
  },
};

const borrow: Command = {
  kind: 'command',
  name: 'borrow',
  summary: 'borrow a seat of a network license server onto this machine\'s card for offline use, until a time',
  options: {
    ...ITEM, ...SOCKET_OPTION, ...JSON_OPTION,
    days: { type: 'string', value: 'N', description: 'how many days (at most what the licensor allows)', default: '1' },
    out: { type: 'string', value: 'FILE', description: 'where to keep the borrow certificate' },
  },
  async run(values) {
    const { AgentLicenseLink, borrowSeat } = await license();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const borrowed = await borrowSeat(requireOption(values, 'server'), {
        licensorKey: keyOption(values, 'licensor-key'), productCode: wholeOption(values, 'product', undefined), features: wholeOption(values, 'features', 0),
        client: clientName(optionText(values, 'client')), borrowerCard: link.card,
        seconds: wholeOption(values, 'days', 1, 3650) * 86_400,
      });
      const out = requireOption(values, 'out');
      writeFileAtomic(out, new TextEncoder().encode(`${JSON.stringify({ server: requireOption(values, 'server'), id: borrowed.id, certificate: JSON.parse(borrowed.text) as unknown })}\n`));
      say(values)({ event: 'borrowed', id: borrowed.id, record: borrowed.certificate.record.text, file: out }, `borrowed onto card ${link.card.serial}: ${borrowed.certificate.record.text}; certificate in ${out}`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const giveBack: Command = {
  kind: 'command',
  name: 'return',
  summary: 'return a borrowed seat to its network license server before its end',
  options: { certificate: { type: 'string', value: 'FILE', description: 'the file "vsc license borrow --out" wrote' }, ...JSON_OPTION },
  async run(values) {
    const { returnBorrowed } = await license();
    let kept: { server?: unknown; id?: unknown };
    try {
      kept = JSON.parse(readTextFile(values, 'certificate')) as { server?: unknown; id?: unknown };
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError('--certificate: not a borrow file');
    }
    if (typeof kept.server !== 'string' || typeof kept.id !== 'string') throw new UsageError('--certificate: not a borrow file');
    await returnBorrowed(kept.server, kept.id);
    say(values)({ event: 'returned', id: kept.id }, `returned the borrowed seat ${kept.id} to ${kept.server}`);
    return ExitCode.ok;
  },
};

export const licenseNetworkCommands: readonly (Command | CommandGroup)[] = [
  { kind: 'group', name: 'network', summary: 'a network license server: floating seats of this machine\'s container for other machines', children: [serve] },
  borrow,
  giveBack,
];
