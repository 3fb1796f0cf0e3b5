// `vsc dongle attest` and the universal-key options of `vsc dongle init` (patent 003 [0096], [0098]-[0102]; DESIGN.md
// "Software rental", trust model, and "Dongle-backed card"), run in-process through main() with emulated dongles:
// usage errors, the refusals that need no token, and the help texts. The token cases run on SoftHSM2 in
// test/e2e/dongle-attest.test.ts.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { vscInProcess } from '../support/in-process-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-dongle-attest-cli-'));
const authority = join(dir, 'authority');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const passphrase = join(dir, 'passphrase');
writeFileSync(passphrase, 'stick passphrase\n', { mode: 0o600 });
const passwordFile = join(dir, 'password');
writeFileSync(passwordFile, 'owner password\n', { mode: 0o600 });
const stick = (name: string) => join(dir, `stick-${name}`);
const uri = (name: string) => `emulated:${stick(name)}?pin-source=file:${passphrase}`;
const universalKey = join(dir, 'universal.pem');
writeFileSync(universalKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

const vsc = vscInProcess;
afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  const init = await vsc('dongle', 'authority', 'init', '--data', authority, '--name', 'ACME issuing');
  expect(init.code, init.stderr).toBe(0);
}, 60_000);

const init = (name: string, ...more: string[]) => vsc('dongle', 'init', '--dongle', uri(name), '--serial', `S-${name}`, '--password-file', passwordFile, ...more);

describe('vsc dongle authority init --name', () => {
  it('names the authority in its first line; the two public keys stay last; a bad name exits 2', async () => {
    const other = join(dir, 'other-authority');
    const run = await vsc('dongle', 'authority', 'init', '--data', other, '--name', 'Other Ltd');
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`initialised the issuing authority "Other Ltd" in ${other}; cards escrow with it through "vsc dongle init ... --authority ${other}"`);
    expect(lines[1]).toMatch(/signing \(Ed25519: signs its revocation lists and its token attestations, so software vendors trust it\)/);
    expect(lines.slice(-2).every((line) => /^[0-9a-f]{64}$/.test(line))).toBe(true);
    const bad = await vsc('dongle', 'authority', 'init', '--data', join(dir, 'bad'), '--name', 'caf\u00e9');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--name: expected 1 to 64 printable ASCII characters/);
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });
});

describe('vsc dongle attest', () => {
  it('--help names the four attributes, the trusted key and every refusal', async () => {
    const help = await vsc('dongle', 'attest', '--help');
    expect(help.code).toBe(0);
    for (const words of ['CKA_SENSITIVE true', 'CKA_EXTRACTABLE false', 'CKA_NEVER_EXTRACTABLE true', 'CKA_LOCAL true', 'an emulated dongle (not duplication-protected)', 'revoked dongle', 'imported universal key']) {
      expect(help.stdout.replace(/\s+/g, ' ')).toContain(words);
    }
    expect((await vsc('dongle', '--help')).stdout).toMatch(/attest\s+the issuing authority attests/);
  });

  it('exits 2 without --dongle, --authority or --out', async () => {
    const out = join(dir, 'never.attestation');
    for (const args of [['--authority', authority, '--out', out], ['--dongle', uri('x'), '--out', out], ['--dongle', uri('x'), '--authority', authority]]) {
      const run = await vsc('dongle', 'attest', ...args);
      expect(run.code, args.join(' ')).toBe(2);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('refuses an emulated dongle with exit 3, naming it not duplication-protected, and writes nothing', { timeout: 60_000 }, async () => {
    expect((await init('emu', '--authority', authority)).code).toBe(0);
    const out = join(dir, 'emu.attestation');
    const run = await vsc('dongle', 'attest', '--dongle', uri('emu'), '--authority', authority, '--out', out, '--json');
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/not attested: emulated dongle .* is not duplication-protected/);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });
});

describe('vsc dongle init --key-mode universal ([0098]-[0102]): on a token only', () => {
  it('is refused without --keys-on-token (exit 2), saying why, before the dongle is touched', async () => {
    const run = await init('u1', '--key-mode', 'universal', '--universal-key', universalKey);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--key-mode universal needs --keys-on-token: a universal key \(patent 003 \[0098\]\) is shared by every customer's card/);
    expect(run.stderr).toMatch(/once read out there it signs any customer's audit trail/);
    expect(existsSync(stick('u1'))).toBe(false);
  });

  it('needs the vendor\'s key (--universal-key), which belongs to universal mode only; --attestation-out needs --authority and --keys-on-token', async () => {
    const noKey = await init('u2', '--keys-on-token', '--key-mode', 'universal');
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/needs the vendor's universal key \(--universal-key FILE\)/);
    const stray = await init('u2', '--keys-on-token', '--universal-key', universalKey);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/--universal-key belongs to --key-mode universal/);
    const unsigned = await init('u2', '--keys-on-token', '--attestation-out', join(dir, 'u2.attestation'));
    expect(unsigned.code).toBe(2);
    expect(unsigned.stderr).toMatch(/--attestation-out needs --authority DIR/);
    const notOnToken = await init('u2', '--authority', authority, '--attestation-out', join(dir, 'u2.attestation'));
    expect(notOnToken.code).toBe(2);
    expect(existsSync(stick('u2'))).toBe(false);
  });

  it('refuses a universal key file other users may read (exit 2, chmod 600) before the dongle is touched', async () => {
    const open = join(dir, 'open.pem');
    writeFileSync(open, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    chmodSync(open, 0o644); // main() sets umask 077 for this process
    const run = await init('u3', '--keys-on-token', '--key-mode', 'universal', '--universal-key', open);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/open\.pem is readable by other users \(mode 0644\): run "chmod 600/);
    expect(existsSync(stick('u3'))).toBe(false);
  });

  it('is refused on an emulated dongle, which cannot hold card keys (exit 3), and no card is written', { timeout: 60_000 }, async () => {
    const run = await init('u4', '--keys-on-token', '--key-mode', 'universal', '--universal-key', universalKey);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/--keys-on-token: this kind of dongle cannot hold card keys/);
    expect(existsSync(stick('u4')) ? readdirSync(stick('u4')).filter((name) => name.startsWith('card')) : []).toEqual([]);
  });
});

describe('vsc card emulate --help', () => {
  it('says --universal is for developers and that rental keyfiles refuse it', async () => {
    const help = (await vsc('card', 'emulate', '--help')).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--universal .*for development: rental keyfiles refuse it/);
    expect(help).toMatch(/rental keyfiles refuse such a card \("vsc keyfile create" accepts a universal key only as an attested token/);
  });
});
