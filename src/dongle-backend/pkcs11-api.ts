// The part of the Cryptoki API (PKCS#11 v2.40, v3.0 for Ed25519) the token dongle uses (patent 004 claim 10;
// DESIGN.md "Dongle-backed card"), as the npm package pkcs11js exposes it: typed here, so that type checks pass
// where that optional dependency could not be compiled; its constants (pkcs11t.h); and which return values mean
// that the token went away.

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
  CKA_LOCAL: 0x163,
  CKA_NEVER_EXTRACTABLE: 0x164,
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

/** The private half of a signing key that never leaves the token: private, sensitive, not extractable ([0003]). */
export function nonExtractableSigningKey(common: readonly Pkcs11Attribute[]): Pkcs11Attribute[] {
  return [
    ...common,
    { type: CK.CKA_PRIVATE, value: true },
    { type: CK.CKA_SENSITIVE, value: true },
    { type: CK.CKA_EXTRACTABLE, value: false },
    { type: CK.CKA_SIGN, value: true },
  ];
}
