// `vsc dongle table create|check`: the vendor's table of precomputed challenge pairs (patent 004 Fig. 14,
// [0004] steps 1201-1204 and 1206-1209; DESIGN.md "Dongle-backed card").
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { ExitCode, UsageError } from '../../errors/index.js';
import { writeFileAtomic } from '../../files/index.js';
import { optionText as text, say, requireOption, type Command, type CommandGroup, type OptionSpec, type OptionValues } from '../command.js';
import { DONGLE_OPTIONS, donglePinFallback } from './dongle-options.js';

/** Loaded when a command runs: `vsc --help` stays quick. */
const dongles = () => import('../../dongle-backend/index.js');


const OPTIONS: Record<string, OptionSpec> = { ...DONGLE_OPTIONS, json: { type: 'boolean', description: 'machine-readable output' } };

/** A whole number option in min..max, or a usage error naming it. */
function integerOption(values: OptionValues, name: string, min: number, max: number, fallback?: number): number {
  const value = text(values, name);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--${name} is required`);
  }
  const number = /^[0-9]{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(number >= min && number <= max)) throw new UsageError(`--${name}: expected a whole number in ${min}..${max}, got ${JSON.stringify(value.slice(0, 20))}`);
  return number;
}

const createCommand: Command = {
  kind: 'command',
  name: 'create',
  summary: 'make the vendor\'s table of challenges and the dongle\'s answers (Fig. 14 step 1202)',
  details: [
    'Asks the dongle to answer N distinct random challenges of D digits and writes the pairs to FILE (mode 0644),',
    'labelled with the dongle\'s fingerprint. "vsc card insert --dongle URI --challenge-table FILE" then challenges the dongle',
    'from the table instead of with signed nonces. The table holds no key, but whoever reads it can answer its challenges',
    'without the dongle, so signed nonces (the default) are the stronger check.',
  ].join('\n'),
  options: {
    ...OPTIONS,
    count: { type: 'string', value: 'N', description: 'how many pairs (1 to 100000)' },
    digits: { type: 'string', value: 'D', description: 'digits of each challenge and answer (4 to 12)', default: '5' },
    out: { type: 'string', value: 'FILE', description: 'where to write the table (must not exist yet)' },
  },
  async run(values) {
    const { openDongle, dongleSecrets, createChallengeTable, encodeChallengeTable, CHALLENGE_TABLE_LIMITS } = await dongles();
    const uri = requireOption(values, 'dongle');
    const out = requireOption(values, 'out');
    const count = integerOption(values, 'count', 1, CHALLENGE_TABLE_LIMITS.maxPairs);
    const digits = integerOption(values, 'digits', CHALLENGE_TABLE_LIMITS.minDigits, CHALLENGE_TABLE_LIMITS.maxDigits, 5);
    if (count > 10 ** digits) throw new UsageError(`--count: ${digits} digits allow at most ${10 ** digits} distinct challenges, got ${count}`);
    if (existsSync(out)) throw new UsageError(`--out: ${out} already exists; a shipped table must not be overwritten by accident: choose another FILE or remove it`);
    const dongle = await openDongle(uri, dongleSecrets(donglePinFallback(values)));
    try {
      const identity = await dongle.identify();
      const table = await createChallengeTable(dongle, identity, count, digits);
      writeFileAtomic(out, encodeChallengeTable(table), 0o644);
      chmodSync(out, 0o644); // vsc runs under umask 077
      say(values)(
        { event: 'table-created', out, pairs: table.pairs.length, digits, dongle: table.dongle },
        [`wrote ${table.pairs.length} challenge pairs of ${digits} digits to ${out}`, `for ${identity.description}, fingerprint ${table.dongle}`].join('\n'),
      );
      return ExitCode.ok;
    } finally {
      await dongle.close();
    }
  },
};

const checkCommand: Command = {
  kind: 'command',
  name: 'check',
  summary: 'ask the dongle one challenge of a table and compare its answer (Fig. 14 steps 1206-1209)',
  details: 'Exits 0 when the dongle answers right, 4 when it answers wrong or the table names another dongle, 3 when the dongle is absent.',
  options: {
    ...OPTIONS,
    table: { type: 'string', value: 'FILE', description: 'the table "vsc dongle table create" wrote' },
  },
  async run(values) {
    const { openDongle, dongleSecrets, parseChallengeTable, requireTableForDongle, checkTableChallenge, dongleTableResponder } = await dongles();
    const uri = requireOption(values, 'dongle');
    const path = requireOption(values, 'table');
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new UsageError(`--table: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const table = parseChallengeTable(bytes);
    const dongle = await openDongle(uri, dongleSecrets(donglePinFallback(values)));
    try {
      const identity = await dongle.identify();
      requireTableForDongle(table, identity);
      const right = await checkTableChallenge(table, dongleTableResponder(dongle));
      say(values)(
        { event: 'table-checked', answered: right, dongle: table.dongle },
        right ? `${identity.description} answered the table's challenge right` : 'the dongle answered wrong: this is not the dongle the table was made for',
      );
      return right ? ExitCode.ok : ExitCode.authenticationFailed;
    } finally {
      await dongle.close();
    }
  },
};

export const dongleTableGroup: CommandGroup = {
  kind: 'group',
  name: 'table',
  summary: 'the vendor\'s table of precomputed challenges (Fig. 14): create one with a dongle, check a dongle against one',
  children: [createCommand, checkCommand],
};
