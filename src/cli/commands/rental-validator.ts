// `vsc validator init|serve` (patent 003 [0094]: the trusted audit trail validation service), `vsc vendor audit`
// ([0104]: the vendor validates a customer's trail remotely and checks its nonce) and `vsc keyfile reissue` ([0062]:
// a new keyfile past a hole). The audit and reissue commands join the vendor and keyfile groups of rental-vendor.ts.
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { toHex as hex } from '../../bytes/index.js';
import { optionText as text, say, JSON_OPTION, optionList as many, requireOption, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';

const rental = () => import('../../rental/index.js');
const client = () => import('../../vsc-client/index.js');

const KEY = /^[0-9a-f]{64}$/;
const COUNTER = /^(0|[1-9][0-9]{0,38})$/;

/** Every value of a repeatable key option, as 32 bytes (exit 2 naming the option otherwise). */
function keys(values: OptionValues, name: string): Uint8Array[] {
  return many(values, name).map((value) => {
    if (!KEY.test(value)) throw new UsageError(`--${name}: expected 64 lowercase hex digits (an Ed25519 public key), got ${JSON.stringify(value.slice(0, 80))}`);
    return Uint8Array.from(Buffer.from(value, 'hex'));
  });
}

function readInput(path: string, option: string): Uint8Array {
  try {
    return Uint8Array.from(readFileSync(path));
  } catch (error) {
    throw new UsageError(`--${option}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

const passwordOption = (whose: string): Record<string, OptionSpec> => ({
  'password-file': { type: 'string', value: 'FILE', description: `read the ${whose} password from the first line of FILE instead of asking` },
});

// ---- vsc validator ----

const validatorInit: Command = {
  kind: 'command',
  name: 'init',
  summary: 'make a validation service\'s signing key ([0094]): vendors name its public key in keyfiles',
  details: 'Prints the service\'s public key last: a vendor puts it into keyfiles with "vsc keyfile create --validator-key". The private key is sealed under the service\'s password.',
  options: {
    data: { type: 'string', value: 'VDIR', description: 'the service\'s directory (made 0700)' },
    name: { type: 'string', value: 'NAME', description: 'the service\'s name (default: the directory\'s name)' },
    ...passwordOption('new validator'),
    ...JSON_OPTION,
  },
  async run(values) {
    const { initValidator } = await rental();
    const { readPassword } = await client();
    const dir = resolve(requireOption(values, 'data'));
    const name = text(values, 'name') ?? dir.split('/').pop() ?? 'validator';
    const made = await initValidator(dir, name, await readPassword(text(values, 'password-file'), 'New validator password: '));
    say(values)({ event: 'validator-created', name: made.name, validatorKey: hex(made.signingKey) }, [
      `validation service "${made.name}" created in ${dir}`,
      `validator public key (vendors name it with --validator-key): ${hex(made.signingKey)}`,
    ].join('\n'));
    return ExitCode.ok;
  },
};

function listenOption(values: OptionValues): { host: string; port: number } {
  const listen = requireOption(values, 'listen');
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new UsageError(`--listen: expected HOST:PORT (port 0..65535), got ${JSON.stringify(listen.slice(0, 80))}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function positiveNumber(values: OptionValues, name: string): number | undefined {
  const value = text(values, name);
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new UsageError(`--${name}: expected a whole number, got ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
}

const validatorServe: Command = {
  kind: 'command',
  name: 'serve',
  summary: 'run the validation service over HTTP: it checks trails offline and attests validator records ([0094])',
  details: [
    'POST /v1/validate {keyfile (base64), counter, records}: checks the keyfile against the trusted vendors (and that it names this',
    'service), the records from the program\'s start up to counter-1 (signatures against the keyfile\'s card, consecutive counters,',
    'bridges), sums the program\'s usage and answers the attest the program writes into its validator record at that counter.',
    'GET /v1/validator names the service and its key. It listens without TLS: put it behind a TLS proxy on an untrusted network.',
    'SIGTERM or Ctrl-C stops it.',
  ].join('\n'),
  options: {
    data: { type: 'string', value: 'VDIR', description: 'the service\'s directory ("vsc validator init")' },
    listen: { type: 'string', value: 'HOST:PORT', description: 'where to listen, e.g. 127.0.0.1:8700 (port 0: any free port)' },
    'trust-vendor': { type: 'string', value: 'HEX', multiple: true, description: 'a vendor\'s public signing key whose keyfiles the service validates (repeatable, at least one)' },
    'body-limit': { type: 'string', value: 'BYTES', description: 'largest request body', default: '33554432' },
    'max-records': { type: 'string', value: 'N', description: 'most records in one request', default: '100000' },
    'per-client': { type: 'string', value: 'N', description: 'validations one client address may ask for per minute (more: HTTP 429)', default: '60' },
    'max-concurrent': { type: 'string', value: 'N', description: 'validations running at once from all clients (more: HTTP 503)', default: '4' },
    ...passwordOption('validator'),
    ...JSON_OPTION,
  },
  async run(values) {
    const { openValidator, startValidationService } = await rental();
    const { readPassword } = await client();
    const dir = resolve(requireOption(values, 'data'));
    const { host, port } = listenOption(values);
    const trustedVendors = keys(values, 'trust-vendor');
    if (trustedVendors.length === 0) throw new UsageError('--trust-vendor is required: the service validates only the keyfiles of vendors it names');
    const bodyLimit = positiveNumber(values, 'body-limit');
    const maxRecords = positiveNumber(values, 'max-records');
    const perClientPerMinute = positiveNumber(values, 'per-client');
    const maxConcurrent = positiveNumber(values, 'max-concurrent');
    const validator = await openValidator(dir, await readPassword(text(values, 'password-file'), 'Validator password: '));
    const json = values['json'] === true;
    const service = await startValidationService({
      validator, trustedVendors, host, port, ...(bodyLimit === undefined ? {} : { bodyLimit }), ...(maxRecords === undefined ? {} : { maxRecords }),
      ...(perClientPerMinute === undefined ? {} : { perClientPerMinute }), ...(maxConcurrent === undefined ? {} : { maxConcurrent }),
      onValidation: (event) => console.error(json ? JSON.stringify({ event: 'validation', ...event }) : `validation ${event.outcome} (HTTP ${event.status}${event.error === undefined ? '' : `, ${event.error}`})${event.program === undefined ? '' : ` for ${event.program} keyfile ${event.keyfile} at counter ${event.counter}, ${event.records} records`}`),
    });
    const stop = new AbortController();
    const signalled = Promise.race([once(process, 'SIGTERM', stop), once(process, 'SIGINT', stop)]).catch(() => undefined);
    say(values)(
      { event: 'serving', url: service.url, validatorKey: hex(validator.signingKey), trustedVendors: trustedVendors.map(hex), pid: process.pid },
      `validation service "${validator.name}" (key ${hex(validator.signingKey)}) listening on ${service.url} for ${trustedVendors.length} vendor${trustedVendors.length === 1 ? '' : 's'}; SIGTERM or Ctrl-C stops it`,
    );
    await signalled;
    stop.abort();
    await service.close();
    say(values)({ event: 'stopped' }, 'validation service stopped');
    return ExitCode.ok;
  },
};

export const validatorGroup: CommandGroup = {
  kind: 'group', name: 'validator', summary: 'a trusted audit trail validation service whose validator records programs trust (patent 003 [0094])', children: [validatorInit, validatorServe],
};

// ---- vsc vendor audit ----

/** The keyfile, checked against whichever of the vendors given issued it. */
async function vendorKeyfile(values: OptionValues, bytes: Uint8Array) {
  const { readKeyfileUnchecked, verifyKeyfile, readVendorPublic, KeyfileError } = await rental();
  const vendorKeys = [...many(values, 'vendor').map((dir) => readVendorPublic(resolve(dir)).signingKey), ...keys(values, 'vendor-key')];
  if (vendorKeys.length === 0) throw new UsageError('--vendor VDIR or --vendor-key HEX is required: the keyfile is believed only under a vendor key you name');
  const claimed = readKeyfileUnchecked(bytes);
  const issuer = vendorKeys.find((key) => hex(key) === hex(claimed.vendor.signingKey));
  if (issuer === undefined) throw new KeyfileError('foreign', `the keyfile was issued by vendor key ${hex(claimed.vendor.signingKey)}, none of the ${vendorKeys.length} given`);
  return verifyKeyfile(bytes, issuer);
}

const vendorAudit: Command = {
  kind: 'command',
  name: 'audit',
  summary: 'validate a customer\'s trail remotely and check the audit record of your nonce ([0104])',
  details: [
    'The vendor asked the customer to write the nonce with the program\'s audit record ("PROGRAM audit NONCE at TIME public key ...")',
    'and to send the trail. The trail is checked offline from the keyfile\'s offset, or from the last validator record a service the',
    'keyfile names attested (--full: always from the offset): every record card-signed, consecutive, the nonce\'s record among them.',
    'Prints the program\'s usage. Exit 0 when all holds, 3 naming what does not.',
  ].join('\n'),
  options: {
    keyfile: { type: 'string', value: 'K', description: 'the customer\'s keyfile' },
    trail: { type: 'string', value: 'FILE', description: 'the customer\'s trail file (trail.jsonl)' },
    nonce: { type: 'string', value: 'HEX', description: 'the nonce you asked the customer to write (16..64 bytes, lowercase hex)' },
    vendor: { type: 'string', value: 'VDIR', multiple: true, description: 'a vendor directory whose key may have issued the keyfile (repeatable)' },
    'vendor-key': { type: 'string', value: 'HEX', multiple: true, description: 'a vendor public key that may have issued the keyfile (repeatable)' },
    full: { type: 'boolean', description: 'check from the keyfile\'s offset, not from the last attested validator record' },
    ...JSON_OPTION,
  },
  async run(values) {
    const { findValidationStart, lastTrailRecord, trailBatchesFrom, validateOffline, evaluateSummary, formatUsageSummary, usageBinding, RentalError } = await rental();
    const keyfile = await vendorKeyfile(values, readInput(requireOption(values, 'keyfile'), 'keyfile'));
    const trail = resolve(requireOption(values, 'trail'));
    const nonce = requireOption(values, 'nonce');
    if (!/^(?:[0-9a-f]{2}){16,64}$/.test(nonce)) throw new UsageError('--nonce: expected 16..64 bytes of lowercase hex');
    try {
      if (!statSync(trail).isFile()) throw new UsageError(`--trail: ${trail} is not a file`);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`--trail: cannot read ${trail}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const binding = usageBinding(keyfile.program, keyfile.card.publicKey);
    const start = values['full'] === true ? undefined : await findValidationStart(keyfile, trail);
    const last = await lastTrailRecord(trail);
    if (last === undefined) throw new RentalError('lost', `the trail ${trail} holds no record`);
    const prefix = `${binding.program} audit ${nonce} at `;
    let audit: { counter: bigint; text: string } | undefined;
    const checked = await validateOffline({
      keyfile, last, records: start === undefined ? trailBatchesFrom(trail, 0) : start.records(),
      onRecord: (record) => {
        if (audit === undefined && record.text.startsWith(prefix) && record.text.endsWith(` public key ${binding.keyDigest}`)) audit = { counter: record.counter, text: record.text };
      },
    });
    if (audit === undefined) {
      const hint = checked.from === 'validator-record' ? ' (if it precedes that validator record, run with --full)' : '';
      throw new VscError('audit.nonce', `trail refused for the audit: no card-signed audit record of ${keyfile.program} with nonce ${nonce} among counters ${checked.start}..${last.counter}${hint}`, { exitCode: ExitCode.refusedByState });
    }
    const thresholds = keyfile.thresholds.map((spec) => evaluateSummary(spec, checked.summary, { auditSince: new Date(keyfile.issuedAt) }));
    const summary = checked.summary;
    const shown = {
      valid: true, keyfile: hex(keyfile.id), program: keyfile.program, card: keyfile.card.serial, from: checked.from, start: checked.start.toString(),
      through: last.counter.toString(), records: checked.records, audit: { nonce, counter: audit.counter.toString(), text: audit.text },
      usage: { summary: formatUsageSummary(summary), intervals: summary.intervals.toString(), executions: summary.executions.toString(), skipped: summary.skipped.toString(), minutesByHour: summary.minutesByHour.map(String) },
      thresholds: thresholds.map((evaluation) => ({ allowed: evaluation.allowed, reason: evaluation.reason })),
    };
    say(values)(shown, [
      `trail valid for ${keyfile.program} on card ${keyfile.card.serial}: ${checked.records} records, counters ${checked.start}..${last.counter} (from ${checked.from === 'offset' ? 'the keyfile\'s offset' : 'an attested validator record'})`,
      `audit record of nonce ${nonce} at counter ${audit.counter}, card-signed`,
      `usage: ${shown.usage.summary}`,
      ...shown.thresholds.map((evaluation) => `threshold: ${evaluation.reason}`),
    ].join('\n'));
    return ExitCode.ok;
  },
};

// ---- vsc keyfile reissue ----

const keyfileReissue: Command = {
  kind: 'command',
  name: 'reissue',
  summary: 'issue a new keyfile for the same program and card with the trail starting at a new offset ([0062])',
  details: 'After a hole the customer\'s trail cannot pass (a disk error lost records), the vendor issues a keyfile whose trail starts past it: same program, card, kinds, rights, thresholds, validators and customer, a new id. Refuses a keyfile this vendor did not sign and an offset below the old one.',
  options: {
    vendor: { type: 'string', value: 'VDIR', description: 'the vendor\'s directory' },
    keyfile: { type: 'string', value: 'OLD', description: 'the keyfile to replace' },
    offset: { type: 'string', value: 'N', description: 'the counter value the new keyfile\'s trail starts at (at least the old offset)' },
    out: { type: 'string', value: 'NEW', description: 'where to write the new keyfile' },
    ...passwordOption('vendor'),
    ...JSON_OPTION,
  },
  async run(values) {
    const { openVendor, closeVendor, reissueKeyfile } = await rental();
    const { readPassword } = await client();
    const vendorDir = resolve(requireOption(values, 'vendor'));
    const old = readInput(requireOption(values, 'keyfile'), 'keyfile');
    const offsetText = requireOption(values, 'offset');
    if (!COUNTER.test(offsetText) || BigInt(offsetText) >= 1n << 128n) throw new UsageError('--offset: expected a whole number below 2^128');
    const out = requireOption(values, 'out');
    const vendor = await openVendor(vendorDir, await readPassword(text(values, 'password-file'), 'Vendor password: '));
    try {
      const { bytes, old: replaced } = reissueKeyfile(vendor, old, BigInt(offsetText));
      writeFileAtomic(out, bytes, 0o644);
      say(values)(
        { event: 'keyfile-reissued', out, program: replaced.program, serial: replaced.card.serial, replaces: hex(replaced.id), oldOffset: replaced.offset.toString(), offset: offsetText, bytes: bytes.length },
        `keyfile for ${replaced.program} on card ${replaced.card.serial} reissued to ${out}: trail from counter ${offsetText} (was ${replaced.offset}); replaces keyfile ${hex(replaced.id)}`,
      );
      return ExitCode.ok;
    } finally {
      closeVendor(vendor);
    }
  },
};

/** Children of `vsc vendor` and `vsc keyfile` defined here. */
export const vendorValidatorCommands: readonly Command[] = [vendorAudit];
export const keyfileValidatorCommands: readonly Command[] = [keyfileReissue];
