// A logged-in session on the one token a dongle URI names (patent 004 claim 10, [0104]-[0107]; RFC 7512 §3.3
// matching): finds the slot, logs in with the PIN from pin-source, and runs every later Cryptoki call so that a
// token that went away surfaces as DongleAbsentError ([0107] remove) and a refused PIN as DongleAuthenticationError.
// Calls run one at a time (a session runs one operation at a time, v2.40 §5.6); signatures run off the event
// loop with a deadline, because a token that hangs (a stopped TPM simulator, a wedged USB device) would
// otherwise freeze the process inside a synchronous call for as long as it hangs.
import { fromUtf8, wipe } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { DongleAbsentError, DongleAuthenticationError, DongleError, type DongleSecrets } from './dongle.js';
import { CK, CKR, ckrName, ckrOf, isGone, type Pkcs11Api, type Pkcs11Attribute, type Pkcs11Handle, type Pkcs11TokenInfo } from './pkcs11-api.js';
import { acquirePkcs11Module, resolveModulePath, type Pkcs11ModuleLease } from './pkcs11-module.js';
import type { Pkcs11Uri } from './pkcs11-uri.js';

/** How long a signature may take before the token counts as gone: slow smart cards sign RSA-2048 in about a second. */
export const SIGN_DEADLINE_MS = 3000;
/** How long key generation may take: smart cards take up to a minute for RSA-2048. */
export const KEYGEN_DEADLINE_MS = 120_000;

/** CK_TOKEN_INFO and CK_SLOT_INFO strings are fixed-width fields padded with blanks (v2.40 §3.2). */
export function unpad(field: string): string {
  return field.replace(/[ \0]+$/, '');
}

interface SlotFacts {
  readonly slot: Pkcs11Handle;
  readonly token: Pkcs11TokenInfo;
}

function slotId(slot: Pkcs11Handle): bigint {
  return slot.length === 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0));
}

/** RFC 7512 §3.3: every attribute the URI gives must equal the token's, slot's or library's field. */
function matches(api: Pkcs11Api, lease: Pkcs11ModuleLease, uri: Pkcs11Uri, facts: SlotFacts): boolean {
  const { token } = facts;
  const same = (wanted: string | undefined, field: string): boolean => wanted === undefined || wanted === unpad(field);
  if (!same(uri.token, token.label) || !same(uri.manufacturer, token.manufacturerID) || !same(uri.model, token.model) || !same(uri.serial, token.serialNumber)) return false;
  if (uri.slotId !== undefined && uri.slotId !== slotId(facts.slot)) return false;
  if (uri.slotDescription !== undefined || uri.slotManufacturer !== undefined) {
    const slot = api.C_GetSlotInfo(facts.slot);
    if (!same(uri.slotDescription, slot.slotDescription) || !same(uri.slotManufacturer, slot.manufacturerID)) return false;
  }
  const { info } = lease;
  if (!same(uri.libraryManufacturer, info.manufacturerID) || !same(uri.libraryDescription, info.libraryDescription)) return false;
  const version = uri.libraryVersion;
  return version === undefined || (version.major === info.libraryVersion.major && version.minor === info.libraryVersion.minor);
}

/** Tokens present, each with its info; a slot whose token cannot be read (going away as we look) is skipped. */
function presentTokens(api: Pkcs11Api): SlotFacts[] {
  const found: SlotFacts[] = [];
  for (const slot of api.C_GetSlotList(true)) {
    try {
      found.push({ slot, token: api.C_GetTokenInfo(slot) });
    } catch {
      // a token that cannot say who it is cannot be the dongle
    }
  }
  return found;
}

function describeToken(token: Pkcs11TokenInfo): string {
  const maker = [unpad(token.manufacturerID), unpad(token.model)].filter((part) => part.length > 0).join(' ');
  return `PKCS#11 token ${unpad(token.label)} (${maker}, serial ${unpad(token.serialNumber)})`;
}

