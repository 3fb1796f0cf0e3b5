// PKCS#11 modules (Cryptoki libraries) for the token dongle (patent 004 claim 10, [0104]; DESIGN.md "Dongle-backed
// card"), through the optional npm package pkcs11js. A module is loaded and C_Initialize'd once per path and
// shared by every dongle of the process (PKCS#11 v2.40 §5.4: one initialisation per application), reference
// counted, and C_Finalize'd when the last dongle lets go. Also: the small part of the Cryptoki API the dongle
// uses, typed here so that type checks pass where pkcs11js could not be compiled, and its constants.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../errors/index.js';
import { DongleAbsentError, DongleError } from './dongle.js';
import type { Pkcs11Uri } from './pkcs11-uri.js';

/** A CK_SLOT_ID or CK_OBJECT_HANDLE / CK_SESSION_HANDLE as pkcs11js carries it: the CK_ULONG's bytes. */
export type Pkcs11Handle = Buffer;

export interface Pkcs11Attribute {
  readonly type: number;
  readonly value?: number | boolean | string | Buffer;
}

export interface Pkcs11Mechanism {
  readonly mechanism: number;
}

export interface Pkcs11TokenInfo {
  readonly label: string;
  readonly manufacturerID: string;
  readonly model: string;
  readonly serialNumber: string;
  readonly flags: number;
}

export interface Pkcs11SlotInfo {
  readonly slotDescription: string;
  readonly manufacturerID: string;
}

export interface Pkcs11LibraryInfo {
  readonly manufacturerID: string;
  readonly libraryDescription: string;
  readonly libraryVersion: { readonly major: number; readonly minor: number };
}

/** The Cryptoki functions the dongle calls, as pkcs11js exposes them (synchronous unless they return a Promise). */
export interface Pkcs11Api {
  load(path: string): void;
  close(): void;
  C_Initialize(options?: { flags?: number }): void;
  C_Finalize(): void;
  C_GetInfo(): Pkcs11LibraryInfo;
  C_GetSlotList(tokenPresent?: boolean): Pkcs11Handle[];
  C_GetSlotInfo(slot: Pkcs11Handle): Pkcs11SlotInfo;
  C_GetTokenInfo(slot: Pkcs11Handle): Pkcs11TokenInfo;
  C_GetMechanismList(slot: Pkcs11Handle): number[];
  C_OpenSession(slot: Pkcs11Handle, flags: number): Pkcs11Handle;
  C_CloseSession(session: Pkcs11Handle): void;
  C_Login(session: Pkcs11Handle, userType: number, pin?: string): void;
  C_Logout(session: Pkcs11Handle): void;
  C_FindObjectsInit(session: Pkcs11Handle, template: readonly Pkcs11Attribute[]): void;
  C_FindObjects(session: Pkcs11Handle, maxObjectCount: number): Pkcs11Handle[];
  C_FindObjectsFinal(session: Pkcs11Handle): void;
  C_GetAttributeValue(session: Pkcs11Handle, object: Pkcs11Handle, template: readonly Pkcs11Attribute[]): { type: number; value?: Buffer }[];
  C_CreateObject(session: Pkcs11Handle, template: readonly Pkcs11Attribute[]): Pkcs11Handle;
  C_DestroyObject(session: Pkcs11Handle, object: Pkcs11Handle): void;
  C_GenerateKeyPairAsync(
    session: Pkcs11Handle, mechanism: Pkcs11Mechanism, publicTemplate: readonly Pkcs11Attribute[], privateTemplate: readonly Pkcs11Attribute[],
  ): Promise<{ publicKey: Pkcs11Handle; privateKey: Pkcs11Handle }>;
  C_SignInit(session: Pkcs11Handle, mechanism: Pkcs11Mechanism, key: Pkcs11Handle): void;
  C_SignAsync(session: Pkcs11Handle, data: Buffer, signature: Buffer): Promise<Buffer>;
}

