// `vsc rental write|validate|usage`: what a rented program does through the rental server, from the command line
// (patent 003 [0059]-[0061], [0049], [0104]; DESIGN.md "Software rental"). Each acts as the keyfile's program: it
// writes that program's records and validates with the keyfile's card as the trust root. The keyfile's signature is
// checked with --vendor-key when given (as a rented program checks it with the key built into it), else with the
// vendor key the keyfile names, which proves it unmodified but not who issued it: the output says which.
import { readFileSync } from 'node:fs';
import { ExitCode, UsageError } from '../../errors/index.js';
import { toHex as hex } from '../../bytes/index.js';
import { optionText as text, requireOption, type Command, type OptionSpec, type OptionValues } from '../command.js';

const rental = () => import('../../rental/index.js');


const COMMON: Record<string, OptionSpec> = {
  keyfile: { type: 'string', value: 'K', description: 'the program\'s keyfile ("vsc keyfile create")' },
  'vendor-key': { type: 'string', value: 'HEX', description: 'the vendor\'s public key: the keyfile is refused (exit 3) unless it verifies (default: the key the keyfile names)' },
  socket: { type: 'string', value: 'PATH', description: 'the rental server\'s socket (default: the one "vsc rental serve" uses for this user)' },
  json: { type: 'boolean', description: 'machine-readable output' },
};

