// `vsc license hub serve | authorize | revoke | unlock`: the restore hub (Wibu 000 P002 "Single Action License Restore
// Process": the Hub Web Service; "CM-Box Backup" §2.10: the central locking instance, which "checks whether the Request
// for Locking came from an authorized Licensor" and whose unlocking "is handled exclusively" by the central authority).
// serve runs the HTTP service and its self-service page; authorize, revoke and unlock are the operator's own commands
// on the data directory (unlock is the same as POST /v1/unlocks with the admin token).
import { once } from 'node:events';
import { resolve } from 'node:path';
import { fromHex, toHex, utf8 } from '../../bytes/index.js';
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { parseHostPort } from '../../host-port/index.js';
import { JSON_OPTION, optionText as text, requireOption, say, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';

const license = () => import('../../license/index.js');

export const DEFAULT_HUB_LISTEN = '127.0.0.1:8720';

const DATA: Record<string, OptionSpec> = {
  data: { type: 'string', value: 'DIR', description: 'the hub\'s data directory (made 0700): authority.key and admin.token (0600, made at the first start) and hub.sqlite' },
};

function whole(values: OptionValues, name: string, min: number, max: number, fallback: number): number {
  const value = text(values, name);
  if (value === undefined) return fallback;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name}: expected a whole number in ${min}..${max}, got ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
}