/** A session on the dongle's token. `uri` is the URI as formatted for messages: no secrets. */
export class Pkcs11Token {
  readonly description: string;
  readonly label: string;
  readonly mechanisms: ReadonlySet<number>;
  #closed = false;
  /** Set when a call missed its deadline: it may still be running inside the module, so nothing else may call in. */
  #wedged: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly uri: string,
    private readonly lease: Pkcs11ModuleLease,
    private readonly slot: Pkcs11Handle,
    private readonly session: Pkcs11Handle,
    token: Pkcs11TokenInfo,
    mechanisms: readonly number[],
  ) {
    this.label = unpad(token.label);
    this.description = describeToken(token);
    this.mechanisms = new Set(mechanisms);
  }

  /** Finds the one token `parsed` names in its module, opens an R/W session and logs the user in. */
  static async open(parsed: Pkcs11Uri, uri: string, secrets: DongleSecrets): Promise<Pkcs11Token> {
    const lease = await acquirePkcs11Module(resolveModulePath(parsed));
    const { api } = lease;
    let session: Pkcs11Handle | undefined;
    let counted: Pkcs11Handle | undefined;
    try {
      const present = presentTokens(api);
      const chosen = present.filter((facts) => matches(api, lease, parsed, facts));
      if (chosen.length === 0) {
        const seen = present.map(({ token }) => JSON.stringify(unpad(token.label))).filter((label) => label !== '""');
        throw new DongleAbsentError(`no token matches ${uri}: is it attached? (tokens present in ${lease.path}: ${seen.length > 0 ? seen.join(', ') : 'none'})`);
      }
      if (chosen.length > 1) {
        const serials = [...new Set(chosen.map(({ token }) => unpad(token.serialNumber)))];
        // tpm2-pkcs11 gives every token of a TPM the same serial: only distinct labels tell them apart there.
        const fix = serials.length === chosen.length ? 'add serial=... to the URI' : 'give the tokens distinct labels';
        throw new DongleError('ambiguous', `${chosen.length} tokens match ${uri} (serials ${serials.join(', ')}): ${fix}`, { exitCode: ExitCode.usage });
      }
      const { slot, token } = chosen[0]!;
      const mechanisms = api.C_GetMechanismList(slot);
      session = api.C_OpenSession(slot, CK.CKF_SERIAL_SESSION | CK.CKF_RW_SESSION);
      lease.sessionOpened(slot);
      counted = slot;
      await login(api, session, slot, token, parsed.pinSource, secrets);
      return new Pkcs11Token(uri, lease, slot, session, token, mechanisms);
    } catch (error) {
      if (session !== undefined) {
        try {
          api.C_CloseSession(session);
        } catch {
          // the token went away while opening
        }
      }
      if (counted !== undefined) lease.sessionClosed(counted);
      lease.release();
      throw mapError(error, uri, 'opening the token');
    }
  }

  /** Runs `body` after every earlier call of this token has finished. */
  exclusive<T>(body: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(body, body);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** One synchronous Cryptoki call on the session; failures become this project's errors. */
  call<T>(what: string, body: (api: Pkcs11Api, session: Pkcs11Handle) => T): T {
    this.#usable();
    try {
      return body(this.lease.api, this.session);
    } catch (error) {
      throw mapError(error, this.uri, what);
    }
  }

  /** One call that runs off the event loop; missing `deadlineMs` counts as the token gone, for good. */
  async callAsync<T>(what: string, deadlineMs: number, body: (api: Pkcs11Api, session: Pkcs11Handle) => Promise<T>): Promise<T> {
    this.#usable();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#wedged = `${what} did not return within ${deadlineMs} ms`;
        reject(new DongleAbsentError(`the dongle ${this.uri} does not answer: ${this.#wedged}`));
      }, deadlineMs);
    });
    try {
      return await Promise.race([body(this.lease.api, this.session), deadline]);
    } catch (error) {
      throw mapError(error, this.uri, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Handles of the objects matching `template` (at most `max`). */
  find(what: string, template: readonly Pkcs11Attribute[], max = 8): Pkcs11Handle[] {
    return this.call(`finding ${what}`, (api, session) => {
      api.C_FindObjectsInit(session, template);
      try {
        return api.C_FindObjects(session, max);
      } finally {
        try {
          api.C_FindObjectsFinal(session);
        } catch {
          // the search failed already; its error is the one to report
        }
      }
    });
  }

  /** The values of `types` on `object`, in order. */
  attributes(what: string, object: Pkcs11Handle, types: readonly number[]): Buffer[] {
    const values = this.call(`reading ${what}`, (api, session) => api.C_GetAttributeValue(session, object, types.map((type) => ({ type }))));
    return types.map((type) => {
      const value = values.find((attribute) => attribute.type === type)?.value;
      if (value === undefined) throw new DongleError('token', `token ${this.label} gave no attribute 0x${type.toString(16)} of ${what}`);
      return value;
    });
  }

  /** The token's CK_TOKEN_INFO as it is now (a SoftHSM2 token deleted under us fails here). */
  liveInfo(): Pkcs11TokenInfo {
    return this.call('reading the token info', (api) => api.C_GetTokenInfo(this.slot));
  }

  /** Ends the session (the last one of the process on this token logs out first) and lets go of the module. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#wedged !== undefined) {
      // A call is still inside the module: any other call would wait for it (or race it). Leave all as it is.
      this.lease.abandon();
      this.lease.release();
      return;
    }
    const { api } = this.lease;
    try {
      if (this.lease.sessionClosed(this.slot) === 0) api.C_Logout(this.session);
    } catch {
      // not logged in any more (token gone): nothing to undo
    }
    try {
      api.C_CloseSession(this.session);
    } catch {
      // the session went with the token
    }
    this.lease.release();
  }

  #usable(): void {
    if (this.#closed) throw new DongleError('closed', `the dongle ${this.uri} was closed`);
    if (this.#wedged !== undefined) throw new DongleAbsentError(`the dongle ${this.uri} does not answer: ${this.#wedged}`);
  }
}

/** A Cryptoki failure as this project's error: absent, refused PIN, or a DongleError naming the CKR. */
function mapError(error: unknown, uri: string, what: string): unknown {
  if (!(error instanceof Error) || error instanceof VscError) return error;
  const rv = ckrOf(error);
  if (isGone(rv)) return new DongleAbsentError(`the dongle ${uri} is gone (${ckrName(rv)} while ${what})`, { cause: error });
  if (rv === CKR.DEVICE_MEMORY) return new DongleError('full', `the token of ${uri} has no room left (${ckrName(rv)} while ${what})`, { cause: error });
  return new DongleError('token', `the token of ${uri} failed while ${what}: ${ckrName(rv)}${rv === undefined ? ` (${error.message.split('\n')[0]})` : ''}`, { cause: error });
}

/** What the token's flags say about the PIN after a refusal (v2.40 §3.2 CKF_USER_PIN_*). */
function triesLeft(api: Pkcs11Api, slot: Pkcs11Handle): string {
  let flags: number;
  try {
    flags = api.C_GetTokenInfo(slot).flags;
  } catch {
    return '';
  }
  if ((flags & CK.CKF_USER_PIN_LOCKED) !== 0) return '; the PIN is now locked';
  if ((flags & CK.CKF_USER_PIN_FINAL_TRY) !== 0) return '; one try is left before it locks';
  if ((flags & CK.CKF_USER_PIN_COUNT_LOW) !== 0) return '; few tries are left';
  return '';
}

/** C_Login as the user (v2.40 §5.6) with the PIN from `pinSource`; the PIN bytes are wiped once handed over. */
async function login(api: Pkcs11Api, session: Pkcs11Handle, slot: Pkcs11Handle, token: Pkcs11TokenInfo, pinSource: string | undefined, secrets: DongleSecrets): Promise<void> {
  const label = unpad(token.label);
  if ((token.flags & CK.CKF_USER_PIN_LOCKED) !== 0) {
    throw new DongleAuthenticationError(`the user PIN of token ${label} is locked: unblock it with the token's SO PIN or PUK`);
  }
  if ((token.flags & CK.CKF_LOGIN_REQUIRED) === 0) return;
  let pin: string | undefined;
  if ((token.flags & CK.CKF_PROTECTED_AUTHENTICATION_PATH) === 0 || pinSource !== undefined) {
    const bytes = await secrets.pin(pinSource, `the PIN of token ${label}`);
    try {
      // pkcs11js takes the PIN as a string: that copy cannot be wiped, only dropped at once.
      pin = fromUtf8(bytes);
    } catch {
      throw new DongleAuthenticationError(`the PIN for token ${label} is not valid UTF-8`);
    } finally {
      wipe(bytes);
    }
  }
  try {
    api.C_Login(session, CK.CKU_USER, pin); // no PIN: the token's own PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH)
  } catch (error) {
    const rv = ckrOf(error);
    if (rv === CKR.USER_ALREADY_LOGGED_IN) return; // another dongle of this process logged in to the same token
    if (rv === CKR.PIN_INCORRECT) throw new DongleAuthenticationError(`token ${label} refused the PIN${triesLeft(api, slot)}`);
    if (rv === CKR.PIN_LOCKED) {
      // tpm2-pkcs11 says this too while its TPM is in dictionary-attack lockout, which passes with time.
      throw new DongleAuthenticationError(`the user PIN of token ${label} is locked: unblock it with the token's SO PIN or PUK (a TPM: wait out its lockout)`);
    }
    if (rv === CKR.PIN_LEN_RANGE || rv === CKR.PIN_INVALID) throw new DongleAuthenticationError(`token ${label} refused the PIN: its length or characters are not what the token takes`);
    if (rv === CKR.PIN_EXPIRED) throw new DongleAuthenticationError(`the PIN of token ${label} has expired: change it with the token's own tool first`);
    throw error;
  } finally {
    pin = undefined;
  }
}
