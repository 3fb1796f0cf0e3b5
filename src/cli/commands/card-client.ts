// `vsc card enroll|insert|remove|recover|destroy`: server-backed cards.
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import type { ClientFlags, ControlAnswer } from '../../vsc-client/index.js';
import { requireOption, type Command, type OptionSpec, type OptionValues } from '../command.js';

/** The client's code loads when a command runs: `vsc --help` and `vsc card status` stay quick. */
const client = () => import('../../vsc-client/index.js');

const text = (values: OptionValues, name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);

const MACHINE: Record<string, OptionSpec> = {
  'state-dir': { type: 'string', value: 'DIR', description: 'simulate a machine: its lock and control socket in DIR (default $VSC_STATE_DIR); only with VSC_SIMULATE_MACHINES=1, refused otherwise' },
  'machine-id': { type: 'string', value: 'ID', description: 'simulate a machine: the MUK comes from ID (default $VSC_MACHINE_ID); only with VSC_SIMULATE_MACHINES=1, refused otherwise' },
  json: { type: 'boolean', description: 'machine-readable output' },
};
const SERVER: Record<string, OptionSpec> = {
  server: { type: 'string', value: 'URL', description: 'the VSC server, ws://HOST:PORT' },
  'server-key': { type: 'string', value: 'KEY', description: 'the server public key "vsc server init" printed (pinned)' },
  'master-key-file': { type: 'string', value: 'FILE', description: 'this deployment\'s implementation key (default $VSC_MASTER_KEY_FILE)' },
  keyfile: { type: 'string', value: 'FILE', description: 'this install\'s keyfile from "vsc admin keyfile" (default $VSC_KEYFILE)' },
  serial: { type: 'string', value: 'S', description: 'the card\'s serial number' },
  'password-file': { type: 'string', value: 'FILE', description: 'read the password from the first line of FILE instead of asking' },
};

function flags(values: OptionValues): ClientFlags {
  return {
    ...(text(values, 'server') === undefined ? {} : { server: text(values, 'server')! }),
    ...(text(values, 'server-key') === undefined ? {} : { serverKey: text(values, 'server-key')! }),
    ...(text(values, 'master-key-file') === undefined ? {} : { masterKeyFile: text(values, 'master-key-file')! }),
    ...(text(values, 'keyfile') === undefined ? {} : { keyfile: text(values, 'keyfile')! }),
    ...(text(values, 'state-dir') === undefined ? {} : { stateDir: text(values, 'state-dir')! }),
    ...(text(values, 'machine-id') === undefined ? {} : { machineId: text(values, 'machine-id')! }),
  };
}

const say = (values: OptionValues) => (event: Record<string, unknown>, line: string) => console.log(values['json'] === true ? JSON.stringify(event) : line);

function command(name: string, summary: string, options: Record<string, OptionSpec>, run: (values: OptionValues) => Promise<number>, details?: string): Command {
  return { kind: 'command', name, summary, options, run, ...(details === undefined ? {} : { details }) };
}

