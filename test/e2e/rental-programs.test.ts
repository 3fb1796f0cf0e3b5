// Three rented programs on one card and one rental server at once, through the real pcscd (patent 003 [0046]-[0049],
// [0058]; issue "Show": "no lost or duplicated counter, each sees its own usage, one over its threshold does not stop
// the others"). The card is a `vsc card emulate --vpcd` card; the keyfiles come from `vsc keyfile create` reading it
// through pcscd; the programs are the example rented program (separate processes) and two programs on the SDK, all
// talking to `vsc rental serve` on its socket; then `vsc rental validate|usage|write` as a person runs them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rental, RentalClient, TrailFile, validateThroughServer, type RentalDecision, type TrustRoot } from '../../src/rental/index.js';
import { REPO_ROOT, runVsc, spawnTsScript, spawnVsc, startEmulator, waitForCard, type EmulatorProcess, type VscProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';

let dir: string;
let emulator: EmulatorProcess;
let server: VscProcess;
let vendorKey: string;
const socket = () => join(dir, 'run', 'rental.sock');
const trailPath = () => join(dir, 'trail', 'trail.jsonl');

async function keyfile(program: string, thresholds: string[], rights: string[] = [], extra: string[] = []): Promise<{ path: string; offset: bigint; root: TrustRoot }> {
  const path = join(dir, `${program}.keyfile`);
  const created = await runVsc([
    'keyfile', 'create', '--vendor', join(dir, 'vendor'), '--password-file', join(dir, 'vendor-password'), '--reader', READER, '--program', program,
    ...thresholds.flatMap((spec) => ['--threshold', spec]), ...rights.flatMap((right) => ['--right', right]), ...extra, '--accept-software-keys', '--out', path, '--json',
  ]);
  expect(created.code, created.stderr).toBe(0);
  const shown = JSON.parse(created.stdout) as { serial: string; publicKey: string; offset: string };
  return { path, offset: BigInt(shown.offset), root: { serial: shown.serial, publicKey: Uint8Array.from(Buffer.from(shown.publicKey, 'hex')), keyMode: 'individual' } };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-rental-programs-'));
  writeFileSync(join(dir, 'vendor-password'), 'vendor password\n', { mode: 0o600 });
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
  const init = await runVsc(['vendor', 'init', '--data', join(dir, 'vendor'), '--name', 'Example Software', '--password-file', join(dir, 'vendor-password')]);
  expect(init.code, init.stderr).toBe(0);
  vendorKey = /([0-9a-f]{64})\s*$/.exec(init.stdout)![1]!;
  server = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'trail'), '--backup-trail', join(dir, 'backup'), '--socket', socket(), '--json']);
  await server.waitFor(/"event":"serving"/, 30_000);
});

afterAll(async () => {
  await server?.kill();
  await emulator?.stop().catch(() => null);
  rmSync(dir, { recursive: true, force: true });
});

/** One run of the example rented program as its own process; its JSON output. */
async function wordCount(keyfilePath: string, file: string): Promise<{ mode: string; reason: string }> {
  const run = await spawnTsScript(join(REPO_ROOT, 'bin', 'rented-word-count.js'), ['--keyfile', keyfilePath, '--socket', socket(), '--json', file], { env: { WC_RENTED_VENDOR_KEY: vendorKey } }).exited;
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { mode: string; reason: string };
}

