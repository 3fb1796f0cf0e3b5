// The dongle issuing authority of patent 004 [0107] ("Recover: ... the end-user can request a replacement
// from the Dongle issuing authority"; "Destroy: ... The state is Destroyed") and [0007] ("replace the
// destroyed smart card with an identical copy, or invalidate the lost smart card"); DESIGN.md
// "Dongle-backed card", lost dongle. Its data directory (0700, files 0600):
//   authority.key      its name, Ed25519 signing key (revocation lists, token attestations) and X25519 escrow key, as JSON;
//   revocations.list   its newest signed revocation list (revocation-list.ts), read by card programs too;
//   escrow/            one escrow per card (escrow.ts), refreshed by the card program at each sync;
//   pending/           the journal of a replacement under way, so that a crash never leaves two live dongles;
//   authority.lock     held while a replacement or a revocation runs.
// A replacement issues the same card (same keys, same password) onto a new dongle in the next counter epoch
// and revokes the old dongle; the authority re-wraps the escrowed password layer and never learns the password.
// The same signing key signs the authority's token attestations (token-attestation.ts): a vendor who trusts an
// attestation then checks the dongle's revocations with the key it already trusts, and the two signed formats
// start with different domain strings, so neither signature can pass for the other.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { bytesEqual, fromHex, fromUtf8, toHex, utf8, wipe } from '../bytes/index.js';
import type { AttestationSigner } from '../card-attestation/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, generateX25519KeyPair, x25519PublicKey, type Ed25519SigningKey } from '../crypto/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { acquireFileLock, ensurePrivateDirectory, readPrivateFile, writeFileAtomic } from '../files/index.js';
import {
  MAX_EPOCH, SEAL_SALT_LENGTH, decodeCardRecord, describeHolder, encodeCardRecord, encodeCardRecordHeader, type AuthorityReference, type CardRecordHeader,
} from './card-record.js';
import { dongleSealingSecret, sealOuter } from './card-sealing.js';
import { DongleError, shortFingerprint, type Dongle, type DongleIdentity } from './dongle.js';
import {
  ESCROW_FOLDER, escrowPath, inspectEscrow, mayReplaceEscrow, openEscrow, readEscrowRegistration, sealEscrow, serialOfEscrowFile,
  type EscrowRegistration, type OpenedEscrow,
} from './escrow.js';
import {
  REVOCATION_LIST_FILE, isSerialDestroyed, parseRevocationList, revokedEntry, signRevocationList, type RevocationEntry, type RevocationList,
} from './revocation-list.js';
import { MAX_SLOT_PAYLOAD_BYTES } from './two-slot-store.js';

const KEY_FILE = 'authority.key';
const KEY_FORMAT = 'vsc-authority-keys/1';
const LOCK_FILE = 'authority.lock';
const PENDING_FOLDER = 'pending';
const PENDING_FORMAT = 'vsc-authority-replacement/1';

/** An authority's name: for people, and the `attester` of its attestations. */
const AUTHORITY_NAME = /^[\x20-\x7e]{1,64}$/;

interface AuthorityKeys {
  readonly name: string;
  readonly signing: Ed25519SigningKey;
  readonly escrowPrivateKey: Uint8Array;
  readonly escrowPublicKey: Uint8Array;
}

/** A replacement under way, journaled before its first write ([0107] recover). */
interface PendingReplacement {
  readonly previousDongle: Uint8Array;
  readonly previousEpoch: number;
  readonly header: CardRecordHeader;
  readonly headerBytes: Uint8Array;
}

export interface Replacement {
  readonly serial: string;
  readonly epoch: number;
  readonly dongle: DongleIdentity;
  readonly previousDongle: Uint8Array;
  /** This call finished a replacement an earlier run had started and was interrupted in. */
  readonly resumed: boolean;
}

export interface Revocation {
  readonly serial: string;
  readonly reason: 'lost' | 'destroyed';
  /** The dongles this call put on the list (or marked destroyed); empty when the list already said so. */
  readonly dongles: readonly Uint8Array[];
  readonly sequence: number;
}

