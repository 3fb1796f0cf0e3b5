// `vsc vendor init` and `vsc keyfile create|inspect` (patent 003 [0063]-[0075], [0094], [0096]; DESIGN.md "Software
// rental"); `vsc vendor audit` and `vsc keyfile reissue` come from rental-validator.ts.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, UsageError, VscError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { toHex as hex } from '../../bytes/index.js';
import { optionText as text, say, JSON_OPTION, optionList as many, requireOption, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';
import { keyfileValidatorCommands, vendorValidatorCommands } from './rental-validator.js';

const rental = () => import('../../rental/index.js');
const client = () => import('../../vsc-client/index.js');

const VENDOR_PASSWORD: Record<string, OptionSpec> = {
  'password-file': { type: 'string', value: 'FILE', description: 'read the vendor password from the first line of FILE instead of asking ([0065]: it unlocks the vendor\'s keys)' },
};

const vendorInit: Command = {
  kind: 'command',
  name: 'init',
  summary: 'make a software vendor\'s keys: one signs keyfiles, one opens the customer information they carry',
  details: 'Prints the vendor\'s public signing key last: build it into the rented program, which verifies every keyfile with it. The private keys are sealed under the vendor password.',
  options: { data: { type: 'string', value: 'VDIR', description: 'the vendor\'s directory (made 0700)' }, name: { type: 'string', value: 'NAME', description: 'the vendor\'s name (default: the directory\'s name)' }, ...VENDOR_PASSWORD, ...JSON_OPTION },
  async run(values) {
    const { initVendor } = await rental();
    const { readPassword } = await client();
    const dir = resolve(requireOption(values, 'data'));
    const name = text(values, 'name') ?? dir.split('/').pop() ?? 'vendor';
    const vendor = await initVendor(dir, name, await readPassword(text(values, 'password-file'), 'New vendor password: '));
    say(values)({ event: 'vendor-created', name: vendor.name, signingKey: hex(vendor.signingKey), encryptionKey: hex(vendor.encryptionKey) }, [
      `vendor "${vendor.name}" created in ${dir}`,
      `customer information key ${hex(vendor.encryptionKey)}`,
      `vendor public key (build it into the rented program): ${hex(vendor.signingKey)}`,
    ].join('\n'));
    return ExitCode.ok;
  },
};

const keyfileCreate: Command = {
  kind: 'command',
  name: 'create',
  summary: 'issue a keyfile for a program and the customer\'s card, read through a pcscd reader',
  details: [
    'Reads the card\'s serial, public key, key mode and counter through reader R (the trail starts at that counter unless --offset says otherwise).',
    'The card\'s kind comes from --attestation, signed by a key named with --trust-attester and about this very card: server-held',
    '(a VSC server signs for it) or token (a dongle\'s token holds the key). A forged, untrusted or mismatching attestation is refused.',
    'Without one the card is software: its key is opened on the customer\'s machine, so its owner could forge a whole trail, and the',
    'keyfile needs --accept-software-keys. A universal-key card ([0098]) is accepted only as an attested token.',
  ].join('\n'),
  options: {
    vendor: { type: 'string', value: 'VDIR', description: 'the vendor\'s directory ("vsc vendor init")' },
    reader: { type: 'string', value: 'R', description: 'the pcscd reader holding the customer\'s card, e.g. "Virtual PCD 00 00"' },
    program: { type: 'string', value: 'NAME', description: 'the rented program' },
    threshold: { type: 'string', value: 'SPEC', multiple: true, description: 'a rental threshold (repeatable), e.g. "intervals<=24"' },
    right: { type: 'string', value: 'NAME', multiple: true, description: 'an access right that switches a program function on (repeatable)' },
    customer: { type: 'string', value: 'TEXT', description: 'who the customer is: encrypted so only the vendor can read it' },
    offset: { type: 'string', value: 'N', description: 'the counter value the trail starts at (default: the card\'s counter now)' },
    'key-mode': { type: 'string', value: 'MODE', description: 'individual (default) or universal (patent 003 [0098]-[0100])' },
    'accept-software-keys': { type: 'boolean', description: 'accept a card whose signing key is opened on the customer\'s machine (its owner can forge trails)' },
    attestation: { type: 'string', value: 'FILE', description: 'the card\'s attestation ("vsc admin attest", "vsc dongle attest"): its kind is server-held or token' },
    'trust-attester': { type: 'string', value: 'HEX', multiple: true, description: 'an attester key you trust: a VSC server\'s attestation key, a dongle issuing authority\'s (repeatable)' },
    accept: { type: 'string', value: 'KINDS', description: 'the card kinds the keyfile accepts, comma-separated (default token,server-held, and software with --accept-software-keys)' },
    'validator-key': { type: 'string', value: 'HEX', multiple: true, description: 'a validation service whose validator records the program trusts ([0094], "vsc validator init"; repeatable)' },
    'decoy-bits': { type: 'string', value: 'N', description: 'decoy bits around the customer information (default 480000, [0068])' },
    out: { type: 'string', value: 'K', description: 'where to write the keyfile' },
    ...VENDOR_PASSWORD,
    ...JSON_OPTION,
  },
  async run(values) {
    const { openVendor, closeVendor, createKeyfile, attestedCard, probeKeyMode, DEFAULT_DECOY_BITS } = await rental();
    const { readPassword } = await client();
    const { connectPcscd } = await import('../../reader-driver/index.js');
    const { VscAppletClient } = await import('../../card-client/index.js');
    const vendorDir = resolve(requireOption(values, 'vendor'));
    const reader = requireOption(values, 'reader');
    const program = requireOption(values, 'program');
    const out = requireOption(values, 'out');
    const keyModeText = text(values, 'key-mode');
    if (keyModeText !== undefined && keyModeText !== 'individual' && keyModeText !== 'universal') throw new UsageError('--key-mode: expected individual or universal');
    const offsetText = text(values, 'offset');
    if (offsetText !== undefined && !/^(0|[1-9][0-9]{0,38})$/.test(offsetText)) throw new UsageError('--offset: expected a whole number');
    const decoyText = text(values, 'decoy-bits');
    if (decoyText !== undefined && !/^[0-9]{1,7}$/.test(decoyText)) throw new UsageError('--decoy-bits: expected a whole number');
    const thresholds = many(values, 'threshold');
    await checkThresholds(thresholds);
    const acceptSoftware = values['accept-software-keys'] === true;
    const acceptedKinds = acceptedKindsOption(values, acceptSoftware);
    const trustedAttesters = keyOptions(values, 'trust-attester');
    const validatorKeys = keyOptions(values, 'validator-key');
    const attestationPath = text(values, 'attestation');
    const attestation = attestationPath === undefined ? undefined : readInput(attestationPath, 'attestation');
    if (attestation !== undefined && trustedAttesters.length === 0) throw new UsageError('--attestation needs --trust-attester HEX: the key of the attester you trust');

    const connection = await connectPcscd(reader);
    let read: { serial: string; publicKey: Uint8Array; keyMode: 'individual' | 'universal' };
    let counter: bigint;
    try {
      const card = new VscAppletClient(connection);
      await card.select();
      const serial = await card.serialNumber();
      const publicKey = await card.publicKey();
      counter = await card.counter();
      const keyMode = keyModeText ?? (await probeKeyMode(connection));
      if (keyMode === undefined) throw new UsageError(`card ${serial} does not show its SIGN AND INCREMENT key mode: give --key-mode individual or universal`);
      read = { serial, publicKey, keyMode: keyMode as 'individual' | 'universal' };
    } finally {
      connection.disconnect();
    }
    // [0096]: the kind an attestation vouches for, about this very card; none means a software key.
    const card = attestedCard(read, attestation, trustedAttesters);
    if (card.kind === 'software') {
      if (!acceptedKinds.includes('software')) {
        throw new VscError('keyfile.card-kind', `card ${card.serial} in ${reader} shows no attestation that its signing key is out of its owner's reach (a dongle with keys on the token, a server-held card): its owner could forge a whole trail. Pass --accept-software-keys to issue the keyfile anyway`, { exitCode: ExitCode.refusedByState });
      }
      console.error(`warning: card ${card.serial} keeps its signing key where its owner can read it: a keyfile for it trusts the customer not to forge the audit trail`);
    }
    const vendor = await openVendor(vendorDir, await readPassword(text(values, 'password-file'), 'Vendor password: '));
    try {
      const customer = text(values, 'customer');
      const offset = offsetText === undefined ? counter : BigInt(offsetText);
      const bytes = createKeyfile(vendor, {
        program, card: { serial: card.serial, publicKey: card.publicKey, keyMode: card.keyMode, kind: card.kind }, offset, acceptedKinds,
        rights: many(values, 'right'), thresholds, validatorKeys, ...(card.attesterKey === undefined ? {} : { attesterKey: card.attesterKey }), ...(customer === undefined ? {} : { customer }),
      }, { decoyBits: decoyText === undefined ? DEFAULT_DECOY_BITS : Number(decoyText) });
      writeFileAtomic(out, bytes, 0o644);
      say(values)({
        event: 'keyfile-created', out, program, serial: card.serial, publicKey: hex(card.publicKey), keyMode: card.keyMode, offset: offset.toString(), kind: card.kind, acceptedKinds,
        attester: card.attesterKey === undefined ? null : hex(card.attesterKey), validators: validatorKeys.map(hex), bytes: bytes.length,
      }, `keyfile for ${program} on card ${card.serial} (${card.kind}, ${card.keyMode} key) written to ${out} (${bytes.length} bytes; trail from counter ${offset})`);
      return ExitCode.ok;
    } finally {
      closeVendor(vendor);
    }
  },
};

const KIND_NAMES = ['software', 'token', 'server-held'] as const;

/** `--accept KINDS`; software only beside --accept-software-keys, which alone adds it to the default. */
function acceptedKindsOption(values: OptionValues, acceptSoftware: boolean): ('software' | 'token' | 'server-held')[] {
  const listed = text(values, 'accept');
  if (listed === undefined) return acceptSoftware ? ['token', 'server-held', 'software'] : ['token', 'server-held'];
  const kinds = listed.split(',');
  for (const kind of kinds) {
    if (!(KIND_NAMES as readonly string[]).includes(kind)) throw new UsageError(`--accept: expected kinds among ${KIND_NAMES.join(', ')}, comma-separated, got ${JSON.stringify(kind.slice(0, 40))}`);
  }
  if (new Set(kinds).size !== kinds.length) throw new UsageError('--accept: expected each kind once');
  if (kinds.includes('software') && !acceptSoftware) throw new UsageError('--accept software needs --accept-software-keys: a software key\'s owner can forge the trail');
  return kinds as ('software' | 'token' | 'server-held')[];
}

/** A repeatable option of Ed25519 public keys in hex. */
function keyOptions(values: OptionValues, name: string): Uint8Array[] {
  return many(values, name).map((value) => {
    if (!/^[0-9a-f]{64}$/.test(value)) throw new UsageError(`--${name}: expected 64 lowercase hex digits (an Ed25519 public key), got ${JSON.stringify(value.slice(0, 80))}`);
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

/** Every --threshold must parse (exit 2 naming the column otherwise): a keyfile never carries a spec programs refuse. */
async function checkThresholds(specs: readonly string[]): Promise<void> {
  const { parseThreshold } = await rental();
  for (const spec of specs) parseThreshold(spec);
}

const keyfileInspect: Command = {
  kind: 'command',
  name: 'inspect',
  summary: 'show what a keyfile says; with --vendor-key or --vendor, check its signature first',
  options: {
    keyfile: { type: 'string', value: 'K', description: 'the keyfile' },
    'vendor-key': { type: 'string', value: 'HEX', description: 'the vendor\'s public signing key: the keyfile is refused (exit 3) unless it verifies' },
    vendor: { type: 'string', value: 'VDIR', description: 'the vendor\'s directory: checks the signature and, with the vendor password, shows the customer' },
    ...VENDOR_PASSWORD,
    ...JSON_OPTION,
  },
  async run(values) {
    const { readKeyfileUnchecked, verifyKeyfile, readVendorPublic, openVendor, closeVendor, openCustomerInformation } = await rental();
    const bytes = readInput(requireOption(values, 'keyfile'), 'keyfile');
    const keyHex = text(values, 'vendor-key');
    const vendorDir = text(values, 'vendor');
    if (keyHex !== undefined && !/^[0-9a-f]{64}$/.test(keyHex)) throw new UsageError('--vendor-key: expected 64 lowercase hex digits');
    const expected = keyHex !== undefined ? Uint8Array.from(Buffer.from(keyHex, 'hex')) : vendorDir !== undefined ? readVendorPublic(resolve(vendorDir)).signingKey : undefined;
    const keyfile = expected === undefined ? readKeyfileUnchecked(bytes) : verifyKeyfile(bytes, expected);
    let customer: string | undefined;
    if (vendorDir !== undefined && keyfile.customer !== undefined && text(values, 'password-file') !== undefined) {
      const { readPassword } = await client();
      const vendor = await openVendor(resolve(vendorDir), await readPassword(text(values, 'password-file')));
      try {
        customer = openCustomerInformation(vendor, keyfile);
      } finally {
        closeVendor(vendor);
      }
    }
    const shown = {
      signature: expected === undefined ? 'not checked' : 'valid', id: hex(keyfile.id), vendor: { name: keyfile.vendor.name, signingKey: hex(keyfile.vendor.signingKey) },
      program: keyfile.program, issuedAt: keyfile.issuedAt, card: { ...keyfile.card, publicKey: hex(keyfile.card.publicKey) }, acceptedKinds: keyfile.acceptedKinds,
      offset: keyfile.offset.toString(), rights: keyfile.rights, thresholds: keyfile.thresholds, customer: customer ?? (keyfile.customer === undefined ? null : 'encrypted for the vendor'), bytes: bytes.length,
      attester: keyfile.attesterKey === undefined ? null : hex(keyfile.attesterKey), validators: keyfile.validatorKeys.map(hex), replaces: keyfile.replaces === undefined ? null : hex(keyfile.replaces),
    };
    say(values)(shown, [
      `keyfile ${shown.id} for ${shown.program}, issued ${shown.issuedAt} by "${shown.vendor.name}" (${shown.vendor.signingKey}); signature ${shown.signature}`,
      `card ${shown.card.serial} (${shown.card.kind}, ${shown.card.keyMode} key ${shown.card.publicKey}); accepts ${shown.acceptedKinds.join(', ')}`,
      `trail from counter ${shown.offset}`,
      `access rights: ${shown.rights.length === 0 ? 'none' : shown.rights.join(', ')}`,
      `thresholds: ${shown.thresholds.length === 0 ? 'none' : shown.thresholds.join('; ')}`,
      `customer: ${shown.customer ?? 'none'}`,
      `attested by: ${shown.attester ?? 'nobody (a software key)'}`,
      `validation services: ${shown.validators.length === 0 ? 'none' : shown.validators.join(', ')}`,
      ...(shown.replaces === null ? [] : [`replaces keyfile ${shown.replaces}`]),
    ].join('\n'));
    return ExitCode.ok;
  },
};

export const vendorGroup: CommandGroup = {
  kind: 'group', name: 'vendor', summary: 'a software vendor\'s keys for rental keyfiles, and the remote audit of a customer\'s trail (patent 003)', children: [vendorInit, ...vendorValidatorCommands],
};
export const keyfileGroup: CommandGroup = {
  kind: 'group', name: 'keyfile', summary: 'rental keyfiles: issue one for a program and a card, inspect one, reissue one past a hole', children: [keyfileCreate, keyfileInspect, ...keyfileValidatorCommands],
};