describe('three rented programs on one card and one rental server, through pcscd', () => {
  it('share the trail without a lost or repeated counter; each counts its own use; one over its threshold stops alone', async () => {
    const wc = await keyfile('wc-rented', ['executions<=100']);
    const wp = await keyfile('WP', ['intervals<=5'], ['print']);
    const ss = await keyfile('SS', ['executions<=1000']);
    const input = join(dir, 'words.txt');
    writeFileSync(input, 'alpha beta gamma\n');
    const open = (k: { path: string }) => Rental.open({ keyfile: readFileSync(k.path), vendorKey, socket: socket() });
    const wpRental = await open(wp);
    const ssRental = await open(ss);
    const wpDecisions: RentalDecision[] = [];
    const ssDecisions: RentalDecision[] = [];
    const wcModes: string[] = [];
    await Promise.all([
      (async () => { for (let i = 0; i < 7; i++) wpDecisions.push(await wpRental.charge('interval')); })(),
      (async () => { for (let i = 0; i < 10; i++) ssDecisions.push(await ssRental.charge('execution')); })(),
      (async () => { for (let i = 0; i < 4; i++) wcModes.push((await wordCount(wc.path, input)).mode); })(),
    ]);
    // WP: five intervals allowed ([0049]), the sixth and seventh refused, naming the threshold.
    expect(wpDecisions.map((decision) => decision.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(wpDecisions[5]).toMatchObject({ denial: 'threshold' });
    expect(wpDecisions[5]!.reason).toMatch(/intervals<=5/);
    expect(wpRental.allows('print')).toBe(false);
    // The others go on: SS's executions all allowed, the example program always in full mode.
    expect(ssDecisions.every((decision) => decision.allowed)).toBe(true);
    expect(wcModes).toEqual(['full', 'full', 'full', 'full']);
    const lastSs = ssDecisions[9]!;
    if (lastSs.allowed) expect(lastSs.usage.executions).toBe(10n);
    // After WP stopped, SS still charges.
    expect((await ssRental.charge('execution')).allowed).toBe(true);
    await wpRental.close();
    await ssRental.close();

    // The trail: every counter from the offset once, in order, each record signed by the card; the backup the same.
    const records = new TrailFile(trailPath()).readAll();
    expect(records.map((record) => record.counter)).toEqual(records.map((_, i) => wc.offset + BigInt(i)));
    const count = (pattern: RegExp) => records.filter((record) => pattern.test(record.text)).length;
    expect(count(/^WP 15 minutes public key /)).toBe(5);
    expect(count(/^SS execution public key /)).toBe(11);
    expect(count(/^wc-rented execution public key /)).toBe(4);
    expect(readFileSync(join(dir, 'backup', 'trail.jsonl'), 'utf8')).toBe(readFileSync(trailPath(), 'utf8'));
    const client = await RentalClient.connect(socket());
    try {
      const result = await validateThroughServer({ link: client, trustRoot: wc.root, offset: wc.offset, text: (c) => `checked ${c}`, records: () => new TrailFile(trailPath()).recordBatches() });
      expect(result.records).toBe(records.length + 1);
    } finally {
      client.close();
    }
  });

  it('vsc rental validate, usage and write: exit 0 while allowed, 3 naming the threshold or the trail\'s fault', async () => {
    const ed = await keyfile('ED', ['executions<=1']);
    const validate = await runVsc(['rental', 'validate', '--keyfile', ed.path, '--vendor-key', vendorKey, '--socket', socket()]);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stdout).toMatch(/ED on card .*: the trail is valid and current/);
    const write = await runVsc(['rental', 'write', '--keyfile', ed.path, '--use', 'execution', '--socket', socket(), '--json']);
    expect(write.code, write.stderr).toBe(0);
    expect(JSON.parse(write.stdout)).toMatchObject({ event: 'record-written', text: expect.stringMatching(/^ED execution public key [0-9a-f]{32}$/) });
    const usage = await runVsc(['rental', 'usage', '--keyfile', ed.path, '--socket', socket(), '--json']);
    expect(usage.code).toBe(3);
    expect(JSON.parse(usage.stdout)).toMatchObject({ allowed: false, denial: 'threshold', program: 'ED', vendorChecked: false });
    const foreign = await runVsc(['rental', 'validate', '--keyfile', ed.path, '--vendor-key', '11'.repeat(32), '--socket', socket()]);
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toMatch(/issued by vendor key/);
    const bad = await runVsc(['rental', 'write', '--keyfile', ed.path, '--use', 'sometimes', '--socket', socket()]);
    expect(bad.code).toBe(2);
    // A record deleted from the middle of the trail: every program refuses, naming the hole ([0051]).
    const lines = readFileSync(trailPath(), 'utf8').split('\n');
    const executed = lines.findIndex((line) => line.includes('"text":"ED execution public key'));
    expect(executed).toBeGreaterThan(0);
    writeFileSync(trailPath(), [...lines.slice(0, executed), ...lines.slice(executed + 1)].join('\n'));
    const holed = await runVsc(['rental', 'validate', '--keyfile', ed.path, '--vendor-key', vendorKey, '--socket', socket(), '--json']);
    expect(holed.code).toBe(3);
    expect(JSON.parse(holed.stdout)).toMatchObject({ allowed: false, denial: 'trail', code: 'rental.hole' });
    const noServer = await runVsc(['rental', 'validate', '--keyfile', ed.path, '--socket', join(dir, 'none', 'rental.sock')]);
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toMatch(/no rental server answers/);
  });

  it('vsc rental certify: a validation service vouches for the trail so far; the program then validates from its record, older records deleted', async () => {
    const init = await runVsc(['validator', 'init', '--data', join(dir, 'validator'), '--password-file', join(dir, 'vendor-password')]);
    expect(init.code, init.stderr).toBe(0);
    const validatorKey = /([0-9a-f]{64})\s*$/.exec(init.stdout)![1]!;
    const service = spawnVsc(['validator', 'serve', '--data', join(dir, 'validator'), '--listen', '127.0.0.1:0', '--trust-vendor', vendorKey, '--password-file', join(dir, 'vendor-password'), '--json']);
    try {
      const [, url] = await service.waitFor(/"url":"(http:[^"]+)"/, 30_000);
      const vp = await keyfile('VP', ['executions<=100'], [], ['--validator-key', validatorKey]);
      for (let i = 0; i < 3; i++) expect((await runVsc(['rental', 'write', '--keyfile', vp.path, '--use', 'execution', '--socket', socket()])).code).toBe(0);
      const certified = await runVsc(['rental', 'certify', '--keyfile', vp.path, '--validator', url!, '--socket', socket(), '--json']);
      expect(certified.code, certified.stderr).toBe(0);
      const shown = JSON.parse(certified.stdout) as { counter: string; executions: string; validatorKey: string };
      expect(shown).toMatchObject({ event: 'certified', program: 'VP', executions: '3', validatorKey });
      expect((await runVsc(['rental', 'write', '--keyfile', vp.path, '--use', 'execution', '--socket', socket()])).code).toBe(0);
      // Every line before the validator record deleted: the program starts from the record the service vouched for.
      const lines = readFileSync(trailPath(), 'utf8').split('\n');
      const at = lines.findIndex((line) => line.includes('"text":"VP validated '));
      expect(at).toBeGreaterThan(0);
      writeFileSync(trailPath(), lines.slice(at).join('\n'));
      const usage = await runVsc(['rental', 'usage', '--keyfile', vp.path, '--vendor-key', vendorKey, '--socket', socket(), '--json']);
      expect(usage.code, usage.stderr).toBe(0);
      expect(JSON.parse(usage.stdout)).toMatchObject({ allowed: true, usage: { executions: '4' } });
      // The validator record itself deleted too: nothing vouches for the older records, the keyfile's offset is gone: refused.
      writeFileSync(trailPath(), lines.slice(at + 1).join('\n'));
      const refused = await runVsc(['rental', 'validate', '--keyfile', vp.path, '--vendor-key', vendorKey, '--socket', socket(), '--json']);
      expect(refused.code).toBe(3);
      expect(JSON.parse(refused.stdout)).toMatchObject({ allowed: false, denial: 'trail', code: 'rental.offset' });
    } finally {
      await service.kill();
    }
  });
});
