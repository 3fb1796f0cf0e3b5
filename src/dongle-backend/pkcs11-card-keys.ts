// Card signing keys generated on the dongle's token and never leaving it (`--keys-on-token`; DESIGN.md
// "Dongle-backed card", patent 004 [0108]): one Ed25519 pair per card, labelled "vsc card key SERIAL", made with
// CKM_EC_EDWARDS_KEY_PAIR_GEN and used with CKM_EDDSA (PKCS#11 v3.0 §2.3.10-§2.3.14). Tokens without those
// mechanisms (tpm2-pkcs11: TPMs have no Ed25519) say so through `unsupported`. A universal key (patent 003
// [0098]-[0102]) is imported instead with C_CreateObject (v3.0 §2.3.7), and what the issuing authority checks
// before it attests a key is read by `inspect`.
import { randomBytes } from 'node:crypto';
import { bytesEqual, concatBytes, utf8 } from '../bytes/index.js';
import { ed25519KeyFromSeed, ed25519Verify } from '../crypto/index.js';
import { ExitCode } from '../errors/index.js';
import { SERIAL_PATTERN } from '../vsc-protocol/index.js';
import { DongleError, type CardKeyFacts, type DongleCardKeys } from './dongle.js';
import { CK, nonExtractableSigningKey, CKR, ckrOf, type Pkcs11Attribute, type Pkcs11Handle } from './pkcs11-api.js';
import { KEYGEN_DEADLINE_MS, SIGN_DEADLINE_MS, type Pkcs11Token } from './pkcs11-token.js';

const ED25519_PUBLIC_KEY_LENGTH = 32;
const ED25519_SEED_LENGTH = 32;
const ED25519_SIGNATURE_LENGTH = 64;
/**
 * What an imported key signs to show the token took it as it was meant. The card key only ever signs 32-byte
 * SIGN AND INCREMENT digests ([0053], [0098]); this message is longer, so it can never pass for an audit record's.
 */
const IMPORT_CHECK = utf8('vsc card key import check/1\0');
/** CKA_EC_PARAMS naming Ed25519: the OBJECT IDENTIFIER 1.3.101.112 (RFC 8410 §3) ... */
const ED25519_OID = Uint8Array.of(0x06, 0x03, 0x2b, 0x65, 0x70); // tag OID, length 3, 1.3 = 0x2b, 101, 112
/** ... or the PrintableString "edwards25519" (PKCS#11 v3.0 §2.3.10), for tokens that take only the name. */
const EDWARDS25519_NAME = Uint8Array.of(0x13, 0x0c, ...new TextEncoder().encode('edwards25519')); // tag PrintableString, length 12

const NEEDED: readonly (readonly [number, string])[] = [
  [CK.CKM_EC_EDWARDS_KEY_PAIR_GEN, 'CKM_EC_EDWARDS_KEY_PAIR_GEN (0x1055)'],
  [CK.CKM_EDDSA, 'CKM_EDDSA (0x1057)'],
];

/** What a token answers when it does not take one form of the curve's name. */
const PARAMS_REFUSED: ReadonlySet<number> = new Set([CKR.ATTRIBUTE_VALUE_INVALID, CKR.CURVE_NOT_SUPPORTED, CKR.DOMAIN_PARAMS_INVALID, CKR.TEMPLATE_INCONSISTENT]);

export function cardKeyLabel(serial: string): string {
  return `vsc card key ${serial}`;
}

function checkSerial(serial: unknown): asserts serial is string {
  if (typeof serial !== 'string' || !SERIAL_PATTERN.test(serial)) {
    throw new DongleError('argument', `expected a card serial (letters, digits, ".", "_", "-"; at most 64), got ${typeof serial === 'string' ? `${serial.length} characters that are not one` : typeof serial}`, { exitCode: ExitCode.usage });
  }
}

/** CKA_EC_POINT: the 32-byte point, bare or wrapped in a DER OCTET STRING (04 20 ...) as most tokens give it. */
export function decodeEd25519Point(point: Uint8Array): Uint8Array | undefined {
  if (point.length === ED25519_PUBLIC_KEY_LENGTH) return point.slice();
  if (point.length === ED25519_PUBLIC_KEY_LENGTH + 2 && point[0] === 0x04 && point[1] === ED25519_PUBLIC_KEY_LENGTH) return point.slice(2);
  return undefined;
}

export class Pkcs11CardKeys implements DongleCardKeys {
  readonly #signers = new Map<string, Pkcs11Handle>();

  constructor(private readonly token: Pkcs11Token) {}

  async unsupported(): Promise<string | undefined> {
    const missing = NEEDED.filter(([mechanism]) => !this.token.mechanisms.has(mechanism)).map(([, name]) => name);
    return missing.length === 0 ? undefined : `token ${this.token.label} lacks ${missing.join(' and ')}, which Ed25519 card keys on the token need`;
  }

