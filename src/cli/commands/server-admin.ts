// `vsc server init|start` and `vsc admin ...`: the operator's side of the VSC server, working on the
// server's data directory (keys and, by default, the SQLite database).
import { toHex } from '../../bytes/index.js';
import { encodeServerPublicKey } from '../../channel/index.js';
import { existsSync } from 'node:fs';
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { parseHostPort, type HostPort } from '../../host-port/index.js';
import type { CardEvent, CardStore, CardSummary, ImplementationProofs } from '../../vsc-server/index.js';
import { optionText as optional, requireOption, type Command, type OptionSpec, type OptionValues } from '../command.js';
import { once } from 'node:events';
import { SERVER_LIMIT_OPTIONS, eventsRetentionFromFlags, limitsFromFlags, refusedLogLinesFromFlags } from './server-limit-flags.js';

const DATA: Record<string, OptionSpec> = {
  data: { type: 'string', value: 'DIR', description: 'the server\'s data directory (keys, SQLite database)' },
  db: { type: 'string', value: 'URL', description: 'database: a SQLite file or postgres://USER@HOST/DB, never with a password (use PGPASSWORD or ~/.pgpass) (default DIR/vsc.db)' },
  json: { type: 'boolean', description: 'machine-readable output' },
};
const SERIAL: Record<string, OptionSpec> = { serial: { type: 'string', value: 'S', description: 'the card\'s serial number' } };
const NEW_SERIAL: Record<string, OptionSpec> = { 'new-serial': { type: 'string', value: 'N', description: 'the serial number of the new card' } };


/**
 * --db, refused when it carries a PostgreSQL password: every local user can read a command line
 * (ps, /proc/PID/cmdline). node-postgres takes the password from PGPASSWORD or ~/.pgpass instead.
 */
