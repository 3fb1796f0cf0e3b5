// `vsc dongle init|status|attest|table|authority` (DESIGN.md "Dongle-backed card"; patent 004 claim 10, Fig. 14/15;
// the universal key and the token attestation of patent 003 [0096], [0098]-[0102]).
import { chmodSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { toHex as hex } from '../../bytes/index.js';
import { optionText as text, say, requireOption, type Command, type CommandGroup, type OptionValues } from '../command.js';
import { dongleAuthorityGroup } from './dongle-authority.js';
import { DONGLE_OPTIONS, donglePinFallback } from './dongle-options.js';
import { dongleTableGroup } from './dongle-table.js';

const dongles = () => import('../../dongle-backend/index.js');



/** An attestation is public: the vendor reads it (0644, whatever vsc's umask 077 makes of new files). */
function writeAttestation(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, bytes, 0o644);
  chmodSync(path, 0o644);
}

const initCommand: Command = {
  kind: 'command',
  name: 'init',
  summary: 'put a new card on a dongle (making the dongle key if it has none)',
  details: [
    'The card\'s information is sealed so that opening it needs the dongle\'s key and the owner\'s password. With --authority the',
    'issuing authority keeps an escrow of it, so that a lost dongle can be replaced by one that holds the same card.',
    'With --keys-on-token the card\'s signing key is generated on the token and never leaves it: such a card cannot be escrowed.',
    'With --keys-on-token --key-mode universal --universal-key FILE the vendor\'s universal key (patent 003 [0098]-[0102]) is imported',
    'into the token instead, sensitive and not extractable, and the card signs SIGN AND INCREMENT with P1 01 (h\' = SHA-256(h, serial, counter)).',
    'A universal key is refused without --keys-on-token: shared by every customer, one copy read out of one machine forges every trail.',
    'FILE (mode 0600) holds the key as the PKCS#8 PEM of "openssl genpkey -algorithm ed25519", or as 64 hex digits.',
    'With --authority DIR --attestation-out FILE the authority attests the card for software vendors right away (as "vsc dongle attest");',
    'an imported universal key is attested only here, by the authority that imported it, never later.',
  ].join('\n'),
  options: {
    ...DONGLE_OPTIONS,
    serial: { type: 'string', value: 'S', description: 'the new card\'s serial number' },
    'password-file': { type: 'string', value: 'FILE', description: 'read the new card password from the first line of FILE instead of asking' },
    authority: { type: 'string', value: 'DIR', description: 'the issuing authority\'s data directory ("vsc dongle authority init"): escrow and revocation list' },
    'keys-on-token': { type: 'boolean', description: 'generate the card\'s signing key on the token (CKM_EDDSA); it can then never be escrowed' },
    'key-mode': { type: 'string', value: 'MODE', description: 'individual (default) or universal (patent 003 [0098]-[0100]; needs --keys-on-token)' },
    'universal-key': { type: 'string', value: 'FILE', description: 'with --key-mode universal: the vendor\'s universal Ed25519 private key to import into the token (file 0600)' },
    'attestation-out': { type: 'string', value: 'FILE', description: 'with --keys-on-token and --authority: write the authority\'s attestation of the new card to FILE' },
    json: { type: 'boolean', description: 'machine-readable output' },
  },
  async run(values) {
    const { openDongle, dongleSecrets, initDongleCard, readAuthorityReference, checkCardKeyChoice, readUniversalKeyFile, attestTokenCard } = await dongles();
    const { readPassword } = await import('../../vsc-client/index.js');
    const { wipe } = await import('../../bytes/index.js');
    const uri = requireOption(values, 'dongle');
    const serial = requireOption(values, 'serial');
    if (!/^[\x21-\x7e]{1,64}$/.test(serial)) throw new UsageError('--serial: expected 1 to 64 printable ASCII characters without spaces');
    const keyMode = text(values, 'key-mode') ?? 'individual';
    if (keyMode !== 'individual' && keyMode !== 'universal') throw new UsageError('--key-mode: expected individual or universal');
    const keysOnToken = values['keys-on-token'] === true;
    const universalKeyFile = text(values, 'universal-key');
    const attestationOut = text(values, 'attestation-out');
    // Refused before anything is read or opened: a key choice that makes no sense, an attestation nobody could sign.
    checkCardKeyChoice(keyMode, keysOnToken, universalKeyFile === undefined ? undefined : new Uint8Array(0));
    const authorityDir = text(values, 'authority');
    if (attestationOut !== undefined && (authorityDir === undefined || !keysOnToken)) {
      throw new UsageError('--attestation-out needs --authority DIR (whose key attests) and --keys-on-token (only a key on the token is attested)');
    }
    const authority = authorityDir === undefined ? undefined : readAuthorityReference(resolve(authorityDir));
    if (keysOnToken) {
      // Said before anything is created (DESIGN.md "Dongle-backed card").
      console.error(`note: card ${serial} will keep its signing key on the token, where it never leaves: it cannot be escrowed, and a lost dongle means a new card with new keys${authority === undefined ? '' : ' (the authority only registers it, to revoke the dongle if lost)'}`);
    }
    // Read first, so that a file others may read is refused before the token is touched; wiped whatever happens.
    const universalKey = universalKeyFile === undefined ? undefined : readUniversalKeyFile(universalKeyFile);
    try {
      const dongle = await openDongle(uri, dongleSecrets(donglePinFallback(values)));
      try {
        const password = await readPassword(text(values, 'password-file'), 'New card password: ');
        const card = await initDongleCard({
          dongle, serial, password, keyMode, keysOnToken, ...(authority === undefined ? {} : { authority }), ...(universalKey === undefined ? {} : { universalKey }),
        });
        let attester: string | undefined;
        if (attestationOut !== undefined) {
          const attested = await attestTokenCard({ authorityDir: authorityDir!, dongle, expectedPublicKey: card.publicKey, importedHere: universalKey !== undefined });
          writeAttestation(attestationOut, attested.bytes);
          attester = attested.attestation.attester;
        }
        say(values)(
          {
            event: 'initialised', serial, dongle: hex(card.dongle.fingerprint), kind: card.dongle.kind, keyMode, publicKey: hex(card.publicKey), keysOnToken,
            escrowed: card.escrowed, attestation: attestationOut ?? null,
          },
          [
            `card ${serial} is on ${card.dongle.description}`,
            `dongle fingerprint ${hex(card.dongle.fingerprint)}`,
            keysOnToken
              ? `keys on the token: not escrowed${card.escrowed ? '; registered with the issuing authority, which can revoke the dongle' : ''}`
              : card.escrowed ? 'escrowed with the issuing authority' : 'no issuing authority: a lost dongle loses the card',
            ...(keyMode === 'universal' ? ['the vendor\'s universal key is on the token; the card signs with P1 01 (patent 003 [0098])'] : []),
            ...(attester === undefined ? [] : [`attested by ${attester}: ${attestationOut!}`]),
            `signing public key ${hex(card.publicKey)}`,
          ].join('\n'),
        );
        return ExitCode.ok;
      } finally {
        await dongle.close();
      }
    } finally {
      if (universalKey !== undefined) wipe(universalKey);
    }
  },
};