  async generate(serial: string): Promise<Uint8Array> {
    checkSerial(serial);
    const reason = await this.unsupported();
    if (reason !== undefined) throw new DongleError('mechanism', reason);
    return this.token.exclusive(async () => {
      this.#refuseExisting(serial);
      try {
        await this.#generate(serial, ED25519_OID);
      } catch (error) {
        if (!PARAMS_REFUSED.has(ckrOf((error as Error).cause) ?? -1)) throw error;
        await this.#generate(serial, EDWARDS25519_NAME);
      }
      return this.#publicKey(serial);
    });
  }

  async publicKey(serial: string): Promise<Uint8Array> {
    checkSerial(serial);
    return this.token.exclusive(async () => this.#publicKey(serial));
  }

  async sign(serial: string, message: Uint8Array): Promise<Uint8Array> {
    checkSerial(serial);
    if (!(message instanceof Uint8Array)) throw new DongleError('argument', 'expected the message to sign as a Uint8Array');
    return this.token.exclusive(async () => this.#sign(this.#signer(serial), message));
  }

  async importKey(serial: string, seed: Uint8Array): Promise<Uint8Array> {
    checkSerial(serial);
    if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_LENGTH) {
      throw new DongleError('argument', `expected a ${ED25519_SEED_LENGTH}-byte Ed25519 private key, got ${seed instanceof Uint8Array ? `${seed.length} bytes` : typeof seed}`, { exitCode: ExitCode.usage });
    }
    const reason = await this.unsupported();
    if (reason !== undefined) throw new DongleError('mechanism', reason);
    const { publicKey } = ed25519KeyFromSeed(seed);
    return this.token.exclusive(async () => {
      this.#refuseExisting(serial);
      const created: Pkcs11Handle[] = [];
      try {
        try {
          created.push(...this.#create(serial, seed, publicKey, ED25519_OID));
        } catch (error) {
          if (!PARAMS_REFUSED.has(ckrOf((error as Error).cause) ?? -1)) throw error;
          created.push(...this.#create(serial, seed, publicKey, EDWARDS25519_NAME));
        }
        // A token may take CKA_VALUE in a form it then misreads: only a signature that verifies shows it holds this key.
        const message = concatBytes(IMPORT_CHECK, Uint8Array.from(randomBytes(32)));
        if (!ed25519Verify(publicKey, message, await this.#sign(created[0]!, message))) {
          throw new DongleError('import', `token ${this.token.label} took the key of card ${serial} but does not sign with it: it does not read CKA_VALUE as the 32-byte Ed25519 private key (PKCS#11 v3.0 §2.3.7); nothing was kept`);
        }
        return publicKey;
      } catch (error) {
        for (const handle of created) {
          try {
            this.token.call(`removing the half-imported key of card ${serial}`, (api, session) => api.C_DestroyObject(session, handle));
          } catch {
            // the first failure is the one to report
          }
        }
        throw error;
      }
    });
  }

  async inspect(serial: string): Promise<CardKeyFacts> {
    checkSerial(serial);
    return this.token.exclusive(async () => {
      const found = this.#find(CK.CKO_PRIVATE_KEY, serial);
      if (found.length !== 1) throw this.#notOne(found.length, serial);
      const flags = [CK.CKA_SENSITIVE, CK.CKA_EXTRACTABLE, CK.CKA_NEVER_EXTRACTABLE, CK.CKA_LOCAL];
      const values = this.token.attributes(`the private key of card ${serial}`, found[0]!, [...flags, CK.CKA_EC_PARAMS]);
      const [sensitive, extractable, neverExtractable, local] = values.slice(0, flags.length).map((value) => value.length > 0 && value[0] !== 0);
      const params = new Uint8Array(values[flags.length]!);
      const ed25519 = [ED25519_OID, EDWARDS25519_NAME].some((known) => bytesEqual(known, params));
      return { sensitive: sensitive!, extractable: extractable!, neverExtractable: neverExtractable!, local: local!, ed25519, publicKey: this.#publicKey(serial) };
    });
  }

  async #sign(key: Pkcs11Handle, message: Uint8Array): Promise<Uint8Array> {
    this.token.call('starting an Ed25519 signature', (api, session) => api.C_SignInit(session, { mechanism: CK.CKM_EDDSA }, key));
    const signature = await this.token.callAsync('signing with the card key', SIGN_DEADLINE_MS, (api, session) =>
      api.C_SignAsync(session, Buffer.from(message), Buffer.alloc(ED25519_SIGNATURE_LENGTH)),
    );
    if (signature.length !== ED25519_SIGNATURE_LENGTH) throw new DongleError('token', `token ${this.token.label} gave a ${signature.length}-byte Ed25519 signature`);
    return new Uint8Array(signature);
  }

  #refuseExisting(serial: string): void {
    if (this.#find(CK.CKO_PRIVATE_KEY, serial).length > 0 || this.#find(CK.CKO_PUBLIC_KEY, serial).length > 0) {
      throw new DongleError('card-key-exists', `token ${this.token.label} already holds a key for card ${serial} ("${cardKeyLabel(serial)}"); a new card needs a new serial`);
    }
  }

  /**
   * The private key object (private, sensitive, not extractable) and its public key object; returns their handles,
   * the private one first. The Buffer handed to pkcs11js is zeroed at once; the copy pkcs11js makes for the call is
   * freed by it without wiping, out of this code's reach.
   */
  #create(serial: string, seed: Uint8Array, publicKey: Uint8Array, curve: Uint8Array): Pkcs11Handle[] {
    const common: Pkcs11Attribute[] = [
      { type: CK.CKA_KEY_TYPE, value: CK.CKK_EC_EDWARDS },
      { type: CK.CKA_TOKEN, value: true },
      { type: CK.CKA_LABEL, value: cardKeyLabel(serial) },
      { type: CK.CKA_ID, value: Buffer.from(cardKeyLabel(serial)) },
      { type: CK.CKA_EC_PARAMS, value: Buffer.from(curve) },
    ];
    const value = Buffer.from(seed);
    let privateKey: Pkcs11Handle;
    try {
      privateKey = this.token.call(`importing the key of card ${serial}`, (api, session) =>
        api.C_CreateObject(session, [{ type: CK.CKA_CLASS, value: CK.CKO_PRIVATE_KEY }, ...nonExtractableSigningKey(common), { type: CK.CKA_VALUE, value }]),
      );
    } finally {
      value.fill(0);
    }
    try {
      const point = Buffer.from([0x04, ED25519_PUBLIC_KEY_LENGTH, ...publicKey]); // DER OCTET STRING, as tokens give CKA_EC_POINT
      const publicObject = this.token.call(`storing the public key of card ${serial}`, (api, session) =>
        api.C_CreateObject(session, [{ type: CK.CKA_CLASS, value: CK.CKO_PUBLIC_KEY }, ...common, { type: CK.CKA_EC_POINT, value: point }, { type: CK.CKA_VERIFY, value: true }]),
      );
      return [privateKey, publicObject];
    } catch (error) {
      try {
        this.token.call(`removing the half-imported key of card ${serial}`, (api, session) => api.C_DestroyObject(session, privateKey));
      } catch {
        // the first failure is the one to report
      }
      throw error;
    }
  }

  #find(objectClass: number, serial: string): Pkcs11Handle[] {
    return this.token.find(`the key of card ${serial}`, [
      { type: CK.CKA_CLASS, value: objectClass },
      { type: CK.CKA_KEY_TYPE, value: CK.CKK_EC_EDWARDS },
      { type: CK.CKA_LABEL, value: cardKeyLabel(serial) },
    ], 2);
  }

  #signer(serial: string): Pkcs11Handle {
    const cached = this.#signers.get(serial);
    if (cached !== undefined) return cached;
    const found = this.#find(CK.CKO_PRIVATE_KEY, serial);
    if (found.length !== 1) throw this.#notOne(found.length, serial);
    this.#signers.set(serial, found[0]!);
    return found[0]!;
  }

