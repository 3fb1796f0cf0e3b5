// `vsc card enroll|insert|remove|recover|destroy`: server-backed cards.
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import type { ClientFlags, ControlAnswer, ControlRequest, DeliveryOutcome, ServerEndpoint } from '../../vsc-client/index.js';
import { optionText as text, say, requireOption, type Command, type OptionSpec, type OptionValues } from '../command.js';
import { readChallengeTableOption } from './dongle.js';
import { DONGLE_OPTIONS, donglePinFallback } from './dongle-options.js';

/** The client's code loads when a command runs: `vsc --help` and `vsc card status` stay quick. */
const client = () => import('../../vsc-client/index.js');


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
    const { readPassword, readSecretLine, enrollCard, machineUniqueKey } = await client();
    const { formatRecoveryCode } = await import('../../vsc-protocol/index.js');
    const machine = flags(values);
    const endpoint = await endpointOf(machine);
    const serial = requireOption(values, 'serial');
    const tokenFile = text(values, 'token-file');
    if ((text(values, 'token') === undefined) === (tokenFile === undefined)) throw new UsageError('give exactly one of --token and --token-file');
    const token = tokenFile === undefined ? requireOption(values, 'token') : readSecretLine(tokenFile, '--token-file');
    const password = await readPassword(text(values, 'password-file'), 'New card password: ');
    const { publicKey, recoveryCode, kind } = await enrollCard(endpoint, serial, token, password, await machineUniqueKey(machine));
    const shown = formatRecoveryCode(recoveryCode);
    const where = kind === 'server-held' ? ' (server-held: the key stays on the server, which signs for the card)' : '';
    say(values)(
      { event: 'enrolled', serial, kind, publicKey: Buffer.from(publicKey).toString('hex'), recoveryCode: shown },
      [
        `card ${serial} enrolled; signing public key ${Buffer.from(publicKey).toString('hex')}${where}`,
        'Recovery code (shown once; keep it apart from the password: it unblocks the card after too many wrong passwords):',
        shown,
      ].join('\n'),
    );
    return ExitCode.ok;
  }),
  command(
    'insert',
    'insert a server-backed or dongle-backed card on this machine and serve it until removed',
    {
      ...SERVER, vpcd: { type: 'string', value: 'HOST:PORT', description: 'show the card in pcscd through vpcd (e.g. 127.0.0.1:35963)' },
      'poll-interval': { type: 'string', value: 'MS', description: 'polling interval in ms: the machine for a server-backed card (default 60000), the dongle for a dongle-backed one (default 1000)' },
      'give-up-after': { type: 'string', value: 'S', description: 'how long a remove keeps trying a server that cannot take the card yet, in seconds (default 30); the changes then wait on this machine' },
      'attestation-out': { type: 'string', value: 'FILE', description: 'a server-held card: write the server\'s attestation of its signing key to FILE (to send to a software vendor)' },
      ...DONGLE_OPTIONS,
      'challenge-table': { type: 'string', value: 'FILE', description: 'with --dongle: challenge the dongle from the vendor\'s table of precomputed pairs ("vsc dongle table create") instead of signed nonces' },
      ...MACHINE,
    },
    async (values) => {
      const { runCardProcess, machineUniqueKey, readPassword, stateDirectory, dataDirectory, ChannelConnections } = await client();
      const { parseVpcdAddress } = await import('../../reader-driver/index.js');
      const machine = flags(values);
      const vpcd = text(values, 'vpcd') === undefined ? undefined : parseVpcdAddress(text(values, 'vpcd')!);
      const poll = text(values, 'poll-interval');
      if (poll !== undefined && !/^[1-9][0-9]{2,8}$/.test(poll)) throw new UsageError('--poll-interval: expected milliseconds, at least 100');
      if (text(values, 'dongle') !== undefined) {
        for (const flag of ['server', 'server-key', 'master-key-file', 'keyfile', 'give-up-after', 'attestation-out']) {
          if (text(values, flag) !== undefined) throw new UsageError(`--${flag} is for a server-backed card; a dongle-backed card (--dongle) has no server`);
        }
        const { openDongle, dongleSecrets, requireTableForDongle } = await import('../../dongle-backend/index.js');
        const { runDongleCardProcess } = await client();
        const challengeTable = await readChallengeTableOption(values);
        const stateDir = stateDirectory(machine);
        const dataDir = dataDirectory(machine);
        const dongle = await openDongle(text(values, 'dongle')!, dongleSecrets(donglePinFallback(values)));
        // A table made for another dongle is refused before the card opens, not by the watcher of a running card.
        if (challengeTable !== undefined) requireTableForDongle(challengeTable, await dongle.identify());
        const password = await readPassword(text(values, 'password-file'));
        const end = await runDongleCardProcess({
          dongle, password, stateDir, dataDir, vpcd, say: say(values),
          ...(poll === undefined ? {} : { pollIntervalMs: Number(poll) }), ...(challengeTable === undefined ? {} : { challengeTable }),
        });
        if (end.removed) return ExitCode.ok;
        throw end.error instanceof VscError ? end.error : new VscError('card.remove', (end.error as Error).message);
      }
      if (text(values, 'challenge-table') !== undefined) throw new UsageError('--challenge-table needs --dongle');
      const giveUp = text(values, 'give-up-after');
      if (giveUp !== undefined && !/^[0-9]{1,6}$/.test(giveUp)) throw new UsageError('--give-up-after: expected whole seconds');
      // The card's operations (a server-held card's signatures, many a second) share kept connections.
      const connections = new ChannelConnections();
      const endpoint = { ...(await endpointOf(machine)), connections, ...(giveUp === undefined ? {} : { retryMs: Number(giveUp) * 1000 }) };
      const serial = requireOption(values, 'serial');
      const password = await readPassword(text(values, 'password-file'));
      const muk = await machineUniqueKey(machine);
      const attestationOut = text(values, 'attestation-out');
      const end = await runCardProcess({
        endpoint, serial, password, muk, readMuk: () => machineUniqueKey(machine), stateDir: stateDirectory(machine), dataDir: dataDirectory(machine), ...(vpcd === undefined ? {} : { vpcd }),
        ...(poll === undefined ? {} : { pollIntervalMs: Number(poll) }), ...(attestationOut === undefined ? {} : { attestationOut }), say: say(values),
      }).finally(() => connections.close());
      if (end.removed) return ExitCode.ok;
      throw end.error instanceof VscError ? end.error : new VscError('card.remove', (end.error as Error).message);
    },
    'Stays running while the card is inserted. A server-held card signs through its server, one round trip per SIGN AND INCREMENT; --attestation-out writes the server\'s attestation of its key. With --dongle the card runs while its dongle answers a fresh challenge every second, and is removed (refusing service, leaving the reader) the moment it does not. The server refuses every other machine until this one removes the card. Every change of the card (a PIN try, a new key) is kept on this machine, sealed, until the server has taken it back: a remove that fails, or a crash, loses nothing; the next "vsc card insert", "remove", "status" or "recover" sends it.',
  ),
  command('remove', 'remove the card the running "vsc card insert" on this machine holds, or send the changes a failed remove left waiting', { ...MACHINE }, async (values) => {
    const asked = await askOrDeliver(values, 'remove');
    if ('notInserted' in asked) {
      if (asked.deliveries === undefined) throw asked.notInserted;
      return asked.deliveries.every((delivery) => delivery.outcome === 'delivered') ? ExitCode.ok : ExitCode.other;
    }
    const { answer } = asked;
    if (answer === undefined) throw new VscError('card.remove', 'the card process ended without answering; if it crashed, "vsc card recover" brings the card back');
    if (answer.kind !== 'removed') throw new VscError('card.remove', answer.kind === 'error' ? answer.message : 'the card process answered with its status instead');
    say(values)({ event: 'removed' }, 'card removed');
    return ExitCode.ok;
  }),
  command('status', 'show the card inserted on this machine, if any (serial, next counter value, reader), and send changes waiting from a failed remove', { ...MACHINE }, async (values) => {
    const asked = await askOrDeliver(values, 'status');
    if ('notInserted' in asked) {
      const waiting = (asked.deliveries ?? []).filter((delivery) => delivery.outcome !== 'delivered');
      say(values)({ inserted: false, waiting }, 'no card is inserted on this machine');
      return ExitCode.ok;
    }
    const { answer } = asked;
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
  }, 'Exits 0 whether or not a card is inserted; --json says which ("inserted": true or false) and lists the uploads still waiting ("waiting").'),
  command('recover', 'after a crash: return the card this machine lost to idle ([0058]-[0060])', { ...SERVER, ...MACHINE }, async (values) => {
    const { acquireMachineLock, dataDirectory, machineUniqueKey, readPassword, stateDirectory, recoverCard, deliverPendingUploads, describeDelivery } = await client();
    const { LockHeldError } = await import('../../files/index.js');
    const machine = flags(values);
    const endpoint = await endpointOf(machine);
    const serial = requireOption(values, 'serial');
    const password = await readPassword(text(values, 'password-file'));
    const stateDir = stateDirectory(machine);
    // The machine lock proves no card process runs here ([0060]).
    const lock = await acquireMachineLock(stateDir).catch((error: unknown) => {
      if (!(error instanceof LockHeldError)) throw error;
      throw new VscError('card.running', 'a card process runs on this machine: remove that card instead of recovering', { exitCode: ExitCode.refusedByState, cause: error });
    });
    try {
      const muk = await machineUniqueKey(machine);
      // The changes the lost card process kept on this machine give the card back with its PIN tries and keys.
      const [kept] = await deliverPendingUploads({ dataDir: dataDirectory(machine), muk, serial });
      if (kept !== undefined) say(values)({ event: 'pending-upload', ...kept }, describeDelivery(kept));
      if (kept?.outcome !== 'delivered') await recoverCard(endpoint, serial, password, muk);
    } finally {
      lock.release();
    }
    say(values)({ event: 'recovered', serial }, `card ${serial} recovered: idle again`);
    return ExitCode.ok;
  }),
  command('destroy', 'destroy the card for good (owner-authenticated)', { ...SERVER, ...MACHINE }, async (values) => {
    const { readPassword, destroyCard, machineUniqueKey } = await client();
    const machine = flags(values);
    const endpoint = await endpointOf(machine);
    const serial = requireOption(values, 'serial');
    await destroyCard(endpoint, serial, { password: await readPassword(text(values, 'password-file')) }, await machineUniqueKey(machine));
    say(values)({ event: 'destroyed', serial }, `card ${serial} destroyed`);
    return ExitCode.ok;
  }),
  command(
    'unblock',
    'lift the wrong-password back-off and block of a card with the recovery code shown at enrollment',
    {
      ...Object.fromEntries(Object.entries(SERVER).filter(([name]) => name !== 'password-file')),
      'recovery-code-file': { type: 'string', value: 'FILE', description: 'read the recovery code from the first line of FILE (mode 0600) instead of asking' },
      ...MACHINE,
    },
    async (values) => {
      const { readPassword, unblockCard } = await client();
      const { parseRecoveryCode } = await import('../../vsc-protocol/index.js');
      const endpoint = await endpointOf(flags(values));
      const serial = requireOption(values, 'serial');
      const typed = await readPassword(text(values, 'recovery-code-file'), 'Recovery code: ');
      const code = parseRecoveryCode(new TextDecoder().decode(typed));
      typed.fill(0);
      await unblockCard(endpoint, serial, code);
      say(values)({ event: 'unblocked', serial }, `card ${serial} unblocked: every machine may try its password again`);
      return ExitCode.ok;
    },
    'The password is not needed. An administrator can do the same with "vsc admin unblock".',
  ),
];

