// `vsc vendor init` and `vsc keyfile create|inspect` as a vendor runs them (patent 003 [0064]-[0075]; DESIGN.md
// "Software rental"): the card's serial, public key and counter read through the real pcscd, a software key refused
// unless the vendor accepts it explicitly (with a warning), the keyfile checked against the vendor's key.
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPcscd } from '../../src/reader-driver/index.js';
import { VscAppletClient } from '../../src/card-client/index.js';
import { runVsc, startEmulator, waitForCard, type EmulatorProcess } from '../support/index.js';

const PORT = 35963;
const READER = 'Virtual PCD 00 00';

let dir: string;
let emulator: EmulatorProcess;
let passwordFile: string;
let vendorKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vsc-rental-keyfile-'));
  passwordFile = join(dir, 'vendor-password');
  await writeFile(passwordFile, 'vendor password\n', { mode: 0o600 });
  await waitForCard(READER, false, 5_000);
  emulator = await startEmulator({ port: PORT, stateFile: join(dir, 'card.state') });
  await waitForCard(READER, true);
});

afterAll(async () => {
  await emulator?.stop().catch(() => null);
  await rm(dir, { recursive: true, force: true });
});

describe('vsc vendor init, vsc keyfile create and inspect', () => {
  it('vendor init prints the public key to build into the program, last', async () => {
    const init = await runVsc(['vendor', 'init', '--data', join(dir, 'vendor'), '--name', 'Example Software', '--password-file', passwordFile]);
    expect(init.code, init.stderr).toBe(0);
    vendorKey = /([0-9a-f]{64})\s*$/.exec(init.stdout)![1]!;
  });

  it('refuses a card whose key its owner can read unless the vendor accepts software keys, then warns and issues', async () => {
    const args = ['keyfile', 'create', '--vendor', join(dir, 'vendor'), '--reader', READER, '--program', 'WP', '--threshold', 'intervals<=24', '--right', 'print', '--customer', 'ACME, cn=alice', '--out', join(dir, 'wp.keyfile'), '--password-file', passwordFile];
    const refused = await runVsc(args);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/shows no attestation .* --accept-software-keys/);
    const issued = await runVsc([...args, '--accept-software-keys', '--json']);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stderr).toMatch(/warning: card .* keeps its signing key where its owner can read it/);
    const connection = await connectPcscd(READER);
    try {
      const card = new VscAppletClient(connection);
      await card.select();
      expect(JSON.parse(issued.stdout)).toMatchObject({ program: 'WP', serial: await card.serialNumber(), publicKey: Buffer.from(await card.publicKey()).toString('hex'), offset: (await card.counter()).toString() });
    } finally {
      connection.disconnect();
    }
  });

  it('inspect checks the vendor signature and shows the customer to the vendor only; a modified keyfile is exit 3', async () => {
    const keyfile = join(dir, 'wp.keyfile');
    const checked = await runVsc(['keyfile', 'inspect', '--keyfile', keyfile, '--vendor-key', vendorKey, '--json']);
    expect(checked.code, checked.stderr).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({ signature: 'valid', program: 'WP', rights: ['print'], thresholds: ['intervals<=24'], customer: 'encrypted for the vendor' });
    const asVendor = await runVsc(['keyfile', 'inspect', '--keyfile', keyfile, '--vendor', join(dir, 'vendor'), '--password-file', passwordFile, '--json']);
    expect(JSON.parse(asVendor.stdout)).toMatchObject({ customer: 'ACME, cn=alice' });
    const bytes = await readFile(keyfile);
    bytes[bytes.length - 70] = bytes[bytes.length - 70]! ^ 0x40;
    await writeFile(join(dir, 'modified.keyfile'), bytes);
    const modified = await runVsc(['keyfile', 'inspect', '--keyfile', join(dir, 'modified.keyfile'), '--vendor-key', vendorKey]);
    expect(modified.code).toBe(3);
    expect(modified.stderr).toMatch(/vendor signature does not verify: it was modified|not a rental keyfile/);
  });
});