  #publicKey(serial: string): Uint8Array {
    const found = this.#find(CK.CKO_PUBLIC_KEY, serial);
    if (found.length !== 1) throw this.#notOne(found.length, serial);
    const [point] = this.token.attributes(`the public key of card ${serial}`, found[0]!, [CK.CKA_EC_POINT]);
    const publicKey = decodeEd25519Point(point!);
    if (publicKey === undefined) throw new DongleError('damaged', `token ${this.token.label} gave a ${point!.length}-byte CKA_EC_POINT for card ${serial}, not an Ed25519 point`);
    return publicKey;
  }

  #notOne(count: number, serial: string): DongleError {
    return count === 0
      ? new DongleError('no-card-key', `token ${this.token.label} holds no key for card ${serial} ("${cardKeyLabel(serial)}")`)
      : new DongleError('damaged', `token ${this.token.label} holds more than one key for card ${serial}`);
  }

  async #generate(serial: string, curve: Uint8Array): Promise<void> {
    const common: Pkcs11Attribute[] = [
      { type: CK.CKA_TOKEN, value: true },
      { type: CK.CKA_LABEL, value: cardKeyLabel(serial) },
      { type: CK.CKA_ID, value: Buffer.from(cardKeyLabel(serial)) },
    ];
    const publicTemplate: Pkcs11Attribute[] = [...common, { type: CK.CKA_EC_PARAMS, value: Buffer.from(curve) }, { type: CK.CKA_VERIFY, value: true }];
    const privateTemplate = nonExtractableSigningKey(common);
    await this.token.callAsync(`generating the key of card ${serial}`, KEYGEN_DEADLINE_MS, (api, session) =>
      api.C_GenerateKeyPairAsync(session, { mechanism: CK.CKM_EC_EDWARDS_KEY_PAIR_GEN }, publicTemplate, privateTemplate),
    );
  }
}