/** [0106]/[0107] as the authority sees a card: `replacing` is a replacement interrupted before it finished. */
export type AuthorityCardState = 'active' | 'lost' | 'replacing' | 'destroyed' | 'damaged';

export interface AuthorityCard {
  readonly serial: string;
  readonly state: AuthorityCardState;
  /** The card's current dongle (a replacement's new one), undefined when its escrow is damaged. */
  readonly dongle: Uint8Array | undefined;
  readonly epoch: number | undefined;
  /** When the escrow was last written (by the card program at a sync, or by a replacement). */
  readonly lastEscrowed: Date | undefined;
  readonly keysOnToken: boolean | undefined;
}

function refused(message: string): DongleError {
  return new DongleError('authority', message, { exitCode: ExitCode.refusedByState });
}

function damagedFile(path: string, why: string): DongleError {
  return new DongleError('authority', `${path} is damaged: ${why}`);
}

const pendingPath = (root: string, serial: string): string => join(root, PENDING_FOLDER, `${toHex(utf8(serial))}.json`);
const json = (value: unknown): Uint8Array => utf8(`${JSON.stringify(value, null, 2)}\n`);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A private JSON file of the authority's, or undefined when it does not exist. */
function readJson(path: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = readPrivateFile(path);
  } catch (error) {
    if (error instanceof VscError) throw error; // readable by others: names chmod 600
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DongleError('authority', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(fromUtf8(bytes)) as unknown;
  } catch {
    throw damagedFile(path, 'not JSON text');
  }
}

function loadKeys(root: string): AuthorityKeys {
  const path = join(root, KEY_FILE);
  const fields = readJson(path);
  if (fields === undefined) throw new DongleError('authority', `no issuing authority in ${root}; run "vsc dongle authority init --data ${root}" first`);
  if (!isRecord(fields) || fields['format'] !== KEY_FORMAT) throw damagedFile(path, `expected "format": "${KEY_FORMAT}"`);
  const hex = (name: string): Uint8Array => {
    const value = fields[name];
    if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw damagedFile(path, `expected "${name}" as 64 hex digits`);
    return fromHex(value);
  };
  const named = fields['name'];
  if (named !== undefined && (typeof named !== 'string' || !AUTHORITY_NAME.test(named))) throw damagedFile(path, 'expected "name" as 1..64 printable ASCII characters');
  const name = named ?? defaultAuthorityName(root); // authorities made before they had names
  const seed = hex('signingSeed');
  const escrowPrivateKey = hex('escrowPrivateKey');
  try {
    return { name, signing: ed25519KeyFromSeed(seed), escrowPrivateKey, escrowPublicKey: x25519PublicKey(escrowPrivateKey) };
  } finally {
    wipe(seed);
  }
}

function reference(root: string, keys: AuthorityKeys, escrowDirectory = root): AuthorityReference {
  return { signingKey: keys.signing.publicKey, escrowKey: keys.escrowPublicKey, escrowDirectory };
}

/** Loads the keys, takes the authority's lock, runs `body`, releases and wipes. */
async function withAuthority<T>(root: string, body: (keys: AuthorityKeys) => Promise<T>): Promise<T> {
  const keys = loadKeys(root);
  try {
    const lock = await acquireFileLock(join(root, LOCK_FILE), `the issuing authority ${root}`);
    try {
      return await body(keys);
    } finally {
      lock.release();
    }
  } finally {
    wipe(keys.escrowPrivateKey);
  }
}

