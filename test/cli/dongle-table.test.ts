// `vsc dongle table create|check` (patent 004 Fig. 14, [0004] steps 1202 and 1206-1209) run in-process through the
// command objects (the group is mounted under `vsc dongle` by dongle.ts), with real emulated dongles.
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fromUtf8 } from '../../src/bytes/index.js';
import { donglePinFallback } from '../../src/cli/commands/dongle-options.js';
import { dongleTableGroup } from '../../src/cli/commands/dongle-table.js';
import type { Command, OptionValues } from '../../src/cli/command.js';
import {
  DongleAbsentError, DongleAuthenticationError, DongleError, dongleSecrets, encodeChallengeTable, openDongle, parseChallengeTable,
} from '../../src/dongle-backend/index.js';
import { ExitCode, UsageError, VscError } from '../../src/errors/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-dongle-table-cli-'));
const passphrase = join(root, 'passphrase');
const stickA = join(root, 'a');
const stickB = join(root, 'b');
const uri = (dir: string) => `emulated:${dir}?pin-source=file:${passphrase}`;
let fingerprintA: string;

beforeAll(async () => {
  writeFileSync(passphrase, 'stick passphrase\n', { mode: 0o600 });
  const secrets = dongleSecrets(async () => {
    throw new Error('the tests name every passphrase in the URI');
  });
  const [a, b] = await Promise.all([openDongle(uri(stickA), secrets), openDongle(uri(stickB), secrets)]);
  const [identity] = await Promise.all([a!.ensureKey(), b!.ensureKey()]);
  fingerprintA = Buffer.from(identity.fingerprint).toString('hex');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function command(name: string): Command {
  const found = dongleTableGroup.children.find((child) => child.name === name);
  if (found?.kind !== 'command') throw new Error(`no command ${name}`);
  return found;
}

/** Runs a command as `vsc dongle table NAME` would after parsing; returns its exit code (or the error's) and what it printed. */
async function run(name: string, values: OptionValues): Promise<{ code: number; out: string; error?: VscError }> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
  try {
    const code = await command(name).run(values);
    return { code, out: lines.join('\n') };
  } catch (error) {
    if (!(error instanceof VscError)) throw error;
    return { code: error.exitCode, out: lines.join('\n'), error };
  } finally {
    vi.restoreAllMocks();
  }
}

let tables = 0;
const outPath = () => join(root, `table-${++tables}.json`);

describe('vsc dongle table create', () => {
  it('step 1202: writes the table 0644, says how many pairs and the dongle fingerprint', async () => {
    const out = outPath();
    const umask = process.umask(0o077); // as `vsc` runs (main.ts): the mode must not come from the umask
    const { code, out: printed } = await run('create', { dongle: uri(stickA), count: '25', digits: '6', out }).finally(() => process.umask(umask));
    expect(code).toBe(ExitCode.ok);
    expect(printed).toContain(`wrote 25 challenge pairs of 6 digits to ${out}`);
    expect(printed).toContain(`fingerprint ${fingerprintA}`);
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const table = parseChallengeTable(readFileSync(out));
    expect(table).toMatchObject({ dongle: fingerprintA, digits: 6 });
    expect(table.pairs).toHaveLength(25);
  });

  it('--json prints one event; --digits defaults to 5', async () => {
    const out = outPath();
    const { code, out: printed } = await run('create', { dongle: uri(stickA), count: '3', out, json: true });
    expect(code).toBe(ExitCode.ok);
    expect(JSON.parse(printed)).toEqual({ event: 'table-created', out, pairs: 3, digits: 5, dongle: fingerprintA });
  });

  it.each<[string, OptionValues, RegExp]>([
    ['no --count', { out: 'x' }, /--count is required/],
    ['--count 0', { count: '0', out: 'x' }, /--count: expected a whole number in 1\.\.100000, got "0"/],
    ['--count 100001', { count: '100001', out: 'x' }, /got "100001"/],
    ['--count 1e3', { count: '1e3', out: 'x' }, /got "1e3"/],
    ['--digits 3', { count: '3', digits: '3', out: 'x' }, /--digits: expected a whole number in 4\.\.12, got "3"/],
    ['--count over what the digits allow', { count: '10001', digits: '4', out: 'x' }, /4 digits allow at most 10000 distinct challenges, got 10001/],
    ['no --out', { count: '3' }, /--out is required/],
  ])('refuses %s (exit 2)', async (_, values, message) => {
    const { code, error } = await run('create', { dongle: uri(stickA), ...values });
    expect(code).toBe(ExitCode.usage);
    expect(error).toBeInstanceOf(UsageError);
    expect(error!.message).toMatch(message);
  });

  it('refuses to overwrite a table (exit 2) and leaves it as it was', async () => {
    const out = outPath();
    writeFileSync(out, 'shipped\n');
    const { code, error } = await run('create', { dongle: uri(stickA), count: '3', out });
    expect(code).toBe(ExitCode.usage);
    expect(error!.message).toMatch(/already exists/);
    expect(readFileSync(out, 'utf8')).toBe('shipped\n');
  });

  it('exits 3 when the dongle is absent, writing nothing', async () => {
    const out = outPath();
    const { code, error } = await run('create', { dongle: uri(join(root, 'nowhere')), count: '3', out });
    expect(code).toBe(ExitCode.refusedByState);
    expect(error).toBeInstanceOf(DongleAbsentError);
    expect(() => statSync(out)).toThrow();
  });
});

describe('vsc dongle table check', () => {
  let table: string;
  beforeAll(async () => {
    table = outPath();
    expect((await run('create', { dongle: uri(stickA), count: '20', out: table })).code).toBe(ExitCode.ok);
  });

  it('steps 1206-1209: exit 0 when the dongle answers right', async () => {
    for (let i = 0; i < 3; i++) {
      const { code, out } = await run('check', { dongle: uri(stickA), table });
      expect(code).toBe(ExitCode.ok);
      expect(out).toMatch(/^emulated dongle .* answered the table's challenge right$/);
    }
    const json = await run('check', { dongle: uri(stickA), table, json: true });
    expect(JSON.parse(json.out)).toEqual({ event: 'table-checked', answered: true, dongle: fingerprintA });
  });

  it('1210: exit 4 when the dongle answers wrong (a table whose answers are not this dongle\'s)', async () => {
    const parsed = parseChallengeTable(readFileSync(table));
    const forged = outPath();
    const wrong = (response: string) => response.replace(/^./, (digit) => String((Number(digit) + 1) % 10));
    writeFileSync(forged, encodeChallengeTable({ ...parsed, pairs: parsed.pairs.map((pair) => ({ ...pair, response: wrong(pair.response) })) }));
    const { code, out } = await run('check', { dongle: uri(stickA), table: forged });
    expect(code).toBe(ExitCode.authenticationFailed);
    expect(out).toBe('the dongle answered wrong: this is not the dongle the table was made for');
    const json = await run('check', { dongle: uri(stickA), table: forged, json: true });
    expect(JSON.parse(json.out)).toMatchObject({ event: 'table-checked', answered: false });
  });

  it('exit 4 before any challenge for a table made for another dongle', async () => {
    const { code, error } = await run('check', { dongle: uri(stickB), table });
    expect(code).toBe(ExitCode.authenticationFailed);
    expect(error).toBeInstanceOf(DongleAuthenticationError);
    expect(error!.message).toMatch(`the challenge table was made for dongle ${fingerprintA.slice(0, 16)}, not for emulated dongle`);
  });

  it('exit 3 when the dongle is absent (pulled out)', async () => {
    const pulled = join(root, 'pulled');
    cpSync(stickA, pulled, { recursive: true });
    expect((await run('check', { dongle: uri(pulled), table })).code).toBe(ExitCode.ok);
    rmSync(pulled, { recursive: true, force: true });
    const { code, error } = await run('check', { dongle: uri(pulled), table });
    expect(code).toBe(ExitCode.refusedByState);
    expect(error).toBeInstanceOf(DongleAbsentError);
  });

  it('exit 2 for a missing or malformed table, naming what is wrong', async () => {
    const missing = await run('check', { dongle: uri(stickA), table: join(root, 'no-table.json') });
    expect(missing.code).toBe(ExitCode.usage);
    expect(missing.error!.message).toMatch(/--table: cannot read .*no-table\.json: ENOENT/);
    const bad = outPath();
    writeFileSync(bad, '{"format": "vsc-challenge-table/1"');
    const malformed = await run('check', { dongle: uri(stickA), table: bad });
    expect(malformed.code).toBe(ExitCode.usage);
    expect(malformed.error).toBeInstanceOf(DongleError);
    expect(malformed.error!.message).toMatch(/^the challenge table is not JSON/);
  });
});

describe('donglePinFallback (shared by the dongle commands)', () => {
  it('reads the first line of --dongle-pin-file, which must be private', async () => {
    const pin = join(root, 'pin');
    writeFileSync(pin, 'stick passphrase\nsecond line\n', { mode: 0o600 });
    expect(fromUtf8(await donglePinFallback({ 'dongle-pin-file': pin })('the passphrase'))).toBe('stick passphrase');
    chmodSync(pin, 0o644);
    await expect(donglePinFallback({ 'dongle-pin-file': pin })('the passphrase')).rejects.toThrow(/--dongle-pin-file: .*chmod 600/);
  });

  it('opens a dongle whose URI names no pin-source', async () => {
    const pin = join(root, 'pin-2');
    writeFileSync(pin, 'stick passphrase\n', { mode: 0o600 });
    const out = outPath();
    const { code } = await run('create', { dongle: `emulated:${stickA}`, 'dongle-pin-file': pin, count: '2', out });
    expect(code).toBe(ExitCode.ok);
    expect(parseChallengeTable(readFileSync(out)).dongle).toBe(fingerprintA);
  });

  it('without a file and without a terminal: a usage error naming --dongle-pin-file', async () => {
    const tty = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
    Object.defineProperty(process.stdin, 'isTTY', { value: undefined, configurable: true });
    try {
      const error = await donglePinFallback({})('the passphrase of the emulated dongle /x').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe('no terminal to ask for the passphrase of the emulated dongle /x: use --dongle-pin-file FILE, or pin-source=file:/path in the dongle URI');
    } finally {
      if (tty === undefined) delete (process.stdin as { isTTY?: boolean }).isTTY;
      else Object.defineProperty(process.stdin, 'isTTY', tty);
    }
  });

  it('the group and its commands have help text and the shared dongle options', () => {
    expect(dongleTableGroup.name).toBe('table');
    for (const name of ['create', 'check']) {
      const options = command(name).options;
      expect(Object.keys(options)).toEqual(expect.arrayContaining(['dongle', 'dongle-pin-file', 'json']));
    }
    expect(fromUtf8(encodeChallengeTable(parseChallengeTable(readFileSync(new URL('../fixtures/fig14-challenge-table.json', import.meta.url)))))).toContain('"89766", "response": "09876"');
  });
});
