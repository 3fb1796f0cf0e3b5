// `vsc validator init|serve` (patent 003 [0094]), `vsc vendor audit` ([0104]) and `vsc keyfile reissue` ([0062]):
// init, audit and reissue run in-process through main(); serve runs as its own process (through tsx, with the
// validator group in the command tree) and a program certifies its trail against it over HTTP. Output, --json,
// --help and exit codes: 0 ok, 2 usage, 3 refused, 4 wrong password.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import {
  certifyTrail, createKeyfile, formatUsageText, localTime, openVendor, closeVendor, RentalError, TrailFile, usageBinding, verifyKeyfile, writeRecord,
  type CertifyClient, type VendorKeys,
} from '../../src/rental/index.js';
import { REPO_ROOT, spawnTsScript, vscRentalCard } from '../support/index.js';
import { vscInProcess } from '../support/in-process-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-validator-cli-'));
const passwordFile = join(dir, 'password');
writeFileSync(passwordFile, 'a password\n', { mode: 0o600 });
const wrongPasswordFile = join(dir, 'wrong-password');
writeFileSync(wrongPasswordFile, 'not it\n', { mode: 0o600 });
const NONCE = '5a'.repeat(16);

const vsc = vscInProcess;
afterEach(() => vi.restoreAllMocks());

let vendor: VendorKeys;
let vendorKey: string;
let validatorKey: string;

beforeAll(async () => {
  const made = await vsc('vendor', 'init', '--data', join(dir, 'vendor'), '--name', 'Example Software', '--password-file', passwordFile, '--json');
  expect(made.code, made.stderr).toBe(0);
  vendorKey = (JSON.parse(made.stdout) as { signingKey: string }).signingKey;
  vendor = await openVendor(join(dir, 'vendor'), utf8('a password'));
}, 30_000);
afterAll(() => {
  closeVendor(vendor);
  rmSync(dir, { recursive: true, force: true });
});

let trails = 0;
/** A customer: a card, WP's keyfile on disk (naming the validator), a trail with uses and the vendor's audit record. */
async function customer(options: { audit?: boolean; validators?: string[] } = {}) {
  const card = await vscRentalCard();
  const bytes = createKeyfile(vendor, {
    program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset: 0n, acceptedKinds: ['software'], thresholds: ['intervals<=100'],
    validatorKeys: (options.validators ?? []).map((key) => Uint8Array.from(Buffer.from(key, 'hex'))), customer: 'ACME',
  }, { decoyBits: 0 });
  const keyfilePath = join(dir, `wp-${trails}.keyfile`);
  writeFileSync(keyfilePath, bytes);
  const trail = TrailFile.inDirectory(join(dir, `trail-${trails++}`));
  const binding = usageBinding('WP', card.trustRoot.publicKey);
  const write = (text: string) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (record) => trail.append(record) });
  for (let i = 0; i < 3; i++) await write(formatUsageText({ ...binding, kind: 'interval' }));
  if (options.audit !== false) await write(formatUsageText({ ...binding, kind: 'audit', nonce: NONCE, at: localTime(new Date('2026-11-28T10:00:00Z'), 60) }));
  await write(formatUsageText({ ...binding, kind: 'execution' }));
  const client: CertifyClient = {
    counter: () => card.rental.getCounter(),
    async write(text, expectCounter) {
      if ((await card.rental.getCounter()) !== expectCounter) throw new RentalError('counter-moved', 'moved');
      return write(text);
    },
  };
  return { card, bytes, keyfilePath, keyfile: verifyKeyfile(bytes, vendor.signingKey), trail, write, binding, client };
}