const serve: Command = {
  kind: 'command',
  name: 'serve',
  summary: 'run the restore hub: licensor registry, restore jobs, the central locking list and the self-service page',
  details: [
    'GET / is the self-service page (restore a backup onto a new card, transfer, reactivation; a licensor\'s alerts). Licensors',
    'that you authorized (vsc license hub authorize; others are refused, 403) register their restoring service (POST',
    '/v1/licensors, signed by their key) and report serials to lock (POST /v1/locks);',
    'GET /v1/locks is the central locking list; POST /v1/unlocks and GET /v1/audit need the admin token (DIR/admin.token).',
    'A restore job sends each licensor only its own item, all at once, each call limited by --forward-timeout-seconds.',
    'GET /openapi.json describes every route. Prints the listening URL and the authority public key last: containers take it',
    'as their lock authority (update op set-lock-authority). Logs one line per request on stderr (never a body, key or token).',
    'It listens without TLS: put it behind a TLS proxy on an untrusted network. SIGTERM or Ctrl-C stops it.',
  ].join('\n'),
  options: {
    ...DATA,
    listen: { type: 'string', value: 'HOST:PORT', description: 'where to listen (port 0: any free port)', default: DEFAULT_HUB_LISTEN },
    'per-client': { type: 'string', value: 'N', description: 'requests one client address may make per minute (more: HTTP 429)', default: '600' },
    'forward-timeout-seconds': { type: 'string', value: 'S', description: 'how long one call to a licensor\'s restoring service may take', default: '15' },
    'trust-proxy': { type: 'string', value: 'ADDRESSES', description: 'IP addresses or CIDRs (comma-separated) of TLS proxies in front: X-Forwarded-For from them names the client' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { openHubBackend, startHubService } = await license();
    const dataDir = resolve(requireOption(values, 'data'));
    const listen = parseHostPort(text(values, 'listen') ?? DEFAULT_HUB_LISTEN, { anyPort: true, what: '--listen', example: DEFAULT_HUB_LISTEN });
    const perClientPerMinute = whole(values, 'per-client', 1, 1_000_000, 600);
    const forwardTimeoutMs = whole(values, 'forward-timeout-seconds', 1, 600, 15) * 1000;
    const trustProxy = text(values, 'trust-proxy');
    const json = values['json'] === true;
    const hub = await openHubBackend({ dataDir, forwardTimeoutMs });
    let service;
    try {
      service = await startHubService({
        hub, host: listen.host, port: listen.port, perClientPerMinute, ...(trustProxy === undefined ? {} : { trustProxy }),
        onRequest: (event) => console.error(json ? JSON.stringify({ event: 'request', ...event }) : `${event.method} ${event.route} ${event.status}${event.reason === undefined ? '' : ` ${event.reason}`} from ${event.client}`),
      });
    } catch (error) {
      await hub.close();
      throw error;
    }
    const stop = new AbortController();
    const signalled = Promise.race([once(process, 'SIGTERM', stop), once(process, 'SIGINT', stop)]).catch(() => undefined);
    const authorityKey = toHex(hub.authority.publicKey);
    say(values)(
      { event: 'listening', url: service.url, authorityKey, pid: process.pid },
      `restore hub listening on ${service.url}; SIGTERM or Ctrl-C stops it\nauthority public key:\n${authorityKey}`,
    );
    await signalled;
    stop.abort();
    await service.close();
    await hub.close();
    say(values)({ event: 'stopped' }, 'restore hub stopped');
    return ExitCode.ok;
  },
};

const unlock: Command = {
  kind: 'command',
  name: 'unlock',
  summary: 'the central authority unlocks a serial: prints (or writes) its signed unlock sequence; the serial leaves the locking list',
  details: 'Wibu 000 §2.10: only the central authority unlocks a locked container. The customer\'s CLI hands the unlock sequence to the card (license applet LOCKING). A serial that is not locked is refused (exit 3).',
  options: {
    ...DATA,
    serial: { type: 'string', value: 'S', description: 'the locked container\'s serial' },
    out: { type: 'string', value: 'FILE', description: 'write the unlock sequence to FILE instead of printing it' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { openHubBackend, unlockSerial, checkSerial } = await license();
    const dataDir = resolve(requireOption(values, 'data'));
    let serial: string;
    try {
      serial = checkSerial(requireOption(values, 'serial'), '--serial');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const out = text(values, 'out');
    const hub = await openHubBackend({ dataDir });
    try {
      let answer;
      try {
        answer = await unlockSerial(hub, serial, { actor: 'administrator', client: 'cli' });
      } catch (error) {
        // A serial that is not locked is a refusal by state (exit 3), not a usage error.
        if (error instanceof VscError && error.code === 'license.input') throw new VscError('license.not-locked', error.message, { exitCode: ExitCode.refusedByState, cause: error });
        throw error;
      }
      if (out !== undefined) writeFileAtomic(resolve(out), utf8(`${answer.unlockSequence}\n`), 0o644);
      say(values)(
        { event: 'unlocked', serial, unlockSequence: answer.unlockSequence, ...(out === undefined ? {} : { file: resolve(out) }) },
        out === undefined ? `serial ${serial} unlocked; its unlock sequence:\n${answer.unlockSequence}` : `serial ${serial} unlocked; its unlock sequence is in ${resolve(out)}`,
      );
      return ExitCode.ok;
    } finally {
      await hub.close();
    }
  },
};

/** A licensor key given as 64 lowercase hex digits. */
function licensorKey(values: OptionValues): Uint8Array {
  const value = requireOption(values, 'licensor-key');
  if (!/^[0-9a-f]{64}$/.test(value)) throw new UsageError(`--licensor-key: expected 64 lowercase hex digits, got ${JSON.stringify(value.slice(0, 70))}`);
  return fromHex(value);
}

const KEY_OPTION: Record<string, OptionSpec> = { 'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor\'s public key (vsc license licensor add prints it)' } };

const authorize: Command = {
  kind: 'command',
  name: 'authorize',
  summary: 'authorize a licensor at this hub: only authorized licensors register a restoring service and report locks',
  details: 'Wibu 000 §2.10: the locking instance "checks whether the Request for Locking came from an authorized Licensor". Run it once per licensor, with the key its operator gave you; authorizing again renames it.',
  options: { ...DATA, ...KEY_OPTION, name: { type: 'string', value: 'NAME', description: 'the licensor\'s name, for the audit and the page' }, ...JSON_OPTION },
  async run(values) {
    const { openHubBackend, authorizeLicensor } = await license();
    const key = licensorKey(values);
    const name = requireOption(values, 'name');
    if (name.length > 128 || [...name].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) throw new UsageError(`--name: expected at most 128 characters without control characters, got ${name.length} characters${name.length > 128 ? '' : ' with a control character'}`);
    const hub = await openHubBackend({ dataDir: resolve(requireOption(values, 'data')) });
    try {
      const { changed } = await authorizeLicensor(hub, key, name, { actor: 'administrator', client: 'cli' });
      say(values)({ event: 'authorized', licensorKey: toHex(key), name, changed }, `licensor ${name} (${toHex(key).slice(0, 16)}…) ${changed ? 'authorized' : 'was authorized already'}`);
      return ExitCode.ok;
    } finally {
      await hub.close();
    }
  },
};

const revoke: Command = {
  kind: 'command',
  name: 'revoke',
  summary: 'revoke a licensor: its registration goes, and it can no longer register or report locks (exit 3 when it was not authorized)',
  options: { ...DATA, ...KEY_OPTION, ...JSON_OPTION },
  async run(values) {
    const { openHubBackend, revokeLicensor } = await license();
    const key = licensorKey(values);
    const hub = await openHubBackend({ dataDir: resolve(requireOption(values, 'data')) });
    try {
      const { revoked } = await revokeLicensor(hub, key, { actor: 'administrator', client: 'cli' });
      if (!revoked) throw new VscError('license.not-authorized', `licensor ${toHex(key).slice(0, 16)}… is not authorized at this hub`, { exitCode: ExitCode.refusedByState });
      say(values)({ event: 'revoked', licensorKey: toHex(key) }, `licensor ${toHex(key).slice(0, 16)}… revoked`);
      return ExitCode.ok;
    } finally {
      await hub.close();
    }
  },
};

/** `vsc license hub ...`; the lead lists it in the `license` group. */
export const licenseHubGroup: CommandGroup = {
  kind: 'group',
  name: 'hub',
  summary: 'the restore hub: licensor registry, restore jobs, central locking list, self-service page',
  children: [serve, authorize, revoke, unlock],
};
