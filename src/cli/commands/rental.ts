// `vsc rental serve|status|bridge` (patent 003 [0058], [0062]; DESIGN.md "Software rental"): the machine's one
// rental server, which owns the card (through pcscd) and the audit trail, and two clients of it. Other `vsc rental`
// commands join the group through rentalCommands.
import { once } from 'node:events';
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../errors/index.js';
import { rentalProgramCommands } from './rental-program.js';
import { toHex as hex } from '../../bytes/index.js';
import { optionText as text, say, requireOption, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';

const rental = () => import('../../rental/index.js');


/** `--socket PATH` and `--json`, shared by every `vsc rental` command. */
export const RENTAL_CLIENT_OPTIONS: Record<string, OptionSpec> = {
  socket: { type: 'string', value: 'PATH', description: 'the rental server\'s socket (default: rental.sock in this user\'s /run/user/UID/vsc or /tmp/vsc-UID)' },
  json: { type: 'boolean', description: 'machine-readable output' },
};

function keyModeOption(values: OptionValues): 'individual' | 'universal' | undefined {
  const mode = text(values, 'key-mode');
  if (mode === undefined || mode === 'individual' || mode === 'universal') return mode;
  throw new UsageError('--key-mode: expected individual or universal');
}

function busyTimeoutOption(values: OptionValues): number | undefined {
  const value = text(values, 'busy-timeout');
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,7}$/.test(value)) throw new UsageError('--busy-timeout: expected whole milliseconds (at most 7 digits)');
  return Number(value);
}

const serveCommand: Command = {
  kind: 'command',
  name: 'serve',
  summary: 'run this machine\'s rental server: it owns the card and the audit trail, and serves rented programs on a local socket',
  details: [
    'Every Write is one exclusive transaction on the card (SELECT, GET COUNTER, SIGN AND INCREMENT, GET COUNTER), journaled in',
    'DIR/journal before the card signs, and fsynced to DIR/trail.jsonl (and the backup trail) before it is acknowledged ([0058], [0062]).',
    'After a crash the journal is replayed before anything is served. The socket\'s directory must be this user\'s and 0700.',
    'SIGTERM or Ctrl-C finishes the Write in progress, removes the socket and exits 0. The server needs no keyfile: programs validate.',
  ].join('\n'),
  options: {
    reader: { type: 'string', value: 'R', description: 'the pcscd reader holding the card, e.g. "Virtual PCD 00 00"' },
    trail: { type: 'string', value: 'DIR', description: 'the trail\'s directory (made 0700): DIR/trail.jsonl and DIR/journal' },
    'backup-trail': { type: 'string', value: 'DIR2', description: 'a backup trail\'s directory on another medium: every record is fsynced there too ([0062])' },
    'key-mode': { type: 'string', value: 'MODE', description: 'individual or universal, for a card that does not show its SIGN AND INCREMENT key mode' },
    'busy-timeout': { type: 'string', value: 'MS', description: 'how long a Write waits while another application holds the card', default: '10000' },
    ...RENTAL_CLIENT_OPTIONS,
  },
  async run(values) {
    const { prepareRentalSocketPath, claimRentalSocket, RentalServer, RentalListener, pcscdCardAccess } = await rental();
    const reader = requireOption(values, 'reader');
    const directory = resolve(requireOption(values, 'trail'));
    const backupText = text(values, 'backup-trail');
    const backupDirectory = backupText === undefined ? undefined : resolve(backupText);
    const keyMode = keyModeOption(values);
    const busyTimeoutMs = busyTimeoutOption(values);
    const json = values['json'] === true;
    const log = (line: string) => console.error(json ? JSON.stringify({ event: 'log', message: line }) : line);

    const socketPath = await prepareRentalSocketPath(text(values, 'socket'));
    await claimRentalSocket(socketPath);
    if (backupDirectory === undefined) log('warning: no --backup-trail: a disk error that loses the trail loses the rental history with it ([0062] keeps a backup on another medium)');
    const card = pcscdCardAccess(reader, busyTimeoutMs === undefined ? {} : { busyTimeoutMs });
    const server = await RentalServer.open({ card, directory, ...(backupDirectory === undefined ? {} : { backupDirectory }), ...(keyMode === undefined ? {} : { keyMode }), log });
    let listener: Awaited<ReturnType<typeof RentalListener.listen>>;
    try {
      // The same socket is the machine's license agent: license containers sign their records into this trail.
      const { licenseExtensions } = await import('../../license/index.js');
      listener = await RentalListener.listen(socketPath, server, licenseExtensions(server, directory));
    } catch (error) {
      await server.close();
      throw error;
    }
    const stop = new AbortController();
    const signalled = Promise.race([once(process, 'SIGTERM', stop), once(process, 'SIGINT', stop)]).catch(() => undefined);
    say(values)(
      { event: 'serving', socket: socketPath, reader, trail: server.trailPath, backup: server.backupPath ?? null, serial: server.card.serial, publicKey: hex(server.card.publicKey), keyMode: server.card.keyMode, pid: process.pid },
      `rental server for card ${server.card.serial} (${server.card.keyMode} key) in reader ${JSON.stringify(reader)} serving on ${socketPath}; trail ${server.trailPath}${server.backupPath === undefined ? '' : `, backup ${server.backupPath}`}; SIGTERM or Ctrl-C stops it`,
    );
    await signalled;
    stop.abort();
    await listener.close();
    say(values)({ event: 'stopped', socket: socketPath }, 'rental server stopped');
    return ExitCode.ok;
  },
};