describe('vsc validator init', () => {
  it('prints the service key last (and as JSON); a second init is refused; help and a missing --data', async () => {
    const made = await vsc('validator', 'init', '--data', join(dir, 'validator'), '--name', 'Audit Co', '--password-file', passwordFile);
    expect(made.code, made.stderr).toBe(0);
    validatorKey = /([0-9a-f]{64})\s*$/.exec(made.stdout)![1]!;
    const again = await vsc('validator', 'init', '--data', join(dir, 'validator'), '--password-file', passwordFile, '--json');
    expect([again.code, again.stderr]).toEqual([3, expect.stringMatching(/already holds a validation service's key/)]);
    const other = await vsc('validator', 'init', '--data', join(dir, 'validator-2'), '--password-file', passwordFile, '--json');
    expect(JSON.parse(other.stdout)).toMatchObject({ event: 'validator-created', name: 'validator-2', validatorKey: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await vsc('validator', 'init', '--help')).stdout).toMatch(/--data VDIR/);
    expect((await vsc('validator', '--help')).stdout).toMatch(/serve/);
    expect((await vsc('validator', 'init')).code).toBe(2);
    expect(readFileSync(join(dir, 'validator', 'validator.json'), 'utf8')).not.toContain('a password');
  }, 30_000);
});

describe('vsc vendor audit ([0104])', () => {
  it('validates the trail offline, finds the nonce\'s card-signed audit record, prints the usage (text and --json)', async () => {
    const { keyfilePath, trail } = await customer();
    const shown = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor', join(dir, 'vendor'));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/trail valid for WP .* 5 records, counters 0\.\.4/);
    expect(shown.stdout).toMatch(/audit record of nonce (5a)+ at counter 3, card-signed/);
    expect(shown.stdout).toMatch(/usage: intervals=3;executions=1;skipped=0;audit=(5a)+@2026-11-28T11:00\+01:00/);
    const json = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor-key', vendorKey, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, program: 'WP', from: 'offset', records: 5, audit: { counter: '3' }, usage: { intervals: '3', executions: '1' }, thresholds: [{ allowed: true }] });
  });

  it('refuses (exit 3) a trail without the nonce, a modified trail, a keyfile of another vendor', async () => {
    const { keyfilePath, trail } = await customer({ audit: false });
    const missing = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor', join(dir, 'vendor'));
    expect([missing.code, missing.stderr]).toEqual([3, expect.stringMatching(/no card-signed audit record of WP with nonce (5a)+ among counters 0\.\.3/)]);
    const other = await customer();
    writeFileSync(other.trail.path, readFileSync(other.trail.path, 'utf8').replace('15 minutes', '14 minutes'));
    const modified = await vsc('vendor', 'audit', '--keyfile', other.keyfilePath, '--trail', other.trail.path, '--nonce', NONCE, '--vendor', join(dir, 'vendor'));
    expect([modified.code, modified.stderr]).toEqual([3, expect.stringMatching(/signature that does not verify/)]);
    const foreign = await vsc('vendor', 'audit', '--keyfile', other.keyfilePath, '--trail', other.trail.path, '--nonce', NONCE, '--vendor-key', '11'.repeat(32));
    expect([foreign.code, foreign.stderr]).toEqual([3, expect.stringMatching(/issued by vendor key [0-9a-f]{64}, none of the 1 given/)]);
  });

  it('bad input is exit 2 naming the option', async () => {
    const { keyfilePath, trail } = await customer();
    const cases: Array<[string[], RegExp]> = [
      [['--trail', trail.path, '--nonce', NONCE, '--vendor-key', vendorKey], /--keyfile is required/],
      [['--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE], /--vendor VDIR or --vendor-key HEX is required/],
      [['--keyfile', keyfilePath, '--trail', trail.path, '--nonce', 'XYZ', '--vendor-key', vendorKey], /--nonce: expected 16..64 bytes/],
      [['--keyfile', keyfilePath, '--trail', join(dir, 'none'), '--nonce', NONCE, '--vendor-key', vendorKey], /--trail: cannot read/],
      [['--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor-key', 'abc'], /--vendor-key: expected 64 lowercase hex digits/],
    ];
    for (const [args, message] of cases) {
      const run = await vsc('vendor', 'audit', ...args);
      expect([run.code, run.stderr], args.join(' ')).toEqual([2, expect.stringMatching(message)]);
    }
  });
});

describe('vsc keyfile reissue ([0062])', () => {
  it('issues a keyfile past a hole: same program and card, new id and offset; refuses a lower offset, another vendor\'s keyfile, a wrong password', async () => {
    const { keyfilePath, keyfile } = await customer();
    const out = join(dir, 'reissued.keyfile');
    const run = await vsc('keyfile', 'reissue', '--vendor', join(dir, 'vendor'), '--keyfile', keyfilePath, '--offset', '7', '--out', out, '--password-file', passwordFile, '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ event: 'keyfile-reissued', program: 'WP', replaces: toHex(keyfile.id), oldOffset: '0', offset: '7' });
    const inspect = await vsc('keyfile', 'inspect', '--keyfile', out, '--vendor', join(dir, 'vendor'), '--password-file', passwordFile, '--json');
    expect(JSON.parse(inspect.stdout)).toMatchObject({ signature: 'valid', offset: '7', program: 'WP', customer: 'ACME', replaces: toHex(keyfile.id), thresholds: ['intervals<=100'] });
    const lower = await vsc('keyfile', 'reissue', '--vendor', join(dir, 'vendor'), '--keyfile', out, '--offset', '3', '--out', join(dir, 'x.keyfile'), '--password-file', passwordFile);
    expect([lower.code, lower.stderr]).toEqual([3, expect.stringMatching(/new offset 3 is below the old keyfile's offset 7/)]);
    await vsc('vendor', 'init', '--data', join(dir, 'other-vendor'), '--password-file', passwordFile);
    const foreign = await vsc('keyfile', 'reissue', '--vendor', join(dir, 'other-vendor'), '--keyfile', out, '--offset', '9', '--out', join(dir, 'y.keyfile'), '--password-file', passwordFile);
    expect([foreign.code, foreign.stderr]).toEqual([3, expect.stringMatching(/not by this program's vendor/)]);
    const wrong = await vsc('keyfile', 'reissue', '--vendor', join(dir, 'vendor'), '--keyfile', out, '--offset', '9', '--out', join(dir, 'z.keyfile'), '--password-file', wrongPasswordFile);
    expect(wrong.code).toBe(4);
    expect((await vsc('keyfile', 'reissue', '--vendor', join(dir, 'vendor'), '--keyfile', out, '--offset', '-1', '--out', join(dir, 'z.keyfile'))).code).toBe(2);
    expect((await vsc('keyfile', 'reissue', '--help')).stdout).toMatch(/--offset N/);
  }, 30_000);
});

describe('vsc validator serve ([0094])', () => {
  it('serves over HTTP: a program certifies its trail, the audit then starts from the validator record; SIGTERM stops it (exit 0)', async () => {
    const server = spawnTsScript(join(REPO_ROOT, 'bin', 'vsc.js'), ['validator', 'serve', '--data', join(dir, 'validator'), '--listen', '127.0.0.1:0', '--trust-vendor', vendorKey, '--password-file', passwordFile, '--json']);
    try {
      const [, url] = await server.waitFor(/"url":"(http:[^"]+)"/, 30_000);
      const { keyfile, keyfilePath, trail, client, write, binding } = await customer({ validators: [validatorKey] });
      const certified = await certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: url! });
      expect(certified).toMatchObject({ from: 0n, records: 5, record: { counter: 5n }, summary: { intervals: 3n, executions: 1n } });
      await write(formatUsageText({ ...binding, kind: 'interval' }));
      const audited = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor-key', vendorKey, '--json');
      // The nonce precedes the validator record: from it, the audit asks for --full; with --full it passes.
      expect([audited.code, audited.stderr]).toEqual([3, expect.stringMatching(/among counters 5\.\.6 \(if it precedes that validator record, run with --full\)/)]);
      const full = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor-key', vendorKey, '--json', '--full');
      expect(JSON.parse(full.stdout)).toMatchObject({ from: 'offset', records: 7, usage: { intervals: '4' } });
      await write(formatUsageText({ ...binding, kind: 'audit', nonce: NONCE, at: localTime(new Date('2026-11-29T10:00:00Z'), 0) }));
      const fromValidator = await vsc('vendor', 'audit', '--keyfile', keyfilePath, '--trail', trail.path, '--nonce', NONCE, '--vendor-key', vendorKey, '--json');
      expect(JSON.parse(fromValidator.stdout)).toMatchObject({ from: 'validator-record', start: '5', records: 3, usage: { intervals: '4', executions: '1' } });
      expect(server.stderr()).toMatch(/"outcome":"attested"/);
    } finally {
      const stopped = await server.stop('SIGTERM');
      expect(stopped.code, server.output()).toBe(0);
      expect(stopped.stdout).toMatch(/"event":"stopped"/);
    }
    const noVendor = await vsc('validator', 'serve', '--data', join(dir, 'validator'), '--listen', '127.0.0.1:0', '--password-file', passwordFile);
    expect([noVendor.code, noVendor.stderr]).toEqual([2, expect.stringMatching(/--trust-vendor is required/)]);
    const badListen = await vsc('validator', 'serve', '--data', join(dir, 'validator'), '--listen', 'nowhere', '--trust-vendor', vendorKey, '--password-file', passwordFile);
    expect([badListen.code, badListen.stderr]).toEqual([2, expect.stringMatching(/--listen: expected HOST:PORT/)]);
    const wrong = await vsc('validator', 'serve', '--data', join(dir, 'validator'), '--listen', '127.0.0.1:0', '--trust-vendor', vendorKey, '--password-file', wrongPasswordFile);
    expect([wrong.code, wrong.stderr]).toEqual([4, expect.stringMatching(/validator password does not open/)]);
  }, 60_000);
});