/** The server endpoint of the flags, with what this machine remembers of its cards. */
async function endpointOf(machine: ClientFlags): Promise<ServerEndpoint> {
  const { serverEndpoint, dataDirectory, KnownCards } = await client();
  return { ...serverEndpoint(machine), knownCards: new KnownCards(dataDirectory(machine)) };
}

/**
 * Asks the card process of this machine; with none running, sends instead the uploads that failed
 * removes left waiting (deliverWaiting), with the "not inserted" error for a caller that has no use
 * for them.
 */
async function askOrDeliver(
  values: OptionValues,
  request: ControlRequest,
): Promise<{ answer: ControlAnswer | undefined } | { notInserted: VscError; deliveries: DeliveryOutcome[] | undefined }> {
  const { askControlSocket, controlSocketPath, stateDirectory } = await client();
  const machine = flags(values);
  const stateDir = stateDirectory(machine);
  try {
    return { answer: await askControlSocket(controlSocketPath(stateDir), request, stateDir) };
  } catch (error) {
    if (!(error instanceof VscError) || error.code !== 'card.not-inserted') throw error;
    return { notInserted: error, deliveries: await deliverWaiting(values, machine) };
  }
}

/**
 * With no card process running, sends the uploads failed removes left on this machine (under the
 * machine lock), says what became of each, and returns them; undefined when none was waiting.
 */
async function deliverWaiting(values: OptionValues, machine: ClientFlags): Promise<DeliveryOutcome[] | undefined> {
  const { deliverPendingUploads, describeDelivery, acquireMachineLock, dataDirectory, machineUniqueKey, stateDirectory, waitingUploads } = await client();
  const { LockHeldError } = await import('../../files/index.js');
  const dataDir = dataDirectory(machine);
  if (waitingUploads(dataDir).length === 0) return undefined;
  const lock = await acquireMachineLock(stateDirectory(machine)).catch((error: unknown) => {
    if (error instanceof LockHeldError) return undefined; // a card process started meanwhile: it delivers them
    throw error;
  });
  if (lock === undefined) return undefined;
  try {
    const deliveries = await deliverPendingUploads({ dataDir, muk: await machineUniqueKey(machine) });
    for (const delivery of deliveries) say(values)({ event: 'pending-upload', ...delivery }, describeDelivery(delivery));
    return deliveries;
  } finally {
    await lock.release();
  }
}