const statusCommand: Command = {
  kind: 'command',
  name: 'status',
  summary: 'ask the rental server for its card, counter, trails and journal',
  options: { ...RENTAL_CLIENT_OPTIONS },
  async run(values) {
    const { RentalClient } = await rental();
    const client = await RentalClient.connect(text(values, 'socket'));
    try {
      const hello = await client.hello();
      const status = await client.status();
      const counter = (value: bigint | null) => (value === null ? null : value.toString());
      const trail = (state: typeof status.trail) => ({ path: state.path, lastCounter: counter(state.lastCounter), records: state.records });
      const shown = {
        socket: client.socketPath, card: { serial: hello.card.serial, publicKey: hex(hello.card.publicKey), keyMode: hello.card.keyMode }, counter: status.counter.toString(),
        trail: trail(status.trail), backup: status.backup === null ? null : trail(status.backup), journal: status.journal,
        gap: status.gap === null ? null : { from: status.gap.from.toString(), to: status.gap.to.toString() },
      };
      const describe = (state: typeof shown.trail) => `${state.path}: ${state.records} records${state.lastCounter === null ? '' : `, last counter ${state.lastCounter}`}`;
      say(values)(shown, [
        `rental server on ${shown.socket}: card ${shown.card.serial} (${shown.card.keyMode} key ${shown.card.publicKey}), counter ${shown.counter}`,
        `trail ${describe(shown.trail)}`,
        shown.backup === null ? 'no backup trail' : `backup ${describe(shown.backup)}`,
        `journal ${shown.journal}`,
        ...(shown.gap === null ? [] : [`GAP: counters ${shown.gap.from}..${shown.gap.to} carry no record; "vsc rental bridge" writes a card-signed record naming them`]),
      ].join('\n'));
      return ExitCode.ok;
    } finally {
      client.close();
    }
  },
};

const bridgeCommand: Command = {
  kind: 'command',
  name: 'bridge',
  summary: 'write a card-signed record naming the counters the card passed that the trail lacks (charged as worst-case usage)',
  details: [
    'A gap the server did not cause (a server-backed card recovered, a dongle epoch change, an old trail restored) makes every',
    'program refuse the trail. The bridge record "skipped FROM TO" at the card\'s counter names the range; every program then',
    'charges it as worst-case usage. Nothing is written when the trail ends right before the card\'s counter.',
  ].join('\n'),
  options: { ...RENTAL_CLIENT_OPTIONS },
  async run(values) {
    const { RentalClient } = await rental();
    const client = await RentalClient.connect(text(values, 'socket'));
    try {
      const answer = await client.bridge();
      if (answer.bridged === null) {
        say(values)({ event: 'nothing-to-bridge' }, 'nothing to bridge: the trail ends right before the card\'s counter');
        return ExitCode.ok;
      }
      const { from, to } = answer.bridged;
      say(values)(
        { event: 'bridged', from: from.toString(), to: to.toString(), counter: answer.record!.counter.toString(), text: answer.record!.text },
        `bridged counters ${from}..${to} with the card-signed record "${answer.record!.text}" at counter ${answer.record!.counter}`,
      );
      return ExitCode.ok;
    } finally {
      client.close();
    }
  },
};

/** The children of `vsc rental`: the server's side here, the programs' side (write, validate, usage) in rental-program.ts. */
export const rentalCommands: readonly (Command | CommandGroup)[] = [serveCommand, statusCommand, bridgeCommand, ...rentalProgramCommands];

export const rentalGroup: CommandGroup = {
  kind: 'group',
  name: 'rental',
  summary: 'the rental server that owns the card and the audit trail, and its clients (patent 003)',
  children: [...rentalCommands],
};
