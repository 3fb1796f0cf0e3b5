// `vsc license list|use|report|apply|bind`: the customer's side of license containers (DESIGN.md "License containers";
// Wibu 002: activation online or through files), through the machine's license agent (the rental server's license
// ops). Activation against an issuing service is in license-activation.ts.
import { readFileSync } from 'node:fs';
import { ExitCode, UsageError } from '../../errors/index.js';
import { fromHex, toHex } from '../../bytes/index.js';
import { JSON_OPTION, optionText, requireOption, say, type Command, type OptionSpec, type OptionValues } from '../command.js';

const license = () => import('../../license/index.js');

export const SOCKET_OPTION: Record<string, OptionSpec> = {
  socket: { type: 'string', value: 'PATH', description: 'the license agent\'s socket: the rental server\'s (default: the one "vsc rental serve" uses for this user)' },
};

/** A 32-byte key given as 64 lowercase hex digits. */
export function keyOption(values: OptionValues, name: string): Uint8Array {
  const value = requireOption(values, name);
  if (!/^[0-9a-f]{64}$/.test(value)) throw new UsageError(`--${name}: expected 64 lowercase hex digits`);
  return fromHex(value);
}

/** A whole number option within bounds. */
export function wholeOption(values: OptionValues, name: string, fallback: number | undefined, max = 0xffff_ffff): number {
  const value = optionText(values, name);
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  if (!/^(0|[1-9][0-9]*)$/.test(value) || Number(value) > max) throw new UsageError(`--${name}: expected a whole number 0..${max}`);
  return Number(value);
}

