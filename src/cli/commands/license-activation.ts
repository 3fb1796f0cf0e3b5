// `vsc license activate | submit | deactivate | time`: the customer's side of the issuing back end (Wibu 002: "the end
// user activates the ticket online, or offline"; 000 §2.6 certified time). Online, one command does it all: it reads the
// container through the license agent, asks the service for the signed update, applies it on the card, keeps the
// licensor's card binding beside the container and sends the card-signed receipt back. Offline, the same steps travel
// as files: `activate --request-out R` here, `submit --request R` on any machine online, `apply --update U
// --receipt-out RC` here, `submit --receipt RC` online again.
import { randomBytes } from 'node:crypto';
import { toHex } from '../../bytes/index.js';
import { ExitCode, UsageError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { JSON_OPTION, optionText, requireOption, say, type Command, type OptionSpec, type OptionValues } from '../command.js';
import { readTextFile, SOCKET_OPTION, ticketOf, wholeOption } from './license-customer.js';
import { applyWithdrawal, lockedByAnswer } from './license-locked.js';

const license = () => import('../../license/index.js');

const SERVER: Record<string, OptionSpec> = {
  server: { type: 'string', value: 'URL', description: 'the licensor\'s issuing service (e.g. http://127.0.0.1:8710)' },
};
const TICKET: Record<string, OptionSpec> = {
  'ticket-file': { type: 'string', value: 'FILE', description: 'a file holding the ticket code (a ticket is a credential: never on the command line)' },
};

function write(path: string, text: string): void {
  writeFileAtomic(path, new TextEncoder().encode(`${text}\n`));
}

async function issuing(values: OptionValues) {
  const { IssuingClient } = await license();
  return new IssuingClient({ server: requireOption(values, 'server') });
}

/** The container's firm update counter of the licensor with `publicKey`, null when it holds no firm item of it. */
async function firmCounter(link: Awaited<ReturnType<Awaited<ReturnType<typeof license>>['AgentLicenseLink']['connect']>>, publicKey: string): Promise<number | null> {
  const container = await link.readContainer();
  return container.firms.find((firm) => toHex(firm.licensorKey) === publicKey)?.updateCounter ?? null;
}

const activate: Command = {
  kind: 'command',
  name: 'activate',
  summary: 'activate a ticket into this machine\'s license container: online in one step, or write the request file for an offline activation',
  details: 'Online: needs --server; the update is applied, the licensor\'s card binding stored, the receipt sent back. Offline: --request-out R writes the request file (with --licensor-key HEX when this machine cannot ask the service about the ticket); carry it to a machine online and run "vsc license submit --request R --update-out U --binding-out B".',
  options: {
    ...SERVER, ...TICKET, ...SOCKET_OPTION, ...JSON_OPTION,
    'request-out': { type: 'string', value: 'FILE', description: 'offline: write the activation request file and stop' },
    'licensor-key': { type: 'string', value: 'HEX', description: 'offline without --server: the licensor\'s public key printed with the ticket' },
  },
  async run(values) {
    const { AgentLicenseLink, encodeActivationRequest, parseCardBinding } = await license();
    const { encodeRecordLine } = await import('../../rental/index.js');
    const ticket = ticketOf(values);
    const requestOut = optionText(values, 'request-out');
    const server = optionText(values, 'server');
    if (server === undefined && requestOut === undefined) throw new UsageError('expected --server URL (online) or --request-out FILE (offline)');
    let licensorKey = optionText(values, 'licensor-key');
    if (licensorKey !== undefined && !/^[0-9a-f]{64}$/.test(licensorKey)) throw new UsageError('--licensor-key: expected 64 lowercase hex digits');
    const client = server === undefined ? undefined : await issuing(values);
    if (licensorKey === undefined) {
      if (client === undefined) throw new UsageError('offline without --server: give --licensor-key HEX (printed with the ticket)');
      licensorKey = (await client.ticket(ticket)).licensor.publicKey;
    }
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const request = { ticket, serial: link.card.serial, cardPublicKey: link.card.publicKey, firmUpdateCounter: await firmCounter(link, licensorKey), requestId: Uint8Array.from(randomBytes(16)) };
      if (requestOut !== undefined) {
        write(requestOut, encodeActivationRequest(request));
        say(values)({ event: 'request', serial: request.serial, file: requestOut }, `activation request for card ${request.serial} written to ${requestOut}: submit it from a machine online ("vsc license submit --request ${requestOut} ...")`);
        return ExitCode.ok;
      }
      const answer = await lockedByAnswer(link, () => client!.activate(request));
      await applyWithdrawal(link, client!, answer);
      if (answer.binding !== undefined) await link.bind(parseCardBinding(answer.binding));
      const record = await link.apply(answer.update);
      const confirmed = await client!.receipt({ ticket, serial: request.serial, record });
      say(values)(
        { event: 'activated', serial: request.serial, text: record.text, counter: record.counter.toString(), receipt: JSON.parse(encodeRecordLine(record)) as unknown, confirmed },
        `activated on card ${request.serial}: ${record.text}; the service confirmed the receipt`,
      );
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const submit: Command = {
  kind: 'command',
  name: 'submit',
  summary: 'offline activation, the online leg: send a request file and write the update file, or send a receipt file',
  options: {
    ...SERVER, ...JSON_OPTION,
    request: { type: 'string', value: 'FILE', description: 'an activation request file ("vsc license activate --request-out")' },
    'update-out': { type: 'string', value: 'FILE', description: 'where to write the signed update to carry back' },
    'binding-out': { type: 'string', value: 'FILE', description: 'where to write the licensor\'s card binding to carry back' },
    receipt: { type: 'string', value: 'FILE', description: 'a receipt file ("vsc license apply --receipt-out")' },
  },
  async run(values) {
    const { parseActivationRequest, parseReceiptRequest } = await license();
    const client = await issuing(values);
    const given = ['request', 'receipt'].filter((name) => optionText(values, name) !== undefined);
    if (given.length !== 1) throw new UsageError('expected exactly one of --request FILE, --receipt FILE');
    const parse = <T>(name: string, parser: (value: unknown) => T): T => {
      let value: unknown;
      try {
        value = JSON.parse(readTextFile(values, name));
      } catch (error) {
        if (error instanceof UsageError) throw error;
        throw new UsageError(`--${name}: not a JSON file`);
      }
      return parser(value);
    };
    if (given[0] === 'receipt') {
      const confirmed = await client.receipt(parse('receipt', parseReceiptRequest));
      say(values)({ event: 'receipt', confirmed }, 'the service confirmed the receipt');
      return ExitCode.ok;
    }
    const answer = await client.activate(parse('request', parseActivationRequest));
    write(requireOption(values, 'update-out'), answer.update);
    const bindingOut = optionText(values, 'binding-out');
    if (bindingOut !== undefined && answer.binding !== undefined) write(bindingOut, answer.binding);
    say(values)({ event: 'update', digest: answer.digest, update: optionText(values, 'update-out'), binding: bindingOut ?? null }, `update written to ${optionText(values, 'update-out')}${bindingOut === undefined ? '' : `, card binding to ${bindingOut}`}: apply it on the card's machine ("vsc license apply --update ...")`);
    return ExitCode.ok;
  },
};

const deactivate: Command = {
  kind: 'command',
  name: 'deactivate',
  summary: 'give a ticket\'s seat back: the licensor\'s delete is applied on the card and its receipt returns the seat',
  details: 'How often a ticket may be deactivated and activated again is limited by the licensor (activation cycling): a refusal names the limit.',
  options: { ...SERVER, ...TICKET, ...SOCKET_OPTION, ...JSON_OPTION },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const client = await issuing(values);
    const ticket = ticketOf(values);
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const licensorKey = (await client.ticket(ticket)).licensor.publicKey;
      const counter = await firmCounter(link, licensorKey);
      const answer = await lockedByAnswer(link, () => client.deactivate({ ticket, serial: link.card.serial, requestId: Uint8Array.from(randomBytes(16)), ...(counter === null ? {} : { firmUpdateCounter: counter }) }));
      const record = await link.apply(answer.update);
      const confirmed = await client.receipt({ ticket, serial: link.card.serial, record });
      say(values)({ event: 'deactivated', serial: link.card.serial, text: record.text, confirmed }, `deactivated on card ${link.card.serial}: the seat is back with the licensor`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

const time: Command = {
  kind: 'command',
  name: 'time',
  summary: 'fetch certified time from a licensor\'s service and sign it into the container (its clock moves forward only)',
  options: {
    ...SERVER, ...SOCKET_OPTION, ...JSON_OPTION,
    'firm-code': { type: 'string', value: 'CODE', description: 'the licensor\'s firm code' },
  },
  async run(values) {
    const { AgentLicenseLink } = await license();
    const client = await issuing(values);
    const link = await AgentLicenseLink.connect(optionText(values, 'socket'));
    try {
      const answer = await lockedByAnswer(link, () => client.time({ serial: link.card.serial, firmCode: wholeOption(values, 'firm-code', undefined), nonce: Uint8Array.from(randomBytes(16)) }));
      await applyWithdrawal(link, client, answer);
      const record = await link.apply(answer.certificate);
      say(values)({ event: 'time', serial: link.card.serial, time: answer.time, text: record.text }, `certified time ${new Date(answer.time * 1000).toISOString()} signed into card ${link.card.serial}'s trail`);
      return ExitCode.ok;
    } finally {
      await link.close();
    }
  },
};

export const licenseActivationCommands: readonly Command[] = [activate, submit, deactivate, time];