function databaseUrl(values: OptionValues): string | undefined {
  const url = optional(values, 'db');
  if (url === undefined || !/^postgres(ql)?:\/\//i.test(url)) return url;
  const authority = url.slice(url.indexOf('//') + 2).split(/[/?#]/)[0] ?? '';
  const userInfo = authority.includes('@') ? authority.slice(0, authority.lastIndexOf('@')) : '';
  const query = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1).split('#')[0]) : new URLSearchParams();
  if (userInfo.includes(':') || query.has('password')) {
    throw new VscError('usage.db-password', '--db: the URL holds a password, which any local user can read in the command line: remove it and set PGPASSWORD or a ~/.pgpass entry (node-postgres reads both)', { exitCode: ExitCode.usage });
  }
  return url;
}

function cardJson(card: CardSummary): Record<string, unknown> {
  return {
    serial: card.serial,
    state: card.state,
    kind: card.kind,
    enrolled: card.enrolled,
    blocked: card.blocked,
    authFailures: card.authFailures,
    sealedVersion: card.sealedVersion.toString(),
    counterWindow: card.counterWindow === null ? null : card.counterWindow.map(String),
    createdAt: card.createdAt.toISOString(),
    updatedAt: card.updatedAt.toISOString(),
  };
}

function cardLine(card: CardSummary): string {
  const flags = [card.kind === 'server-held' ? 'server-held' : undefined, card.enrolled ? undefined : 'awaiting enrollment', card.blocked ? 'blocked' : undefined].filter((flag) => flag !== undefined);
  return `${card.serial}\t${card.state}${flags.length > 0 ? `\t(${flags.join(', ')})` : ''}`;
}

function eventLine(event: CardEvent): string {
  const move = event.fromState === null ? '' : ` ${event.fromState} -> ${event.toState ?? ''}`;
  const times = event.count > 1 ? ` ×${event.count}` : '';
  return `${event.at.toISOString()}  ${event.operation.padEnd(8)} ${event.outcome}${times}${move}${event.detail === null ? '' : `  (${event.detail})`}`;
}

/**
 * The server's code, loaded when a server or admin command runs: every `vsc` command loads this file,
 * and the others need neither the server nor its database, log and metrics.
 */
const vscServer = () => import('../../vsc-server/index.js');

/** Opens the store of `--data`/`--db` (with the server's key for server-held cards' seeds), runs `body`, closes. */
async function withStore(values: OptionValues, body: (store: CardStore) => Promise<number>): Promise<number> {
  const { CardStore, heldSeedSealer, loadServerKeys, openServerDatabase } = await vscServer();
  const dir = requireOption(values, 'data');
  const database = await openServerDatabase(dir, databaseUrl(values));
  try {
    return await body(new CardStore(database, { heldSeeds: heldSeedSealer(loadServerKeys(dir)) }));
  } finally {
    await database.close();
  }
}

/** The attestation key of `dir` (made now if the directory predates it), as printed by init and start. */
async function attestationKeyOf(dir: string): Promise<string> {
  const { loadOrCreateAttestationKey, loadServerKeys, serverAttester } = await vscServer();
  const seed = loadOrCreateAttestationKey(dir);
  try {
    return toHex(serverAttester(seed, loadServerKeys(dir).channelPublicKey).publicKey);
  } finally {
    seed.fill(0);
  }
}

const print = (values: OptionValues, json: unknown, text: string): void => console.log(values['json'] === true ? JSON.stringify(json) : text);

export const serverInitCommand: Command = {
  kind: 'command',
  name: 'init',
  summary: 'create a server data directory: channel key pair, keyfile keys, master key, database',
  details:
    'Prints the attestation public key (what vouches for server-held cards: give it to software vendors), then the server public key last: clients pin it with --server-key. ' +
    'The key files are mode 0600; back them up.',
  options: DATA,
  async run(values) {
    const dir = requireOption(values, 'data');
    const { initServerData } = await vscServer();
    const keys = await initServerData(dir, databaseUrl(values));
    const publicKey = encodeServerPublicKey(keys.channelPublicKey);
    const attestationKey = await attestationKeyOf(dir);
    print(values, { data: dir, attestationKey, serverKey: publicKey }, `initialised VSC server in ${dir}\nattestation public key: ${attestationKey}\nserver public key:\n${publicKey}`);
    return ExitCode.ok;
  },
};

function adminCommand(name: string, summary: string, withSerial: boolean, body: (store: CardStore, values: OptionValues) => Promise<number>, details?: string): Command {
  return {
    kind: 'command',
    name,
    summary,
    ...(details === undefined ? {} : { details }),
    options: withSerial ? { ...DATA, ...SERIAL } : DATA,
    run: (values) => withStore(values, (store) => body(store, values)),
  };
}

export const adminCommands: Command[] = [
  {
    ...adminCommand('enroll', 'create a card record and print its one-time enrollment token (last line)', true, async (store, values) => {
      const serial = requireOption(values, 'serial');
      const serverHeld = values['server-held'] === true;
      const token = await store.create(serial, undefined, { serverHeld });
      const what = serverHeld ? 'created, server-held (its signing key was generated on this server and stays here)' : 'created';
      print(values, { serial, kind: serverHeld ? 'server-held' : 'software', token }, `card ${serial} ${what}; give its owner this one-time enrollment token:\n${token}`);
      return ExitCode.ok;
    }, 'The owner then runs "vsc card enroll ... --token T", which chooses the password and generates the card\'s keys on the owner\'s machine. ' +
      'With --server-held the SIGN AND INCREMENT key is generated here instead, sealed to this server and never sent: the server signs for the card, one round trip per signature ' +
      '(patent 003 [0096]); "vsc admin attest" vouches for it to software vendors. Its PIV keys are still the owner\'s.'),
    options: { ...DATA, ...SERIAL, 'server-held': { type: 'boolean', description: 'the card\'s signing key is generated on and sealed to this server, which signs for it (individual key)' } },
  },
  {
    kind: 'command',
    name: 'attest',
    summary: 'write this server\'s attestation that a server-held card\'s signing key is sealed to it (for software vendors)',
    details:
      'The attestation (src/card-attestation) names the card\'s serial, its SIGN AND INCREMENT public key, key mode individual and kind server-held, ' +
      'signed by this server\'s attestation key (printed by "vsc server init" and "start"). Refused (exit 3) for an unknown card, a destroyed one, ' +
      'and a card whose key its owner\'s machine generated.',
    options: { ...DATA, ...SERIAL, out: { type: 'string', value: 'FILE', description: 'where to write the attestation (not overwritten)' } },
    async run(values) {
      const dir = requireOption(values, 'data');
      const serial = requireOption(values, 'serial');
      const out = requireOption(values, 'out');
      if (existsSync(out)) throw new VscError('attestation.exists', `${out} already exists; it is not overwritten`, { exitCode: ExitCode.refusedByState });
      const { attestCard, loadOrCreateAttestationKey, loadServerKeys, openServerDatabase, serverAttester } = await vscServer();
      const keys = loadServerKeys(dir);
      const seed = loadOrCreateAttestationKey(dir);
      const attester = serverAttester(seed, keys.channelPublicKey);
      seed.fill(0);
      const database = await openServerDatabase(dir, databaseUrl(values));
      let attestation: Uint8Array;
      try {
        attestation = await attestCard(database, attester, serial);
      } finally {
        await database.close();
      }
      writeFileAtomic(out, attestation, 0o644);
      print(values, { serial, attestation: out, attestationKey: toHex(attester.publicKey) }, `attestation of server-held card ${serial} written to ${out} (attestation key ${toHex(attester.publicKey)})`);
      return ExitCode.ok;
    },
  },
  adminCommand('list', 'list the cards and their states', false, async (store, values) => {
    const cards = await store.list();
    print(values, cards.map(cardJson), cards.length === 0 ? 'no cards' : cards.map(cardLine).join('\n'));
    return ExitCode.ok;
  }),
  adminCommand('show', 'show one card: state (idle, in-use, destroyed), enrollment, failures', true, async (store, values) => {
    const card = await store.show(requireOption(values, 'serial'));
    const json = cardJson(card);
    print(values, json, Object.entries(json).map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join('..') : String(value)}`).join('\n'));
    return ExitCode.ok;
  }),
  adminCommand('events', 'the append-only history of one card (refusals of one kind counted per hour)', true, async (store, values) => {
    const events = await store.events(requireOption(values, 'serial'));
    print(values, events.map((event) => ({ ...event, at: event.at.toISOString() })), events.map(eventLine).join('\n'));
    return ExitCode.ok;
  }),
  adminCommand('destroy', 'destroy a card for good (idle or in use); its holder is refused at the next contact', true, async (store, values) => {
    const serial = requireOption(values, 'serial');
    await store.destroy(serial, 'admin');
    print(values, { serial, state: 'destroyed' }, `card ${serial} destroyed`);
    return ExitCode.ok;
  }),
  {
    ...adminCommand('replace', 'replace a lost card under a new serial; the old serial is destroyed', true, async (store, values) => {
      const serial = requireOption(values, 'serial');
      const newSerial = requireOption(values, 'new-serial');
      const mode = values['complete'] === true ? 'complete' : 'exact';
      const { token } = await store.replace(serial, newSerial, mode);
      if (token === undefined) {
        print(values, { serial, newSerial, mode }, `card ${serial} destroyed; ${newSerial} is its exact duplicate: the owner's password opens it`);
      } else {
        print(values, { serial, newSerial, mode, token }, `card ${serial} destroyed; ${newSerial} is a fresh card; give its owner this one-time enrollment token:\n${token}`);
      }
      return ExitCode.ok;
    }, 'By default the new card is an exact duplicate ([0007], [0062]): same keys and password, and its counter goes on past every value the old one was granted. With --complete it is a fresh card (new keys) that the owner enrolls anew with the printed token. A card still in use on a lost machine can be replaced: what that machine never uploaded is lost, and the machine is refused at its next contact.'),
    options: { ...DATA, ...SERIAL, ...NEW_SERIAL, complete: { type: 'boolean', description: 'a fresh card with new keys instead of an exact duplicate' } },
  },
  {
    ...adminCommand('copy', 'make another card with the same keys and password under a new serial ([0102])', true, async (store, values) => {
      const serial = requireOption(values, 'serial');
      const newSerial = requireOption(values, 'new-serial');
      await store.copy(serial, newSerial);
      print(values, { serial, newSerial }, `card ${newSerial} is a copy of ${serial}; both can be inserted, each on one machine at a time`);
      return ExitCode.ok;
    }, 'Copies share one signing key, so they draw their SIGN AND INCREMENT counter windows from one range: no counter value is ever signed by two copies.'),
    options: { ...DATA, ...SERIAL, ...NEW_SERIAL },
  },
  {
    kind: 'command',
    name: 'keyfile',
    summary: 'issue a keyfile for one client install and one card ([0044]): its secret and the card\'s public key, encrypted and signed by this server',
    details:
      'Deployments started with --implementation-proofs keyfile or both accept a client only with a keyfile this server issued. ' +
      'The keyfile names the install (give each install its own id) and the card: its serial and the public key it enrolled with, ' +
      'so the card must be enrolled first; the client refuses a keyfile that names another card. A card not yet enrolled gets a ' +
      'keyfile with --enrollment instead, which names no card and serves only `vsc card enroll`. The server stores nothing per install.',
    options: {
      ...DATA,
      'install-id': { type: 'string', value: 'ID', description: 'the install this keyfile is for (1 to 128 printable characters)' },
      serial: { type: 'string', value: 'S', description: 'the enrolled card this keyfile is for' },
      enrollment: { type: 'boolean', description: 'instead of --serial: a keyfile that names no card, for `vsc card enroll` only' },
      out: { type: 'string', value: 'FILE', description: 'where to write the keyfile (not overwritten)' },
    },
    async run(values) {
      const installId = requireOption(values, 'install-id');
      if (!/^[\x21-\x7e]{1,128}$/.test(installId)) throw new UsageError('--install-id: expected 1 to 128 printable characters without spaces');
      const serial = optional(values, 'serial');
      const enrollment = values['enrollment'] === true;
      if ((serial === undefined) === !enrollment) throw new UsageError('expected exactly one of --serial S (an enrolled card) and --enrollment');
      const out = requireOption(values, 'out');
      if (existsSync(out)) throw new VscError('keyfile.exists', `${out} already exists; it is not overwritten`, { exitCode: ExitCode.refusedByState });
      const { issueCardKeyfile, loadServerKeys, openServerDatabase } = await vscServer();
      const keys = loadServerKeys(requireOption(values, 'data'));
      const database = await openServerDatabase(requireOption(values, 'data'), optional(values, 'db'));
      let keyfile: Uint8Array;
      try {
        keyfile = await issueCardKeyfile(database, keys, { installId, card: serial === undefined ? 'enrollment' : { serial } });
      } finally {
        await database.close();
      }
      writeFileAtomic(out, keyfile);
      const what = serial === undefined ? 'enrollment only' : `card ${serial}`;
      print(values, { installId, serial: serial ?? null, keyfile: out }, `keyfile for install ${installId} and ${what} written to ${out}`);
      return ExitCode.ok;
    },
  },
  adminCommand('unblock', 'empty every wrong-password bucket of a card (its back-off and block)', true, async (store, values) => {
    const serial = requireOption(values, 'serial');
    await store.unblock(serial);
    print(values, { serial, blocked: false }, `card ${serial} unblocked`);
    return ExitCode.ok;
  }),
];

