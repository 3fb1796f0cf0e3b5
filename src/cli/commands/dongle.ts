// `vsc dongle init|status|table|authority` (DESIGN.md "Dongle-backed card"; patent 004 claim 10, Fig. 14/15).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../errors/index.js';
import { requireOption, type Command, type CommandGroup, type OptionValues } from '../command.js';
import { dongleAuthorityGroup } from './dongle-authority.js';
import { DONGLE_OPTIONS, donglePinFallback } from './dongle-options.js';
import { dongleTableGroup } from './dongle-table.js';

const dongles = () => import('../../dongle-backend/index.js');

const text = (values: OptionValues, name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
const say = (values: OptionValues) => (event: Record<string, unknown>, line: string) => console.log(values['json'] === true ? JSON.stringify(event) : line);

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

const initCommand: Command = {
  kind: 'command',
  name: 'init',
  summary: 'put a new card on a dongle (making the dongle key if it has none)',
  details: [
    'The card\'s information is sealed so that opening it needs the dongle\'s key and the owner\'s password. With --authority the',
    'issuing authority keeps an escrow of it, so that a lost dongle can be replaced by one that holds the same card.',
    'With --keys-on-token the card\'s signing key is generated on the token and never leaves it: such a card cannot be escrowed.',
  ].join('\n'),
  options: {
    ...DONGLE_OPTIONS,
    serial: { type: 'string', value: 'S', description: 'the new card\'s serial number' },
    'password-file': { type: 'string', value: 'FILE', description: 'read the new card password from the first line of FILE instead of asking' },
    authority: { type: 'string', value: 'DIR', description: 'the issuing authority\'s data directory ("vsc dongle authority init"): escrow and revocation list' },
    'keys-on-token': { type: 'boolean', description: 'generate the card\'s signing key on the token (CKM_EDDSA); it can then never be escrowed' },
    'key-mode': { type: 'string', value: 'MODE', description: 'individual (default) or universal (patent 003 [0098]-[0100])' },
    json: { type: 'boolean', description: 'machine-readable output' },
  },
  async run(values) {
    const { openDongle, dongleSecrets, initDongleCard, readAuthorityReference } = await dongles();
    const { readPassword } = await import('../../vsc-client/index.js');
    const uri = requireOption(values, 'dongle');
    const serial = requireOption(values, 'serial');
    if (!/^[\x21-\x7e]{1,64}$/.test(serial)) throw new UsageError('--serial: expected 1 to 64 printable ASCII characters without spaces');
    const keyMode = text(values, 'key-mode') ?? 'individual';
    if (keyMode !== 'individual' && keyMode !== 'universal') throw new UsageError('--key-mode: expected individual or universal');
    const authorityDir = text(values, 'authority');
    const authority = authorityDir === undefined ? undefined : readAuthorityReference(resolve(authorityDir));
    const keysOnToken = values['keys-on-token'] === true;
    if (keysOnToken) {
      // Said before anything is created (DESIGN.md "Dongle-backed card").
      console.error(`note: card ${serial} will keep its signing key on the token, where it never leaves: it cannot be escrowed, and a lost dongle means a new card with new keys${authority === undefined ? '' : ' (the authority only registers it, to revoke the dongle if lost)'}`);
    }
    const dongle = await openDongle(uri, dongleSecrets(donglePinFallback(values)));
    try {
      const password = await readPassword(text(values, 'password-file'), 'New card password: ');
      const card = await initDongleCard({ dongle, serial, password, keyMode, keysOnToken, ...(authority === undefined ? {} : { authority }) });
      say(values)(
        { event: 'initialised', serial, dongle: hex(card.dongle.fingerprint), kind: card.dongle.kind, publicKey: hex(card.publicKey), keysOnToken, escrowed: card.escrowed },
        [
          `card ${serial} is on ${card.dongle.description}`,
          `dongle fingerprint ${hex(card.dongle.fingerprint)}`,
          card.escrowed ? 'escrowed with the issuing authority' : keysOnToken ? 'keys on the token: not escrowed' : 'no issuing authority: a lost dongle loses the card',
          `signing public key ${hex(card.publicKey)}`,
        ].join('\n'),
      );
      return ExitCode.ok;
    } finally {
      await dongle.close();
    }
  },
};

const statusCommand: Command = {
  kind: 'command',
  name: 'status',
  summary: 'show whether a dongle answers, who it is, the card it holds and whether it is revoked',
  options: { ...DONGLE_OPTIONS, json: { type: 'boolean', description: 'machine-readable output' } },
  async run(values) {
    const { openDongle, dongleSecrets, describeDongle } = await dongles();
    const dongle = await openDongle(requireOption(values, 'dongle'), dongleSecrets(donglePinFallback(values)));
    try {
      const status = await describeDongle(dongle);
      say(values)({ ...status }, [
        `${status.description}: attached and answering`,
        `dongle fingerprint ${status.fingerprint}`,
        status.card === null
          ? 'holds no card'
          : `holds card ${status.card.serial} (epoch ${status.card.epoch}${status.card.keysOnToken ? ', keys on the token' : ''}${status.card.authority === null ? ', no issuing authority' : ''})`,
        ...(status.revoked === null ? [] : [`REVOKED: ${status.revoked}`]),
      ].join('\n'));
      return status.revoked === null ? ExitCode.ok : ExitCode.refusedByState;
    } finally {
      await dongle.close();
    }
  },
};

/** `--challenge-table FILE` of `vsc card insert --dongle`. */
export async function readChallengeTableOption(values: OptionValues) {
  const path = text(values, 'challenge-table');
  if (path === undefined) return undefined;
  const { parseChallengeTable } = await dongles();
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`--challenge-table: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseChallengeTable(bytes);
}

export const dongleGroup: CommandGroup = {
  kind: 'group',
  name: 'dongle',
  summary: 'cards backed by a dongle (a PKCS#11 token, the TPM, an emulated one) instead of a server',
  children: [initCommand, statusCommand, dongleTableGroup, dongleAuthorityGroup],
};