export function readTextFile(values: OptionValues, name: string): string {
  const path = requireOption(values, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--${name}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The ticket code in --ticket-file (a ticket is a credential: never on the command line). */
export function ticketOf(values: OptionValues): string {
  const ticket = readTextFile(values, 'ticket-file').split('\n')[0]!.trim();
  if (ticket.length === 0) throw new UsageError('--ticket-file: the file holds no ticket');
  return ticket;
}

function time(seconds: number | undefined): string | null {
  return seconds === undefined ? null : new Date(seconds * 1000).toISOString();
}

const listCommand: Command = {
  kind: 'command',
  name: 'list',
  summary: 'show the license container on this machine\'s card: firm items, product items, units left, validity',
  options: { ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const container = await link.readContainer();
      const firms = container.firms.map((firm) => ({
        firmCode: firm.firmCode, text: firm.text, licensorKey: toHex(firm.licensorKey), updateCounter: firm.updateCounter, certifiedTime: time(firm.certifiedTime),
        products: firm.products.map((product) => ({
          productCode: product.productCode, text: product.text, featureMap: product.featureMap, payment: product.payment,
          unitLimit: product.unitLimit ?? null, unitsUsed: product.unitsUsed,
          unitsLeft: product.unitLimit === undefined ? 'unlimited' : Math.max(0, product.unitLimit - product.unitsUsed),
          expiration: time(product.expiration), activationTime: time(product.activationTime), usagePeriodSeconds: product.usagePeriodSeconds ?? null,
          firstUse: time(product.firstUse), licenseQuantity: product.licenseQuantity,
        })),
      }));
      const lines = [`card ${link.card.serial}: ${firms.length} firm item(s); container clock ${time(container.clock) ?? 'never set'}`];
      for (const firm of firms) {
        lines.push(`  firm ${firm.firmCode} "${firm.text}" (licensor ${firm.licensorKey.slice(0, 16)}…, ${firm.updateCounter} updates)`);
        for (const p of firm.products) {
          lines.push(`    product ${p.productCode} "${p.text}": units left ${p.unitsLeft}${p.expiration === null ? '' : `, expires ${p.expiration}`}${p.licenseQuantity > 1 ? `, ${p.licenseQuantity} seats` : ''}`);
        }
      }
      say(values)({ event: 'container', serial: link.card.serial, clock: time(container.clock), firms }, lines.join('\n'));
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const useCommand: Command = {
  kind: 'command',
  name: 'use',
  summary: 'use a product as a program would: the card decides, counts the units and signs a record into the trail',
  details: 'Exit 0 allowed, 3 refused (expired, exhausted, not-yet-active, country, feature, clock-set-back ...), naming why.',
  options: {
    ...SOCKET_OPTION, ...JSON_OPTION,
    'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor\'s public key (the program carries it)' },
    product: { type: 'string', value: 'CODE', description: 'the product code' },
    features: { type: 'string', value: 'BITS', description: 'the feature bits needed (decimal)', default: '0' },
    units: { type: 'string', value: 'N', description: 'units to count (0: a counted check)', default: '1' },
    country: { type: 'string', value: 'CC', description: 'the host\'s country (ISO 3166-1 alpha-2)' },
    user: { type: 'string', value: 'NAME', description: 'the user name (named-user licenses)' },
    version: { type: 'string', value: 'N', description: 'the program\'s version (upgrade and downgrade rights)' },
  },
  async run(values) {
    const { License } = await license();
    const country = optionText(values, 'country');
    if (country !== undefined && !/^[A-Z]{2}$/.test(country)) throw new UsageError('--country: expected an ISO 3166-1 alpha-2 code, upper case');
    const user = optionText(values, 'user');
    const version = optionText(values, 'version') === undefined ? undefined : wholeOption(values, 'version', undefined);
    const opened = await License.open({
      licensorKey: keyOption(values, 'licensor-key'), productCode: wholeOption(values, 'product', undefined),
      ...(optionText(values, 'socket') === undefined ? {} : { socket: optionText(values, 'socket')! }),
      context: { timeZoneOffsetMinutes: -new Date().getTimezoneOffset(), ...(country === undefined ? {} : { country }), ...(user === undefined ? {} : { user }), ...(version === undefined ? {} : { version }) },
    });
    try {
      const decision = await opened.use(wholeOption(values, 'features', 0), wholeOption(values, 'units', 1, Number.MAX_SAFE_INTEGER));
      if (decision.allowed) {
        say(values)({ event: 'use', allowed: true, remaining: decision.remaining, counter: decision.record.counter.toString() }, `allowed: ${decision.remaining === 'unlimited' ? 'unlimited units' : `${decision.remaining} units left`} (record at counter ${decision.record.counter})`);
        return ExitCode.ok;
      }
      if (values['json'] === true) console.log(JSON.stringify({ event: 'use', allowed: false, reason: decision.reason, message: decision.message }));
      else console.error(`refused (${decision.reason}): ${decision.message}`);
      return decision.reason === 'input' ? ExitCode.usage : decision.reason === 'card' ? ExitCode.other : ExitCode.refusedByState;
    } finally {
      await opened.close();
    }
  },
};

const reportCommand: Command = {
  kind: 'command',
  name: 'report',
  summary: 'reproduce a licensor\'s usage from the trail: every license record checked against the bound card',
  details: 'With --binding the trail may be a copy sent by the customer (the licensor\'s offline audit); without it the binding stored beside the container is used.',
  options: {
    ...SOCKET_OPTION, ...JSON_OPTION,
    'licensor-key': { type: 'string', value: 'HEX', description: 'the licensor\'s public key' },
    trail: { type: 'string', value: 'FILE', description: 'the trail file (default: the license agent\'s trail)' },
    binding: { type: 'string', value: 'FILE', description: 'the licensor\'s card binding of the card that signed the trail' },
  },
  async run(values) {
    const { AgentLicenseLink, licenseUsageReport, parseCardBinding, verifyCardBinding } = await license();
    const licensorKey = keyOption(values, 'licensor-key');
    let trail = optionText(values, 'trail');
    let binding = optionText(values, 'binding') === undefined ? undefined : parseCardBinding(readTextFile(values, 'binding'));
    if (trail === undefined || binding === undefined) {
      const { RentalClient } = await import('../../rental/index.js');
      const client = await RentalClient.connect(optionText(values, 'socket'));
      try {
        trail ??= (await client.hello()).trail;
      } finally {
        client.close();
      }
      if (binding === undefined) {
        const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
        try {
          binding = (await link.bindings()).find((entry) => toHex(entry.licensorKey) === toHex(licensorKey));
        } finally {
          await link.close();
        }
      }
    }
    if (binding === undefined) throw new UsageError('no card binding of this licensor: give --binding FILE');
    verifyCardBinding(binding, licensorKey);
    const report = await licenseUsageReport(trail, { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode }, licensorKey);
    const json = {
      event: 'report', serial: binding.serial, trail, licensor: report.licensor, firmCode: report.firmCode ?? null, updates: report.updates, records: report.records,
      missing: report.missing.map((range) => ({ from: range.from.toString(), to: range.to.toString() })), products: report.products,
    };
    const lines = [`card ${binding.serial}, trail ${trail}: ${report.records} records, ${report.updates} updates of this licensor applied`];
    for (const p of report.products) lines.push(`  product ${p.productCode}: ${p.uses} uses, ${p.units} units, ${p.lastLeft} left after the last`);
    if (report.missing.length > 0) lines.push(`  warning: the trail lacks counters ${report.missing.map((range) => `${range.from}..${range.to}`).join(', ')}: uses may hide there`);
    say(values)(json, lines.join('\n'));
    return report.missing.length > 0 ? ExitCode.refusedByState : ExitCode.ok;
  },
};

const applyCommand: Command = {
  kind: 'command',
  name: 'apply',
  summary: 'apply a licensor\'s update file (offline activation, renewal, time certificate); writes the card\'s receipt',
  options: {
    ...SOCKET_OPTION, ...JSON_OPTION,
    update: { type: 'string', value: 'FILE', description: 'the update file the licensor\'s service answered' },
    'receipt-out': { type: 'string', value: 'FILE', description: 'where to write the receipt (the card-signed record) to send back ("vsc license submit --receipt")' },
    'ticket-file': { type: 'string', value: 'FILE', description: 'with --receipt-out: the file holding the ticket the update came for' },
    binding: { type: 'string', value: 'FILE', description: 'the licensor\'s card binding that came with the update, kept beside the container' },
  },
  async run(values) {
    const { AgentLicenseLink, encodeReceiptRequest, parseCardBinding } = await license();
    const { writeFileAtomic } = await import('../../files/index.js');
    const update = readTextFile(values, 'update').trim();
    const out = optionText(values, 'receipt-out');
    const ticket = out === undefined ? undefined : ticketOf(values);
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      if (optionText(values, 'binding') !== undefined) await link.bind(parseCardBinding(readTextFile(values, 'binding').trim()));
      const record = await link.apply(update);
      if (out !== undefined) writeFileAtomic(out, new TextEncoder().encode(`${encodeReceiptRequest({ ticket: ticket!, serial: link.card.serial, record })}\n`));
      say(values)({ event: 'applied', serial: link.card.serial, text: record.text, counter: record.counter.toString(), receipt: out ?? null }, `applied on card ${link.card.serial}: ${record.text}${out === undefined ? '' : `; receipt in ${out}`}`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

export const licenseCustomerCommands: readonly Command[] = [listCommand, useCommand, reportCommand, applyCommand];