/** HOST:PORT for a listener; port 0 asks the system for a free one (the bound address is printed). */
/** --listen and --metrics: port 0 picks a free port. */
function listenAddress(flag: string, text: string): HostPort {
  return parseHostPort(text, { anyPort: true, what: `--${flag}`, example: '127.0.0.1:9464' });
}

export const serverStartCommand: Command = {
  kind: 'command',
  name: 'start',
  summary: 'serve the cards of a data directory over the protected channel',
  details: [
    'Prints the attestation public key (server-held cards), the listening address and the server public key on stdout; logs one JSON line (pino) per finished operation and at start and stop on stderr: operation, serial, outcome (ok or the refusal reason), durationMs, remote address, server instance id. Never a password, key, MUK, holder secret or sealed information.',
    'With --metrics, Prometheus metrics are served at http://HOST:PORT/metrics on a listener of their own (off by default): vsc_operations_total{operation,outcome}, vsc_operation_duration_seconds{operation}, vsc_cards{state}, vsc_sessions_active, vsc_commit_group_operations, vsc_connections_active, vsc_limit_refusals_total{kind,scope}, vsc_limit{name} and the process metrics. SIGTERM or SIGINT stops both listeners.',
    'Limits (per server process): connections over --max-connections(-per-peer) are cut at accept, new connections over --sessions(-per-peer)-per-second get HTTP 429 (a later session on a kept connection over them: the connection closes with 1013), a connection idle between sessions closes after --idle-timeout-ms, and an address over its challenge rate or blocked after wrong passwords is refused "retry-later" (exit 3) before it is challenged. Refusal log lines are limited per address (--refused-log-lines).',
  ].join('\n\n'),
  options: {
    data: { type: 'string', value: 'DIR', description: 'the server\'s data directory' },
    db: DATA['db']!,
    listen: { type: 'string', value: 'HOST:PORT', description: 'where clients connect (default 127.0.0.1:7443)' },
    metrics: { type: 'string', value: 'HOST:PORT', description: 'serve Prometheus metrics at http://HOST:PORT/metrics (default off)' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'fatal, error, warn, info, debug, trace or silent (default info)' },
    'implementation-proofs': { type: 'string', value: 'KIND', description: 'master, keyfile or both (default master)' },
    'counter-window': { type: 'string', value: 'N', description: 'SIGN AND INCREMENT values granted per insert or extension (default 1048576)' },
    ...SERVER_LIMIT_OPTIONS,
    json: DATA['json']!,
  },
  async run(values) {
    const dir = requireOption(values, 'data');
    const dbUrl = databaseUrl(values);
    const listen = listenAddress('listen', optional(values, 'listen') ?? '127.0.0.1:7443');
    const metricsAt = optional(values, 'metrics') === undefined ? undefined : listenAddress('metrics', optional(values, 'metrics')!);
    const proofs = optional(values, 'implementation-proofs') ?? 'master';
    if (!['master', 'keyfile', 'both'].includes(proofs)) throw new UsageError('--implementation-proofs: expected master, keyfile or both');
    const window = optional(values, 'counter-window');
    if (window !== undefined && !/^[1-9][0-9]{0,30}$/.test(window)) throw new UsageError('--counter-window: expected a positive whole number');
    const limits = limitsFromFlags(values);
    const eventsRetentionDays = eventsRetentionFromFlags(values);
    const refusedLines = refusedLogLinesFromFlags(values);
    const {
      startVscServer, createServerLogger, operationLogObserver, parseLogLevel, createServerMetrics, listenError, serveMetrics, combineObservers, withoutCredentials,
      loadServerKeys, openServerDatabase, defaultDatabaseUrl, resolveServerLimits, loadOrCreateAttestationKey, serverAttester,
    } = await vscServer();
    resolveServerLimits(limits); // a usage error before any file is read
    const level = parseLogLevel(optional(values, 'log-level') ?? 'info');
    const keys = loadServerKeys(dir);
    const attestationSeed = loadOrCreateAttestationKey(dir);
    const attestationKey = toHex(serverAttester(attestationSeed, keys.channelPublicKey).publicKey);
    const logger = createServerLogger({ level });
    const database = await openServerDatabase(dir, dbUrl);
    const metrics = metricsAt === undefined ? undefined : createServerMetrics({ database });
    let metricsListener: Awaited<ReturnType<typeof serveMetrics>> | undefined;
    let server: Awaited<ReturnType<typeof startVscServer>>;
    try {
      if (metrics !== undefined && metricsAt !== undefined) {
        metricsListener = await serveMetrics(metrics, metricsAt, (error) => logger.warn({ event: 'scrape-failed', error: error instanceof Error ? error.name : typeof error }, 'a metrics scrape failed'));
      }
      server = await startVscServer({
        keys, database, host: listen.host, port: listen.port, implementationProofs: proofs as ImplementationProofs, attestationSeed,
        limits, ...(eventsRetentionDays === undefined ? {} : { eventsRetentionDays }),
        observer: combineObservers(operationLogObserver(logger, refusedLines === undefined ? {} : { refusedLinesPerPeerPerMinute: refusedLines }), ...(metrics === undefined ? [] : [metrics.observer])),
        ...(window === undefined ? {} : { counterWindow: BigInt(window) }),
      }).catch((error: unknown) => {
        throw error instanceof VscError ? error : listenError('clients', listen.host, listen.port, error);
      });
    } catch (error) {
      await metricsListener?.close();
      await database.close();
      throw error;
    }
    const db = dbUrl ?? defaultDatabaseUrl(dir);
    logger.info({
      event: 'start', url: server.url, metrics: metricsListener?.url ?? null, database: database.dialect,
      db: database.dialect === 'postgres' ? withoutCredentials(db) : db, implementationProofs: proofs,
    }, 'VSC server started');
    const metricsLine = metricsListener === undefined ? '' : `\nmetrics on ${metricsListener.url}`;
    print(
      values, { event: 'listening', url: server.url, metrics: metricsListener?.url ?? null, attestationKey, serverKey: server.publicKey },
      `attestation public key: ${attestationKey}\nVSC server listening on ${server.url}${metricsLine}\nserver public key:\n${server.publicKey}`,
    );

    const stop = new AbortController();
    const signal = await Promise.race([once(process, 'SIGTERM', stop).then(() => 'SIGTERM'), once(process, 'SIGINT', stop).then(() => 'SIGINT')]).catch(() => 'none');
    stop.abort();
    logger.info({ event: 'stop', signal }, 'VSC server stopping');
    await server.close();
    await metricsListener?.close();
    await database.close();
    logger.info({ event: 'stopped' }, 'VSC server stopped');
    return ExitCode.ok;
  },
};