/** PKCS#11 v2.40 and v3.0 constants (pkcs11t.h), only those the dongle uses. */
export const CK = Object.freeze({
  // Initialisation and session flags (v2.40 §3.6, §5.4, §5.6)
  CKF_OS_LOCKING_OK: 0x2,
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
  CKU_USER: 1,
  // CK_TOKEN_INFO flags (v2.40 §3.2)
  CKF_LOGIN_REQUIRED: 0x4,
  CKF_PROTECTED_AUTHENTICATION_PATH: 0x100,
  CKF_USER_PIN_COUNT_LOW: 0x10000,
  CKF_USER_PIN_FINAL_TRY: 0x20000,
  CKF_USER_PIN_LOCKED: 0x40000,
  // Object classes and key types (v2.40 §4.1, v3.0 §2.3.8: CKK_EC_EDWARDS)
  CKO_DATA: 0x0,
  CKO_PUBLIC_KEY: 0x2,
  CKO_PRIVATE_KEY: 0x3,
  CKK_RSA: 0x0,
  CKK_EC_EDWARDS: 0x40,
  // Attributes (v2.40 §4)
  CKA_CLASS: 0x0,
  CKA_TOKEN: 0x1,
  CKA_PRIVATE: 0x2,
  CKA_LABEL: 0x3,
  CKA_APPLICATION: 0x10,
  CKA_VALUE: 0x11,
  CKA_KEY_TYPE: 0x100,
  CKA_ID: 0x102,
  CKA_SENSITIVE: 0x103,
  CKA_SIGN: 0x108,
  CKA_VERIFY: 0x10a,
  CKA_MODULUS: 0x120,
  CKA_MODULUS_BITS: 0x121,
  CKA_PUBLIC_EXPONENT: 0x122,
  CKA_EXTRACTABLE: 0x162,
  CKA_MODIFIABLE: 0x170,
  CKA_EC_PARAMS: 0x180,
  CKA_EC_POINT: 0x181,
  // Mechanisms (v2.40 §2.1, v3.0 §2.3.9-§2.3.14)
  CKM_RSA_PKCS_KEY_PAIR_GEN: 0x0,
  CKM_RSA_PKCS: 0x1,
  CKM_SHA256_RSA_PKCS: 0x40,
  CKM_EC_EDWARDS_KEY_PAIR_GEN: 0x1055,
  CKM_EDDSA: 0x1057,
});

/** Return values (v2.40 §3.6, pkcs11t.h) the dongle tells apart or names in messages. */
export const CKR = Object.freeze({
  SLOT_ID_INVALID: 0x03,
  GENERAL_ERROR: 0x05,
  FUNCTION_FAILED: 0x06,
  CANT_LOCK: 0x0a,
  ATTRIBUTE_READ_ONLY: 0x10,
  ATTRIBUTE_SENSITIVE: 0x11,
  ATTRIBUTE_TYPE_INVALID: 0x12,
  ATTRIBUTE_VALUE_INVALID: 0x13,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  FUNCTION_NOT_SUPPORTED: 0x54,
  KEY_HANDLE_INVALID: 0x60,
  MECHANISM_INVALID: 0x70,
  OBJECT_HANDLE_INVALID: 0x82,
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_HANDLE_INVALID: 0xb3,
  TEMPLATE_INCOMPLETE: 0xd0,
  TEMPLATE_INCONSISTENT: 0xd1,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  TOKEN_WRITE_PROTECTED: 0xe2,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  DOMAIN_PARAMS_INVALID: 0x130,
  CURVE_NOT_SUPPORTED: 0x140,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
});

const CKR_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(CKR).map(([name, rv]) => [rv, `CKR_${name}`]));

/** The CKR_* a pkcs11js call failed with, or undefined for any other failure. */
export function ckrOf(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  // pkcs11js's Pkcs11Error: message "CKR_PIN_INCORRECT", code 160; its native form reads "CKR_PIN_INCORRECT:160".
  const code = (error as { code?: unknown }).code;
  if (/^CKR_/.test(error.message) && typeof code === 'number' && code > 0) return code;
  const match = /\bCKR_[A-Z0-9_]+:(\d+)/.exec(`${error.message}\n${error.stack ?? ''}`);
  return match === null ? undefined : Number(match[1]);
}

export function ckrName(rv: number | undefined): string {
  if (rv === undefined) return 'a failure outside PKCS#11';
  return CKR_NAMES.get(rv) ?? `CKR 0x${rv.toString(16)}`;
}

/**
 * Return values that mean the token is gone or no longer the one that was opened: pulled (TOKEN_NOT_PRESENT,
 * DEVICE_REMOVED), its sessions dropped (SESSION_*, USER_NOT_LOGGED_IN after a re-insert), its device failing
 * (DEVICE_ERROR, TOKEN_NOT_RECOGNIZED), objects opened earlier vanished (a SoftHSM2 token deleted under a running
 * process: OBJECT/KEY_HANDLE_INVALID), and GENERAL_ERROR, which is how tpm2-pkcs11 reports a TPM that no longer
 * answers (its TCTI failing) and SoftHSM2 a token whose directory was deleted.
 */
const GONE = new Set<number>([
  CKR.TOKEN_NOT_PRESENT, CKR.DEVICE_REMOVED, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED, CKR.DEVICE_ERROR,
  CKR.TOKEN_NOT_RECOGNIZED, CKR.USER_NOT_LOGGED_IN, CKR.OBJECT_HANDLE_INVALID, CKR.KEY_HANDLE_INVALID, CKR.GENERAL_ERROR,
  CKR.SLOT_ID_INVALID, // the slot itself went away (a hot-plugged reader)
]);

export function isGone(rv: number | undefined): boolean {
  return rv !== undefined && GONE.has(rv);
}

// ---- Loading -------------------------------------------------------------------------------------

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
