// Software rental on the cards a vendor can trust (DESIGN.md "Software rental", trust model; patent 003 [0096]):
// a dongle card whose key was generated on a SoftHSM2 token, attested by its issuing authority (`vsc dongle
// attest`), served through vpcd and the real pcscd. `vsc keyfile create` reads it through pcscd and, trusting the
// authority's key, makes a `token` keyfile without --accept-software-keys; `vsc rental serve` owns it; a rented
// program charges and validates on it, and a keyfile that trusts another attester refuses it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { readAuthorityReference } from '../../src/dongle-backend/index.js';
import { Rental } from '../../src/rental/index.js';
import { createSoftHsmHome, runVsc, spawnVsc, vpcdHostWithQuickack, waitForCard, type SoftHsmHome, type VpcdHost, type VscProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';
const SLOW = 180_000;

let dir: string;
let home: SoftHsmHome;
let vpcd: VpcdHost;
let passwordFile: string;
let vendorKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-rental-backings-'));
  passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'card and vendor password\n', { mode: 0o600 });
  home = await createSoftHsmHome();
  await waitForCard(READER, false, 5_000);
  vpcd = await vpcdHostWithQuickack();
  const vendor = await runVsc(['vendor', 'init', '--data', join(dir, 'vendor'), '--name', 'Example Software', '--password-file', passwordFile]);
  expect(vendor.code, vendor.stderr).toBe(0);
  vendorKey = /([0-9a-f]{64})\s*$/.exec(vendor.stdout)![1]!;
}, SLOW);

afterAll(async () => {
  await vpcd?.release();
  await home?.close();
  await rm(dir, { recursive: true, force: true });
});

const keyfileArgs = (program: string, out: string) => [
  'keyfile', 'create', '--vendor', join(dir, 'vendor'), '--password-file', passwordFile, '--reader', READER, '--program', program, '--threshold', 'executions<=2', '--out', out, '--json',
];

describe('a dongle card with its key on the token, attested by its issuing authority', () => {
  it('gets a token keyfile without --accept-software-keys, and rents a program through the rental server and pcscd', { timeout: SLOW }, async () => {
    const env = { ...home.env, XDG_STATE_HOME: join(dir, 'data') };
    const token = await home.addToken('rental-token');
    const authority = join(dir, 'authority');
    expect((await runVsc(['dongle', 'authority', 'init', '--data', authority, '--name', 'ACME token authority'], { env })).code).toBe(0);
    const authorityKey = toHex(readAuthorityReference(authority).signingKey);
    const init = await runVsc(['dongle', 'init', '--dongle', token.uri, '--serial', 'RENT-TOKEN-1', '--password-file', passwordFile, '--keys-on-token', '--authority', authority, '--json'], { env });
    expect(init.code, init.stderr).toBe(0);
    const attestation = join(dir, 'token.attestation');
    const attested = await runVsc(['dongle', 'attest', '--dongle', token.uri, '--authority', authority, '--out', attestation, '--json'], { env });
    expect(attested.code, attested.stderr).toBe(0);

    const state = join(dir, 'card-state');
    const card: VscProcess = spawnVsc(['card', 'insert', '--dongle', token.uri, '--password-file', passwordFile, '--vpcd', `${vpcd.host}:${PORT}`, '--state-dir', state, '--json'], { env });
    let server: VscProcess | undefined;
    try {
      await card.waitFor(/"event":"inserted"/, 60_000);
      await waitForCard(READER, true);

      // Without trusting the authority, the card's key is as good as software: refused.
      const untrusted = await runVsc(keyfileArgs('WP', join(dir, 'refused.keyfile')));
      expect(untrusted.code).toBe(3);
      const otherAuthority = 'ab'.repeat(32);
      const wrongTrust = await runVsc([...keyfileArgs('WP', join(dir, 'refused.keyfile')), '--attestation', attestation, '--trust-attester', otherAuthority]);
      expect(wrongTrust.code).toBe(3);
      expect(wrongTrust.stderr).toMatch(/not among the trusted attester keys/);

      const keyfilePath = join(dir, 'wp.keyfile');
      const created = await runVsc([...keyfileArgs('WP', keyfilePath), '--attestation', attestation, '--trust-attester', authorityKey]);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).not.toMatch(/warning/);
      const inspected = await runVsc(['keyfile', 'inspect', '--keyfile', keyfilePath, '--vendor-key', vendorKey, '--json']);
      expect(JSON.parse(inspected.stdout)).toMatchObject({ card: { serial: 'RENT-TOKEN-1', kind: 'token' } });

      const socket = join(dir, 'run', 'rental.sock');
      server = spawnVsc(['rental', 'serve', '--reader', READER, '--trail', join(dir, 'trail'), '--socket', socket, '--json']);
      await server.waitFor(/"event":"serving"/, 30_000);
      const rental = await Rental.open({ keyfile: await readFile(keyfilePath), vendorKey, socket });
      try {
        expect((await rental.charge('execution')).allowed).toBe(true);
        expect((await rental.charge('execution')).allowed).toBe(true);
        expect(await rental.charge('execution')).toMatchObject({ allowed: false, denial: 'threshold' });
      } finally {
        await rental.close();
      }
      const trail = await readFile(join(dir, 'trail', 'trail.jsonl'), 'utf8');
      expect(trail.match(/"text":"WP execution public key /g)).toHaveLength(2);
    } finally {
      await server?.kill();
      const removed = await runVsc(['card', 'remove', '--state-dir', state], { env });
      expect(removed.code, removed.stderr).toBe(0);
      await card.exited;
      await waitForCard(READER, false);
    }
  });
});