/** The keyfile and the vendor key to check it with. */
async function keyfileOf(values: OptionValues): Promise<{ bytes: Uint8Array; vendorKey: Uint8Array; vendorChecked: boolean }> {
  const { readKeyfileUnchecked } = await rental();
  const path = requireOption(values, 'keyfile');
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(readFileSync(path));
  } catch (error) {
    throw new UsageError(`--keyfile: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const keyHex = text(values, 'vendor-key');
  if (keyHex !== undefined && !/^[0-9a-f]{64}$/.test(keyHex)) throw new UsageError('--vendor-key: expected 64 lowercase hex digits');
  if (keyHex !== undefined) return { bytes, vendorKey: Uint8Array.from(Buffer.from(keyHex, 'hex')), vendorChecked: true };
  return { bytes, vendorKey: readKeyfileUnchecked(bytes).vendor.signingKey, vendorChecked: false };
}

type Decision = Awaited<ReturnType<Awaited<ReturnType<typeof rental>>['Rental']['open']>>['decision'];

function decisionJson(decision: Decision, extra: Record<string, unknown>): Record<string, unknown> {
  if (!decision.allowed) return { ...extra, allowed: false, denial: decision.denial, code: decision.code ?? null, reason: decision.reason };
  const usage = decision.usage;
  return {
    ...extra, allowed: true, reason: decision.reason,
    usage: { next: usage.next.toString(), intervals: usage.intervals.toString(), executions: usage.executions.toString(), skipped: usage.skipped.toString(), minutesByHour: usage.minutesByHour.map(String) },
    thresholds: decision.thresholds.map((evaluation) => ({ allowed: evaluation.allowed, reason: evaluation.reason })),
  };
}

/** Runs a check as the keyfile's program; exit 0 allowed, 3 refused (trail, threshold, keyfile), 1 no server. */
async function checkAs(values: OptionValues, how: 'validate' | 'usage'): Promise<number> {
  const { Rental } = await rental();
  const { bytes, vendorKey, vendorChecked } = await keyfileOf(values);
  const opened = await Rental.open({ keyfile: bytes, vendorKey, ...(text(values, 'socket') === undefined ? {} : { socket: text(values, 'socket')! }) });
  try {
    const decision = await opened.check();
    const keyfile = opened.keyfile;
    const extra = { event: how, program: keyfile?.program ?? null, card: keyfile?.card.serial ?? null, vendorKey: hex(vendorKey), vendorChecked };
    if (values['json'] === true) console.log(JSON.stringify(decisionJson(decision, extra)));
    else if (!decision.allowed) console.error(`${how === 'validate' ? 'trail refused' : 'refused'}: ${decision.reason}`);
    else {
      const usage = decision.usage;
      console.log([
        `${keyfile!.program} on card ${keyfile!.card.serial}: the trail is valid and current (checked up to counter ${usage.next - 1n})`,
        ...(how === 'usage' ? [`used: ${usage.intervals} intervals of 15 minutes, ${usage.executions} executions, ${usage.minutesByHour.reduce((a, b) => a + b, 0n)} minutes of units, ${usage.skipped} skipped counter values charged worst-case`] : []),
        ...decision.thresholds.map((evaluation) => evaluation.reason),
        ...(vendorChecked ? [] : [`note: keyfile checked with the vendor key it names (${hex(vendorKey).slice(0, 16)}…); pass --vendor-key to check who issued it`]),
      ].join('\n'));
    }
    if (decision.allowed) return ExitCode.ok;
    return decision.denial === 'server' ? ExitCode.other : ExitCode.refusedByState;
  } finally {
    await opened.close();
  }
}

const rentalValidate: Command = {
  kind: 'command',
  name: 'validate',
  summary: 'ValidateTrail as the keyfile\'s program: write a record, check the trail up to it, check the thresholds',
  details: 'Exit 0 when the trail is valid and current and every threshold allows another use; 3 when refused, naming why (hole, stale, signature, threshold ...); 1 when the rental server cannot be reached. Validation always appends its own record ([0060]).',
  options: COMMON,
  run: (values) => checkAs(values, 'validate'),
};

const rentalUsage: Command = {
  kind: 'command',
  name: 'usage',
  summary: 'validate, then show the program\'s usage and each threshold\'s state',
  options: COMMON,
  run: (values) => checkAs(values, 'usage'),
};

const rentalWrite: Command = {
  kind: 'command',
  name: 'write',
  summary: 'Write ([0059]): append one record, signed by the card, through the rental server',
  details: [
    'The text is the record\'s text as given (--text), or the program\'s usage record:',
    '  --use interval | execution | units:MINUTES   (what the program would write, [0047], [0049], [0103])',
    '  --audit NONCE                                (the vendor\'s nonce for a remote audit, [0104])',
    'Every record is checked like a program checks it: the signature against the keyfile\'s card.',
  ].join('\n'),
  options: {
    ...COMMON,
    text: { type: 'string', value: 'T', description: 'the record\'s text' },
    use: { type: 'string', value: 'USE', description: 'interval, execution or units:MINUTES' },
    audit: { type: 'string', value: 'NONCE', description: 'the vendor\'s audit nonce (32..128 lowercase hex digits)' },
  },
  async run(values) {
    const { RentalClient, formatUsageText, localTime, usageBinding, verifyKeyfile, writeThroughServer } = await rental();
    const given = ['text', 'use', 'audit'].filter((name) => text(values, name) !== undefined);
    if (given.length !== 1) throw new UsageError('expected exactly one of --text, --use, --audit');
    const { bytes, vendorKey } = await keyfileOf(values);
    const keyfile = verifyKeyfile(bytes, vendorKey);
    const binding = usageBinding(keyfile.program, keyfile.card.publicKey);
    const use = text(values, 'use');
    const audit = text(values, 'audit');
    let recordText: string;
    if (use !== undefined) {
      const units = /^units:([1-9][0-9]?)$/.exec(use);
      if (use === 'interval' || use === 'execution') recordText = formatUsageText({ ...binding, kind: use });
      else if (units !== null) recordText = formatUsageText({ ...binding, kind: 'units', minutes: Number(units[1]), at: localTime(new Date()) });
      else throw new UsageError('--use: expected interval, execution or units:MINUTES');
    } else if (audit !== undefined) {
      recordText = formatUsageText({ ...binding, kind: 'audit', nonce: audit, at: localTime(new Date()) });
    } else {
      recordText = text(values, 'text')!;
    }
    const connection = await RentalClient.connect(text(values, 'socket'));
    try {
      const record = await writeThroughServer(connection, recordText, { publicKey: keyfile.card.publicKey, serial: keyfile.card.serial, keyMode: keyfile.card.keyMode });
      const shown = { event: 'record-written', counter: record.counter.toString(), text: record.text, nonce: hex(record.nonce), signature: hex(record.signature) };
      console.log(values['json'] === true ? JSON.stringify(shown) : `record ${record.counter} written: ${record.text}`);
      return ExitCode.ok;
    } finally {
      await connection.close();
    }
  },
};

const rentalCertify: Command = {
  kind: 'command',
  name: 'certify',
  summary: 'have a validation service vouch for the program\'s trail so far, and write its validator record ([0094])',
  details: [
    'Sends the program\'s records since its last validator record (or the keyfile\'s offset) to the service, which checks them and',
    'signs the usage summary; the validator record is written at exactly the counter the service vouched up to. From then on the',
    'program validates only what follows it. The service must be one the keyfile names (vsc keyfile create --validator-key).',
  ].join('\n'),
  options: { ...COMMON, validator: { type: 'string', value: 'URL', description: 'the validation service, e.g. https://validator.example.com' } },
  async run(values) {
    const { certifyClientOf, certifyTrail, RentalClient, verifyKeyfile } = await rental();
    const url = requireOption(values, 'validator');
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new UsageError('--validator: expected an http:// or https:// URL');
    const { bytes, vendorKey } = await keyfileOf(values);
    const keyfile = verifyKeyfile(bytes, vendorKey);
    const connection = await RentalClient.connect(text(values, 'socket'));
    try {
      const { trail } = await connection.hello();
      const root = { publicKey: keyfile.card.publicKey, serial: keyfile.card.serial, keyMode: keyfile.card.keyMode };
      const certified = await certifyTrail({ keyfile, trailPath: trail, client: certifyClientOf(connection, root), validatorUrl: url });
      const shown = {
        event: 'certified', program: keyfile.program, from: certified.from.toString(), records: certified.records, counter: certified.record.counter.toString(),
        validatorKey: hex(certified.validatorKey), intervals: certified.summary.intervals.toString(), executions: certified.summary.executions.toString(),
      };
      console.log(values['json'] === true ? JSON.stringify(shown) : `${keyfile.program}: ${certified.records} records from counter ${certified.from} vouched for by ${hex(certified.validatorKey).slice(0, 16)}…; validator record written at counter ${certified.record.counter}`);
      return ExitCode.ok;
    } finally {
      connection.close();
    }
  },
};

/** The program-side commands of `vsc rental`. */
export const rentalProgramCommands: readonly Command[] = [rentalWrite, rentalValidate, rentalUsage, rentalCertify];
