// Dongles for the end-to-end tests, each taken away the way its user would take it away (patent 004 [0107]
// remove: "the end-user either removes the Dongle ..."): an emulated stick's directory moved away, a SoftHSM2
// token deleted, the TPM's swtpm stopped.
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { dongleSecrets, openDongle, type Dongle } from '../../src/dongle-backend/index.js';

export interface DongleFixture {
  readonly name: string;
  /** The dongle's URI, its PIN or passphrase named by pin-source. */
  readonly uri: string;
  /** What the `vsc` processes need in their environment to reach the dongle (SOFTHSM2_CONF, TPM2_PKCS11_*). */
  readonly env: Readonly<Record<string, string>>;
  /** Takes the dongle away. */
  detach(): Promise<void>;
  /** Puts the same dongle back, where the kind allows it (a deleted SoftHSM2 token is gone for good). */
  readonly reattach?: () => Promise<void>;
  cleanup(): Promise<void>;
}

/** An emulated dongle in a temp directory, its passphrase in a 0600 file. */
export async function emulatedDongleFixture(name = 'emulated'): Promise<DongleFixture> {
  const root = await mkdtemp(join(tmpdir(), 'vsc-dongle-'));
  const passphrase = join(root, 'passphrase');
  await writeFile(passphrase, `passphrase of ${name}\n`, { mode: 0o600 });
  const stick = join(root, 'stick');
  const away = join(root, 'pulled-out');
  return {
    name,
    uri: `emulated:${stick}?pin-source=file:${passphrase}`,
    env: {},
    detach: async () => renameSync(stick, away),
    reattach: async () => {
      if (existsSync(away)) renameSync(away, stick);
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Emulated dongles opened in this process, all under one temp root with one 0600 passphrase file. */
export interface EmulatedDongles {
  readonly root: string;
  /** The passphrase file every dongle's URI names as pin-source. */
  readonly passphrase: string;
  /** The URI of the emulated dongle in `dir` (absolute, or relative to the root). */
  uri(dir: string, passphrase?: string): string;
  open(dir: string, passphrase?: string): Promise<Dongle>;
  cleanup(): void;
}

export function emulatedDongles(prefix: string): EmulatedDongles {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const passphrase = join(root, 'passphrase');
  writeFileSync(passphrase, 'stick passphrase\n', { mode: 0o600 });
  const secrets = dongleSecrets(async () => {
    throw new Error('the tests name every passphrase in the URI');
  });
  const uri = (dir: string, pin = passphrase) => `emulated:${isAbsolute(dir) ? dir : join(root, dir)}?pin-source=file:${pin}`;
  return { root, passphrase, uri, open: (dir, pin) => openDongle(uri(dir, pin), secrets), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
