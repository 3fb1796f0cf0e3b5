// Throwaway SoftHSM2 tokens that stand for PKCS#11 dongles (patent 004 claim 10; DESIGN.md "Dongle-backed card"):
// a temp directory with its own softhsm2.conf (SOFTHSM2_CONF) and token directory, tokens in it each with a user
// PIN in a 0600 file, named by an RFC 7512 URI whose pin-source points at that file. SoftHSM2 reads SOFTHSM2_CONF
// in C_Initialize, in the process that loads it: pass `env` to the processes that open the dongles.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DongleFixture } from './dongle-fixture.js';
import { requireSoftHsmModule, run } from './pkcs11.js';

export interface SoftHsmDongleToken {
  readonly label: string;
  /** The user PIN (a throwaway test value) and the 0600 file holding it. */
  readonly pin: string;
  readonly pinFile: string;
  /** `pkcs11:token=LABEL?module-path=...&pin-source=file:PINFILE`. */
  readonly uri: string;
  /** The same URI with another PIN file (a wrong PIN, a file others may read). */
  uriWithPinFile(path: string): string;
  /** `softhsm2-util --delete-token`: the token is gone, as a pulled USB token is. */
  delete(): Promise<void>;
}

export interface SoftHsmHome {
  readonly dir: string;
  readonly module: string;
  /** What a process needs to see this home's tokens: SOFTHSM2_CONF. */
  readonly env: Readonly<Record<string, string>>;
  addToken(label: string, options?: { pin?: string; soPin?: string }): Promise<SoftHsmDongleToken>;
  /** Deletes the whole directory (every token in it). */
  close(): Promise<void>;
}

/**
 * A dongle URI (RFC 7512): encodeURIComponent leaves only characters both components allow unencoded; a query
 * value may also keep "/" and ":", which makes paths readable.
 */
export function dongleUri(label: string, module: string, pinFile: string): string {
  const query = (value: string): string => encodeURIComponent(value).replace(/%2F/g, '/').replace(/%3A/g, ':');
  return `pkcs11:token=${encodeURIComponent(label)}?module-path=${query(module)}&pin-source=file:${query(pinFile)}`;
}

/** A fresh SoftHSM2 home: no token yet (SoftHSM2 shows one free slot). Fails naming softhsm2 when it is not installed. */
export async function createSoftHsmHome(): Promise<SoftHsmHome> {
  const module = requireSoftHsmModule();
  const dir = await mkdtemp(join(tmpdir(), 'vsc-softhsm-dongle-'));
  const conf = join(dir, 'softhsm2.conf');
  const tokens = join(dir, 'tokens');
  await mkdir(tokens);
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = Object.freeze({ SOFTHSM2_CONF: conf });
  const pins = join(dir, 'pins');
  await mkdir(pins, { mode: 0o700 });
  return Object.freeze({
    dir,
    module,
    env,
    async addToken(label: string, options: { pin?: string; soPin?: string } = {}): Promise<SoftHsmDongleToken> {
      const { pin = '246810', soPin = '13579111' } = options;
      await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env });
      const pinFile = join(pins, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}.pin`);
      await writeFile(pinFile, `${pin}\n`, { mode: 0o600 });
      return Object.freeze({
        label,
        pin,
        pinFile,
        uri: dongleUri(label, module, pinFile),
        uriWithPinFile: (path: string) => dongleUri(label, module, path),
        delete: async () => {
          await run('softhsm2-util', ['--delete-token', '--token', label], { env });
        },
      });
    },
    close: () => rm(dir, { recursive: true, force: true }),
  });
}

/** A file holding a PIN (0600), for URIs that should log in with something else than the token's PIN. */
export async function writePinFile(dir: string, name: string, pin: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${pin}\n`, { mode: 0o600 });
  return path;
}

/** A SoftHSM2 token as a dongle fixture: detach deletes the token (for good: SoftHSM2 cannot put it back). */
export async function softHsmDongleFixture(name = 'softhsm'): Promise<DongleFixture> {
  const home = await createSoftHsmHome();
  try {
    const token = await home.addToken(name);
    return { name, uri: token.uri, env: home.env, detach: () => token.delete(), cleanup: () => home.close() };
  } catch (error) {
    await home.close();
    throw error;
  }
}