export const cardClientCommands: Command[] = [
  command('enroll', 'enroll a card with its one-time token: choose the password, generate and upload the sealed keys', {
    ...SERVER,
    token: { type: 'string', value: 'T', description: 'the enrollment token from "vsc admin enroll"' },
    'token-file': { type: 'string', value: 'FILE', description: 'read the token from the first line of FILE (mode 0600) instead of --token' },
    ...MACHINE,
  }, async (values) => {
    const { readPassword, readSecretLine, serverEndpoint, enrollCard } = await client();
    const endpoint = serverEndpoint(flags(values));
    const serial = requireOption(values, 'serial');
    const tokenFile = text(values, 'token-file');
    if ((text(values, 'token') === undefined) === (tokenFile === undefined)) throw new UsageError('give exactly one of --token and --token-file');
    const token = tokenFile === undefined ? requireOption(values, 'token') : readSecretLine(tokenFile, '--token-file');
    const password = await readPassword(text(values, 'password-file'), 'New card password: ');
    const { publicKey } = await enrollCard(endpoint, serial, token, password);
    say(values)({ event: 'enrolled', serial, publicKey: Buffer.from(publicKey).toString('hex') }, `card ${serial} enrolled; signing public key ${Buffer.from(publicKey).toString('hex')}`);
    return ExitCode.ok;
  }),
  command(
    'insert',
    'insert a server-backed card on this machine and serve it until removed',
    { ...SERVER, vpcd: { type: 'string', value: 'HOST:PORT', description: 'show the card in pcscd through vpcd (e.g. 127.0.0.1:35963)' }, 'poll-interval': { type: 'string', value: 'MS', description: 'machine polling interval in ms (default 60000)' }, ...MACHINE },
    async (values) => {
      const { runCardProcess, machineUniqueKey, readPassword, serverEndpoint, stateDirectory } = await client();
      const { parseVpcdAddress } = await import('../../reader-driver/index.js');
      const machine = flags(values);
      const endpoint = serverEndpoint(machine);
      const serial = requireOption(values, 'serial');
      const vpcd = text(values, 'vpcd') === undefined ? undefined : parseVpcdAddress(text(values, 'vpcd')!);
      const poll = text(values, 'poll-interval');
      if (poll !== undefined && !/^[1-9][0-9]{2,8}$/.test(poll)) throw new UsageError('--poll-interval: expected milliseconds, at least 100');
      const password = await readPassword(text(values, 'password-file'));
      const muk = await machineUniqueKey(machine);
      const end = await runCardProcess({
        endpoint, serial, password, muk, readMuk: () => machineUniqueKey(machine), stateDir: stateDirectory(machine), ...(vpcd === undefined ? {} : { vpcd }),
        ...(poll === undefined ? {} : { pollIntervalMs: Number(poll) }), say: say(values),
      });
      if (end.removed) return ExitCode.ok;
      throw end.error instanceof VscError ? end.error : new VscError('card.remove', (end.error as Error).message);
    },
    'Stays running while the card is inserted. The server refuses every other machine until this one removes the card.',
  ),
  command('remove', 'remove the card the running "vsc card insert" on this machine holds', { ...MACHINE }, async (values) => {
    const { askControlSocket, controlSocketPath, stateDirectory } = await client();
    const stateDir = stateDirectory(flags(values));
    const answer = await askControlSocket(controlSocketPath(stateDir), 'remove', stateDir);
    if (answer === undefined) throw new VscError('card.remove', 'the card process ended without answering; if it crashed, "vsc card recover" brings the card back');
    if (answer.kind !== 'removed') throw new VscError('card.remove', answer.kind === 'error' ? answer.message : 'the card process answered with its status instead');
    say(values)({ event: 'removed' }, 'card removed');
    return ExitCode.ok;
  }),
  command('status', 'show the card inserted on this machine, if any: serial, next counter value, reader', { ...MACHINE }, async (values) => {
    const { askControlSocket, controlSocketPath, stateDirectory } = await client();
    const stateDir = stateDirectory(flags(values));
    let answer: ControlAnswer | undefined;
    try {
      answer = await askControlSocket(controlSocketPath(stateDir), 'status', stateDir);
    } catch (error) {
      if (!(error instanceof VscError) || error.code !== 'card.not-inserted') throw error;
      say(values)({ inserted: false }, 'no card is inserted on this machine');
      return ExitCode.ok;
    }
    if (answer?.kind !== 'status') throw new VscError('card.status', answer === undefined ? '' : answer.kind === 'error' ? answer.message : 'the card process answered "removed" to a status request');
    const { status } = answer;
    say(values)(
      { inserted: true, ...status },
      [
        `card ${status.serial} inserted (process ${status.pid})${status.removing ? ', being removed' : ''}`,
        `next counter value: ${status.nextCounter}${status.nextWindow === null ? '' : `; then ${status.nextWindow.join('..')} (granted ahead)`}`,
        `reader: ${status.vpcd === null ? 'none (not shown in pcscd)' : `vpcd at ${status.vpcd}`}`,
      ].join('\n'),
    );
    return ExitCode.ok;
  }, 'Exits 0 whether or not a card is inserted; --json says which ("inserted": true or false).'),
  command('recover', 'after a crash: return the card this machine lost to idle ([0058]-[0060])', { ...SERVER, ...MACHINE }, async (values) => {
    const { acquireMachineLock, machineUniqueKey, readPassword, serverEndpoint, stateDirectory, recoverCard } = await client();
    const { LockHeldError } = await import('../../files/index.js');
    const machine = flags(values);
    const endpoint = serverEndpoint(machine);
    const serial = requireOption(values, 'serial');
    const password = await readPassword(text(values, 'password-file'));
    // The machine lock proves no card process runs here ([0060]).
    const lock = await acquireMachineLock(stateDirectory(machine)).catch((error: unknown) => {
      if (!(error instanceof LockHeldError)) throw error;
      throw new VscError('card.running', 'a card process runs on this machine: remove that card instead of recovering', { exitCode: ExitCode.refusedByState, cause: error });
    });
    try {
      await recoverCard(endpoint, serial, password, await machineUniqueKey(machine));
    } finally {
      lock.release();
    }
    say(values)({ event: 'recovered', serial }, `card ${serial} recovered: idle again`);
    return ExitCode.ok;
  }),
  command('destroy', 'destroy the card for good (owner-authenticated)', { ...SERVER, ...MACHINE }, async (values) => {
    const { readPassword, serverEndpoint, destroyCard } = await client();
    const endpoint = serverEndpoint(flags(values));
    const serial = requireOption(values, 'serial');
    await destroyCard(endpoint, serial, { password: await readPassword(text(values, 'password-file')) });
    say(values)({ event: 'destroyed', serial }, `card ${serial} destroyed`);
    return ExitCode.ok;
  }),
];