const attestCommand: Command = {
  kind: 'command',
  name: 'attest',
  summary: 'the issuing authority attests, for software vendors, that a card\'s signing key was made on its token and never leaves it',
  details: [
    'Run by the issuing authority with the dongle attached (patent 003 [0096]: the vendor may validate the card\'s personaliser).',
    'It checks on the token that the card\'s key is an Ed25519 private key with CKA_SENSITIVE true, CKA_EXTRACTABLE false,',
    'CKA_NEVER_EXTRACTABLE true and CKA_LOCAL true (generated there, never extractable) and that it signs for the public key the card',
    'shows, then signs {serial, public key, key mode, kind token, attester} with its Ed25519 signing key, the one "vsc dongle authority',
    'init" printed and that signs its revocation lists: vendors trust it ("vsc keyfile create ... --attestation FILE --trust-attester KEY").',
    'Refused (exit 3): an emulated dongle (not duplication-protected), a card without keys on the token, a card issued under another',
    'authority or not registered with this one, a key failing any attribute check (named), a revoked dongle or destroyed card,',
    'and an imported universal key (CKA_LOCAL false): that is attested only at "vsc dongle init --attestation-out", by its importer.',
    'The authority takes the token\'s word for these attributes: attest only tokens whose make you trust to keep it (SoftHSM2,',
    'a software token whose objects are files, keeps it only as far as its library does).',
  ].join('\n'),
  options: {
    ...DONGLE_OPTIONS,
    authority: { type: 'string', value: 'DIR', description: 'the issuing authority\'s data directory: its signing key attests' },
    out: { type: 'string', value: 'FILE', description: 'where to write the attestation (mode 0644: it is public)' },
    json: { type: 'boolean', description: 'machine-readable output' },
  },
  async run(values) {
    const { openDongle, dongleSecrets, attestTokenCard } = await dongles();
    const uri = requireOption(values, 'dongle');
    const authorityDir = resolve(requireOption(values, 'authority'));
    const out = requireOption(values, 'out');
    const dongle = await openDongle(uri, dongleSecrets(donglePinFallback(values)));
    try {
      const { attestation, bytes, dongle: identity } = await attestTokenCard({ authorityDir, dongle });
      writeAttestation(out, bytes);
      say(values)(
        {
          event: 'attested', serial: attestation.serial, publicKey: hex(attestation.publicKey), keyMode: attestation.keyMode, kind: attestation.kind,
          attester: attestation.attester, attesterKey: hex(attestation.attesterKey), dongle: hex(identity.fingerprint), out,
        },
        [
          `card ${attestation.serial} on ${identity.description}: its ${attestation.keyMode} key was made on the token and never leaves it`,
          `attested by ${attestation.attester} in ${out}`,
          `card public key ${hex(attestation.publicKey)}`,
          `attester key (vendors trust it) ${hex(attestation.attesterKey)}`,
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
          : `holds card ${status.card.serial} (epoch ${status.card.epoch}${status.card.keysOnToken ? ', keys on the token' : ''}${status.card.keyMode === 'universal' ? ', universal key' : ''}${status.card.authority === null ? ', no issuing authority' : ''})`,
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
  children: [initCommand, statusCommand, attestCommand, dongleTableGroup, dongleAuthorityGroup],
};
