// `vsc dongle authority init|replace|revoke|list`: the dongle issuing authority of patent 004 [0107] (recover,
// destroy) and [0007] (replace or invalidate a lost card); DESIGN.md "Dongle-backed card", lost dongle.
import { ExitCode, UsageError } from '../../errors/index.js';
import type { AuthorityCard } from '../../dongle-backend/index.js';
import { toHex as hex } from '../../bytes/index.js';
import { requireOption, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';
import { DONGLE_OPTIONS, donglePinFallback } from './dongle-options.js';

/** The dongle code loads when a command runs, not with every `vsc` command. */
const dongles = () => import('../../dongle-backend/index.js');

const print = (values: OptionValues, json: unknown, line: string): void => console.log(values['json'] === true ? JSON.stringify(json) : line);

const DATA: Record<string, OptionSpec> = {
  data: { type: 'string', value: 'DIR', description: 'the issuing authority\'s data directory (keys, revocation list, escrows)' },
  json: { type: 'boolean', description: 'machine-readable output' },
};
const SERIAL: Record<string, OptionSpec> = { serial: { type: 'string', value: 'S', description: 'the card\'s serial number' } };
const DONGLE: Record<string, OptionSpec> = {
  ...DONGLE_OPTIONS,
  dongle: { type: 'string', value: 'URI', description: 'the new dongle (pkcs11:... or emulated:..., as for "vsc dongle init")' },
};

function command(name: string, summary: string, options: Record<string, OptionSpec>, run: (values: OptionValues) => Promise<number>, details?: string): Command {
  return { kind: 'command', name, summary, options: { ...DATA, ...options }, run, ...(details === undefined ? {} : { details }) };
}

function cardJson(card: AuthorityCard): Record<string, unknown> {
  return {
    serial: card.serial, state: card.state, dongle: card.dongle === undefined ? null : hex(card.dongle), epoch: card.epoch ?? null,
    lastEscrowed: card.lastEscrowed?.toISOString() ?? null, keysOnToken: card.keysOnToken ?? null,
  };
}

function cardLine(card: AuthorityCard): string {
  if (card.dongle === undefined) return `${card.serial}\t${card.state}\t(escrow file damaged)`;
  const escrowed = card.lastEscrowed === undefined ? '' : `\tescrowed ${card.lastEscrowed.toISOString()}`;
  return `${card.serial}\t${card.state}\tepoch ${String(card.epoch)}\tdongle ${hex(card.dongle).slice(0, 16)}${escrowed}${card.keysOnToken === true ? '\t(keys on token: no escrow)' : ''}`;
}

const initCommand = command('init', 'create an issuing authority: signing and escrow keys, an empty signed revocation list', {
  name: { type: 'string', value: 'NAME', description: 'the authority\'s name, the attester of its attestations (default: "issuing authority DIRNAME")' },
}, async (values) => {
  const { initAuthority, readAuthorityName } = await dongles();
  const name = typeof values['name'] === 'string' ? values['name'] : undefined;
  if (name !== undefined && !/^[\x20-\x7e]{1,64}$/.test(name)) throw new UsageError('--name: expected 1 to 64 printable ASCII characters');
  const authority = await initAuthority(requireOption(values, 'data'), new Date(), name);
  const dir = authority.escrowDirectory;
  print(
    values,
    { data: dir, signingKey: hex(authority.signingKey), escrowKey: hex(authority.escrowKey) },
    [
      `initialised the issuing authority "${readAuthorityName(dir)}" in ${dir}; cards escrow with it through "vsc dongle init ... --authority ${dir}"`,
      'public keys: signing (Ed25519: signs its revocation lists and its token attestations, so software vendors trust it), then escrow (X25519, escrows are sealed to it):',
      hex(authority.signingKey),
      hex(authority.escrowKey),
    ].join('\n'),
  );
  return ExitCode.ok;
}, [
  'The directory is 0700 and its files 0600; authority.key holds its private keys: back it up and keep it offline when you can. Prints the two public keys last.',
  'The signing key also signs "vsc dongle attest" attestations: one key for vendors to trust, which also revokes what it attested.',
].join('\n'));

const replaceCommand = command('replace', 'issue a card onto a new dongle from its escrow ([0107] recover) and revoke the old dongle', { ...SERIAL, ...DONGLE }, async (values) => {
  const { openDongle, dongleSecrets, replaceDongle, shortFingerprint } = await dongles();
  const serial = requireOption(values, 'serial');
  const dongle = await openDongle(requireOption(values, 'dongle'), dongleSecrets(donglePinFallback(values)));
  try {
    const done = await replaceDongle(requireOption(values, 'data'), serial, dongle);
    print(
      values,
      { event: 'replaced', serial, epoch: done.epoch, dongle: hex(done.dongle.fingerprint), previousDongle: hex(done.previousDongle), resumed: done.resumed },
      [
        `card ${serial} is on ${done.dongle.description}${done.resumed ? ' (an interrupted replacement finished)' : ''}; its owner's password opens it`,
        `dongle ${shortFingerprint(done.previousDongle)} is revoked`,
        `epoch ${done.epoch}`,
        `dongle fingerprint ${hex(done.dongle.fingerprint)}`,
      ].join('\n'),
    );
    return ExitCode.ok;
  } finally {
    await dongle.close();
  }
}, [
  'The new dongle gets its own dongle key if it has none, and must hold no card. The card keeps its keys and password; its counter',
  'goes on in the next epoch, so no value the old dongle signed can come again. A card with its keys on its token cannot be',
  'replaced, nor a destroyed one. An interrupted replacement is finished by running the same command again with the same dongle.',
].join('\n'));

const revokeCommand = command('revoke', 'put a card\'s current dongle on the signed revocation list: lost (replaceable) or destroyed (final)', {
  ...SERIAL,
  reason: { type: 'string', value: 'lost|destroyed', description: 'lost: the card can still be replaced; destroyed: final ([0107] Destroy)' },
}, async (values) => {
  const serial = requireOption(values, 'serial');
  const reason = requireOption(values, 'reason');
  if (reason !== 'lost' && reason !== 'destroyed') throw new UsageError(`--reason: expected lost or destroyed, got ${JSON.stringify(reason)}`);
  const { revokeDongle, shortFingerprint } = await dongles();
  const done = await revokeDongle(requireOption(values, 'data'), serial, reason);
  const what = done.dongles.length === 0
    ? `card ${serial}: the revocation list already said so`
    : `card ${serial}: dongle ${done.dongles.map(shortFingerprint).join(' and ')} revoked (${reason})${reason === 'destroyed' ? '; the card is destroyed for good' : ''}`;
  print(values, { event: 'revoked', serial, reason, dongles: done.dongles.map(hex), sequence: done.sequence }, `${what}; revocation list sequence ${done.sequence}`);
  return ExitCode.ok;
}, 'Card programs refuse a revoked dongle whenever they have the list: the authority\'s directory, a replacement dongle, or their cache.');

const listCommand = command('list', 'list the cards escrowed with this authority: state, current dongle, epoch, last escrow', {}, async (values) => {
  const { listCards } = await dongles();
  const cards = listCards(requireOption(values, 'data'));
  print(values, cards.map(cardJson), cards.length === 0 ? 'no cards' : cards.map(cardLine).join('\n'));
  return ExitCode.ok;
}, 'States: active, lost (its dongle is revoked; it can be replaced), replacing (a replacement was interrupted: run it again), destroyed, damaged (its escrow file cannot be read).');

export const dongleAuthorityGroup: CommandGroup = {
  kind: 'group',
  name: 'authority',
  summary: 'the dongle issuing authority: escrows, replacement of lost dongles, the signed revocation list',
  children: [initCommand, replaceCommand, revokeCommand, listCommand],
};
