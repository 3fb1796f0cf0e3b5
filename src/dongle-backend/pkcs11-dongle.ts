// The PKCS#11 dongle of patent 004 claim 10 ([0104]-[0110], Fig. 14/15; DESIGN.md "Dongle-backed card"): any
// token an RFC 7512 URI names (a USB token, a smart card, the TPM through tpm2-pkcs11, SoftHSM2 for tests) is the
// duplication-protected dongle. Its two storage locations ([0108]):
//   - the dongle key: an RSA-2048 pair generated on the token, the private half sensitive and never extractable,
//     found by its CKA_ID; it answers challenges with RSASSA-PKCS1-v1_5/SHA-256, deterministic as the card's
//     sealing key requires (dongle.ts);
//   - the slots: private CKO_DATA objects (CKA_APPLICATION "vsc", CKA_LABEL "vsc:card.a", ...) under the
//     two-copy frames of two-slot-store.ts. A copy is replaced by creating the new object, then destroying the
//     old one: SoftHSM2 refuses C_SetAttributeValue on CKA_VALUE of a data object.
// Presence ([0106] in-use, [0107] remove) is what the token says at each call: a signature fails as soon as a
// SoftHSM2 token is deleted, a TPM stops answering or a USB token is pulled (pkcs11-token.ts maps how).
import { createPublicKey } from 'node:crypto';
import { concatBytes, fromHex, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import {
  DongleError, dongleFingerprint, verifyDongleSignature, type Dongle, type DongleCardKeys, type DongleIdentity, type DongleSecrets, type DongleSlot,
} from './dongle.js';
import { Pkcs11CardKeys } from './pkcs11-card-keys.js';
import { CK, nonExtractableSigningKey, type Pkcs11Attribute, type Pkcs11Handle } from './pkcs11-api.js';
import { KEYGEN_DEADLINE_MS, Pkcs11Token, SIGN_DEADLINE_MS } from './pkcs11-token.js';
import { formatPkcs11Uri, parseDongleUri } from './pkcs11-uri.js';
import { TwoSlotStore, type RawSlotStore } from './two-slot-store.js';

export const DONGLE_KEY_LABEL = 'vsc dongle key';
/** CKA_ID of the dongle key pair: how it is found, whatever label a tool shows. */
export const DONGLE_KEY_ID = utf8('vsc-dongle-key/1');
const DONGLE_KEY_BITS = 2048;
/** CKA_APPLICATION of the slot objects, and the prefix of their CKA_LABEL. */
export const DATA_APPLICATION = 'vsc';
/** What `identify` has the key sign to show the token holds the private half of the key it reports. */
const IDENTIFY_MESSAGE = utf8('vsc-dongle-identify/1');
/** DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1), for tokens that only do raw CKM_RSA_PKCS. */
const SHA256_DIGEST_INFO = fromHex('3031300d060960864801650304020105000420');

interface DongleKey {
  readonly handle: Pkcs11Handle;
  readonly publicKey: Uint8Array;
  readonly signatureLength: number;
}

function base64url(bytes: Uint8Array): string {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1; // PKCS#11 big integers may carry leading zeros
  return Buffer.from(bytes.subarray(start)).toString('base64url');
}

class Pkcs11Dongle implements Dongle {
  readonly uri: string;
  readonly cardKeys: DongleCardKeys;
  readonly #token: Pkcs11Token;
  readonly #slots: TwoSlotStore;
  #key: DongleKey | undefined;

  constructor(token: Pkcs11Token) {
    this.#token = token;
    this.uri = token.uri;
    this.cardKeys = new Pkcs11CardKeys(token);
    const raw: RawSlotStore = { get: async (name) => this.#getObject(name), put: async (name, bytes) => this.#putObject(name, bytes) };
    this.#slots = new TwoSlotStore(raw);
  }

  identify(): Promise<DongleIdentity> {
    return this.#token.exclusive(() => this.#identify());
  }

  ensureKey(): Promise<DongleIdentity> {
    return this.#token.exclusive(async () => {
      if (this.#findKeys().length === 0) await this.#generateKey();
      return this.#identify();
    });
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (!(message instanceof Uint8Array)) throw new DongleError('argument', 'expected the message to sign as a Uint8Array');
    return this.#token.exclusive(async () => this.#sign(this.#loadKey(), message));
  }

  read(slot: DongleSlot): Promise<Uint8Array | undefined> {
    // A deleted SoftHSM2 token still lists no objects rather than failing: presence is checked first, so that a
    // missing token never reads as an empty slot.
    return this.#token.exclusive(async () => {
      await this.#identify();
      return this.#slots.read(slot);
    });
  }

  write(slot: DongleSlot, bytes: Uint8Array): Promise<void> {
    // [0107]: information is written back only while the dongle is there.
    return this.#token.exclusive(async () => {
      await this.#identify();
      await this.#slots.write(slot, bytes);
    });
  }

  close(): Promise<void> {
    return this.#token.exclusive(async () => {
      this.#key = undefined;
      await this.#token.close();
    });
  }

  /** Who the token is, proven: it is there now, and its key signs for the public key reported. */
  async #identify(): Promise<DongleIdentity> {
    this.#token.liveInfo();
    const key = this.#loadKey();
    const signature = await this.#sign(key, IDENTIFY_MESSAGE);
    if (!verifyDongleSignature(key.publicKey, IDENTIFY_MESSAGE, signature)) {
      throw new DongleError('damaged', `the dongle key on token ${this.#token.label} does not sign for its own public key`);
    }
    return { kind: 'pkcs11', publicKey: key.publicKey, fingerprint: dongleFingerprint(key.publicKey), description: this.#token.description };
  }

  #findKeys(): Pkcs11Handle[] {
    return this.#token.find('the dongle key', [
      { type: CK.CKA_CLASS, value: CK.CKO_PRIVATE_KEY },
      { type: CK.CKA_KEY_TYPE, value: CK.CKK_RSA },
      { type: CK.CKA_ID, value: Buffer.from(DONGLE_KEY_ID) },
    ], 2);
  }

  #loadKey(): DongleKey {
    if (this.#key !== undefined) return this.#key;
    const token = this.#token;
    const found = this.#findKeys();
    if (found.length === 0) {
      throw new DongleError('no-key', `token ${token.label} holds no dongle key ("${DONGLE_KEY_LABEL}"): run \`vsc dongle init --dongle ${this.uri}\` first`);
    }
    if (found.length > 1) throw new DongleError('damaged', `token ${token.label} holds more than one dongle key ("${DONGLE_KEY_LABEL}"): delete all but one`);
    const handle = found[0]!;
    const [extractable, sensitive] = token.attributes('the dongle key', handle, [CK.CKA_EXTRACTABLE, CK.CKA_SENSITIVE]);
    if (extractable![0] !== 0 || sensitive![0] === 0) {
      // The whole point of the dongle ([0002]): a key that can be exported makes a copy a second, equal dongle.
      throw new DongleError('extractable', `the dongle key on token ${token.label} can leave the token (CKA_EXTRACTABLE or not CKA_SENSITIVE): it cannot stand for a dongle`);
    }
    const [modulus, exponent] = this.#publicNumbers(handle);
    const jwk = { kty: 'RSA', n: base64url(modulus!), e: base64url(exponent!) };
    const publicKey = new Uint8Array(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }));
    const signatureLength = Buffer.from(jwk.n, 'base64url').length;
    this.#key = { handle, publicKey, signatureLength };
    return this.#key;
  }

  /** CKA_MODULUS and CKA_PUBLIC_EXPONENT, public even on a sensitive private key; from the public key object where a token hides them. */
  #publicNumbers(privateKey: Pkcs11Handle): Buffer[] {
    const numbers = [CK.CKA_MODULUS, CK.CKA_PUBLIC_EXPONENT];
    try {
      return this.#token.attributes('the dongle key', privateKey, numbers);
    } catch (error) {
      if (!(error instanceof DongleError)) throw error; // absent stays absent
    }
    const [publicKey] = this.#token.find('the dongle public key', [{ type: CK.CKA_CLASS, value: CK.CKO_PUBLIC_KEY }, { type: CK.CKA_ID, value: Buffer.from(DONGLE_KEY_ID) }], 1);
    if (publicKey === undefined) throw new DongleError('damaged', `token ${this.#token.label} shows neither the modulus of the dongle key nor its public key`);
    return this.#token.attributes('the dongle public key', publicKey, numbers);
  }

  /** RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2): hashed on the token where it can, else the DigestInfo is built here. */
  async #sign(key: DongleKey, message: Uint8Array): Promise<Uint8Array> {
    const token = this.#token;
    let mechanism: number;
    let input: Uint8Array;
    if (token.mechanisms.has(CK.CKM_SHA256_RSA_PKCS)) [mechanism, input] = [CK.CKM_SHA256_RSA_PKCS, message];
    else if (token.mechanisms.has(CK.CKM_RSA_PKCS)) [mechanism, input] = [CK.CKM_RSA_PKCS, concatBytes(SHA256_DIGEST_INFO, sha256(message))];
    else throw new DongleError('mechanism', `token ${token.label} signs with neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS`);
    token.call('starting a signature', (api, session) => api.C_SignInit(session, { mechanism }, key.handle));
    const signature = await token.callAsync('signing', SIGN_DEADLINE_MS, (api, session) => api.C_SignAsync(session, Buffer.from(input), Buffer.alloc(key.signatureLength)));
    if (signature.length !== key.signatureLength) throw new DongleError('token', `token ${token.label} gave a ${signature.length}-byte signature, expected ${key.signatureLength}`);
    return new Uint8Array(signature);
  }

  async #generateKey(): Promise<void> {
    const token = this.#token;
    if (!token.mechanisms.has(CK.CKM_RSA_PKCS_KEY_PAIR_GEN)) throw new DongleError('mechanism', `token ${token.label} cannot generate RSA keys (no CKM_RSA_PKCS_KEY_PAIR_GEN)`);
    const common: Pkcs11Attribute[] = [
      { type: CK.CKA_TOKEN, value: true },
      { type: CK.CKA_ID, value: Buffer.from(DONGLE_KEY_ID) },
      { type: CK.CKA_LABEL, value: DONGLE_KEY_LABEL },
    ];
    const publicTemplate: Pkcs11Attribute[] = [
      ...common,
      { type: CK.CKA_PRIVATE, value: false },
      { type: CK.CKA_VERIFY, value: true },
      { type: CK.CKA_MODULUS_BITS, value: DONGLE_KEY_BITS },
      { type: CK.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
    ];
    const privateTemplate = nonExtractableSigningKey(common);
    await token.callAsync('generating the dongle key', KEYGEN_DEADLINE_MS, (api, session) =>
      api.C_GenerateKeyPairAsync(session, { mechanism: CK.CKM_RSA_PKCS_KEY_PAIR_GEN }, publicTemplate, privateTemplate),
    );
    this.#key = undefined;
  }

  #dataTemplate(name: string): Pkcs11Attribute[] {
    return [
      { type: CK.CKA_CLASS, value: CK.CKO_DATA },
      { type: CK.CKA_TOKEN, value: true },
      { type: CK.CKA_APPLICATION, value: DATA_APPLICATION },
      { type: CK.CKA_LABEL, value: `${DATA_APPLICATION}:${name}` },
    ];
  }

  /**
   * One copy's bytes. Two objects under one label mean a replacement was cut short between creating the new
   * object and destroying the old: which is newer cannot be told, so neither is trusted and the two-slot store
   * reads the other copy, which holds the last complete write.
   */
  #getObject(name: string): Uint8Array | undefined {
    const found = this.#token.find(`the ${name} data object`, this.#dataTemplate(name), 2);
    if (found.length !== 1) return undefined;
    const [value] = this.#token.attributes(`the ${name} data object`, found[0]!, [CK.CKA_VALUE]);
    return new Uint8Array(value!);
  }

  /** Replaces one copy: the new object first, then every old one, so that a crash leaves at worst two. */
  #putObject(name: string, bytes: Uint8Array): void {
    const old = this.#token.find(`the ${name} data object`, this.#dataTemplate(name), 16);
    const template: Pkcs11Attribute[] = [
      ...this.#dataTemplate(name),
      { type: CK.CKA_PRIVATE, value: true },
      { type: CK.CKA_MODIFIABLE, value: true },
      { type: CK.CKA_VALUE, value: Buffer.from(bytes) },
    ];
    this.#token.call(`writing the ${name} data object`, (api, session) => api.C_CreateObject(session, template));
    for (const handle of old) this.#token.call(`replacing the ${name} data object`, (api, session) => api.C_DestroyObject(session, handle));
  }
}

/**
 * Opens the dongle `uri` names (`pkcs11:token=LABEL?module-path=/path/module.so&pin-source=file:/path`): finds its
 * token, logs in with the PIN from pin-source (or `secrets`' fallback). Throws DongleAbsentError when no token
 * matches, DongleAuthenticationError when it refuses the PIN, DongleError 'uri' (exit 2) on a malformed URI.
 */
export async function openPkcs11Dongle(uri: string, secrets: DongleSecrets): Promise<Dongle> {
  const parsed = parseDongleUri(uri);
  const token = await Pkcs11Token.open(parsed, formatPkcs11Uri(parsed), secrets);
  return new Pkcs11Dongle(token);
}
