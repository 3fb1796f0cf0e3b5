// `vsc license serve | licensor add | product define | order | audit`: the license issuing back end (Wibu 002 back-end
// license issuing: order in an ERP or shop -> ticket -> activation online or offline; DESIGN.md "License containers").
// serve and licensor add work on the back end's data directory; product define, order and audit are the licensor's
// back office talking to a running service with its API key (read from a 0600 file, never from the command line).
import { once } from 'node:events';
import { closeSync, fsyncSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { toHex, utf8 } from '../../bytes/index.js';
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import { createExclusiveFile, readPrivateFile } from '../../files/index.js';
import { parseHostPort } from '../../host-port/index.js';
import { JSON_OPTION, optionList, optionText as text, requireOption, say, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';

const license = () => import('../../license/index.js');

const DATA: Record<string, OptionSpec> = {
  data: { type: 'string', value: 'DIR', description: 'the issuing back end\'s data directory (made 0700): its sealing key, and the SQLite database by default' },
  db: { type: 'string', value: 'URL', description: 'database: a SQLite file or postgres://USER@HOST/DB, never with a password (use PGPASSWORD or ~/.pgpass) (default DIR/issuing.db)' },
};
export const SERVICE: Record<string, OptionSpec> = {
  server: { type: 'string', value: 'URL', description: 'the issuing service, as "vsc license serve" printed it (e.g. http://127.0.0.1:8710)' },
  'api-key-file': { type: 'string', value: 'FILE', description: 'the licensor\'s API key ("vsc license licensor add --api-key-out"), a 0600 file' },
};

/** --db, refused when it carries a PostgreSQL password (any local user can read a command line). */
function databaseUrl(values: OptionValues): string | undefined {
  const url = text(values, 'db');
  if (url === undefined || !/^postgres(ql)?:\/\//i.test(url)) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('--db: expected postgres://USER@HOST:PORT/DATABASE');
  }
  if (parsed.password !== '' || parsed.searchParams.has('password')) {
    throw new VscError('usage.db-password', '--db: the URL holds a password, which any local user can read in the command line: remove it and set PGPASSWORD or a ~/.pgpass entry', { exitCode: ExitCode.usage });
  }
  return url;
}

function whole(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const value = text(values, name);
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name}: expected a whole number in ${min}..${max}, got ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
}

function requireWhole(values: OptionValues, name: string, min: number, max: number): number {
  requireOption(values, name);
  return whole(values, name, min, max)!;
}

export async function licensorClient(values: OptionValues) {
  const { IssuingClient } = await license();
  const path = requireOption(values, 'api-key-file');
  let key: string;
  try {
    key = new TextDecoder().decode(readPrivateFile(path)).split('\n')[0]!.trim();
  } catch (error) {
    if (error instanceof VscError) throw error;
    throw new UsageError(`--api-key-file: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return new IssuingClient({ server: requireOption(values, 'server'), apiKey: key });
}

const serve: Command = {
  kind: 'command',
  name: 'serve',
  summary: 'run the license issuing service over HTTP: orders -> tickets -> activations, receipts, deactivations, certified time',
  details: [
    'Licensor routes (Authorization: Bearer API key): POST /v1/products, POST /v1/orders, GET /v1/audit, PUT|GET /v1/restore-policy,',
    'GET /v1/locks, GET /v1/alerts, POST /v1/alerts/:id/approve. Customer routes (the ticket or what the card signed is the credential):',
    'GET /v1/tickets/:ticket, POST /v1/activations, POST /v1/receipts, POST /v1/deactivations, POST /v1/time, POST /v1/restores,',
    'POST /v1/transfers, POST /v1/transfers/:id/proof, POST /v1/reactivations, POST /v1/checkpoints. The service is each licensor\'s',
    'restoring service (Wibu 000 §2.2); with --hub it registers them at the hub, reports the containers it locks and downloads the',
    'central locking list (--hub-key checks its sequences).',
    'GET /openapi.json describes them all. Bodies are JSON of at most 64 KiB (a restore or transfer 160 KiB); one client address gets\n--per-client requests a minute.',
    'Prints the listening URL; logs one line per request on stderr (never a body, key or ticket). It listens without TLS: put it',
    'behind a TLS proxy on an untrusted network. SIGTERM or Ctrl-C stops it.',
  ].join('\n'),
  options: {
    ...DATA,
    listen: { type: 'string', value: 'HOST:PORT', description: 'where to listen (port 0: any free port)', default: '127.0.0.1:8710' },
    'per-client': { type: 'string', value: 'N', description: 'requests one client address may make per minute (more: HTTP 429)', default: '600' },
    'trust-proxy': { type: 'string', value: 'ADDRESSES', description: 'IP addresses or CIDRs (comma-separated) of TLS proxies in front: X-Forwarded-For from them names the client' },
    hub: { type: 'string', value: 'URL', description: 'the restore hub (vsc license hub serve): each licensor registers this service there, locks are reported to it and its central locking list is downloaded' },
    'hub-key': { type: 'string', value: 'HEX', description: 'the hub\'s central locking authority key (64 hex): its lock sequences are checked against it, and restored containers get it as their lock authority' },
    'public-url': { type: 'string', value: 'URL', description: 'where the hub reaches this service (each licensor\'s restoreUrl); with --hub' },
    'hub-sync': { type: 'string', value: 'SECONDS', description: 'how often to register and download the central locking list', default: '300' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { openIssuingBackend, startIssuingService, HubLink, parseHubKey } = await license();
    const hubUrl = text(values, 'hub');
    const hubKeyText = text(values, 'hub-key');
    const publicUrl = text(values, 'public-url');
    if ((hubUrl === undefined) !== (hubKeyText === undefined) || (hubUrl === undefined) !== (publicUrl === undefined)) throw new UsageError('--hub, --hub-key and --public-url: expected all three or none');
    const hubSync = whole(values, 'hub-sync', 1, 86_400) ?? 300;
    for (const [name, url] of [['hub', hubUrl], ['public-url', publicUrl]] as const) {
      if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) throw new UsageError(`--${name}: expected an http or https URL, got ${JSON.stringify(url.slice(0, 60))}`);
    }
    if (hubKeyText !== undefined && !/^[0-9a-f]{64}$/.test(hubKeyText)) throw new UsageError('--hub-key: expected the hub\'s authority key as 64 lowercase hex digits');
    const hubKey = hubKeyText === undefined ? undefined : parseHubKey(hubKeyText);
    const dataDir = resolve(requireOption(values, 'data'));
    const listen = parseHostPort(text(values, 'listen') ?? '127.0.0.1:8710', { anyPort: true, what: '--listen', example: '127.0.0.1:8710' });
    const perClientPerMinute = whole(values, 'per-client', 1, 1_000_000) ?? 600;
    const db = databaseUrl(values);
    const trustProxy = text(values, 'trust-proxy');
    const backend = await openIssuingBackend({ dataDir, ...(db === undefined ? {} : { databaseUrl: db }) });
    const json = values['json'] === true;
    const hub = hubKey === undefined ? undefined : new HubLink(backend, {
      hubUrl: hubUrl!, authorityKey: hubKey, publicUrl: publicUrl!, syncSeconds: hubSync,
      onEvent: (event) => console.error(json ? JSON.stringify({ event: 'hub', ...event }) : `hub ${event.step} ${event.ok ? 'ok' : 'failed'}: ${event.detail}`),
    });
    let service;
    try {
      service = await startIssuingService({
        backend, host: listen.host, port: listen.port, perClientPerMinute, ...(trustProxy === undefined ? {} : { trustProxy }), ...(hub === undefined ? {} : { hub }),
        onRequest: (event) => console.error(json ? JSON.stringify({ event: 'request', ...event }) : `${event.method} ${event.route} ${event.status}${event.reason === undefined ? '' : ` ${event.reason}`} from ${event.client}`),
      });
    } catch (error) {
      await backend.close();
      throw error;
    }
    const stop = new AbortController();
    const signalled = Promise.race([once(process, 'SIGTERM', stop), once(process, 'SIGINT', stop)]).catch(() => undefined);
    say(values)({ event: 'serving', url: service.url, pid: process.pid }, `license issuing service listening on ${service.url}; SIGTERM or Ctrl-C stops it`);
    await hub?.start();
    await signalled;
    stop.abort();
    await hub?.stop();
    await service.close();
    await backend.close();
    say(values)({ event: 'stopped' }, 'license issuing service stopped');
    return ExitCode.ok;
  },
};

const licensorAdd: Command = {
  kind: 'command',
  name: 'add',
  summary: 'add a licensor: its firm code, a fresh Ed25519 signing key (sealed in the data directory) and an API key',
  details: 'The API key is written to --api-key-out (a new file, 0600) and never printed. Prints the licensor\'s public key: programs and containers trust updates signed by it.',
  options: {
    ...DATA,
    name: { type: 'string', value: 'NAME', description: 'the licensor\'s name (the firm item\'s text on containers), 1..128 UTF-8 bytes' },
    'firm-code': { type: 'string', value: 'CODE', description: 'the licensor\'s firm code, 0..4294967295, unique in this back end' },
    'api-key-out': { type: 'string', value: 'FILE', description: 'where to write the API key (must not exist yet)' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { openIssuingBackend, addLicensor } = await license();
    const dataDir = resolve(requireOption(values, 'data'));
    const name = requireOption(values, 'name');
    const firmCode = requireWhole(values, 'firm-code', 0, 0xffff_ffff);
    const out = resolve(requireOption(values, 'api-key-out'));
    const db = databaseUrl(values);
    // The key file is claimed first, so that a licensor is never added whose key has nowhere to go.
    let fd: number;
    try {
      fd = createExclusiveFile(out, 0o600);
    } catch (error) {
      throw new UsageError(`--api-key-out: cannot create ${out}: ${(error as NodeJS.ErrnoException).code ?? 'error'} (it must not exist yet)`);
    }
    let written = false;
    try {
      const backend = await openIssuingBackend({ dataDir, ...(db === undefined ? {} : { databaseUrl: db }) });
      try {
        const made = await addLicensor(backend, { name, firmCode });
        const content = utf8(`${made.apiKey}\n`);
        writeSync(fd, content);
        fsyncSync(fd);
        content.fill(0);
        written = true;
        say(values)(
          { event: 'licensor-added', name: made.licensor.name, firmCode: made.licensor.firmCode, publicKey: toHex(made.licensor.publicKey), apiKeyFile: out },
          [`licensor "${made.licensor.name}" (firm code ${made.licensor.firmCode}) added; its API key is in ${out}`, `licensor public key: ${toHex(made.licensor.publicKey)}`].join('\n'),
        );
        return ExitCode.ok;
      } finally {
        await backend.close();
      }
    } finally {
      closeSync(fd);
      if (!written) unlinkSync(out);
    }
  },
};

const RULES: ReadonlyArray<[flag: string, key: string, description: string]> = [
  ['duration-seconds', 'durationSeconds', 'expiration = activation time + this (subscription); a renewal extends by it; replaces a model\'s absolute expiration'],
  ['activation-delay-seconds', 'activationDelaySeconds', 'activationTime = time of activation + this; replaces a model\'s absolute activation time'],
  ['max-activations', 'maxActivations', 'activations per ticket (volume license; default 1)'],
  ['max-deactivations', 'maxDeactivations', 'deactivations of one ticket per --cycle-period-seconds (activation cycling)'],
  ['cycle-period-seconds', 'cyclePeriodSeconds', 'the period --max-deactivations counts over'],
];

/** The template from --template-file or --model/--option, with the rule flags over it. */
async function templateOf(values: OptionValues, code: number, productText: string): Promise<Record<string, unknown>> {
  const file = text(values, 'template-file');
  const model = text(values, 'model');
  if ((file === undefined) === (model === undefined)) throw new UsageError('expected --template-file FILE or --model NAME (one of them)');
  if (optionList(values, 'option').length > 0 && model === undefined) throw new UsageError('--option needs --model');
  let template: Record<string, unknown>;
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`--template-file: cannot read ${file} as JSON: ${(error as NodeJS.ErrnoException).code ?? 'not JSON'}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--template-file: expected a JSON object');
    template = parsed as Record<string, unknown>;
  } else {
    const { buildModelSpec, productSpecJson } = await license();
    const options: Record<string, string> = { productCode: String(code), text: productText };
    for (const pair of optionList(values, 'option')) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new UsageError(`--option: expected key=value, got ${JSON.stringify(pair.slice(0, 60))}`);
      options[pair.slice(0, at)] = pair.slice(at + 1);
    }
    template = productSpecJson(buildModelSpec(model!, options));
  }
  for (const [flag, key] of RULES) {
    const value = whole(values, flag, 0, 2 ** 32 - 1);
    if (value === undefined) continue;
    template[key] = value;
    if (key === 'durationSeconds' && model !== undefined) delete template['expiration'];
    if (key === 'activationDelaySeconds' && model !== undefined) delete template['activationTime'];
  }
  return template;
}

const productDefine: Command = {
  kind: 'command',
  name: 'define',
  summary: 'define or replace a product: its code, text and template (a ProductSpec JSON with relative times, or a license model)',
  details: 'The template is a file (ProductSpec JSON of license-update.ts; durationSeconds, activationDelaySeconds, maxActivations, maxDeactivations, cyclePeriodSeconds) or a model of Wibu 002 Table 1 ("--model rental-subscription --option periodDays=30 --option start=...").',
  options: {
    ...SERVICE,
    code: { type: 'string', value: 'N', description: 'the product code, 0..4294967295' },
    text: { type: 'string', value: 'T', description: 'the product text' },
    'template-file': { type: 'string', value: 'FILE', description: 'the template JSON' },
    model: { type: 'string', value: 'NAME', description: 'a license model of the catalogue instead of a file' },
    option: { type: 'string', value: 'KEY=VALUE', multiple: true, description: 'an option of the model (repeatable)' },
    ...Object.fromEntries(RULES.map(([flag, , description]) => [flag, { type: 'string', value: 'N', description } satisfies OptionSpec])),
    ...JSON_OPTION,
  },
  async run(values) {
    const code = requireWhole(values, 'code', 0, 0xffff_ffff);
    const productText = requireOption(values, 'text');
    const template = await templateOf(values, code, productText);
    const product = await (await licensorClient(values)).defineProduct({ code, text: productText, template });
    say(values)({ event: 'product-defined', ...product }, `product ${product.code} "${product.text}" defined: ${JSON.stringify(product.template)}`);
    return ExitCode.ok;
  },
};

const order: Command = {
  kind: 'command',
  name: 'order',
  summary: 'place an order (as an ERP or shop would): prints its ticket codes, one a line',
  details: 'The same --order-id with the same items answers the same tickets again; with other items it is refused. --renewal-of names the ticket a subscription period or an instalment renews.',
  options: {
    ...SERVICE,
    'order-id': { type: 'string', value: 'ID', description: 'your order id (printable ASCII, 1..128 characters)' },
    product: { type: 'string', value: 'CODE', description: 'the product code' },
    quantity: { type: 'string', value: 'N', description: 'seats (activations) bought', default: '1' },
    'renewal-of': { type: 'string', value: 'TICKET', description: 'the ticket this order renews' },
    ...JSON_OPTION,
  },
  async run(values) {
    const productCode = requireWhole(values, 'product', 0, 0xffff_ffff);
    const quantity = whole(values, 'quantity', 1, 10_000) ?? 1;
    const renewalOf = text(values, 'renewal-of');
    const answer = await (await licensorClient(values)).placeOrder({
      orderId: requireOption(values, 'order-id'), items: [{ productCode, quantity, ...(renewalOf === undefined ? {} : { renewalOf }) }],
    });
    say(values)({ event: 'order', ...answer }, answer.tickets.join('\n'));
    return ExitCode.ok;
  },
};

const audit: Command = {
  kind: 'command',
  name: 'audit',
  summary: 'the licensor\'s own audit records (every action: who, what, when, outcome)',
  options: {
    ...SERVICE,
    after: { type: 'string', value: 'ID', description: 'only records after this id' },
    limit: { type: 'string', value: 'N', description: 'at most this many records (1..1000)', default: '100' },
    ...JSON_OPTION,
  },
  async run(values) {
    const after = whole(values, 'after', 0, Number.MAX_SAFE_INTEGER);
    const limit = whole(values, 'limit', 1, 1000);
    const records = await (await licensorClient(values)).audit({ ...(after === undefined ? {} : { after }), ...(limit === undefined ? {} : { limit }) });
    say(values)({ event: 'audit', records }, records.map((record) => [
      record.id, new Date(record.at * 1000).toISOString(), record.actor, record.client ?? '-', record.action, record.subject, record.outcome, record.detail ?? '',
    ].join('\t')).join('\n'));
    return ExitCode.ok;
  },
};

/** The issuing back end's commands; the `license` group lists them. */
export const licenseIssuingCommands: readonly (Command | CommandGroup)[] = [
  serve,
  { kind: 'group', name: 'licensor', summary: 'the licensors of an issuing back end', children: [licensorAdd] },
  { kind: 'group', name: 'product', summary: 'a licensor\'s products at an issuing service', children: [productDefine] },
  order,
  audit,
];
