// PKCS#11 modules (Cryptoki libraries) for the token dongle (patent 004 claim 10, [0104]; DESIGN.md "Dongle-backed
// card"), through the optional npm package pkcs11js, imported on first use. A module is loaded and C_Initialize'd
// once per path and shared by every dongle of the process (PKCS#11 v2.40 §5.4: one initialisation per
// application), reference counted, and C_Finalize'd when the last dongle lets go.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../errors/index.js';
import { DongleAbsentError, DongleError } from './dongle.js';
import { CK, CKR, ckrName, ckrOf, type Pkcs11Api, type Pkcs11Handle, type Pkcs11LibraryInfo } from './pkcs11-api.js';
import type { Pkcs11Uri } from './pkcs11-uri.js';

const PKCS11JS_MISSING =
  'the PKCS#11 dongle needs the npm package pkcs11js, compiled by npm ci (needs g++, make and python3): ' +
  'apt-get install -y g++ make python3 && npm ci';

interface Pkcs11jsPackage {
  readonly PKCS11: new () => Pkcs11Api;
}

let pkcs11js: Promise<Pkcs11jsPackage> | undefined;

/** pkcs11js, loaded on first use: an optional dependency, so the specifier is a variable that type checks leave alone. */
function loadPkcs11js(): Promise<Pkcs11jsPackage> {
  pkcs11js ??= (async () => {
    const specifier = 'pkcs11js';
    try {
      const loaded = (await import(specifier)) as { default?: Pkcs11jsPackage } & Partial<Pkcs11jsPackage>;
      const exports = loaded.default ?? (loaded as Pkcs11jsPackage);
      if (typeof exports.PKCS11 !== 'function') throw new TypeError('pkcs11js exports no PKCS11 class');
      return exports;
    } catch (error) {
      pkcs11js = undefined;
      throw new DongleError('pkcs11js-missing', PKCS11JS_MISSING, { cause: error });
    }
  })();
  return pkcs11js;
}

/** Where module-name=NAME is looked for (Debian's multiarch and SoftHSM2 directories), as NAME.so and libNAME.so. */
export const MODULE_DIRECTORIES: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu/pkcs11',
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu/pkcs11',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib/softhsm',
];

/** The module file a dongle URI names: module-path as given (it wins over module-name), else module-name looked up. */
export function resolveModulePath(uri: Pkcs11Uri, directories: readonly string[] = MODULE_DIRECTORIES): string {
  if (uri.modulePath !== undefined) return uri.modulePath;
  const name = uri.moduleName;
  if (name === undefined) throw new DongleError('uri', 'PKCS#11 URI: module-path=/path/to/module.so is required', { exitCode: ExitCode.usage });
  const candidates = directories.flatMap((directory) => [join(directory, `${name}.so`), join(directory, `lib${name}.so`)]);
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new DongleError('module', `no PKCS#11 module named ${name} in ${directories.join(', ')}; give its module-path=/path/to/module.so`, { exitCode: ExitCode.usage });
  }
  return found;
}

interface LoadedModule {
  readonly api: Pkcs11Api;
  readonly info: Pkcs11LibraryInfo;
  references: number;
  /** False when something else in the process had initialised the library: it is never finalised here then. */
  readonly ownsInitialisation: boolean;
  /** A call never returned (a hung token): finalising would wait for it, so the module stays loaded for good. */
  abandoned: boolean;
  /** Sessions the dongles hold per slot: the last one on a slot logs out (login state is per token, v2.40 §5.6). */
  readonly sessions: Map<string, number>;
}

const modules = new Map<string, LoadedModule>();

/** A dongle's share of a loaded, initialised module. */
export interface Pkcs11ModuleLease {
  readonly path: string;
  readonly api: Pkcs11Api;
  readonly info: Pkcs11LibraryInfo;
  /** Counts a session on `slot`; returns how many the module's dongles now hold there. */
  sessionOpened(slot: Pkcs11Handle): number;
  /** Uncounts one; returns how many remain (0: this was the last, so logging out harms no other dongle). */
  sessionClosed(slot: Pkcs11Handle): number;
  /** Keeps the module loaded for the rest of the process: a call into it is still running. */
  abandon(): void;
  /** Gives the share back; the last one finalises and unloads the module. Idempotent. */
  release(): void;
}

function initialise(path: string, api: Pkcs11Api): boolean {
  try {
    api.C_Initialize({ flags: CK.CKF_OS_LOCKING_OK });
    return true;
  } catch (error) {
    const rv = ckrOf(error);
    if (rv === CKR.CRYPTOKI_ALREADY_INITIALIZED) return false;
    if (rv === CKR.CANT_LOCK) {
      api.C_Initialize();
      return true;
    }
    if (rv === CKR.GENERAL_ERROR || rv === CKR.DEVICE_ERROR) {
      // tpm2-pkcs11 fails this way when its TPM does not answer (and says why on stderr).
      throw new DongleAbsentError(`the PKCS#11 module ${path} could not reach its device (${ckrName(rv)} from C_Initialize)`, { cause: error });
    }
    throw new DongleError('module', `the PKCS#11 module ${path} refused to start: ${ckrName(rv)} from C_Initialize`, { cause: error });
  }
}

/** Loads and initialises the module at `path`, or shares the one this process already has. */
export async function acquirePkcs11Module(path: string): Promise<Pkcs11ModuleLease> {
  const { PKCS11 } = await loadPkcs11js();
  let loaded = modules.get(path);
  if (loaded === undefined) {
    const api = new PKCS11();
    try {
      api.load(path);
    } catch (error) {
      const why = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      throw new DongleError('module', `cannot load the PKCS#11 module ${path}: ${why}`, { cause: error, exitCode: ExitCode.usage });
    }
    let ownsInitialisation: boolean;
    let info: Pkcs11LibraryInfo;
    try {
      ownsInitialisation = initialise(path, api);
      info = api.C_GetInfo();
    } catch (error) {
      try {
        api.close();
      } catch {
        // unloading a module that failed to start: nothing more to do
      }
      throw error;
    }
    loaded = { api, info, references: 0, ownsInitialisation, abandoned: false, sessions: new Map() };
    modules.set(path, loaded);
  }
  const module = loaded;
  module.references += 1;
  let released = false;
  const key = (slot: Pkcs11Handle): string => slot.toString('hex');
  return {
    path,
    api: module.api,
    info: module.info,
    sessionOpened: (slot) => {
      const count = (module.sessions.get(key(slot)) ?? 0) + 1;
      module.sessions.set(key(slot), count);
      return count;
    },
    sessionClosed: (slot) => {
      const count = Math.max(0, (module.sessions.get(key(slot)) ?? 0) - 1);
      if (count === 0) module.sessions.delete(key(slot));
      else module.sessions.set(key(slot), count);
      return count;
    },
    abandon: () => {
      module.abandoned = true;
    },
    release: () => {
      if (released) return;
      released = true;
      module.references -= 1;
      if (module.references > 0 || module.abandoned) return;
      modules.delete(path);
      try {
        if (module.ownsInitialisation) module.api.C_Finalize();
        module.api.close();
      } catch {
        // a module that fails to finalise is unloaded by the process's exit
      }
    },
  };
}