function readOwnList(root: string, keys: AuthorityKeys): RevocationList {
  const path = join(root, REVOCATION_LIST_FILE);
  let bytes: Uint8Array;
  try {
    bytes = readPrivateFile(path);
  } catch (error) {
    if (error instanceof VscError) throw error;
    throw damagedFile(root, `its revocation list cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseRevocationList(bytes, keys.signing.publicKey);
}

function storeList(root: string, list: RevocationList): void {
  writeFileAtomic(join(root, REVOCATION_LIST_FILE), list.bytes);
}

function nextList(keys: AuthorityKeys, list: RevocationList, entries: readonly RevocationEntry[], now: Date): RevocationList {
  return signRevocationList(keys.signing, { sequence: list.sequence + 1, issuedAt: now.toISOString(), entries });
}

/** The escrow file of `serial`, or undefined when the authority has none. */
function readEscrowBytes(root: string, serial: string): Uint8Array | undefined {
  const path = escrowPath(root, serial);
  try {
    return Uint8Array.from(readFileSync(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DongleError('authority', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

function checkSerial(registration: EscrowRegistration, serial: string, root: string): void {
  if (registration.serial !== serial) throw damagedFile(escrowPath(root, serial), `it holds the escrow of card ${registration.serial}`);
}

function readPending(root: string, serial: string): PendingReplacement | undefined {
  const path = pendingPath(root, serial);
  const fields = readJson(path);
  if (fields === undefined) return undefined;
  try {
    if (!isRecord(fields) || fields['format'] !== PENDING_FORMAT || fields['serial'] !== serial) throw new Error(`expected "format": "${PENDING_FORMAT}" and "serial": ${JSON.stringify(serial)}`);
    const { previousDongle, previousEpoch, header: headerHex } = fields;
    if (typeof previousDongle !== 'string' || typeof previousEpoch !== 'number' || !Number.isInteger(previousEpoch) || typeof headerHex !== 'string') throw new Error('expected previousDongle, previousEpoch and header');
    const headerBytes = fromHex(headerHex);
    const { header } = decodeCardRecord(encodeCardRecord(headerBytes, new Uint8Array(0)));
    if (header.serial !== serial) throw new Error(`its header is card ${header.serial}'s`);
    return { previousDongle: fromHex(previousDongle), previousEpoch, header, headerBytes };
  } catch (error) {
    throw damagedFile(path, (error as Error).message);
  }
}

/** "issuing authority DIRNAME", characters outside printable ASCII as "?": the name of an authority not given one. */
export function defaultAuthorityName(dir: string): string {
  return `issuing authority ${basename(resolve(dir)).replace(/[^\x20-\x7e]/g, '?')}`.slice(0, 64);
}

/**
 * Creates a new issuing authority in `dir`: its name (default: defaultAuthorityName), keys, an empty signed
 * revocation list (sequence 0), the escrow folder.
 */
export async function initAuthority(dir: string, now = new Date(), name?: string): Promise<AuthorityReference> {
  const root = resolve(dir);
  if (name !== undefined && (typeof name !== 'string' || !AUTHORITY_NAME.test(name))) {
    throw new DongleError('argument', 'expected an authority name of 1 to 64 printable ASCII characters', { exitCode: ExitCode.usage });
  }
  ensurePrivateDirectory(root);
  const lock = await acquireFileLock(join(root, LOCK_FILE), `the issuing authority ${root}`);
  try {
    if (existsSync(join(root, KEY_FILE))) throw refused(`${root} already holds an issuing authority; its keys are not overwritten`);
    ensurePrivateDirectory(join(root, ESCROW_FOLDER));
    ensurePrivateDirectory(join(root, PENDING_FOLDER));
    const seed = generateEd25519Seed();
    const escrow = generateX25519KeyPair();
    try {
      const signing = ed25519KeyFromSeed(seed);
      storeList(root, signRevocationList(signing, { sequence: 0, issuedAt: now.toISOString(), entries: [] }));
      // Written last: its presence is what "initialised" means.
      writeFileAtomic(join(root, KEY_FILE), json({ format: KEY_FORMAT, name: name ?? defaultAuthorityName(root), signingSeed: toHex(seed), escrowPrivateKey: toHex(escrow.privateKey) }));
      return { signingKey: signing.publicKey, escrowKey: escrow.publicKey, escrowDirectory: root };
    } finally {
      wipe(seed, escrow.privateKey);
    }
  } finally {
    lock.release();
  }
}

/** The authority's name (the `attester` of its attestations). */
export function readAuthorityName(dir: string): string {
  const keys = loadKeys(resolve(dir));
  wipe(keys.escrowPrivateKey);
  return keys.name;
}

/** The authority as the attester of token cards ([0096]; token-attestation.ts). */
export interface AuthorityAttester {
  readonly name: string;
  /** Its Ed25519 signing key: what vendors trust. */
  readonly signer: AttestationSigner;
  /** Its newest signed revocation list. */
  readonly list: RevocationList;
}

/** Runs `body` with the authority's signing key and newest list, under its lock (a revocation under way finishes first). */
export async function withAuthorityAttester<T>(dir: string, body: (attester: AuthorityAttester) => Promise<T>): Promise<T> {
  const root = resolve(dir);
  return withAuthority(root, async (keys) => body({ name: keys.name, signer: keys.signing, list: readOwnList(root, keys) }));
}

/** What `vsc dongle init --authority DIR` puts in a card record: the public keys and the absolute directory. */
export function readAuthorityReference(dir: string): AuthorityReference {
  const root = resolve(dir);
  const keys = loadKeys(root);
  wipe(keys.escrowPrivateKey);
  return reference(root, keys);
}

/**
 * [0107] Recover: issues card `serial` onto `newDongle` in the next epoch from its escrow, and revokes the old
 * dongle. The steps are journaled first; a run interrupted anywhere is finished by rerunning it with the same
 * dongle (another is refused until then, or until `revokeDongle` abandons it). The old dongle is revoked
 * before the new one receives the card, so an interruption leaves no live dongle rather than two.
 */
export async function replaceDongle(dir: string, serial: string, newDongle: Dongle, now = new Date()): Promise<Replacement> {
  const root = resolve(dir);
  return withAuthority(root, async (keys) => {
    const list = readOwnList(root, keys);
    if (isSerialDestroyed(list, serial)) throw refused(`card ${serial} was destroyed; destroyed is final ([0107] Destroy): it is never replaced`);
    const escrowBytes = readEscrowBytes(root, serial);
    if (escrowBytes === undefined) throw refused(`this authority holds no escrow of card ${serial}, so it cannot replace its dongle`);
    const registration = inspectEscrow(escrowBytes);
    checkSerial(registration, serial, root);
    if (registration.keysOnToken) throw refused(`card ${serial} keeps its keys on its token and cannot be escrowed: a lost dongle means a new card with new keys`);
    const escrow = openEscrow(keys.escrowPrivateKey, escrowBytes);
    const identity = await newDongle.ensureKey();
    let pending = readPending(root, serial);
    const resumed = pending !== undefined;
    if (pending === undefined) {
      pending = await planReplacement(root, keys, list, escrow, newDongle, identity, now);
    } else {
      if (!bytesEqual(identity.fingerprint, pending.header.dongleFingerprint)) {
        throw refused(
          `a replacement of card ${serial} onto dongle ${shortFingerprint(pending.header.dongleFingerprint)} was interrupted: rerun it with that dongle, ` +
          `or abandon it with "vsc dongle authority revoke --serial ${serial} --reason lost" and replace again`,
        );
      }
      const known = [pending.previousDongle, pending.header.dongleFingerprint];
      if (!known.some((fingerprint) => bytesEqual(fingerprint, escrow.dongleFingerprint))) {
        throw refused(`the escrow of card ${serial} names dongle ${shortFingerprint(escrow.dongleFingerprint)}, neither the one being replaced nor its replacement`);
      }
    }
    await finishReplacement(root, keys, list, escrow, pending, newDongle, now);
    return { serial, epoch: pending.header.epoch, dongle: identity, previousDongle: pending.previousDongle, resumed };
  });
}

/** Checks the new dongle, chooses the epoch and seal salt, journals the replacement. */
async function planReplacement(
  root: string, keys: AuthorityKeys, list: RevocationList, escrow: OpenedEscrow, dongle: Dongle, identity: DongleIdentity, now: Date,
): Promise<PendingReplacement> {
  const { serial } = escrow;
  const name = shortFingerprint(identity.fingerprint);
  if (bytesEqual(identity.fingerprint, escrow.dongleFingerprint)) throw refused(`dongle ${name} is card ${serial}'s current dongle: a replacement needs another dongle`);
  const entry = revokedEntry(list, identity.fingerprint);
  if (entry !== undefined) throw refused(`dongle ${name} is on the revocation list (${entry.reason}, card ${entry.serial}): it never holds a card again`);
  const existing = await dongle.read('card');
  if (existing !== undefined) {
    const holder = describeHolder(existing);
    throw refused(`dongle ${name} already holds ${holder}: a replacement needs a dongle without a card`);
  }
  const epoch = Math.max(escrow.epoch, ...list.entries.filter((known) => known.serial === serial).map((known) => known.epoch)) + 1;
  if (epoch > MAX_EPOCH) throw refused(`card ${serial} has used every counter epoch`);
  const header: CardRecordHeader = {
    serial, keyMode: escrow.keyMode, keysOnToken: false, fresh: true, dongleFingerprint: identity.fingerprint, epoch,
    sealSalt: Uint8Array.from(randomBytes(SEAL_SALT_LENGTH)), kdf: escrow.kdf, authority: reference(root, keys, escrow.escrowDirectory),
  };
  const headerBytes = encodeCardRecordHeader(header);
  // The list this replacement will carry must fit the new dongle's slot; found out now, before anything is written.
  const carried = withPreviousRevoked(keys, list, escrow.dongleFingerprint, serial, escrow.epoch, now);
  if (carried.bytes.length > MAX_SLOT_PAYLOAD_BYTES) throw refused(`the revocation list (${list.entries.length} entries) no longer fits a dongle's slot`);
  writeFileAtomic(pendingPath(root, serial), json({
    format: PENDING_FORMAT, serial, previousDongle: toHex(escrow.dongleFingerprint), previousEpoch: escrow.epoch, header: toHex(headerBytes), startedAt: now.toISOString(),
  }));
  return { previousDongle: escrow.dongleFingerprint, previousEpoch: escrow.epoch, header, headerBytes };
}

function revocationOf(dongle: Uint8Array, serial: string, epoch: number, reason: RevocationEntry['reason'], now: Date): RevocationEntry {
  return { dongle, serial, epoch, revokedAt: now.toISOString(), reason };
}

/** `list` with the replaced dongle on it: unchanged when it is there already (a "lost" entry stays as it is). */
function withPreviousRevoked(keys: AuthorityKeys, list: RevocationList, previous: Uint8Array, serial: string, epoch: number, now: Date): RevocationList {
  if (revokedEntry(list, previous) !== undefined) return list;
  return nextList(keys, list, [...list.entries, revocationOf(previous, serial, epoch, 'replaced', now)], now);
}

/** The journaled steps, each skipped when an earlier run already made it. */
async function finishReplacement(
  root: string, keys: AuthorityKeys, list: RevocationList, escrow: OpenedEscrow, pending: PendingReplacement, dongle: Dongle, now: Date,
): Promise<void> {
  const { header, headerBytes } = pending;
  const name = shortFingerprint(header.dongleFingerprint);
  // 1. The old dongle on the list.
  const current = withPreviousRevoked(keys, list, pending.previousDongle, header.serial, pending.previousEpoch, now);
  if (current !== list) storeList(root, current);
  // 2. The list onto the new dongle: the card program there knows its predecessor is revoked.
  await dongle.write('revocations', current.bytes);
  // 3. The card record: the escrowed password layer under the new dongle's layer.
  const existing = await dongle.read('card');
  if (existing === undefined) {
    const secret = await dongleSealingSecret(dongle, header);
    try {
      await dongle.write('card', encodeCardRecord(headerBytes, sealOuter(secret, headerBytes, escrow.inner!)));
    } finally {
      wipe(secret);
    }
  } else {
    let written: CardRecordHeader | undefined;
    try {
      written = decodeCardRecord(existing).header;
    } catch {
      written = undefined;
    }
    // An earlier run wrote it (it may have been inserted since, which clears "fresh").
    const ours = written !== undefined && written.serial === header.serial && written.epoch === header.epoch
      && bytesEqual(written.dongleFingerprint, header.dongleFingerprint) && bytesEqual(written.sealSalt, header.sealSalt);
    if (!ours) throw refused(`dongle ${name} now holds another card record; the replacement of card ${header.serial} cannot finish on it`);
  }
  // 4. The escrow re-sealed for the new dongle and epoch, so that a later replacement starts from here.
  const path = escrowPath(root, header.serial);
  if (mayReplaceEscrow(readEscrowRegistration(path), header)) writeFileAtomic(path, sealEscrow(header.authority!, header, escrow.inner));
  // 5. Done.
  unlinkSync(pendingPath(root, header.serial));
}

/**
 * [0107] Destroy and [0007] "report the card as missing": puts card `serial`'s current dongle on the list.
 * 'lost' can still be replaced later; 'destroyed' is final. An interrupted replacement is abandoned: its new
 * dongle is revoked too. Nothing changes when the list already says so.
 */
export async function revokeDongle(dir: string, serial: string, reason: 'lost' | 'destroyed', now = new Date()): Promise<Revocation> {
  const root = resolve(dir);
  return withAuthority(root, async (keys) => {
    const list = readOwnList(root, keys);
    const escrowBytes = readEscrowBytes(root, serial);
    const registration = escrowBytes === undefined ? undefined : inspectEscrow(escrowBytes);
    if (registration !== undefined) checkSerial(registration, serial, root);
    const pending = readPending(root, serial);
    if (registration === undefined && pending === undefined) throw refused(`this authority holds no escrow of card ${serial}, so it does not know its dongle`);
    const targets: { dongle: Uint8Array; epoch: number }[] = [];
    if (registration !== undefined) targets.push({ dongle: registration.dongleFingerprint, epoch: registration.epoch });
    if (pending !== undefined) targets.push({ dongle: pending.previousDongle, epoch: pending.previousEpoch }, { dongle: pending.header.dongleFingerprint, epoch: pending.header.epoch });
    const entries = [...list.entries];
    const changed: Uint8Array[] = [];
    if (!isSerialDestroyed(list, serial)) {
      for (const target of targets) {
        const index = entries.findIndex((entry) => bytesEqual(entry.dongle, target.dongle));
        if (index < 0) entries.push(revocationOf(target.dongle, serial, target.epoch, reason, now));
        else if (reason === 'destroyed' && entries[index]!.reason !== 'destroyed') entries[index] = { ...entries[index]!, reason };
        else continue;
        changed.push(target.dongle);
      }
    }
    let sequence = list.sequence;
    if (changed.length > 0) {
      const next = nextList(keys, list, entries, now);
      storeList(root, next);
      sequence = next.sequence;
    }
    if (pending !== undefined) unlinkSync(pendingPath(root, serial));
    return { serial, reason, dongles: changed, sequence };
  });
}

/** The cards this authority holds escrows of, with their state, current dongle and epoch. */
export function listCards(dir: string): AuthorityCard[] {
  const root = resolve(dir);
  const keys = loadKeys(root);
  wipe(keys.escrowPrivateKey);
  const list = readOwnList(root, keys);
  const cards: AuthorityCard[] = [];
  for (const name of readdirSync(join(root, ESCROW_FOLDER)).sort()) {
    const serial = serialOfEscrowFile(name);
    if (serial === undefined) continue; // a temporary file of a write under way
    const path = join(root, ESCROW_FOLDER, name);
    const lastEscrowed = statSync(path).mtime;
    let registration: EscrowRegistration;
    let pending: PendingReplacement | undefined;
    try {
      registration = inspectEscrow(Uint8Array.from(readFileSync(path)));
      checkSerial(registration, serial, root);
      pending = readPending(root, serial);
    } catch {
      cards.push({ serial, state: 'damaged', dongle: undefined, epoch: undefined, lastEscrowed, keysOnToken: undefined });
      continue;
    }
    const dongle = pending?.header.dongleFingerprint ?? registration.dongleFingerprint;
    const epoch = pending?.header.epoch ?? registration.epoch;
    const state: AuthorityCardState = isSerialDestroyed(list, serial) ? 'destroyed'
      : pending !== undefined ? 'replacing'
        : revokedEntry(list, dongle) !== undefined ? 'lost' : 'active';
    cards.push({ serial, state, dongle, epoch, lastEscrowed, keysOnToken: registration.keysOnToken });
  }
  return cards;
}

/** The authority's newest signed list (what `vsc dongle authority list` reads and card programs pick up). */
export function readAuthorityList(dir: string): RevocationList {
  const root = resolve(dir);
  const keys = loadKeys(root);
  wipe(keys.escrowPrivateKey);
  return readOwnList(root, keys);
}
